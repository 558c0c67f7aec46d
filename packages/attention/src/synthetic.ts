/**
 * Seeded synthetic attention inputs for benches and tests of sparsity-aware kernels.
 *
 * `clusteredHeads` models low-entropy (retrieval-like) heads: the sequence is a run of segments,
 * each about one of a few topics (topics recur); a position's key and query are its topic's unit
 * direction times `strength` plus Gaussian noise. Queries then score keys of their own topic high
 * (≈ strength²/√d) and every other key near 0, so α-entmax rows put all their mass on same-topic
 * keys, which sit in a few contiguous blocks. `strength = 0` gives high-entropy heads (pure noise).
 */
import * as tf from '@tensorflow/tfjs';

export interface ClusteredHeadsArgs {
  B?: number; H?: number; T?: number; d?: number;
  /** Positions per segment. Default 256. */
  segment?: number;
  /** Number of distinct topics. Default 8. */
  topics?: number;
  /** Norm of the topic part of q and k. Default 8 (same-topic scores ≈ 8 at d = 64). */
  strength?: number;
  /** Standard deviation of the noise added per coordinate. Default 0.1 (1 when strength is 0). */
  noise?: number;
}

/** q, k, v `[B, H, T, d]` from seed `seed` (any integer; the generator is local to the call). */
export function clusteredHeads(
  seed: number,
  args: ClusteredHeadsArgs = {},
): { q: tf.Tensor4D; k: tf.Tensor4D; v: tf.Tensor4D } {
  const { B = 1, H = 1, T = 1024, d = 64, segment = 256, topics = 8, strength = 8 } = args;
  const noise = args.noise ?? (strength === 0 ? 1 : 0.1);
  const uniform = mulberry32(seed ^ 0x9e3779b9);
  const gauss = () => randn(uniform);
  const n = B * H * T * d;
  const [q, k, v] = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  for (let bh = 0; bh < B * H; bh++) {
    const dirs = Array.from({ length: topics }, () => {
      const u = Array.from({ length: d }, gauss);
      const norm = Math.hypot(...u);
      return u.map((x) => x / norm);
    });
    const topicOf = Array.from({ length: Math.ceil(T / segment) }, () => Math.floor(uniform() * topics));
    for (let i = 0; i < T; i++) {
      const dir = dirs[topicOf[Math.floor(i / segment)]];
      for (let e = 0; e < d; e++) {
        const o = (bh * T + i) * d + e;
        q[o] = strength * dir[e] + noise * gauss();
        k[o] = strength * dir[e] + noise * gauss();
        v[o] = gauss();
      }
    }
  }
  const shape: [number, number, number, number] = [B, H, T, d];
  return { q: tf.tensor4d(q, shape), k: tf.tensor4d(k, shape), v: tf.tensor4d(v, shape) };
}

/** Mulberry32: a seeded generator of uniforms in [0, 1) (state local to the returned function). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One standard normal sample by Box–Muller from a uniform generator. */
export function randn(rng: () => number): number {
  const u1 = 1 - rng();                                     // in (0, 1]: the log is finite
  const u2 = rng();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}
