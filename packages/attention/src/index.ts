/**
 * @aes/attention: sparse normalisers with exact gradients, entropy statistics and multi-head
 * attention with per-head normalisers and adaptive entropy sparsity (AES), for TensorFlow.js.
 *
 * Every map acts on the last axis of a float32 tensor; `-Infinity` masks an entry.
 */
export { softmax } from './softmax.js';
export { sparsemax } from './sparsemax.js';
export { entmax15 } from './entmax15.js';
export { entmaxBisect, ENTMAX_BISECT_DEFAULTS, MIN_ALPHA_EXCESS, type EntmaxBisectArgs } from './entmax_bisect.js';
export {
  entmaxFused,
  fusedEntmaxAvailable,
  registerFusedEntmax,
  unregisterFusedEntmax,
  ENTMAX_FUSED_DEFAULTS,
  type EntmaxFusedArgs,
} from './fused/entmax_fused.js';
export {
  flashEntmaxAttention,
  flashSkipCounts,
  flashAttentionAvailable,
  registerFlashAttention,
  unregisterFlashAttention,
  type FlashAttentionArgs,
} from './fused/flash_fused.js';
export {
  sparsemaxLoss,
  entmax15Loss,
  entmaxBisectLoss,
  reduceLoss,
  FY_LOSS_DEFAULTS,
  type FYLossArgs,
  type Reduction,
} from './losses.js';
export {
  logitStats,
  probStats,
  tsallisEntropy,
  ENTROPY_DEFAULTS,
  type EntropyArgs,
  type EntropyStats,
} from './entropy.js';
export { supportSize, supportFraction } from './support.js';
export {
  entmax,
  parseNormaliser,
  AES_DEFAULTS,
  type AesArgs,
  type Normaliser,
  type NormaliserSpec,
} from './normaliser.js';
export { aesSchedule, AES_SCHEDULE_DEFAULTS, type AesSchedule, type AesScheduleArgs } from './aes_schedule.js';
export { attention, type AttentionArgs, type AttentionResult, type AttentionStats } from './attention.js';
export {
  planAttention,
  alphaOf,
  learnedAlpha,
  initialAesState,
  initialParam,
  type AttentionPlan,
  type AesGroup,
  type ParamSpec,
  type ParamInit,
} from './plan.js';
export { headProbs, asentScale, ADAPTIVE_TEMP_POLY, ADAPTIVE_TEMP_FROM, MIN_ROW_SCALE } from './head_maps.js';
export { compileFormula, type Formula } from './formula.js';
export { readsAreCheap, HOST_MEMORY_BACKENDS } from './capabilities.js';
export { causalMask, type Layout } from './scores.js';
export { rope, alibiSlopes, alibiDistance, ROPE_BASE } from './positions.js';
export { multiHeadAttention, type MhaArgs, type MhaConfig, type MhaWeights, type KVCache } from './mha.js';
export { matMul2d } from './matmul.js';
export { stridedAttention } from './strided.js';
export { EntropicMultiHeadAttention, type EntropicMultiHeadAttentionArgs } from './layer.js';
export {
  blockSparseAttention,
  BLOCK_SPARSE_DEFAULTS,
  type BlockSparseArgs,
  type BlockSparseResult,
  type BlockSparseStats,
  type BlockSkipArgs,
} from './block_sparse.js';
export { BLOCK_SKIP_MIN_KEYS } from './skip_heads.js';
export { entmaxRows } from './js_rows.js';
export { hostEntmax, hostEntmaxAvailable } from './host_entmax.js';
export { maskedSoftmax, registerMaskedSoftmax, unregisterMaskedSoftmax } from './fused/softmax_rows.js';
export { clusteredHeads, type ClusteredHeadsArgs } from './synthetic.js';
