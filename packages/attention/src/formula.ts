/**
 * User formulas (mathjs syntax) compiled once, evaluated two ways: on numbers by the compiled mathjs
 * expression, and on tensors by a walk of the same tree mapped onto tf ops (differentiable). Only
 * constructs both paths support are accepted, so a formula that passes construction cannot fail
 * later on the tensor path. Used by the AES schedule D(S) and the varentropy width g(V).
 */
import * as tf from '@tensorflow/tfjs';
import { parse, type MathNode } from 'mathjs';

export type Value = number | tf.Tensor;
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
const CONSTANTS = { pi: Math.PI, e: Math.E };

/** The node fields the walk reads; mathjs's own node types are generic over them. */
type Node = MathNode & {
  value?: unknown; name?: string; op?: string; fn?: Node | string; args?: Node[]; content?: Node;
};

export interface Formula {
  /** The source. */
  readonly src: string;
  /** Value on numbers (NaN for anything mathjs returns that is not a real number). */
  number(env: Record<string, number>): number;
  /** Value on tensors and numbers, as tf ops (a number when no tensor is involved). */
  tensor(env: Record<string, Value>): Value;
}

/**
 * Compiles `src` over `symbols` (plus the constants pi and e); throws, naming `what`, on a parse
 * error, an unknown symbol or an unsupported construct.
 * @example
 * const g = compileFormula('V / (V + 1)', ['V'], 'aes width');
 * g.number({V: 1});                        // 0.5
 * g.tensor({V: tf.tensor1d([0, 3])});      // tensor [0, 0.75]
 */
export function compileFormula(src: string, symbols: readonly string[], what: string): Formula {
  const allowed = [...symbols, ...Object.keys(CONSTANTS)];
  const help = `allowed: numbers; symbols ${allowed.join(', ')}; operators + - * / ^ (and unary - +); parentheses; ` +
    `functions ${[...FUNCTIONS.keys()].join(', ')} (log is natural, one argument)`;
  if (!src.trim()) throw new Error(`${what}: empty formula; ${help}`);
  let tree: Node;
  try {
    tree = parse(src) as Node;
  } catch (e) {
    throw new Error(`${what}: cannot parse formula "${src}": ${(e as Error).message}`);
  }
  const fail = (why: string): never => { throw new Error(`${what}: ${why} in formula "${src}"; ${help}`); };
  // With env = null the walk only checks every construct (no tensors are made).
  const lower = (node: Node, env: Record<string, Value> | null): Value => {
    const call = (spec: Spec, name: string, args: Node[]): Value => {
      if (args.length < spec.min || args.length > spec.max)
        fail(`wrong number of arguments (${args.length}) to ${name}`);
      const xs = args.map((a) => lower(a, env));
      return env ? spec.op(...xs) : 0;
    };
    switch (node.type) {
      case 'ConstantNode':
        return typeof node.value === 'number' ? node.value : fail(`unsupported constant ${node.toString()}`);
      case 'SymbolNode':
        if (!allowed.includes(node.name!)) fail(`unknown symbol '${node.name}'`);
        return env ? env[node.name!] : 0;
      case 'ParenthesisNode':
        return lower(node.content!, env);
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
  };
  lower(tree, null);
  const compiled = tree.compile();
  const scope = { ...CONSTANTS, sigmoid: (x: number) => 1 / (1 + Math.exp(-x)) };
  return Object.freeze({
    src,
    number: (env: Record<string, number>) => {
      const v: unknown = compiled.evaluate({ ...scope, ...env });
      return typeof v === 'number' ? v : NaN;             // e.g. a Complex from sqrt of a negative
    },
    tensor: (env: Record<string, Value>) => lower(tree, { ...CONSTANTS, ...env }),
  });
}
