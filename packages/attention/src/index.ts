/**
 * @aes/attention: sparse normalisers with exact gradients, entropy statistics and multi-head
 * attention with per-head normalisers and adaptive entropy sparsity (AES), for TensorFlow.js.
 *
 * Every map acts on the last axis of a float32 tensor; `-Infinity` masks an entry.
 */
export { softmax } from './softmax';
export { sparsemax } from './sparsemax';
export { entmax15 } from './entmax15';
export { entmaxBisect, ENTMAX_BISECT_DEFAULTS, MIN_ALPHA_EXCESS, type EntmaxBisectArgs } from './entmax_bisect';
export { entmaxFused, fusedEntmaxAvailable, registerFusedEntmax, unregisterFusedEntmax, ENTMAX_FUSED_DEFAULTS, type EntmaxFusedArgs } from './fused/entmax_fused';
export { sparsemaxLoss, entmax15Loss, entmaxBisectLoss, reduceLoss, FY_LOSS_DEFAULTS, type FYLossArgs, type Reduction } from './losses';
export { logitStats, probStats, tsallisEntropy, ENTROPY_DEFAULTS, type EntropyArgs, type EntropyStats } from './entropy';
export { supportSize, supportFraction } from './support';
export { entmax, parseNormaliser, AES_DEFAULTS, type AesArgs, type Normaliser, type NormaliserSpec } from './normaliser';
export { aesSchedule, AES_SCHEDULE_DEFAULTS, type AesSchedule, type AesScheduleArgs } from './aes_schedule';
export { attention, type AttentionArgs, type AttentionResult, type AttentionStats, type AesState } from './attention';
export { multiHeadAttention, type MhaArgs, type MhaConfig, type MhaWeights, type KVCache } from './mha';
export { matMul2d } from './matmul';
export { stridedAttention } from './strided';
export { EntropicMultiHeadAttention, type EntropicMultiHeadAttentionArgs } from './layer';
export { selectBackend, BACKEND_NAMES, type BackendName, type BackendChoice } from './backend';
export { blockSparseAttention, BLOCK_SPARSE_DEFAULTS, type BlockSparseArgs, type BlockSparseResult, type BlockSparseStats } from './block_sparse';
export { clusteredHeads, type ClusteredHeadsArgs } from './synthetic';
