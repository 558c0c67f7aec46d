/**
 * Where training batches come from: a text (file or URL, tokenized by characters or bytes, split
 * into train/validation, random windows) or a built-in task (`task:NAME[:k=v,…]`). Validation
 * batches are fixed, so validation metrics are comparable across steps and across resumed runs.
 */
import { ByteTokenizer, CharTokenizer, Rng, type Tokenizer } from '@aes/models';
import { evalWindows, loadText, randomWindows, splitTrainVal } from './data.js';
import { isTaskSpec, parseTask, type Task } from './tasks.js';

export interface Batch { x: number[][]; y: number[][]; mask?: number[][] }

export interface Source {
  kind: 'text' | 'task';
  vocabSize: number;
  blockSize: number;
  tokenizer: Tokenizer;
  task?: Task;
  /** Characters per token of the validation text (bits/char = nats/token ÷ ln 2 ÷ this). */
  charsPerToken?: number;
  trainBatch(batch: number, rng: Rng): Batch;
  /** The same validation batches on every call. */
  evalBatches(): Batch[];
  /**
   * Tasks: the same validation batches at exactly `length` (the task's length parameter) on every
   * call; texts: windows of `length` tokens from the validation text. `sequences` per batch.
   */
  evalAt(length: number, sequences: number): Batch[];
  /** The length `2x` of `--eval-lengths` multiplies: a task's length parameter, a text's block size. */
  trainLength: number;
  describe(): string;
}

export interface SourceArgs {
  data: string;
  blockSize: number;
  tokenizer: 'char' | 'byte';
  valFraction: number;
  evalBatches: number;
  batch: number;
  cacheDir: string;
  seed: number;
  /** Saved tokenizer (resume / eval of a checkpoint): reuse it instead of building one. */
  savedTokenizer?: Tokenizer;
}

export async function openSource(a: SourceArgs): Promise<Source> {
  if (isTaskSpec(a.data)) return taskSource(parseTask(a.data), a);
  const { text } = await loadText(a.data, { cacheDir: a.cacheDir });
  const tokenizer = a.savedTokenizer ?? (a.tokenizer === 'byte' ? new ByteTokenizer() : new CharTokenizer(text));
  const ids = Int32Array.from(tokenizer.encode(text));
  const { train, val } = splitTrainVal(ids, a.valFraction, a.blockSize + 2);
  const valChars = Array.from(text).length * (val.length / ids.length);
  const evals = evalWindows(val, a.batch, a.blockSize, a.evalBatches);
  return {
    kind: 'text',
    vocabSize: tokenizer.vocabSize,
    blockSize: a.blockSize,
    tokenizer,
    charsPerToken: valChars / val.length,
    trainBatch: (batch, rng) => randomWindows(train, batch, a.blockSize, rng),
    evalBatches: () => evals,
    evalAt: (length, sequences) => evalWindows(val, sequences, length, a.evalBatches),
    trainLength: a.blockSize,
    describe: () =>
      `${a.data}: ${ids.length} ${tokenizer.kind} tokens (vocabulary ${tokenizer.vocabSize}), ${train.length} train ` +
      `/ ${val.length} validation`,
  };
}

function taskSource(task: Task, a: SourceArgs): Source {
  const evalRng = new Rng(a.seed + 0x5eed);
  const evals = Array.from({ length: a.evalBatches }, () => task.sample(a.batch, evalRng));
  return {
    kind: 'task',
    vocabSize: task.vocabSize,
    blockSize: task.seqLen - 1,
    task,
    tokenizer: new CharTokenizer(
      task
        .tokenNames()
        .map((_, i) => String.fromCodePoint(0x4e00 + i))
        .slice(1),
    ),
    trainBatch: (batch, rng) => task.sample(batch, rng),
    evalBatches: () => evals,
    evalAt: (length, sequences) => {
      const rng = new Rng(a.seed + 0x5eed + 7919 * length);
      return Array.from({ length: a.evalBatches }, () => task.sampleAt(sequences, length, rng));
    },
    trainLength: task.params[task.lengthParam],
    describe: () =>
      `task ${task.name} ${JSON.stringify(task.params)}: vocabulary ${task.vocabSize}, sequences of ${task.seqLen}`,
  };
}
