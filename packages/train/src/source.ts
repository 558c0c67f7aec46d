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
    describe: () =>
      `task ${task.name} ${JSON.stringify(task.params)}: vocabulary ${task.vocabSize}, sequences of ${task.seqLen}`,
  };
}
