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
  ckpt: '', prompt: '', sampler: 'greedy', maxNewTokens: 200, seed: 0, trace: '', backend: 'wasm',
  temperature: 1, topK: 40, topP: 0.9, minP: 0.05, typicalP: 0.9,
  /** entmax sampling: α of the distribution drawn from. */
  alpha: 1.5,
  /** free-energy: target entropy in nats (0: use targetFraction of ln V instead). */
  targetEntropy: 0,
  targetFraction: 0.5,
};

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
