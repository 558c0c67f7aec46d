/**
 * @aes/attention: sparse normalisers with exact gradients, entropy statistics and (soon)
 * attention with adaptive entropy sparsity, for TensorFlow.js.
 *
 * Every map acts on the last axis of a float32 tensor; `-Infinity` masks an entry.
 */
export { softmax } from './softmax';
export { sparsemax } from './sparsemax';
export { entmax15 } from './entmax15';
export { entmaxBisect, ENTMAX_BISECT_DEFAULTS, MIN_ALPHA_EXCESS, type EntmaxBisectArgs } from './entmax_bisect';
export { sparsemaxLoss, entmax15Loss, entmaxBisectLoss, reduceLoss, FY_LOSS_DEFAULTS, type FYLossArgs, type Reduction } from './losses';
export { logitStats, probStats, tsallisEntropy, ENTROPY_DEFAULTS, type EntropyArgs, type EntropyStats } from './entropy';
export { supportSize, supportFraction } from './support';
export { selectBackend, BACKEND_NAMES, type BackendName, type BackendChoice } from './backend';
