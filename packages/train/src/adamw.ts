/**
 * AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay, in parameter groups (the
 * learned-α parameters get their own learning rate and no decay), plus global-norm gradient
 * clipping and a warmup + cosine learning-rate schedule (nanoGPT's `get_lr`). Its state (step and
 * moment estimates) is exported and restored by name, so a resumed run continues exactly.
 *
 *   m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  θ ← θ − lr·( m̂/(√v̂ + ε) + λθ ),  m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)
 */
import * as tf from '@tensorflow/tfjs';

export interface ParamGroup {
  /** name → variable (names key the saved state). */
  params: Map<string, tf.Variable>;
  /** Peak learning rate of the group (the schedule scales it). */
  lr: number;
  /** Decoupled weight decay λ (applied to rank ≥ 2 tensors only, as nanoGPT does). */
  weightDecay: number;
}

export interface AdamWArgs { beta1?: number; beta2?: number; eps?: number }
export const ADAMW_DEFAULTS: Readonly<Required<AdamWArgs>> = Object.freeze({ beta1: 0.9, beta2: 0.95, eps: 1e-8 });

export class AdamW {
  private readonly cfg: Required<AdamWArgs>;
  private t = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(private readonly groups: ParamGroup[], args: AdamWArgs = {}) {
    this.cfg = { ...ADAMW_DEFAULTS, ...args };
    for (const g of groups) {
      for (const [name, p] of g.params) {
        this.m.set(name, tf.variable(tf.zerosLike(p), false));
        this.v.set(name, tf.variable(tf.zerosLike(p), false));
      }
    }
  }

  get step(): number {
    return this.t;
  }

  /** One update with gradients by parameter name; `lrScale` multiplies every group's lr. */
  apply(grads: Map<string, tf.Tensor>, lrScale: number): void {
    this.t += 1;
    const { beta1: b1, beta2: b2, eps } = this.cfg;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    tf.tidy(() => {
      for (const g of this.groups) {
        const lr = g.lr * lrScale;
        for (const [name, p] of g.params) {
          const grad = grads.get(name);
          if (!grad) continue;
          const m = this.m.get(name)!;
          const v = this.v.get(name)!;
          m.assign(tf.add(tf.mul(m, b1), tf.mul(grad, 1 - b1)));
          v.assign(tf.add(tf.mul(v, b2), tf.mul(tf.square(grad), 1 - b2)));
          let update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), eps));
          if (g.weightDecay > 0 && p.rank >= 2) update = tf.add(update, tf.mul(p, g.weightDecay));
          p.assign(tf.sub(p, tf.mul(update, lr)));
        }
      }
    });
  }

  /** Step and moments by name (for checkpoints). */
  state(): { step: number; tensors: Record<string, tf.Tensor> } {
    const tensors: Record<string, tf.Tensor> = {};
    for (const [n, t] of this.m) tensors[`m/${n}`] = t;
    for (const [n, t] of this.v) tensors[`v/${n}`] = t;
    return { step: this.t, tensors };
  }

  /** Restores `state()`; every moment must be present with the right shape. */
  loadState(step: number, tensors: Record<string, tf.Tensor>): void {
    for (const [kind, map] of [['m', this.m], ['v', this.v]] as const) {
      for (const [n, t] of map) {
        const saved = tensors[`${kind}/${n}`];
        if (!saved || !tf.util.arraysEqual(saved.shape, t.shape))
          throw new Error(`optimizer state lacks ${kind}/${n} [${t.shape}]`);
        t.assign(saved);
      }
    }
    this.t = step;
  }

  dispose(): void {
    tf.dispose([...this.m.values(), ...this.v.values()]);
  }
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm` (no-op for maxNorm ≤ 0), on the
 * device: the scale is min(1, maxNorm / (norm + 1e-6)) as a tensor, so no value is read. Returns the
 * norm before clipping, a scalar the caller reads (with the loss, one read per step) and disposes.
 */
export function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): tf.Scalar {
  // A chain of adds, not addN: webgpu's addN binds every input at once, beyond the 8 storage
  // buffers a shader stage may have (a small model has dozens of parameter tensors).
  const norm = tf.tidy(
    () => tf.sqrt([...grads.values()].map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b))) as tf.Scalar,
  );
  if (maxNorm > 0) {
    const s = tf.tidy(() =>
      tf.where(tf.greater(norm, maxNorm), tf.div(maxNorm, tf.add(norm, 1e-6)), tf.onesLike(norm)),
    );
    for (const [n, g] of grads) { grads.set(n, tf.mul(g, s)); g.dispose(); }
    s.dispose();
  }
  return norm;
}

/** Linear warmup to 1, then cosine decay to `minRatio` at `total` steps (step counts from 1). */
export function lrScaleAt(step: number, warmup: number, total: number, minRatio: number): number {
  if (warmup > 0 && step <= warmup) return step / warmup;
  if (step >= total) return minRatio;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  return minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
