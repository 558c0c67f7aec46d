/**
 * A small seeded random number generator (xoshiro128**, Blackman & Vigna) whose whole state is four
 * 32-bit words, so it can be saved in a checkpoint and resumed exactly. No global state: every
 * sampler and data loader takes its own `Rng`.
 */
export class Rng {
  private s: Uint32Array;

  /** Seeds the state with splitmix32 from one integer (any seed gives a usable, non-zero state). */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`Rng: seed must be a finite number, got ${seed}`);
    let x = (Math.floor(seed) >>> 0) ^ 0x9e3779b9;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s = Uint32Array.from([next(), next(), next(), next()]);
  }

  /** A generator continuing from a saved `state()`. */
  static fromState(state: readonly number[]): Rng {
    if (
      state.length !== 4 ||
      state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff) ||
      state.every((v) => v === 0)
    ) {
      throw new RangeError(
        `Rng.fromState: expected four 32-bit unsigned integers, not all zero; got ${JSON.stringify(state)}`,
      );
    }
    const r = new Rng(0);
    r.s = Uint32Array.from(state);
    return r;
  }

  /** The state, as plain numbers (JSON-safe). */
  state(): number[] {
    return Array.from(this.s);
  }

  /** Next 32 random bits. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    return (this.nextUint32() * 2 ** 21 + (this.nextUint32() >>> 11)) / 2 ** 53;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`Rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    return Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next());
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
