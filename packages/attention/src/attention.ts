/**
 * Multi-head scaled dot-product attention with a normaliser chosen per head: softmax, sparsemax,
 * 1.5-entmax, a fixed α, a learned α = 1 + sigmoid(a) (Correia et al. 2019), adaptive entropy
 * sparsity (AES, aes_gate.ts), where each head's α follows its attention entropy, or the length-
 * and entropy-aware maps SSMax, ASEntmax and adaptive temperature (head_maps.ts).
 *
 *   scores = q kᵀ · scale + masks        [B, H, T, S]   (scores.ts: per-head 2-D or batched products)
 *   p_h    = entmax_{α_h}(c_h ⊙ scores_h) per head, over the keys (head_maps.ts)
 *   out    = p v                         [B, H, T, dv]
 */
import * as tf from '@tensorflow/tfjs';
import { aesChoice, type HeadEntropy, type MeasuredRows } from './aes_gate.js';
import { logitStats, probStats } from './entropy.js';
import { headProbs } from './head_maps.js';
import { entmax, type NormaliserSpec } from './normaliser.js';
import { learnedAlphas, planAttention, type AttentionPlan } from './plan.js';
import { alibiSlopes } from './positions.js';
import {
  acrossHeads, allScores, causalMask, defaultLayout, headScores, mixValues, perHead, perRow, scoreMasks, splitHeads,
  checkQkv, transposedKeys, visibleRows, type HeadRows, type Layout, type ScoreMasks,
} from './scores.js';
import { supportSize } from './support.js';
import type { HeadOutput } from './head_maps.js';
import type { BlockSkipArgs, BlockSparseStats } from './block_sparse.js';
import { readsAreCheap } from './capabilities.js';
import { maskedSoftmax, maskedSoftmaxFused } from './fused/softmax_rows.js';
import { flashAttentionAvailable, flashEntmaxAttention } from './fused/flash_fused.js';
import { MAX_TILES, MAX_WIDTH, TILE } from './fused/flash_wgsl.js';
import { matMul2d } from './matmul.js';
import { routeHeads, skipConfig, skipHead, type SkippedHead } from './skip_heads.js';

export interface AttentionArgs {
  /** Query i sees keys j ≤ i + queryOffset. Default false. */
  causal?: boolean;
  /** Position of the first query among the keys, for causal masks with a KV cache. Default S − T. */
  queryOffset?: number;
  /** Padding mask `[B, S]`: 1 (or true) keeps a key, 0 masks it. */
  keyMask?: tf.Tensor;
  /** Score scale. Default 1/√d. */
  scale?: number;
  /** Add ALiBi position biases −m_h·|i − j| (positions.ts; query i at i + queryOffset). Default false. */
  alibi?: boolean;
  /** The heads' normalisers, resolved once by `planAttention` (Layers and models do this). */
  plan?: AttentionPlan;
  /** Or their specs, resolved on this call: one for every head, or one per head. Default 'softmax'. */
  normaliser?: NormaliserSpec | NormaliserSpec[];
  /** Learned per-head parameters `[H]` by name, those the plan lists (`plan.params`). */
  params?: Record<string, tf.Tensor>;
  /** Same as `params.alpha`: raw α of 'learned' heads, α_h = 1 + sigmoid(a_h). */
  alphaRaw?: tf.Tensor;
  /** AES state `[H]`: running ζ per head (NaN: none yet), from the previous call; default all NaN. */
  state?: tf.Tensor;
  /**
   * 'auto' (default): the varentropy gate decides per call. 'frozen': every AES head with a running
   * estimate uses it (evaluation, like batch norm's running statistics), so α no longer depends on
   * which rows a call sees and KV-cache decoding equals the full pass.
   */
  aesMode?: 'auto' | 'frozen';
  /** Also return per-head and cross-head statistics. Default false. */
  returnStats?: boolean;
  /** How the products are computed (scores.ts). Default: batched for T·S ≤ 128² or on device backends. */
  layout?: Layout;
  /**
   * Exact block skipping (skip_heads.ts) for the heads whose map has zeros this call (α > 1: fixed,
   * learned, per-head AES, ASEntmax). 'auto' (default): where reads are cheap, in the per-head layout,
   * from 1024 keys on (`minKeys`), without keyMask, ALiBi or returnStats (statistics need every score);
   * a head whose plan keeps more than `denseAbove` (0.5) of its blocks runs dense (and one whose
   * lower bound of that share, from one score row per query block, is already above it is not
   * planned), or, when gradients are recorded and `maskAbove` > 0 (opt-in), the exact mask
   * (skip_heads.ts).
   * false: never.
   */
  blockSkip?: 'auto' | false | BlockSkipArgs;
}

/** Statistics of one call. Rows are queries; masked keys are excluded throughout. */
export type AttentionStats = {
  /** α in use per head `[H]` (1 softmax, 2 sparsemax; per-row AES: the mean over its rows). */
  alpha: tf.Tensor;
  /** α of each row `[B, H, T]` (the head's α where it does not vary by row). */
  rowAlpha: tf.Tensor;
  /** Entropy (nats) of each attention row `[B, H, T]`. */
  entropy: tf.Tensor;
  /** Varentropy (nats²) of each row `[B, H, T]`. */
  varentropy: tf.Tensor;
  /** Non-zero probabilities per row `[B, H, T]`. */
  support: tf.Tensor;
  /** support / visible keys `[B, H, T]`. */
  supportFraction: tf.Tensor;
  /** Variance across heads of the row entropy `[B, T]` (Entropix "attention varentropy"). */
  headEntropyVariance: tf.Tensor;
  /** mean over heads and keys of |p_h − mean_h p| `[B, T]`. */
  agreement: tf.Tensor;
  /** mean |score| over heads and visible keys `[B, T]`. */
  interactionStrength: tf.Tensor;
};

export interface AttentionResult {
  output: tf.Tensor;
  stats?: AttentionStats;
  /** The updated AES state `[H]` (only when some head is AES; the caller owns it). */
  state?: tf.Tensor;
  /**
   * Per head: how α was set this call: the kind for fixed and learned heads ('softmax', 'sparsemax',
   * 'entmax15', 'fixed', 'learned'); for AES heads 'fixed' (running estimate) or 'adaptive', or
   * 'device' where the backend was not read.
   */
  modes: string[];
  /**
   * When the call was planned for block skipping: per (batch, head), index b·H + h, the share of
   * visible scores never computed, the kept share of block pairs (the head's mean over the batch;
   * for a head ruled dense before planning, the lower bound that ruled it, see `routeHeads`) and
   * 'sparse', 'masked' (training, where the plan kept too much: the exact mask) or 'dense' (heads
   * without zeros, or whose plan, or its bound, kept too much).
   */
  blockSkip?: BlockSparseStats;
}

/**
 * Multi-head attention, see the file comment. q `[B, H, T, d]`, k `[B, H, S, d]`, v `[B, H, S, dv]`.
 * @example
 * const plan = planAttention(['softmax', 'sparsemax', 'aes', {alpha: 1.3}], {heads: 4});
 * let state = initialAesState(plan);
 * const r = attention(q, k, v, {causal: true, plan, state, returnStats: true});
 * state.dispose(); state = r.state!;
 */
export function attention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, args: AttentionArgs = {}): AttentionResult {
  const [B, H, T, d] = checkQkv('attention', q, k, v, args.keyMask);
  const S = k.shape[2] as number;
  const plan = planOf(args, H);
  const params: Record<string, tf.Tensor> = { ...args.params, ...(args.alphaRaw ? { alpha: args.alphaRaw } : {}) };
  checkParams(plan, params, H);
  if (args.state && plan.aesGroups.length) checkState(args.state, H);
  const layout = args.layout ?? defaultLayout(T, S);
  const modes: string[] = plan.heads.map((n) => (n.kind === 'fixed' ? n.name : n.kind));
  const offset = args.causal ? args.queryOffset ?? S - T : null;
  const alphas = deviceAlphas(plan, args, layout);
  if (alphas) {
    const output = tf.tidy(() => {
      const alpha = alphas(params);
      const [dv, scale] = [v.shape[3] as number, args.scale ?? 1 / Math.sqrt(d)];
      const s = () => tf.matMul(tf.reshape(q, [B * H, T, d]), tf.reshape(k, [B * H, S, d]), false, true);
      const masked = () => {
        const mask = causalMask(T, S, offset);                       // made on the device
        return mask ? tf.add(tf.mul(s(), scale), mask) : tf.mul(s(), scale);
      };
      // per-head α as one per row: [H] → [B·H, T, 1]
      const rowsOf = (a: number | tf.Tensor) => typeof a === 'number'
        ? a
        : tf.reshape(tf.broadcastTo(tf.reshape(a, [1, H, 1, 1]), [B, H, T, 1]), [B * H, T, 1]);
      if (alpha !== 1 && flashFits(d, dv, S)) {
        // one pass over the keys per query row, tiles below every threshold skipped (fused/flash_fused.ts)
        const a = typeof alpha === 'number' ? alpha : tf.reshape(alpha, [H, 1, 1]);
        return flashEntmaxAttention(q, k, v, { alpha: a, causal: args.causal, queryOffset: args.queryOffset, scale });
      }
      const p = alpha === 1 ? maskedSoftmax(s(), scale, offset) : entmax(masked(), rowsOf(alpha));
      return tf.reshape(tf.matMul(p, tf.reshape(v, [B * H, S, dv])), [B, H, T, dv]);
    });
    return { output, modes };
  }
  const skip = skipConfig(args.blockSkip, S,
    layout === 'perHead' && readsAreCheap() && !args.keyMask && !args.alibi && !args.returnStats);
  const skipStats: BlockSparseStats | undefined = skip
    ? { skipRate: Array(B * H).fill(0), keptBlocks: Array(B * H).fill(1), mode: Array(B * H).fill('dense') }
    : undefined;
  const result = tf.tidy(() => {
    const qs = tf.mul(q, args.scale ?? 1 / Math.sqrt(d));
    const slopes = args.alibi ? alibiSlopes(H) : undefined;
    // Masks and transposed keys are built on first use: heads that block skipping takes need neither.
    let built: ScoreMasks | undefined, kT: tf.Tensor2D[] | undefined;
    const make = () => (built ??= scoreMasks(T, S, offset, args.keyMask, undefined, slopes));
    const masks: ScoreMasks = {
      get causal() { return make().causal; }, get keys() { return make().keys; }, get alibi() { return make().alibi; },
    };
    const full = layout === 'batched' ? allScores(qs, k, masks) : null;            // [B, H, T, S]
    const keysT = () => (full ? undefined : (kT ??= transposedKeys(k)));
    // Heads surely dense this call; when every head is, nothing is split per head or planned.
    const routes = skip ? routeHeads(plan.heads, qs, k, { params, offset, cfg: skip }) : [];
    routes.forEach((r, h) => {
      if (r.route === 'dense') for (let b = 0; b < B; b++) skipStats!.keptBlocks[b * H + h] = r.bound;
    });
    const planning = routes.some((r) => r.route !== 'dense');
    // Per-head scores; with block skipping, computed only for the heads that need them.
    const split = full ? splitHeads(full) : planning ? null : headScores(qs, k, masks, layout, keysT());
    const cached: HeadRows[] = [];
    // The per-(b, h) slices, made once: on wasm each split moves every element (20–40 ns each).
    let sliced: { q: tf.Tensor2D[]; k: tf.Tensor2D[]; v: tf.Tensor2D[] } | undefined;
    const slices = () => (sliced ??= { q: perHead(qs), k: perHead(k), v: perHead(v) });
    const scoreOf = (h: number) =>
      split?.[h] ?? (cached[h] ??= headScores(qs, k, masks, layout, keysT(), h, slices().q)[0]);
    let visible: tf.Tensor[] | undefined;
    const seen = () => (visible ??= visibleRows(masks, B, T, S, layout));
    const aes = plan.aesGroups.length
      ? aesChoice({
          plan,
          state: args.state,
          frozen: args.aesMode === 'frozen',
          shift: params.aesShift,
          ...measurement(qs, k, keysT, scoreOf, full, masks, seen, {
            B,
            T,
            S,
            offset,
            keyMask: args.keyMask,
            layout,
            slopes,
          }),
        })
      : null;
    const skipped: Array<SkippedHead | null> = plan.heads.map((n, h) => {
      if (aes?.modes[h]) modes[h] = aes.modes[h]!;
      if (!planning || routes[h].route === 'dense') return null;
      const r = skipHead(n, h, slices(), { params, aesAlpha: aes?.alpha[h], offset, cfg: skip!, H, route: routes[h] });
      if (r) for (let b = 0; b < B; b++) skipStats!.keptBlocks[b * H + h] = r.keptBlocks;
      if (!r || !('output' in r)) return null;
      r.skipRate.forEach((x, b) => { skipStats!.skipRate[b * H + h] = x; skipStats!.mode[b * H + h] = r.mode; });
      return r;
    });
    const heads = plan.heads.map((n, h) =>
      skipped[h] ? null : headProbs(n, { scores: scoreOf(h), visible: seen, params, h, aesAlpha: aes?.alpha[h] }),
    );
    if (planning) {
      // [B, H, T, dv] from each head's [B, T, dv]: skipped heads' own outputs, the others' p·v per batch row.
      const vs = slices().v;
      const out = heads.map((o, h) => skipped[h]?.output ??
        tf.stack(o!.probs.map((p, b) => matMul2d(p as tf.Tensor2D, vs[b * H + h]))));
      return { output: tf.stack(out, 1), ...(aes ? { state: aes.state } : {}) };
    }
    const probs = heads.map((o) => o!.probs);
    const scores = plan.heads.map((_, h) => scoreOf(h));
    return {
      output: mixValues(probs, v, layout),
      ...(args.returnStats ? { stats: attentionStats(scores, probs, heads as HeadOutput[], T) } : {}),
      ...(aes ? { state: aes.state } : {}),
    };
  });
  return { ...(result as Omit<AttentionResult, 'modes'>), modes, ...(skipStats ? { blockSkip: skipStats } : {}) };
}

/**
 * On a device backend (webgpu), for a call whose heads are all fixed-α or learned-α, with no
 * padding, ALiBi or statistics: a function giving α (one number when all heads share it, else `[H]`
 * from the parameters); else null. Such a call has no per-head split: at α = 1 two batched products
 * around one kernel (fused/softmax_rows.ts: scale, causal mask and softmax), otherwise the flash
 * kernels (fused/flash_fused.ts: scores, threshold and P·V per query row, skipped tiles), or, for
 * heads wider than they take, a mask made on the device and the fused entmax kernels with α per row.
 * (Softmax heads beside others take the general path: the kernels' α is at least 1 + 1e-6.)
 */
function deviceAlphas(
  plan: AttentionPlan,
  args: AttentionArgs,
  layout: Layout,
): ((params: Record<string, tf.Tensor>) => number | tf.Tensor) | null {
  if (readsAreCheap() || layout !== 'batched' || args.keyMask || args.alibi || args.returnStats) return null;
  const heads = plan.heads;
  const fixed = heads.map((n) => (n.kind === 'fixed' ? n.alpha : null));
  if (fixed.every((a) => a !== null && a === fixed[0]))
    return fixed[0] !== 1 || maskedSoftmaxFused() ? () => fixed[0]! : null;
  if (!heads.every((n) => n.kind === 'learned' || (n.kind === 'fixed' && n.alpha > 1))) return null;
  return (params) => {
    const learned = learnedAlphas(params.alpha);
    if (fixed.every((a) => a === null)) return learned;
    return tf.where(tf.tensor1d(fixed.map((a) => a === null), 'bool'), learned, tf.tensor1d(fixed.map((a) => a ?? 1)));
  };
}

/** Whether the flash kernels take a call of head sizes d, dv and S keys on the active backend. */
function flashFits(d: number, dv: number, S: number): boolean {
  return flashAttentionAvailable() && d <= MAX_WIDTH && dv <= MAX_WIDTH && S <= TILE * MAX_TILES;
}

/** Rows measured by per-head AES beyond this many queries: an evenly spaced sample of them. */
const MEASURED_ROWS = 32;

/**
 * What the AES gate measures. `all`: softmax entropy and varentropy of every head at once, `[B, H, R]`,
 * with the rows' visible keys `[B, 1, R]` — for long sequences in the per-head layout on an evenly
 * spaced sample of R = MEASURED_ROWS query rows (their own small 2-D products with the transposed keys
 * the scores used: per-head AES needs only the means, and a gather of score rows costs more on wasm
 * than recomputing them). `rows`: the
 * score blocks of one head (per-row AES, or measuring on another map's output).
 */
function measurement(
  q: tf.Tensor,
  k: tf.Tensor,
  keysT: () => tf.Tensor2D[] | undefined,
  scoreOf: (h: number) => HeadRows,
  full: tf.Tensor | null,
  masks: ScoreMasks,
  visible: () => tf.Tensor[],
  c: {
    B: number;
    T: number;
    S: number;
    offset: number | null;
    keyMask?: tf.Tensor;
    layout: Layout;
    slopes?: number[];
  },
) {
  let all: HeadEntropy | undefined;
  return {
    rows: (h: number): MeasuredRows => ({ blocks: scoreOf(h), visible: visible() }),
    all: (): HeadEntropy => {
      if (all) return all;
      let s: tf.Tensor,
        m = masks,
        R = c.T;
      if (full) s = full;
      else if (c.T <= MEASURED_ROWS) s = allScores(q, k, masks);
      else {
        const rows = Array.from({ length: MEASURED_ROWS }, (_, i) => Math.round((i * (c.T - 1)) / (MEASURED_ROWS - 1)));
        m = scoreMasks(c.T, c.S, c.offset, c.keyMask, rows, c.slopes);
        const qRows = tf.gather(q, tf.tensor1d(rows, 'int32'), 2);
        const sample = headScores(qRows, k, m, 'perHead', keysT());                   // [H][B] of [r, S]
        s = tf.stack(Array.from({ length: c.B }, (_, b) => tf.stack(sample.map((h) => h[b]))));   // [B, H, r, S]
        R = rows.length;
      }
      const st = logitStats(s);
      const n = tf.reshape(visibleRows(m, c.B, R, c.S, 'batched')[0], [c.B, 1, R]);
      all = { entropy: st.entropy, varentropy: st.varentropy, visible: n };
      return all;
    },
  };
}

/** The plan of a call: given, or resolved from the specs. */
function planOf(args: AttentionArgs, H: number): AttentionPlan {
  if (args.plan && args.normaliser !== undefined)
    throw new RangeError('attention: pass either plan or normaliser, not both');
  const plan = args.plan ?? planAttention(args.normaliser ?? 'softmax', { heads: H });
  if (plan.heads.length !== H) throw new RangeError(`attention: the plan has ${plan.heads.length} heads, q has ${H}`);
  return plan;
}

function attentionStats(scores: HeadRows[], probs: HeadRows[], heads: HeadOutput[], T: number): AttentionStats {
  const H = probs.length;
  const visible = perRow(scores, T, (s) => tf.sum(tf.cast(tf.isFinite(s), 'float32'), s.rank - 1));
  const entropy = perRow(probs, T, (p) => probStats(p).entropy);
  const support = tf.cast(perRow(probs, T, (p) => supportSize(p)), 'float32');
  const absSum = perRow(scores, T, (s) => tf.sum(tf.where(tf.isFinite(s), tf.abs(s), tf.zerosLike(s)), s.rank - 1));
  const agreement = acrossHeads(probs, T, (ps) => {
    const mean = tf.div(tf.addN(ps), H);
    return tf.div(
      tf.addN(ps.map((p) => tf.sum(tf.abs(tf.sub(p, mean)), p.rank - 1))),
      H * (ps[0].shape[ps[0].rank - 1] as number),
    );
  });
  const rowAlpha = perRow(probs, T, (p, h, i) => {
    const ones = tf.ones(p.shape.slice(0, -1));
    const perRowAlpha = heads[h].rowAlpha?.[i];
    return perRowAlpha ? tf.reshape(perRowAlpha, ones.shape) : tf.mul(ones, heads[h].alpha);
  });
  return {
    alpha: tf.stack(heads.map(({ alpha: a }) => (typeof a === 'number' ? tf.scalar(a) : a))),
    rowAlpha,
    entropy,
    varentropy: perRow(probs, T, (p) => probStats(p).varentropy),
    support,
    supportFraction: tf.div(support, tf.maximum(visible, 1)),
    headEntropyVariance: tf.moments(entropy, 1).variance,
    agreement,
    interactionStrength: tf.div(tf.sum(absSum, 1), tf.maximum(tf.sum(visible, 1), 1)),
  };
}

function checkParams(plan: AttentionPlan, params: Record<string, tf.Tensor>, H: number): void {
  for (const { name } of plan.params) {
    const t = params[name];
    if (name === 'alpha') { checkAlphaRaw(t, H); continue; }
    if (!t || t.rank !== 1 || t.shape[0] !== H || t.dtype !== 'float32') {
      throw new RangeError(`attention: the plan's heads need params.${name}, a float32 tensor [${H}]; ` +
        `got ${t ? `${t.dtype} [${t.shape}]` : 'none'}`);
    }
  }
}

function checkAlphaRaw(alphaRaw: tf.Tensor | undefined, H: number): void {
  if (!alphaRaw || alphaRaw.rank !== 1 || alphaRaw.shape[0] !== H || alphaRaw.dtype !== 'float32') {
    throw new RangeError(
      `attention: 'learned' heads need alphaRaw, a float32 tensor [${H}] (α = 1 + sigmoid(a)); got ` +
      `${alphaRaw ? `${alphaRaw.dtype} [${alphaRaw.shape}]` : 'none'}`,
    );
  }
}

function checkState(state: tf.Tensor, H: number): void {
  if (state.rank !== 1 || state.shape[0] !== H || state.dtype !== 'float32') {
    throw new RangeError(
      `attention: the AES state must be a float32 tensor [${H}] (running ζ per head), got ${state.dtype} ` +
      `[${state.shape}]`,
    );
  }
}
