/** The `aes sample` sampler flags and how they map onto the samplers of @aes/models. */
import {
  entmaxSampler, entropixSampler, filteredSampler, freeEnergySampler, greedySampler, plainSampler, type Sampler,
} from '@aes/models';

export const SAMPLERS = [
  'greedy',
  'temperature',
  'topk',
  'topp',
  'minp',
  'typical',
  'entmax',
  'entropix',
  'free-energy',
] as const;

export const SAMPLE_DEFAULTS = {
  ckpt: '', prompt: '', sampler: 'greedy', maxNewTokens: 200, seed: 0, trace: '', backend: 'wasm', threads: 0,
  temperature: 1, topK: 40, topP: 0.9, minP: 0.05, typicalP: 0.9, alpha: 1.5, targetEntropy: 0, targetFraction: 0.5,
};

/** One line per flag of `aes sample --help`. */
export const SAMPLE_FLAG_HELP: Readonly<Record<keyof typeof SAMPLE_DEFAULTS, string>> = Object.freeze({
  ckpt: "checkpoint directory (a run's ckpt/)",
  prompt: 'text to continue (characters outside the vocabulary are read as <unk>, with a warning)',
  sampler: `one of ${SAMPLERS.join(', ')}`,
  maxNewTokens: 'tokens to generate',
  seed: 'seed of the draws',
  trace: 'write one JSON line per decision (entropy, varentropy, branch, …) to this file',
  backend: 'wasm (default), cpu, webgpu, tensorflow, tensorflow-gpu or auto',
  threads: 'wasm threads (0: one per core; 1: single-threaded)',
  temperature: 'softmax temperature',
  topK: 'topk: keep the k most probable tokens',
  topP: 'topp: keep the smallest set with this much probability',
  minP: 'minp / free-energy: keep tokens with p ≥ minP · p_max',
  typicalP: 'typical: mass of the locally typical set',
  alpha: 'entmax: α of the distribution drawn from',
  targetEntropy: 'free-energy: target entropy in nats (0: targetFraction of ln V instead)',
  targetFraction: 'free-energy: target entropy as a share of ln V',
});

/** A sampler from parsed `aes sample` flags. */
export function makeSampler(f: typeof SAMPLE_DEFAULTS): Sampler {
  const T = f.temperature;
  switch (f.sampler) {
    case 'greedy': return greedySampler();
    case 'temperature': return plainSampler({ temperature: T });
    case 'topk': return filteredSampler({ temperature: T, topK: f.topK });
    case 'topp': return filteredSampler({ temperature: T, topP: f.topP });
    case 'minp': return filteredSampler({ temperature: T, minP: f.minP });
    case 'typical': return filteredSampler({ temperature: T, typicalP: f.typicalP });
    case 'entmax': return entmaxSampler({ alpha: f.alpha, temperature: T });
    case 'entropix': return entropixSampler(T === 1 ? {} : { temperature: T });
    case 'free-energy':
      return freeEnergySampler({
        target: f.targetEntropy > 0 ? { entropy: f.targetEntropy } : { fraction: f.targetFraction },
        minP: f.minP,
      });
    default: throw new RangeError(`unknown sampler '${f.sampler}'; use one of ${SAMPLERS.join(', ')}`);
  }
}
