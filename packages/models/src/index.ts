/**
 * @aes/models: a small GPT with per-head attention normalisers, tokenizers, checkpoints, KV-cache
 * generation and samplers (greedy, filtered, entmax, Entropix-style, free-energy).
 */
export {
  GPT,
  GPT_DEFAULTS,
  resolveConfig,
  layerHeads,
  type GPTConfig,
  type ForwardArgs,
  type ForwardResult,
} from './model.js';
export { ByteTokenizer, CharTokenizer, tokenizerFromJSON, type Tokenizer, type TokenizerJSON } from './tokenizer.js';
export { saveCheckpoint, loadCheckpoint, type CheckpointExtra } from './checkpoint.js';
export { generate, type GenerateArgs, type GenerateResult } from './generate.js';
export { Rng } from './rng.js';
export { readTensors } from './read.js';
export { attentionMaps, type AttentionMapsArgs, type HeadMap, type LayerMaps } from './maps.js';
export type { Sampler, SampleContext, SampleResult, AttentionSummary } from './sampler_types.js';
export { filterLogits, type FilterLogitsArgs } from './filter_logits.js';
export {
  drawCategorical,
  sampleFromLogits,
  greedySampler,
  plainSampler,
  filteredSampler,
  entmaxSampler,
  type PlainSamplerArgs,
  type EntmaxSamplerArgs,
} from './sample.js';
export {
  entropixSampler,
  entropixBranch,
  entropixSampling,
  ENTROPIX_DEFAULTS,
  ENTROPIX_COEFFICIENTS,
  type EntropixConfig,
  type EntropixCoefficients,
  type EntropixBranch,
} from './entropix.js';
export {
  freeEnergyStats,
  solveTemperature,
  freeEnergySampler,
  SOLVE_TEMPERATURE_DEFAULTS,
  type FreeEnergyStats,
  type EntropyTarget,
  type FreeEnergySamplerArgs,
} from './free_energy.js';
