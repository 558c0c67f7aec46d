/**
 * Block skipping inside `attention()`: the heads whose map has exact zeros in this call (α > 1:
 * fixed α, learned α, per-head AES, ASEntmax) are planned as in block_sparse.ts and, where the plan
 * keeps at most `denseAbove` of their visible blocks (averaged over the batch), computed from the
 * kept blocks only; their scores are never formed. Other heads, and planned heads that would keep
 * more, take the dense path. Outputs and gradients (q, k, v and every learned parameter: α, ASEntmax's
 * β and γ) equal the dense path to float32 rounding.
 *
 * With `maskAbove` > 0 (opt-in), when gradients are recorded (training), a planned head whose plan
 * keeps more than `denseAbove` takes the exact mask instead of the dense path (`runMasked`: every
 * score, then only the blocks holding a nonzero in the products with V and the backward pass), where
 * the scores' sparsity saves backward work the bounds cannot see; a head that one score row per
 * query block already shows to need more than `maskAbove` of its blocks runs dense. Evaluation and
 * generation (no tape) keep the dense fallback: the mask computes every score, so it does not pay
 * forward.
 *
 * Per-row AES is not planned: it needs every row's entropy, measured on all of its scores, before it
 * knows α, and the row maps here take one α per head.
 */
import * as tf from '@tensorflow/tfjs';
import {
  BLOCK_SPARSE_DEFAULTS, keptShareBound, planHead, runMasked, runPlanned, type BlockSkipArgs, type Cfg,
} from './block_sparse.js';
import { asentScale } from './head_maps.js';
import type { Normaliser } from './normaliser.js';
import { learnedAlpha } from './plan.js';

/** Calls with fewer keys are not planned: at n = 1024 block skipping only breaks even forward (bench:sparse). */
export const BLOCK_SKIP_MIN_KEYS = 1024;

/** The resolved options, or null when this call is not planned. */
export function skipConfig(
  opt: 'auto' | false | BlockSkipArgs | undefined,
  S: number,
  eligible: boolean,
): SkipCfg | null {
  if (opt === false || !eligible) return null;
  const cfg = {
    ...BLOCK_SPARSE_DEFAULTS, minKeys: BLOCK_SKIP_MIN_KEYS, maskAbove: 0,
    ...(typeof opt === 'object' ? opt : {}),
    training: tf.engine().isTapeOn(),
  };
  return S >= cfg.minKeys ? cfg : null;
}

/** The options of a planned call; `training`: gradients are recorded (the exact mask may pay). */
export type SkipCfg = Cfg & { minKeys: number; maskAbove: number; training: boolean };

/** How a head runs: dense (with the bound that ruled it, 1 without zeros), planned, or masked outright. */
export type Route = { route: 'dense' | 'plan' | 'mask'; bound: number };

/** Whether a head the bounds cannot thin takes the exact mask: training, opted in, bound (NaN: unknown) not above. */
const maskable = (cfg: SkipCfg, bound: number) => cfg.training && cfg.maskAbove > 0 && !(bound > cfg.maskAbove);

/** How one head's map reads as α-entmax of row-scaled scores, or null when it is not one with zeros. */
function sparsityOf(
  n: Normaliser,
  h: number,
  params: Record<string, tf.Tensor>,
  aesAlpha: number | tf.Tensor | tf.Tensor[] | undefined,
): { alpha: number | tf.Tensor; asent?: { delta: number; beta: tf.Tensor; gamma: tf.Tensor } } | null {
  const param = (name: string) => tf.reshape(tf.slice(params[name], [h], [1]), []);
  switch (n.kind) {
    case 'fixed':
      return { alpha: n.alpha };
    case 'learned':
      return { alpha: learnedAlpha(params.alpha, h) };
    case 'aes':
      return aesAlpha === undefined || Array.isArray(aesAlpha) ? null : { alpha: aesAlpha };
    case 'asentmax':
      return {
        alpha: n.alpha === 'learned' ? learnedAlpha(params.alpha, h) : n.alpha,
        asent: { delta: n.delta, beta: param('asentBeta'), gamma: param('asentGamma') },
      };
    default:
      return null;
  }
}

/**
 * Per head, before anything is split per head or planned: 'dense' when this call surely runs the
 * head dense — bound 1 when its map has no zeros, else the batch mean of `keptShareBound`, when it
 * is above `denseAbove` (above `maskAbove` when training) — 'mask' when training and that bound lies
 * between the two (no plan could keep at most `denseAbove`), else 'plan'. (AES heads are always
 * planned: the gate gives their α later.) The bound costs one score row per query block, where a plan costs a probe
 * product, bounds for every block pair and a threshold per row, and the split of q, k and v per head
 * (on wasm: 20–40 ns per element); heads whose scores spread over most blocks (random ones, and most
 * heads early in training) skip all of that.
 */
export function routeHeads(
  heads: readonly Normaliser[],
  qs: tf.Tensor,
  k: tf.Tensor,
  c: { params: Record<string, tf.Tensor>; offset: number | null; cfg: SkipCfg },
): Route[] {
  const [B, H, T, d] = qs.shape;
  const S = k.shape[2]!;
  const { queryBlockSize: bq, blockSize: bk, denseAbove } = c.cfg;
  const last = Array.from({ length: Math.ceil(T / bq) }, (_, a) => Math.min(T, (a + 1) * bq) - 1);
  return heads.map((n, h) => {
    if (n.kind === 'aes') return { route: 'plan', bound: NaN };
    const sp = sparsityOf(n, h, c.params, undefined);
    const a = !sp ? 1 : typeof sp.alpha === 'number' ? sp.alpha : sp.alpha.dataSync()[0];
    if (!(a > 1)) return { route: 'dense', bound: 1 };
    let sc = new Float32Array(0);
    tf.tidy(() => {
      const [q2, k2] = [tf.reshape(qs, [B * H * T, d]), tf.reshape(k, [B * H * S, d])];
      const rows = Array.from({ length: B }, (_, b) => {
        const qa = tf.gather(q2, tf.tensor1d(last.map((i) => (b * H + h) * T + i), 'int32'));
        const s = tf.matMul(qa, tf.slice(k2, [(b * H + h) * S, 0], [S, d]), false, true);   // [nQ, S]
        if (!sp!.asent) return s;
        const vis = last.map((i) => (c.offset === null ? S : Math.min(S, i + c.offset + 1)));
        const lnN = tf.log(tf.maximum(tf.tensor2d(vis, [last.length, 1]), 2));
        return tf.mul(s, asentScale(sp!.asent.delta, sp!.asent.beta, sp!.asent.gamma, lnN));
      });
      sc = (tf.concat(rows).dataSync() as Float32Array).slice();
    });
    const size = last.length * S;
    let bound = 0;
    for (let b = 0; b < B; b++)
      bound += keptShareBound(sc.subarray(b * size, (b + 1) * size), last, S, a, c.offset, bk) / B;
    if (!(bound > denseAbove)) return { route: 'plan', bound };
    return { route: maskable(c.cfg, bound) ? 'mask' : 'dense', bound };
  });
}

export interface SkippedHead {
  /** `[B, T, dv]` */
  output: tf.Tensor;
  skipRate: number[];
  keptBlocks: number;
  mode: 'sparse' | 'masked';
}

/**
 * Head h through block skipping (or the exact mask: `mask`, or a plan that keeps too much while
 * training), or `{keptBlocks}` alone when it should run dense (or null when its map has no zeros).
 * `heads`: q (already scaled), k and v split per (b, h) by `perHead`, index b·H + h.
 */
export function skipHead(
  n: Normaliser,
  h: number,
  heads: { q: tf.Tensor2D[]; k: tf.Tensor2D[]; v: tf.Tensor2D[] },
  c: {
    params: Record<string, tf.Tensor>;
    aesAlpha?: number | tf.Tensor | tf.Tensor[];
    offset: number | null;
    cfg: SkipCfg;
    H: number;
    /** The head's route (`routeHeads`): 'mask' runs the exact mask outright. */
    route?: Route;
  },
): SkippedHead | { keptBlocks: number } | null {
  const sp = sparsityOf(n, h, c.params, c.aesAlpha);
  if (!sp) return null;
  const a = typeof sp.alpha === 'number' ? sp.alpha : sp.alpha.dataSync()[0];
  if (!(a > 1)) return null;
  const { q: qs, k: ks, v: vs } = heads;
  const [H, T, S] = [c.H, qs[0].shape[0], ks[0].shape[0]];
  const B = qs.length / H;
  let rowScale: tf.Tensor | null = null;
  if (sp.asent) {
    // ASEntmax's row scale, n_i the row's visible keys (at least 2), as head_maps.ts computes it.
    const vis = Float32Array.from({ length: T }, (_, i) => (c.offset === null ? S : Math.min(S, i + c.offset + 1)));
    const lnN = tf.log(tf.maximum(tf.tensor2d(vis, [T, 1]), 2));
    rowScale = asentScale(sp.asent.delta, sp.asent.beta, sp.asent.gamma, lnN);
  }
  const qOf = (b: number) => (rowScale ? tf.mul(qs[b * H + h], rowScale) : qs[b * H + h]) as tf.Tensor2D;
  const rows = Array.from({ length: B }, (_, b) => qOf(b));
  const masked = (): SkippedHead => {
    const runs = rows.map((qb, b) => runMasked(qb, ks[b * H + h], vs[b * H + h], sp.alpha, c.offset, c.cfg));
    const kept = runs.reduce((s, r) => s + r.keptBlocks, 0) / B;
    const output = tf.stack(runs.map((r) => r.output));
    return { output, skipRate: Array(B).fill(0), keptBlocks: kept, mode: 'masked' };
  };
  if (c.route?.route === 'mask') return masked();
  const plans = rows.map((qb, b) => planHead(qb, ks[b * H + h], a, c.offset, c.cfg));
  const keptBlocks = plans.reduce((s, p) => s + p.keptShare, 0) / B;
  if (keptBlocks > c.cfg.denseAbove) return maskable(c.cfg, c.route?.bound ?? NaN) ? masked() : { keptBlocks };
  const runs = plans.map((p, b) => runPlanned(rows[b], ks[b * H + h], vs[b * H + h], p, sp.alpha, c.offset, c.cfg));
  return {
    output: tf.stack(runs.map((r) => r.output)), skipRate: runs.map((r) => r.skipRate), keptBlocks, mode: 'sparse',
  };
}
