/**
 * Multi-head scaled dot-product attention with a normaliser chosen per head: softmax, sparsemax,
 * 1.5-entmax, a fixed α, a learned α = 1 + sigmoid(a) (Correia et al. 2019), or adaptive entropy
 * sparsity (AES), where each head's α follows its attention entropy.
 *
 * Layout: q `[B, H, T, d]`, k `[B, H, S, d]`, v `[B, H, S, dv]` → output `[B, H, T, dv]`. For long
 * sequences every product is a plain 2-D matMul per (b, h) (see matmul.ts: on wasm that is ~7×
 * faster than batched products); for short ones, and on GPUs, batched products over all heads save
 * the per-op overhead. Either way each head's rows go through its own map (per-head α).
 *
 * AES (this library's proposal): per head, the mean normalised entropy S̄ ∈ [0, 1] of the rows
 * (entropy / ln #visible keys) picks ζ = ζ(S̄) ∈ [0, ζmax] by a schedule (aes_schedule.ts) and
 * α = 1 + ζ/ζmax: dense heads stay softmax, peaked heads become sparsemax. The head's varentropy gates
 * it: below a threshold ζ is frozen at its running estimate (state in, state out), above it ζ is
 * recomputed on every call.
 */
import * as tf from '@tensorflow/tfjs';
import { aesSchedule } from './aes_schedule';
import { logitStats, probStats } from './entropy';
import { matMul2d, unstack0 } from './matmul';
import { AES_DEFAULTS, entmax, parseNormaliser, type AesArgs, type Normaliser, type NormaliserSpec } from './normaliser';
import { readsSync } from './rows';
import { supportSize } from './support';

export interface AttentionArgs {
  /** Query i sees keys j ≤ i + queryOffset. Default false. */
  causal?: boolean;
  /** Position of the first query among the keys, for causal masks with a KV cache. Default S − T. */
  queryOffset?: number;
  /** Padding mask `[B, S]`: 1 (or true) keeps a key, 0 masks it. */
  keyMask?: tf.Tensor;
  /** Score scale. Default 1/√d. */
  scale?: number;
  /** One normaliser for every head, or one per head. Default 'softmax'. */
  normaliser?: NormaliserSpec | NormaliserSpec[];
  /** Raw α parameters `[H]` for 'learned' heads: α_h = 1 + sigmoid(a_h). */
  alphaRaw?: tf.Tensor;
  /** AES running estimates from the previous call (see `AesState`). */
  aesState?: AesState;
  /**
   * 'auto' (default): the varentropy gate decides per call. 'frozen': every AES head with a running
   * estimate uses it (evaluation, like batch norm's running statistics), so α no longer depends on
   * which rows a call sees and KV-cache decoding equals the full pass.
   */
  aesMode?: 'auto' | 'frozen';
  /** Also return per-head and cross-head statistics. Default false. */
  returnStats?: boolean;
  /**
   * 'perHead': one plain 2-D product per (batch, head), fast on wasm for long sequences. 'batched':
   * batched products over all heads, cheaper for short sequences and on GPUs. Default: batched when
   * T·S ≤ 128² or on webgpu, else per head.
   */
  layout?: 'perHead' | 'batched';
}

/**
 * AES state: the running ζ estimate per head (NaN where none yet, or the head is not AES).
 * On backends that cannot read synchronously (webgpu) the gate and the update run on the device:
 * the new estimates are then in `device` (`[H]`, the caller owns it; `await state.device.data()`
 * reads them) and `zeta` is the previous one unchanged. Pass the state back as is: `device`, when
 * present, takes precedence over `zeta`.
 */
export type AesState = { zeta: number[]; device?: tf.Tensor1D };

/** Statistics of one call. Rows are queries; masked keys are excluded throughout. */
export type AttentionStats = {
  /** α in use per head `[H]` (1 softmax, 2 sparsemax). */
  alpha: tf.Tensor;
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
  /** Updated AES state (only when some head is AES). */
  aesState?: AesState;
  /** Per head: how α was set this call ('fixed' | 'adaptive' for AES heads, else the kind). */
  modes: string[];
}

/**
 * Multi-head attention, see the file comment.
 * @example
 * const {output, stats} = attention(q, k, v, {causal: true, normaliser: ['softmax', 'sparsemax', 'aes', {alpha: 1.3}], returnStats: true});
 */
export function attention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, args: AttentionArgs = {}): AttentionResult {
  const [B, H, T, d] = checkShapes(q, k, v, args.keyMask);
  const S = k.shape[2] as number;
  const heads = resolveHeads(args.normaliser ?? 'softmax', H);
  if (heads.some((h) => h.kind === 'learned')) checkAlphaRaw(args.alphaRaw, H);
  const prevZeta = args.aesState?.zeta ?? Array(H).fill(NaN);
  if (prevZeta.length !== H) throw new RangeError(`attention: aesState has ${prevZeta.length} heads, expected ${H}`);
  const scale = args.scale ?? 1 / Math.sqrt(d);
  const modes: string[] = heads.map((h) => h.kind);
  const zeta = [...prevZeta];
  const alphas: Array<number | tf.Tensor> = [];
  const onDevice = heads.some((h) => h.kind === 'aes') && !readsSync();
  const zetaDevice: tf.Tensor[] = [];                                 // read-free AES: new ζ per head

  const layout = args.layout ?? (!readsSync() || T * S <= BATCHED_UP_TO ? 'batched' : 'perHead');

  const result = tf.tidy(() => {
    const mask = causalMask(T, S, args.causal ? args.queryOffset ?? S - T : null);     // [T, S] | null
    const keyAdd = args.keyMask ? tf.log(tf.cast(args.keyMask, 'float32')) : null;     // [B, S]: 0 or −∞
    // Scores of each head as "units" the normaliser runs on: B tensors [T, S] (per-head layout) or
    // one [B, 1, T, S] (batched layout).
    const scores: tf.Tensor[][] = layout === 'perHead'
      ? perHeadScores(tf.mul(q, scale), k, mask, keyAdd)
      : batchedScores(tf.mul(q, scale), k, mask, keyAdd);
    const probs: tf.Tensor[][] = [];
    let counts: tf.Tensor[] | undefined;                               // AES: visible keys per row, once
    const visible = () => (counts ??= visibleRows(mask, keyAdd, B, T, S, layout));
    for (let h = 0; h < H; h++) {
      const head = heads[h];
      let alpha: number | tf.Tensor;
      if (head.kind === 'aes' && onDevice) {
        const prev = args.aesState?.device ? tf.slice(args.aesState.device, [h], [1]) : tf.tensor1d([prevZeta[h]]);
        const r = aesAlphaOnDevice(scores[h], head.aes, prev, visible(), args.aesMode === 'frozen');
        [alpha, modes[h]] = [r.alpha, 'device'];
        zetaDevice.push(r.zeta);
      } else if (head.kind === 'aes') {
        const r = aesAlpha(scores[h], head.aes, prevZeta[h], visible(), args.aesMode === 'frozen');
        [alpha, zeta[h], modes[h]] = [r.alpha, r.zeta, r.mode];
      } else {
        alpha = fixedAlpha(head, args.alphaRaw, h);
        if (onDevice) zetaDevice.push(tf.tensor1d([prevZeta[h]]));
      }
      alphas.push(alpha);
      probs[h] = scores[h].map((s) => entmax(s, alpha));
    }
    let output: tf.Tensor;                                                    // [B, H, T, dv]
    if (layout === 'perHead') {
      const vs = perHead(v);
      output = tf.stack(Array.from({ length: B }, (_, b) => tf.stack(probs.map((ph, h) => matMul2d(ph[b] as tf.Tensor2D, vs[b * H + h])))));
    } else {
      const p = tf.reshape(tf.concat(probs.map((ph) => ph[0]), 1), [B * H, T, S]);
      output = tf.reshape(tf.matMul(p, tf.reshape(v, [B * H, S, v.shape[3] as number])), [B, H, T, v.shape[3] as number]);
    }
    let stats: AttentionStats | undefined;
    if (args.returnStats) {
      const rows = (units: tf.Tensor[][]) => (layout === 'perHead' ? units : units.map(([u]) => unstack0(tf.reshape(u, [B, T, S]))));
      stats = attentionStats(rows(scores), rows(probs), alphas);
    }
    return { output, ...(stats ? { stats } : {}), ...(onDevice ? { device: tf.concat(zetaDevice) } : {}) };
  });
  const { device, ...rest } = result as { output: tf.Tensor; stats?: AttentionStats; device?: tf.Tensor1D };
  const aesState = onDevice ? { zeta: prevZeta, device } : { zeta };
  return { ...rest, modes, ...(heads.some((h) => h.kind === 'aes') ? { aesState } : {}) };
}

/**
 * Largest T·S computed in the batched layout by default. Batched and transposed products are slow on
 * wasm for large matrices, but for short sequences the per-(b, h) loop costs more in op overhead
 * (measured on wasm: at T = S = 16, B = 32, H = 4 a training step is ~6× faster batched).
 */
const BATCHED_UP_TO = 128 * 128;

/** Per-head layout: scores[h][b] = q_bh · k_bhᵀ (+ masks), plain 2-D products. */
function perHeadScores(q: tf.Tensor, k: tf.Tensor, mask: tf.Tensor | null, keyAdd: tf.Tensor | null): tf.Tensor[][] {
  const [B, H] = q.shape as number[];
  const S = k.shape[2] as number;
  const qs = perHead(q);
  const kTs = perHead(k).map((t) => tf.transpose(t) as tf.Tensor2D);
  const keyRows = keyAdd ? unstack0(keyAdd).map((r) => tf.reshape(r, [1, S])) : null;
  return Array.from({ length: H }, (_, h) => Array.from({ length: B }, (_, b) => {
    let s: tf.Tensor = matMul2d(qs[b * H + h], kTs[b * H + h]);
    if (mask) s = tf.add(s, mask);
    return keyRows ? tf.add(s, keyRows[b]) : s;
  }));
}

/** Batched layout: one [B, 1, T, S] score tensor per head. */
function batchedScores(q: tf.Tensor, k: tf.Tensor, mask: tf.Tensor | null, keyAdd: tf.Tensor | null): tf.Tensor[][] {
  const [B, H, T, d] = q.shape as number[];
  const S = k.shape[2] as number;
  let s: tf.Tensor = tf.reshape(tf.matMul(tf.reshape(q, [B * H, T, d]), tf.reshape(k, [B * H, S, d]), false, true), [B, H, T, S]);
  if (mask) s = tf.add(s, mask);
  if (keyAdd) s = tf.add(s, tf.reshape(keyAdd, [B, 1, 1, S]));
  return (H === 1 ? [s] : tf.split(s, H, 1)).map((u) => [u]);   // (split's gradient fails for one piece, as unstack0's)
}

/** [B, H, N, e] → B·H tensors [N, e], index b·H + h. */
function perHead(x: tf.Tensor): tf.Tensor2D[] {
  const [B, H, N, e] = x.shape;
  return unstack0(tf.reshape(x, [B * H, N, e])) as tf.Tensor2D[];
}

/** Additive causal mask: 0 where key j ≤ i + offset, −∞ elsewhere. `[T, S]`, or null. */
export function causalMask(T: number, S: number, offset: number | null): tf.Tensor | null {
  if (offset === null) return null;
  const m = new Float32Array(T * S);
  for (let i = 0; i < T; i++) m.fill(-Infinity, i * S + Math.max(0, Math.min(S, i + offset + 1)), (i + 1) * S);
  return tf.tensor2d(m, [T, S]);
}

function resolveHeads(spec: NormaliserSpec | NormaliserSpec[], H: number): Normaliser[] {
  const list = Array.isArray(spec) ? spec : Array(H).fill(spec);
  if (list.length !== H) throw new RangeError(`attention: ${list.length} normalisers for ${H} heads`);
  return list.map(parseNormaliser);
}

function fixedAlpha(head: Normaliser, alphaRaw: tf.Tensor | undefined, h: number): number | tf.Tensor {
  switch (head.kind) {
    case 'softmax': return 1;
    case 'entmax15': return 1.5;
    case 'sparsemax': return 2;
    case 'fixed': return head.alpha;
    case 'learned': return tf.add(1, tf.sigmoid(tf.reshape(tf.slice(alphaRaw!, [h], [1]), [])));
    default: throw new Error(`unreachable: ${head.kind}`);
  }
}

/**
 * α of one AES head from its rows across the batch. Rows with no visible key are ignored.
 * Returns α (a number, or a tensor when gradients flow through the schedule), the new running ζ and
 * whether ζ was 'fixed' (low varentropy: the running estimate) or 'adaptive' (recomputed).
 */
function aesAlpha(scores: tf.Tensor[], cfg: AesArgs, prev: number, visible: tf.Tensor[], frozen: boolean): { alpha: number | tf.Tensor; zeta: number; mode: string } {
  const { varentropyThreshold, momentum, measureOn, gradient } = { ...AES_DEFAULTS, ...cfg };
  const sched = scheduleOf(cfg);
  const prevAlpha = Number.isNaN(prev) ? 1 : 1 + prev / sched.args.zmax;
  if (frozen && !Number.isNaN(prev)) return { alpha: prevAlpha, zeta: prev, mode: 'fixed' };
  const { sBar, vBar } = headEntropy(scores, measureOn, prevAlpha, visible);
  if (!Number.isNaN(prev) && vBar.dataSync()[0] < varentropyThreshold) {
    return { alpha: prevAlpha, zeta: prev, mode: 'fixed' };
  }
  const s = sBar.dataSync()[0];
  const z = sched.zeta(s);
  const next = Number.isNaN(prev) ? z : (1 - momentum) * prev + momentum * z;
  const alpha = gradient === 'schedule' ? sched.alphaTensor(sBar) : sched.alpha(s);
  return { alpha, zeta: next, mode: 'adaptive' };
}

/** The head's ζ(S) schedule from its AES options (built once per distinct options: aesSchedule memoizes). */
function scheduleOf(cfg: AesArgs) {
  const { S0, Smax, zmax, shape } = cfg;
  return aesSchedule(Object.fromEntries(Object.entries({ S0, Smax, zmax, shape }).filter(([, x]) => x !== undefined)));
}

/**
 * Mean over the rows that see some key of the entropy normalised by ln(#visible keys) (S̄) and of the
 * varentropy (V̄), measured on the softmax of the scores or on the output of α = `prevAlpha`.
 * `visible`: the visible-key counts per row of each unit (from the masks, so no gradient path runs
 * through isFinite or comparisons, which tfjs cannot differentiate). Scalars.
 */
function headEntropy(scores: tf.Tensor[], measureOn: 'softmax' | 'output', prevAlpha: number | tf.Tensor, visible: tf.Tensor[]): { sBar: tf.Tensor; vBar: tf.Tensor } {
  const parts = scores.map((s, u) => {
    const st = measureOn === 'softmax' ? logitStats(s) : probStats(entmax(s, prevAlpha));
    const n = tf.reshape(visible[u], [-1]);
    const logN = tf.where(tf.greater(n, 1), tf.log(tf.maximum(n, 1)), tf.onesLike(n));     // one key: S̄ = 0
    return { sNorm: tf.div(tf.reshape(st.entropy, [-1]), logN), v: tf.reshape(st.varentropy, [-1]), w: tf.cast(tf.greater(n, 0), 'float32') };
  });
  const w = tf.concat(parts.map((r) => r.w));
  const mean = (key: 'sNorm' | 'v') => tf.div(tf.sum(tf.mul(tf.concat(parts.map((r) => r[key])), w)), tf.maximum(tf.sum(w), 1));
  return { sBar: mean('sNorm'), vBar: mean('v') };
}

/**
 * The AES choice of one head without reading anything back (webgpu): the same S̄, V̄, gate and
 * moving average as `aesAlpha`, as tensors. Visible-key counts come from the masks, which do not
 * depend on the scores. `prev` is `[1]` (NaN: no estimate yet). Returns α (a scalar tensor; under
 * 'stop' no gradient flows through it) and the new ζ `[1]`.
 */
function aesAlphaOnDevice(scores: tf.Tensor[], cfg: AesArgs, prev: tf.Tensor, visible: tf.Tensor[], frozen: boolean): { alpha: tf.Tensor; zeta: tf.Tensor } {
  const { varentropyThreshold, momentum, measureOn, gradient } = { ...AES_DEFAULTS, ...cfg };
  const sched = scheduleOf(cfg);
  const known = tf.isFinite(prev);
  const prevSafe = tf.where(known, prev, tf.zerosLike(prev));
  const prevAlpha = tf.add(1, tf.div(prevSafe, sched.args.zmax));
  if (frozen) {
    // A head with no estimate yet measures once (as aesAlpha does); otherwise its running ζ is used.
    const r = aesAlphaOnDevice(scores, cfg, prev, visible, false);
    return { alpha: tf.reshape(tf.where(known, prevAlpha, r.alpha), []), zeta: tf.where(known, prev, r.zeta) };
  }
  // measureOn 'output' needs the previous α's output; on device that is the tensor α (softmax with no estimate).
  const { sBar, vBar } = headEntropy(scores, measureOn, tf.reshape(prevAlpha, []), visible);
  // Low varentropy and an estimate: stay fixed. 1/0 as float, blended arithmetically: a boolean
  // condition computed from the scores would put comparisons (no gradient in tfjs) on the tape.
  const keep = withoutGradient(vBar, (v) => tf.cast(tf.logicalAnd(known, tf.less(v, varentropyThreshold)), 'float32'));
  const z = tf.reshape(sched.zetaTensor(gradient === 'schedule' ? sBar : withoutGradient(sBar, tf.clone)), [1]);
  const next = tf.where(known, tf.add(tf.mul(prevSafe, 1 - momentum), tf.mul(z, momentum)), z);
  const alphaNew = tf.add(1, tf.div(z, sched.args.zmax));
  const blend = (a: tf.Tensor, b: tf.Tensor) => tf.add(tf.mul(keep, a), tf.mul(tf.sub(1, keep), b));
  return { alpha: tf.reshape(blend(prevAlpha, alphaNew), []), zeta: blend(prevSafe, next) };
}

/** f(x) computed off the gradient tape, with a zero gradient wrt x (tfjs has no stop-gradient op). */
function withoutGradient(x: tf.Tensor, f: (x: tf.Tensor) => tf.Tensor): tf.Tensor {
  return tf.customGrad((...a: Array<tf.Tensor | tf.GradSaveFunc>) => ({ value: f(a[0] as tf.Tensor), gradFunc: (dy: tf.Tensor) => tf.zerosLike(a[0] as tf.Tensor) }))(x);
}

/**
 * Visible keys per row, from the masks only, in the unit layout of the scores: per head the list
 * over units of `[T]` (per-head layout, one unit per batch entry) or `[B, 1, T]` (batched).
 */
function visibleRows(mask: tf.Tensor | null, keyAdd: tf.Tensor | null, B: number, T: number, S: number, layout: 'perHead' | 'batched'): tf.Tensor[] {
  const finite = (t: tf.Tensor) => tf.cast(tf.isFinite(t), 'float32');
  let m: tf.Tensor = tf.ones([B, T, S]);
  if (mask) m = tf.mul(m, finite(mask));
  if (keyAdd) m = tf.mul(m, tf.reshape(finite(keyAdd), [B, 1, S]));
  const n = tf.sum(m, 2);                                                  // [B, T]
  return layout === 'perHead' ? unstack0(n) : [tf.reshape(n, [B, 1, T])];
}

function attentionStats(scores: tf.Tensor[][], probs: tf.Tensor[][], alphas: Array<number | tf.Tensor>): AttentionStats {
  const H = probs.length;
  const B = probs[0].length;
  const perRow = (f: (p: tf.Tensor, s: tf.Tensor) => tf.Tensor) =>
    tf.stack(Array.from({ length: B }, (_, b) => tf.stack(probs.map((ph, h) => f(ph[b], scores[h][b])))));   // [B, H, T]
  const visible = perRow((_, s) => tf.sum(tf.cast(tf.isFinite(s), 'float32'), 1));
  const entropy = perRow((p) => probStats(p).entropy);
  const support = perRow((p) => tf.cast(supportSize(p), 'float32'));
  const absSum = perRow((_, s) => tf.sum(tf.where(tf.isFinite(s), tf.abs(s), tf.zerosLike(s)), 1));
  const agreement = tf.stack(Array.from({ length: B }, (_, b) => {
    const ps = probs.map((ph) => ph[b]);
    const mean = tf.div(tf.addN(ps), H);
    return tf.div(tf.addN(ps.map((p) => tf.sum(tf.abs(tf.sub(p, mean)), 1))), H * (ps[0].shape[1] as number));
  }));
  return {
    alpha: tf.stack(alphas.map((a) => (typeof a === 'number' ? tf.scalar(a) : a))),
    entropy,
    varentropy: perRow((p) => probStats(p).varentropy),
    support,
    supportFraction: tf.div(support, tf.maximum(visible, 1)),
    headEntropyVariance: tf.moments(entropy, 1).variance,
    agreement,
    interactionStrength: tf.div(tf.sum(absSum, 1), tf.maximum(tf.sum(visible, 1), 1)),
  };
}

function checkShapes(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, keyMask?: tf.Tensor): number[] {
  const shapes = `q [${q.shape}], k [${k.shape}], v [${v.shape}]`;
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) throw new RangeError(`attention: expected q [B, H, T, d], k [B, H, S, d], v [B, H, S, dv]; got ${shapes}`);
  for (const t of [q, k, v]) if (t.dtype !== 'float32') throw new TypeError(`attention: q, k, v must be float32; got ${q.dtype}, ${k.dtype}, ${v.dtype}`);
  const [B, H, , d] = q.shape;
  if (k.shape[0] !== B || v.shape[0] !== B || k.shape[1] !== H || v.shape[1] !== H) throw new RangeError(`attention: batch and head sizes differ: ${shapes}`);
  if (k.shape[3] !== d) throw new RangeError(`attention: q and k need the same head size d: ${shapes}`);
  if (k.shape[2] !== v.shape[2]) throw new RangeError(`attention: k and v need the same number of keys S: ${shapes}`);
  if (keyMask && (keyMask.rank !== 2 || keyMask.shape[0] !== B || keyMask.shape[1] !== k.shape[2])) {
    throw new RangeError(`attention: keyMask must be [B, S] = [${B}, ${k.shape[2]}], got [${keyMask.shape}]`);
  }
  return q.shape;
}

function checkAlphaRaw(alphaRaw: tf.Tensor | undefined, H: number): void {
  if (!alphaRaw || alphaRaw.rank !== 1 || alphaRaw.shape[0] !== H || alphaRaw.dtype !== 'float32') {
    throw new RangeError(`attention: 'learned' heads need alphaRaw, a float32 tensor [${H}] (α = 1 + sigmoid(a)); got ${alphaRaw ? `${alphaRaw.dtype} [${alphaRaw.shape}]` : 'none'}`);
  }
}
