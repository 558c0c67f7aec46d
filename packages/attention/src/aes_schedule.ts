/**
 * Adaptive entropy sparsity (AES) schedule: per attention head, a sparsity level ζ ∈ [0, ζmax]
 * chosen from the head's normalised Shannon entropy S = H / ln(n) ∈ [0, 1] (n visible keys).
 * A confident head (low S) gets ζ = ζmax, i.e. sparsemax, which prunes the tail; a diffuse head
 * (high S) gets ζ = 0, i.e. softmax, which keeps every key. Between S0 and Smax a continuous,
 * monotone non-increasing D(S) interpolates, and the entmax exponent is α = 1 + ζ/ζmax ∈ [1, 2]:
 *
 *     ζ(S) = ζmax for S ≤ S0,   D(S) for S0 < S < Smax,   0 for S ≥ Smax.
 *
 * Every shape, built-in or user-supplied, is a mathjs formula in S, S0, Smax, zmax, so there is
 * one code path: the formula is parsed once, numbers come from the compiled mathjs expression and
 * tensors from a walk of the same tree mapped onto tf ops (differentiable in S). Because configs
 * arrive from JSON and the CLI, the formula is checked on a grid at construction (finite, within
 * [0, ζmax], non-increasing, meeting ζmax at S0 and 0 at Smax) instead of failing mid-training.
 */
import * as tf from '@tensorflow/tfjs';
import { parse, type MathNode } from 'mathjs';

/** Built-in D(S) shapes; any other string is read as a formula. */
export type ScheduleShape = 'linear' | 'cosine' | 'logistic';

export interface AesScheduleArgs {
  /** At or below this normalised entropy ζ = zmax (sparsemax). In [0, Smax). */
  S0?: number;
  /** At or above this normalised entropy ζ = 0 (softmax). In (S0, 1]. */
  Smax?: number;
  /** Largest sparsity level ζmax, finite and > 0; α = 1 + ζ/ζmax, so it scales ζ only. */
  zmax?: number;
  /** A built-in name, or a mathjs formula for D(S) in S, S0, Smax, zmax. */
  shape?: ScheduleShape | string;
}
export const AES_SCHEDULE_DEFAULTS: Readonly<Required<AesScheduleArgs>> = Object.freeze({
  S0: 0.3, Smax: 0.8, zmax: 1, shape: 'cosine',
});

/**
 * Built-in formulas. The logistic step 1/(1 + exp(k(S − c))), c = (S0+Smax)/2, k = 10/(Smax−S0),
 * equals (1 − tanh(k(S − c)/2))/2; dividing the tanh by its endpoint value tanh(2.5) rescales the
 * step affinely so it hits zmax at S0 and 0 at Smax exactly (plain tanh(±2.5) would miss by ~0.7%).
 */
const BUILTIN: ReadonlyMap<string, string> = new Map([
  ['linear', 'zmax * (Smax - S) / (Smax - S0)'],
  ['cosine', 'zmax * (1 + cos(pi * (S - S0) / (Smax - S0))) / 2'],
  ['logistic', 'zmax * (1 - tanh(2.5 * (2 * S - S0 - Smax) / (Smax - S0)) / tanh(2.5)) / 2'],
]);

type Value = number | tf.Tensor;
type Op = (...xs: Value[]) => Value;
type Spec = { min: number; max: number; op: Op };
const fold = (f: (a: Value, b: Value) => Value): Op => (...xs) => xs.reduce((a, b) => f(a, b));
const unary = (f: (x: Value) => Value): Spec => ({ min: 1, max: 1, op: (x) => f(x) });
const binary = (f: (a: Value, b: Value) => Value): Spec => ({ min: 2, max: 2, op: fold(f) });

/** Operators by mathjs `fn` name (`-x` is unaryMinus, `a^b` is pow, implicit `2S` is multiply). */
const OPERATORS: ReadonlyMap<string, Spec> = new Map([
  ['add', binary(tf.add)], ['subtract', binary(tf.sub)], ['multiply', binary(tf.mul)],
  ['divide', binary(tf.div)], ['pow', binary(tf.pow)], ['unaryMinus', unary(tf.neg)],
  ['unaryPlus', unary((x) => x)],
]);
/** Functions usable in a formula; sigmoid is not a mathjs built-in, so the number scope adds it. */
const FUNCTIONS: ReadonlyMap<string, Spec> = new Map([
  ['exp', unary(tf.exp)], ['log', unary(tf.log)], ['sqrt', unary(tf.sqrt)], ['abs', unary(tf.abs)],
  ['sin', unary(tf.sin)], ['cos', unary(tf.cos)], ['tan', unary(tf.tan)], ['tanh', unary(tf.tanh)],
  ['sigmoid', unary(tf.sigmoid)], ['pow', binary(tf.pow)],
  ['min', { min: 2, max: Infinity, op: fold(tf.minimum) }],
  ['max', { min: 2, max: Infinity, op: fold(tf.maximum) }],
]);
const SYMBOLS = ['S', 'S0', 'Smax', 'zmax', 'pi', 'e'];
const ALLOWED = `allowed: numbers; symbols ${SYMBOLS.join(', ')}; operators + - * / ^ (and unary - +); ` +
  `parentheses; functions ${[...FUNCTIONS.keys()].join(', ')} (log is natural, one argument); ` +
  `built-in shapes ${[...BUILTIN.keys()].join(', ')}`;

/** The node fields the walk reads; mathjs's own node types are generic over them. */
type Node = MathNode & {
  value?: unknown; name?: string; op?: string; fn?: Node | string; args?: Node[]; content?: Node;
};

/**
 * Maps a mathjs tree onto tf ops, with S bound to a tensor and the other symbols to numbers.
 * With `env = null` it only checks that every construct is supported (no tensors are made), so
 * construction rejects a formula the tensor path could not run even if mathjs could evaluate it.
 */
function lower(node: Node, env: Record<string, Value> | null, src: string): Value {
  const fail = (what: string): never => {
    throw new Error(`aesSchedule: ${what} in formula "${src}"; ${ALLOWED}`);
  };
  const call = (spec: Spec, name: string, args: Node[]): Value => {
    if (args.length < spec.min || args.length > spec.max) fail(`wrong number of arguments (${args.length}) to ${name}`);
    const xs = args.map((a) => lower(a, env, src));
    return env ? spec.op(...xs) : 0;
  };
  switch (node.type) {
    case 'ConstantNode':
      return typeof node.value === 'number' ? node.value : fail(`unsupported constant ${node.toString()}`);
    case 'SymbolNode':
      if (!SYMBOLS.includes(node.name!)) fail(`unknown symbol '${node.name}'`);
      return env ? env[node.name!] : 0;
    case 'ParenthesisNode':
      return lower(node.content!, env, src);
    case 'OperatorNode': {
      const spec = OPERATORS.get(node.fn as string);
      return spec ? call(spec, `operator ${node.op}`, node.args!) : fail(`unsupported operator '${node.op}'`);
    }
    case 'FunctionNode': {
      const fn = node.fn as Node;
      const spec = fn.type === 'SymbolNode' ? FUNCTIONS.get(fn.name!) : undefined;
      return spec ? call(spec, fn.name!, node.args!) : fail(`unsupported function '${fn.toString()}'`);
    }
    default:
      return fail(`unsupported construct ${node.type} "${node.toString()}"`);
  }
}

export interface AesSchedule {
  readonly args: Readonly<Required<AesScheduleArgs>>;
  /** The D(S) formula actually used (a built-in name expands to its formula). */
  readonly formula: string;
  /** ζ(S): zmax for S ≤ S0, 0 for S ≥ Smax, D(S) between; NaN propagates. */
  zeta(S: number): number;
  /** α(S) = 1 + ζ(S)/zmax ∈ [1, 2]: 2 is sparsemax, 1 softmax. */
  alpha(S: number): number;
  /** ζ elementwise on a float32 tensor, differentiable in S (zero gradient on the flat parts). */
  zetaTensor(S: tf.Tensor): tf.Tensor;
  /** α elementwise on a float32 tensor, differentiable in S. */
  alphaTensor(S: tf.Tensor): tf.Tensor;
}

/** Merges args over the defaults, rejecting unknown keys, wrong types and inconsistent ranges. */
function checkArgs(args: AesScheduleArgs): Readonly<Required<AesScheduleArgs>> {
  const keys = Object.keys(AES_SCHEDULE_DEFAULTS);
  const unknown = Object.keys(args).filter((k) => !keys.includes(k));
  if (unknown.length) {
    throw new Error(`aesSchedule: unknown arg(s) ${unknown.join(', ')}; valid keys: ${keys.join(', ')}`);
  }
  const a = { ...AES_SCHEDULE_DEFAULTS, ...args };
  for (const k of ['S0', 'Smax', 'zmax'] as const) {
    if (typeof a[k] !== 'number' || !Number.isFinite(a[k])) {
      throw new RangeError(`aesSchedule: ${k} must be a finite number, got ${String(a[k])}`);
    }
  }
  if (typeof a.shape !== 'string') throw new TypeError(`aesSchedule: shape must be a string, got ${typeof a.shape}`);
  if (!(a.S0 >= 0 && a.S0 < a.Smax && a.Smax <= 1)) {
    throw new RangeError(`aesSchedule: need 0 ≤ S0 < Smax ≤ 1, got S0 = ${a.S0}, Smax = ${a.Smax}`);
  }
  if (!(a.zmax > 0)) throw new RangeError(`aesSchedule: zmax must be > 0, got ${a.zmax}`);
  return Object.freeze(a);
}

/**
 * Checks D on 201 points of [S0, Smax]: finite, within [0, zmax] (tolerance 1e-6·zmax), monotone
 * non-increasing (1e-9·zmax), then D(S0) = zmax and D(Smax) = 0 (1e-6·zmax) so ζ is continuous.
 * A grid cannot prove monotonicity, but it catches the wrong-sign and oscillating formulas.
 */
function checkFormula(D: (S: number) => number, { S0, Smax, zmax }: Required<AesScheduleArgs>, src: string): void {
  const bad = (what: string): never => {
    throw new RangeError(`aesSchedule: formula "${src}" ${what} (S0 = ${S0}, Smax = ${Smax}, zmax = ${zmax})`);
  };
  const n = 200;
  let prev = { S: NaN, v: Infinity };
  for (let i = 0; i <= n; i++) {
    const S = i === n ? Smax : S0 + ((Smax - S0) * i) / n;
    const v = D(S);
    if (!Number.isFinite(v)) bad(`is not finite (${v}) at S = ${S}`);
    if (v < -1e-6 * zmax || v > zmax * (1 + 1e-6)) bad(`is outside [0, zmax] (${v}) at S = ${S}`);
    if (v > prev.v + 1e-9 * zmax) bad(`is not monotone non-increasing: ${v} at S = ${S} > ${prev.v} at S = ${prev.S}`);
    prev = { S, v };
  }
  const [top, end] = [D(S0), D(Smax)];
  if (Math.abs(top - zmax) > 1e-6 * zmax) bad(`misses the endpoint: ${top} ≠ zmax at S = S0 = ${S0} (ζ would jump)`);
  if (Math.abs(end) > 1e-6 * zmax) bad(`misses the endpoint: ${end} ≠ 0 at S = Smax = ${Smax} (ζ would jump)`);
}

/**
 * Builds an AES schedule; throws on unknown keys, bad ranges or an invalid formula.
 *
 * @example
 * const s = aesSchedule({S0: 0.2, Smax: 0.9, shape: 'zmax * ((Smax - S) / (Smax - S0))^2'});
 * s.alpha(0.1);                                      // 2: sparsemax for a confident head
 * const alpha = s.alphaTensor(tf.tensor1d([0.1, 0.5, 0.95]));   // [3], differentiable in S
 */
export function aesSchedule(args: AesScheduleArgs = {}): AesSchedule {
  return buildSchedule(checkArgs(args));
}

function buildSchedule(a: ReturnType<typeof checkArgs>): AesSchedule {
  const { S0, Smax, zmax } = a;
  const formula = BUILTIN.get(a.shape) ?? a.shape;
  const names = [...BUILTIN.keys()].join(', ');
  if (!formula.trim()) throw new Error(`aesSchedule: empty shape; use a formula or one of ${names}`);
  let tree: Node;
  try {
    tree = parse(formula) as Node;
  } catch (e) {
    throw new Error(`aesSchedule: cannot parse formula "${formula}": ${(e as Error).message}`);
  }
  lower(tree, null, formula);
  const compiled = tree.compile();
  const scope = { S0, Smax, zmax, sigmoid: (x: number) => 1 / (1 + Math.exp(-x)) };
  // mathjs may return a Complex (sqrt of a negative) or another type: anything but a number is NaN.
  const D = (S: number): number => {
    const v: unknown = compiled.evaluate({ ...scope, S });
    return typeof v === 'number' ? v : NaN;
  };
  checkFormula(D, a, formula);
  const consts = { S0, Smax, zmax, pi: Math.PI, e: Math.E };
  const zeta = (S: number) => (S <= S0 ? zmax : S >= Smax ? 0 : D(S));
  const mid = (S0 + Smax) / 2;

  const zetaTensor = (S: tf.Tensor): tf.Tensor => {
    if (!(S instanceof tf.Tensor) || S.dtype !== 'float32') {
      throw new TypeError('aesSchedule.zetaTensor: S must be a float32 tensor');
    }
    return tf.tidy(() => {
      // Masks from tf.step (x > 0 ↦ 1), which has a zero gradient; tf.greater has none and tf.grad throws.
      const inside = tf.cast(tf.mul(tf.step(tf.sub(S, S0)), tf.step(tf.sub(Smax, S))), 'bool');  // S0 < S < Smax
      const upper = tf.cast(tf.step(tf.sub(S, mid)), 'bool');                 // used outside only: S ≥ Smax
      // Outside the interval D sees the midpoint instead of S: D may be NaN or have an infinite
      // derivative there (e.g. sqrt(S − S0) below S0), and the where-gradient 0·NaN would be NaN.
      const Sin = tf.where(inside, S, tf.fill(S.shape, mid));
      const d = lower(tree, { ...consts, S: Sin }, formula);
      const dT = typeof d === 'number' ? tf.fill(S.shape, d) : tf.broadcastTo(d, S.shape);
      return tf.where(inside, dT, tf.where(upper, tf.zerosLike(S), tf.fill(S.shape, zmax)));
    });
  };
  return Object.freeze({
    args: a, formula, zeta,
    alpha: (S: number) => 1 + zeta(S) / zmax,
    zetaTensor,
    alphaTensor: (S: tf.Tensor) => tf.tidy(() => tf.add(1, tf.div(zetaTensor(S), zmax))),
  });
}
