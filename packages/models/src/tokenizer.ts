/**
 * Tokenizers: byte-level (UTF-8 bytes, vocabulary 256, every text encodes) and character-level
 * (vocabulary = the code points of the training text, built from it and stored with the model).
 *
 * Characters never seen when a CharTokenizer was built encode to its `<unk>` id 0, which decodes to
 * U+FFFD (�); so encode/decode is the identity exactly on texts made of known characters. Byte ids
 * that do not form valid UTF-8 decode to U+FFFD as well (TextDecoder's replacement).
 */
export interface Tokenizer {
  readonly kind: 'byte' | 'char';
  readonly vocabSize: number;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** JSON for checkpoints (see tokenizerFromJSON). */
  toJSON(): TokenizerJSON;
}

export type TokenizerJSON = { kind: 'byte' } | { kind: 'char'; chars: string[] };

export class ByteTokenizer implements Tokenizer {
  readonly kind = 'byte' as const;
  readonly vocabSize = 256;
  encode(text: string): number[] {
    return Array.from(new TextEncoder().encode(text));
  }
  decode(ids: readonly number[]): string {
    checkIds(ids, 256);
    return new TextDecoder('utf-8', { fatal: false }).decode(Uint8Array.from(ids));
  }
  toJSON(): TokenizerJSON {
    return { kind: 'byte' };
  }
}

export class CharTokenizer implements Tokenizer {
  readonly kind = 'char' as const;
  /** Id 0 is `<unk>`; ids 1… are the characters in sorted order. */
  readonly chars: readonly string[];
  private readonly index: Map<string, number>;

  /** Builds the vocabulary from `text` (its distinct code points, sorted), or takes a saved list. */
  constructor(textOrChars: string | readonly string[]) {
    const chars = typeof textOrChars === 'string' ? [...new Set(Array.from(textOrChars))].sort() : [...textOrChars];
    if (new Set(chars).size !== chars.length || chars.some((c) => Array.from(c).length !== 1)) {
      throw new RangeError('CharTokenizer: the character list must hold distinct single characters');
    }
    this.chars = chars;
    this.index = new Map(chars.map((c, i) => [c, i + 1]));
  }
  get vocabSize(): number {
    return this.chars.length + 1;
  }
  encode(text: string): number[] {
    return Array.from(text, (c) => this.index.get(c) ?? 0);
  }
  decode(ids: readonly number[]): string {
    checkIds(ids, this.vocabSize);
    return ids.map((i) => (i === 0 ? '\uFFFD' : this.chars[i - 1])).join('');
  }
  toJSON(): TokenizerJSON {
    return { kind: 'char', chars: [...this.chars] };
  }
}

/** Rebuilds a tokenizer saved with `toJSON`; a clear error for anything else. */
export function tokenizerFromJSON(json: unknown): Tokenizer {
  const j = json as Partial<{ kind: string; chars: unknown }> | null;
  if (j?.kind === 'byte') return new ByteTokenizer();
  if (j?.kind === 'char' && Array.isArray(j.chars) && j.chars.every((c) => typeof c === 'string'))
    return new CharTokenizer(j.chars as string[]);
  throw new RangeError(`not a saved tokenizer: ${JSON.stringify(json)?.slice(0, 80)}`);
}

function checkIds(ids: readonly number[], vocab: number): void {
  const bad = ids.find((i) => !Number.isInteger(i) || i < 0 || i >= vocab);
  if (bad !== undefined) throw new RangeError(`token id ${bad} outside [0, ${vocab})`);
}
