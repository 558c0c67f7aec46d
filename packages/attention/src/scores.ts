/**
 * The two products of attention and the one layout between them.
 *
 * Scores are `[B, H, T, S]`. Each head's scores are held as row blocks in batch order
 * (`HeadRows`): B blocks `[T, S]` from plain 2-D products (layout 'perHead': on wasm much faster than
 * batched or transposed products, see matmul.ts) or one block `[B, T, S]` from one batched product
 * over all heads (layout 'batched': fewer ops, better for short sequences and on GPUs). Every step
 * between the two products (mask, normaliser, entropy, statistics) is row-wise, so it maps over the
 * blocks and never needs to know which layout made them.
 */
import * as tf from '@tensorflow/tfjs';
import { readsAreCheap } from './capabilities.js';
import { matMul2d, unstack0 } from './matmul.js';
import { alibiDistance } from './positions.js';

export type Layout = 'perHead' | 'batched';

/** One head's rows `[B, T, S]`, as blocks in batch order: B × `[T, S]` or 1 × `[B, T, S]`. */
export type HeadRows = tf.Tensor[];

/**
 * What is added to the scores: masks (0 keep, −∞ drop), causal `[T, S]` and padding `[B, S]`, and
 * ALiBi's slope · distance per head (distance `[T, S]`), each or null.
 */
export interface ScoreMasks {
  causal: tf.Tensor | null;
  keys: tf.Tensor | null;
  alibi: { slopes: number[]; distance: tf.Tensor } | null;
}

/**
 * Largest T·S computed in the batched layout by default where reads are cheap (cpu, wasm): for
 * short sequences the per-(b, h) loop costs more in op overhead than batched products lose
 * (measured on wasm: at T = S = 16, B = 32, H = 4 a training step is ~6× faster batched).
 */
const BATCHED_UP_TO = 128 * 128;

/** The default layout for T queries and S keys on the active backend. */
export function defaultLayout(T: number, S: number): Layout {
  return !readsAreCheap() || T * S <= BATCHED_UP_TO ? 'batched' : 'perHead';
}

/**
 * The masks of a call: causal with query i seeing keys j ≤ i + offset (null: none), padding from a
 * 0/1 `[B, S]`, and ALiBi biases when `alibi` gives the slopes. `rows` restricts everything to those
 * query rows (in that order).
 */
export function scoreMasks(T: number, S: number, causalOffset: number | null, keyMask?: tf.Tensor, rows?: number[],
  alibi?: number[]): ScoreMasks {
  const at = rows ?? Array.from({ length: T }, (_, i) => i);
  return {
    causal: causalMask(T, S, causalOffset, rows),
    keys: keyMask ? tf.log(tf.cast(keyMask, 'float32')) : null,
    alibi: alibi ? { slopes: alibi, distance: alibiDistance(at, S, causalOffset ?? S - T) } : null,
  };
}

/** The kernel that makes the causal mask on the device (registered for webgpu by fused/softmax_rows.ts). */
export const CAUSAL_MASK = 'AesCausalMask';

/**
 * Additive causal mask: 0 where key j ≤ i + offset, −∞ elsewhere. `[T, S]` (or `[rows, S]`), or
 * null. Made on the device where the CAUSAL_MASK kernel is registered (no upload), else on the host.
 */
export function causalMask(T: number, S: number, offset: number | null, rows?: number[]): tf.Tensor | null {
  if (offset === null) return null;
  if (!rows && tf.getKernel(CAUSAL_MASK, tf.getBackend()))
    return tf.engine().runKernel(CAUSAL_MASK, {}, { T, S, offset }) as tf.Tensor;
  const at = rows ?? Array.from({ length: T }, (_, i) => i);
  const m = new Float32Array(at.length * S);
  at.forEach((i, r) => m.fill(-Infinity, r * S + Math.max(0, Math.min(S, i + offset + 1)), (r + 1) * S));
  return tf.tensor2d(m, [at.length, S]);
}

/** The keys of every (b, h) transposed for plain 2-D products: B·H tensors `[d, S]`, index b·H + h. */
export function transposedKeys(k: tf.Tensor): tf.Tensor2D[] {
  return perHead(k).map((t) => tf.transpose(t) as tf.Tensor2D);
}

/**
 * Masked scores q·kᵀ of every head (q already scaled): `[H]` of HeadRows. The per-head layout takes
 * the transposed keys when the caller has them (`transposedKeys`), and computes head `only` alone
 * when given (a one-element list), from the queries already split by `perHead` when given.
 */
export function headScores(
  q: tf.Tensor,
  k: tf.Tensor,
  masks: ScoreMasks,
  layout: Layout,
  keysT?: tf.Tensor2D[],
  only?: number,
  qHeads?: tf.Tensor2D[],
): HeadRows[] {
  const [B, H] = q.shape as number[];
  const S = k.shape[2] as number;
  if (layout === 'perHead') {
    const qs = qHeads ?? perHead(q);
    const kTs = keysT ?? transposedKeys(k);
    const keyRows = masks.keys ? unstack0(masks.keys).map((r) => tf.reshape(r, [1, S])) : null;
    return (only === undefined ? Array.from({ length: H }, (_, h) => h) : [only]).map((h) => {
      const add = additive(masks, h);
      return Array.from({ length: B }, (_, b) => {
        let s: tf.Tensor = matMul2d(qs[b * H + h], kTs[b * H + h]);
        if (add) s = tf.add(s, add);
        return keyRows ? tf.add(s, keyRows[b]) : s;
      });
    });
  }
  return splitHeads(allScores(q, k, masks));
}

/** `[B, H, T, S]` → the batched layout's HeadRows (one `[B, T, S]` block per head). */
export function splitHeads(s: tf.Tensor): HeadRows[] {
  const [B, H, T, S] = s.shape as number[];
  // (split's gradient fails for a single piece, as unstack0's comment explains)
  return (H === 1 ? [s] : tf.split(s, H, 1)).map((u) => [tf.reshape(u, [B, T, S])]);
}

/** Masked scores of every head as one batched product, `[B, H, T, S]` (q already scaled). */
export function allScores(q: tf.Tensor, k: tf.Tensor, masks: ScoreMasks): tf.Tensor {
  const [B, H, T, d] = q.shape as number[];
  const S = k.shape[2] as number;
  let s: tf.Tensor = tf.matMul(tf.reshape(q, [B * H, T, d]), tf.reshape(k, [B * H, S, d]), false, true);
  s = tf.reshape(s, [B, H, T, S]);
  if (masks.causal) s = tf.add(s, masks.causal);
  if (masks.alibi) {
    const slopes = tf.reshape(tf.tensor1d(masks.alibi.slopes), [1, H, 1, 1]);
    s = tf.add(s, tf.mul(slopes, masks.alibi.distance));
  }
  if (masks.keys) s = tf.add(s, tf.reshape(masks.keys, [B, 1, 1, S]));
  return s;
}

/** Σ_j p_ij v_j for every head: probabilities in the layout of `headScores`, v `[B, H, S, dv]` → `[B, H, T, dv]`. */
export function mixValues(probs: HeadRows[], v: tf.Tensor, layout: Layout): tf.Tensor {
  const [B, H, S, dv] = v.shape as number[];
  if (layout === 'perHead') {
    const vs = perHead(v);
    return tf.stack(
      Array.from({ length: B }, (_, b) =>
        tf.stack(probs.map((rows, h) => matMul2d(rows[b] as tf.Tensor2D, vs[b * H + h]))),
      ),
    );
  }
  const T = probs[0][0].shape[1] as number;
  const p = tf.reshape(tf.concat(probs.map(([rows]) => tf.reshape(rows, [B, 1, T, S])), 1), [B * H, T, S]);
  return tf.reshape(tf.matMul(p, tf.reshape(v, [B * H, S, dv])), [B, H, T, dv]);
}

/**
 * Visible keys per row, from the masks alone (no gradient path through the scores), as blocks
 * matching each head's rows: B × `[T]` or 1 × `[B, T]`.
 */
export function visibleRows(masks: ScoreMasks, B: number, T: number, S: number, layout: Layout): tf.Tensor[] {
  const finite = (t: tf.Tensor) => tf.cast(tf.isFinite(t), 'float32');
  // (no ones([B, T, S]): tfjs builds it on the host, an upload of B·T·S floats on a GPU)
  const { causal, keys } = masks;
  let n: tf.Tensor;                                                         // [B, T]
  if (causal && keys) n = tf.sum(tf.mul(tf.expandDims(finite(causal), 0), tf.reshape(finite(keys), [B, 1, S])), 2);
  else if (causal) n = tf.broadcastTo(tf.expandDims(tf.sum(finite(causal), 1), 0), [B, T]);
  else if (keys) n = tf.broadcastTo(tf.sum(finite(keys), 1, true), [B, T]);
  else n = tf.fill([B, T], S);
  return layout === 'perHead' ? unstack0(n) : [n];
}

/**
 * A per-row quantity of every head as `[B, H, T]`: `f` maps one block `[..., T, S]` of head h to
 * `[..., T]` (i: the block's index).
 */
export function perRow(
  heads: HeadRows[],
  T: number,
  f: (block: tf.Tensor, h: number, i: number) => tf.Tensor,
): tf.Tensor {
  return tf.stack(
    heads.map((rows, h) =>
      tf.concat(
        rows.map((block, i) => tf.reshape(f(block, h, i), [-1, T])),
        0,
      ),
    ),
    1,
  );
}

/**
 * A per-row quantity across heads as `[B, T]`: `f` maps the matching blocks of all heads (one per
 * head, same rows) to `[..., T]`.
 */
export function acrossHeads(heads: HeadRows[], T: number, f: (blocks: tf.Tensor[]) => tf.Tensor): tf.Tensor {
  return tf.concat(heads[0].map((_, i) => tf.reshape(f(heads.map((rows) => rows[i])), [-1, T])), 0);
}

/** The causal mask plus head h's ALiBi bias `[T, S]`, or null when neither applies. */
function additive(masks: ScoreMasks, h: number): tf.Tensor | null {
  const bias = masks.alibi ? tf.mul(masks.alibi.distance, masks.alibi.slopes[h]) : null;
  if (bias && masks.causal) return tf.add(bias, masks.causal);
  return bias ?? masks.causal;
}

/** [B, H, N, e] → B·H tensors [N, e], index b·H + h. */
export function perHead(x: tf.Tensor): tf.Tensor2D[] {
  const [B, H, N, e] = x.shape as number[];
  return unstack0(tf.reshape(x, [B * H, N, e])) as tf.Tensor2D[];
}

/**
 * The shapes every attention entry point needs: q [B, H, T, d], k [B, H, S, d], v [B, H, S, dv],
 * float32, and an optional key mask [B, S]. Throws a message naming `op` and the shapes; returns
 * q's shape.
 */
export function checkQkv(op: string, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, keyMask?: tf.Tensor): number[] {
  const shapes = `q [${q.shape}], k [${k.shape}], v [${v.shape}]`;
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4)
    throw new RangeError(`${op}: expected q [B, H, T, d], k [B, H, S, d], v [B, H, S, dv]; got ${shapes}`);
  for (const t of [q, k, v])
    if (t.dtype !== 'float32')
      throw new TypeError(`${op}: q, k, v must be float32; got ${q.dtype}, ${k.dtype}, ${v.dtype}`);
  const [B, H, , d] = q.shape;
  if (k.shape[0] !== B || v.shape[0] !== B || k.shape[1] !== H || v.shape[1] !== H)
    throw new RangeError(`${op}: batch and head sizes differ: ${shapes}`);
  if (k.shape[3] !== d) throw new RangeError(`${op}: q and k need the same head size d: ${shapes}`);
  if (k.shape[2] !== v.shape[2]) throw new RangeError(`${op}: k and v need the same number of keys S: ${shapes}`);
  if (keyMask && (keyMask.rank !== 2 || keyMask.shape[0] !== B || keyMask.shape[1] !== k.shape[2])) {
    throw new RangeError(`${op}: keyMask must be [B, S] = [${B}, ${k.shape[2]}], got [${keyMask.shape}]`);
  }
  return q.shape;
}
