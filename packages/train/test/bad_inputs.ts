/**
 * Bad inputs a user may give the library and the CLI, and what each one gets. bad_input_test.ts
 * runs every case; scripts/render_docs.ts renders this list as the table in docs/bad_inputs.md, so
 * the table says only what the tests check. `fixed` marks the cases that were silent, lossy or
 * wrong before this round (the rest already behaved).
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  attention, EntropicMultiHeadAttention, entmaxBisect, planAttention, sparsemax, type NormaliserSpec,
} from '@aes/attention';
import { GPT, loadCheckpoint, saveCheckpoint, ByteTokenizer } from '@aes/models';
import { fileSystemIO } from '@aes/node';
import { prepareOutDir, runCli } from '../src/index.js';

export interface BadInput {
  area: 'maps' | 'attention' | 'model' | 'checkpoint' | 'cli';
  /** What was tried. */
  input: string;
  /** What it gets now. */
  gets: string;
  fixed?: boolean;
  /** Runs the case in `dir` (a fresh temporary directory); throws when the behaviour differs. */
  check(dir: string): Promise<void> | void;
}

const fail = (what: string): never => { throw new Error(what); };
function throwsMatching(f: () => unknown, re: RegExp): void {
  try { f(); } catch (e) {
    if (!re.test((e as Error).message)) fail(`message "${(e as Error).message}" does not match ${re}`);
    return;
  }
  fail(`no error (expected ${re})`);
}
async function rejectsMatching(f: () => Promise<unknown>, re: RegExp): Promise<void> {
  try { await f(); } catch (e) {
    if (!re.test((e as Error).message)) fail(`message "${(e as Error).message}" does not match ${re}`);
    return;
  }
  fail(`no error (expected ${re})`);
}
const row = (xs: number[]) => Array.from(sparsemax(tf.tensor2d([xs])).dataSync());

/** One in-process `aes` command: exit status and what it printed. */
export async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const code = await runCli(args, { out: (s) => void out.push(s), err: (s) => void err.push(s), tty: false });
  return { code, out: out.join(''), err: err.join('') };
}
/** A two-step run small enough for a test. */
const tiny = (out: string, ...more: string[]) => ['train', '--data', 'task:copy:len=3', '--steps', '2', '--layers', '1',
  '--heads', '1', '--embd', '8', '--batch', '4', '--eval-batches', '1', '--eval-every', '2', '--backend', 'cpu',
  '--out', out, ...more];
async function expectCli(args: string[], code: number, re: RegExp, stream: 'out' | 'err' = 'err') {
  const r = await cli(args);
  if (r.code !== code) fail(`exit ${r.code} (expected ${code}); stderr: ${r.err}`);
  if (!re.test(r[stream])) fail(`${stream} "${r[stream]}" does not match ${re}`);
  if (/\n\s+at \S+ \(|^\s*at /m.test(r.err)) fail(`a stack trace was printed: ${r.err}`);
  return r;
}
const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).length;

export const BAD_INPUTS: BadInput[] = [
  // maps
  {
    area: 'maps',
    input: 'a row holding NaN',
    gets: 'that row is NaN, the other rows are unaffected',
    check: () => {
      const p = Array.from(
        sparsemax(
          tf.tensor2d([
            [1, NaN, 0],
            [2, 1, 0],
          ]),
        ).dataSync(),
      );
      if (!p.slice(0, 3).every(Number.isNaN) || Math.abs(p[3] - 1) > 1e-6) fail(`got ${p}`);
    },
  },
  {
    area: 'maps',
    input: 'a row holding +∞',
    gets: 'that row is NaN (loud and confined to it)',
    check: () => {
      if (!row([1, Infinity, 0]).every(Number.isNaN)) fail('not NaN');
    },
  },
  {
    area: 'maps',
    input: 'a fully masked row (all −∞)',
    gets: 'zeros, and a zero gradient',
    check: () => {
      const x = tf.tensor2d([[-Infinity, -Infinity]]);
      const g = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(sparsemax(z), tf.tensor2d([[1, 2]]))))(x);
      if ([...sparsemax(x).dataSync(), ...g.dataSync()].some((v) => v !== 0)) fail('not zeros');
    },
  },
  {
    area: 'maps',
    input: 'a row of length 1',
    gets: '[1]',
    check: () => {
      if (row([3])[0] !== 1) fail('not 1');
    },
  },
  {
    area: 'maps',
    input: 'α ≤ 1 (e.g. 0.5) for entmaxBisect',
    gets: 'RangeError: alpha must be ≥ 1',
    check: () => throwsMatching(() => entmaxBisect(tf.tensor2d([[1, 2]]), 0.5), /alpha must be ≥ 1/),
  },
  {
    area: 'maps',
    input: 'a huge α (1e6)',
    gets: 'a finite distribution summing to 1',
    check: () => {
      const p = Array.from(entmaxBisect(tf.tensor2d([[0.3, 2, 1.9, -1]]), 1e6).dataSync());
      if (!p.every(Number.isFinite) || Math.abs(p.reduce((a, b) => a + b) - 1) > 1e-4) fail(`got ${p}`);
    },
  },
  {
    area: 'maps',
    input: 'int32 scores',
    gets: 'TypeError naming float32 and how to cast',
    check: () => throwsMatching(() => sparsemax(tf.tensor2d([[1, 2]], [1, 2], 'int32')), /expected float32.*tf\.cast/),
  },
  {
    area: 'maps',
    input: 'a plain array instead of a tensor',
    gets: 'TypeError: … wrap it with tf.tensor',
    check: () => throwsMatching(() => sparsemax([[1, 2]] as never), /wrap it with tf\.tensor/),
  },
  {
    area: 'maps',
    input: 'an empty last axis',
    gets: 'RangeError naming the shape',
    check: () => throwsMatching(() => sparsemax(tf.zeros([2, 0])), /non-empty last axis, got shape \[2,0\]/),
  },
  // attention
  {
    area: 'attention',
    input: 'q, k, v of wrong rank or mismatched sizes',
    gets: 'RangeError naming all three shapes',
    check: () =>
      throwsMatching(
        () => attention(tf.zeros([1, 2, 3]), tf.zeros([1, 2, 3, 4]), tf.zeros([1, 2, 3, 4])),
        /expected q \[B, H, T, d\].*q \[1,2,3\]/,
      ),
  },
  {
    area: 'attention',
    input: 'a padding mask of the wrong shape',
    gets: 'RangeError with the expected [B, S]',
    check: () =>
      throwsMatching(
        () =>
          attention(tf.zeros([1, 2, 3, 4]), tf.zeros([1, 2, 3, 4]), tf.zeros([1, 2, 3, 4]), {
            keyMask: tf.ones([1, 4]),
          }),
        /keyMask must be \[B, S\] = \[1, 3\]/,
      ),
  },
  {
    area: 'attention',
    input: "an unknown normaliser ('relu')",
    gets: 'RangeError listing the valid specs',
    check: () =>
      throwsMatching(
        () => planAttention('relu' as NormaliserSpec, { heads: 2 }),
        /unknown attention normaliser.*softmax/,
      ),
  },
  {
    area: 'attention',
    input: 'an AES formula that does not parse, in a Layer',
    gets: 'error in the constructor, naming the formula',
    fixed: true,
    check: () =>
      throwsMatching(
        () => new EntropicMultiHeadAttention({ numHeads: 1, keyDim: 2, normaliser: { aes: { shape: 'zmax * (S' } } }),
        /cannot parse formula "zmax \* \(S"/,
      ),
  },
  {
    area: 'attention',
    input: 'an AES formula that rises with S',
    gets: 'RangeError: not monotone non-increasing',
    check: () =>
      throwsMatching(
        () => planAttention({ aes: { shape: 'zmax * (S - S0) / (Smax - S0)' } }, { heads: 1 }),
        /not monotone|misses the endpoint/,
      ),
  },
  {
    area: 'attention',
    input: "'learned' heads without alphaRaw",
    gets: 'RangeError saying what alphaRaw must be',
    check: () =>
      throwsMatching(
        () =>
          attention(tf.zeros([1, 1, 2, 2]), tf.zeros([1, 1, 2, 2]), tf.zeros([1, 1, 2, 2]), { normaliser: 'learned' }),
        /'learned' heads need alphaRaw, a float32 tensor \[1\]/,
      ),
  },
  {
    area: 'attention',
    input: "a Layer saved with the README's AES formula, then loaded",
    gets: 'the same formula and outputs',
    fixed: true,
    check: async (dir) => {
      const shape = 'zmax * ((Smax - S) / (Smax - S0))^2';
      const model = tf.sequential({
        layers: [
          new EntropicMultiHeadAttention({
            inputShape: [3, 4],
            numHeads: 1,
            keyDim: 2,
            normaliser: { aes: { shape } },
          }),
        ],
      });
      await model.save(fileSystemIO(join(dir, 'layer')));
      const loaded = (await tf.loadLayersModel(fileSystemIO(join(dir, 'layer'))))
        .layers[0] as EntropicMultiHeadAttention;
      if (JSON.stringify(loaded.plan.specs) !== JSON.stringify([{ aes: { shape } }]))
        fail(`specs ${JSON.stringify(loaded.plan.specs)}`);
    },
  },
  // model and checkpoints
  {
    area: 'model',
    input: 'more positions than blockSize',
    gets: 'RangeError naming blockSize',
    check: () => {
      const gpt = new GPT({ vocabSize: 5, nLayer: 1, nHead: 1, nEmbd: 4, blockSize: 3 }, { seed: 1 });
      throwsMatching(() => gpt.forward(tf.zeros([1, 4], 'int32')), /4 positions exceed blockSize 3/);
      gpt.dispose();
    },
  },
  {
    area: 'checkpoint',
    input: 'a missing checkpoint directory',
    gets: 'Error: no checkpoint at DIR (missing DIR/model.json)',
    check: (dir) =>
      rejectsMatching(() => loadCheckpoint(fileSystemIO(join(dir, 'none')), 'x'), /no checkpoint at .*none/),
  },
  {
    area: 'checkpoint',
    input: 'a garbled model.json',
    gets: 'Error: … is not valid JSON',
    check: (dir) => {
      mkdirSync(join(dir, 'g'));
      writeFileSync(join(dir, 'g', 'model.json'), '{bad');
      return rejectsMatching(() => loadCheckpoint(fileSystemIO(join(dir, 'g'))), /not valid JSON/);
    },
  },
  {
    area: 'checkpoint',
    input: 'a truncated weights.bin',
    gets: 'Error: … holds N bytes, its manifest expects M',
    check: async (dir) => {
      const gpt = new GPT({ vocabSize: 5, nLayer: 1, nHead: 1, nEmbd: 4, blockSize: 3 }, { seed: 1 });
      await saveCheckpoint(fileSystemIO(join(dir, 't')), gpt, new ByteTokenizer());
      writeFileSync(join(dir, 't', 'weights.bin'), 'short');
      gpt.dispose();
      await rejectsMatching(() => loadCheckpoint(fileSystemIO(join(dir, 't'))), /holds 5 bytes, its manifest expects/);
    },
  },
  // the CLI
  {
    area: 'cli',
    input: '`aes fly` (unknown command)',
    gets: 'error naming the commands; exit 2',
    check: async () => {
      await expectCli(['fly'], 2, /unknown command 'fly'; use train, sample, eval, sweep, worker or view/);
    },
  },
  {
    area: 'cli',
    input: '`aes train --stepz 3` (unknown flag)',
    gets: 'error listing the valid flags; exit 2',
    check: async () => {
      await expectCli(['train', '--stepz', '3'], 2, /unknown flag --stepz\. Valid flags: --data/);
    },
  },
  {
    area: 'cli',
    input: '`--steps ten`, or `--steps` with no value',
    gets: 'error naming the flag and what it expects; exit 2',
    check: async () => {
      await expectCli(['train', '--steps', 'ten'], 2, /--steps expects a number, got 'ten'/);
      await expectCli(['train', '--steps'], 2, /--steps needs a value/);
    },
  },
  {
    area: 'cli',
    input: '`--data` a file that does not exist',
    gets: 'error: text file not found: PATH (expected …); exit 1',
    check: async (dir) => {
      await expectCli(tiny(join(dir, 'r'), '--data', join(dir, 'none.txt')), 1, /text file not found/);
    },
  },
  {
    area: 'cli',
    input: '`--data` an empty file',
    gets: 'error: FILE is empty: there is no text to train on; exit 1',
    check: async (dir) => {
      writeFileSync(join(dir, 'empty.txt'), '');
      await expectCli(
        tiny(join(dir, 'r'), '--data', join(dir, 'empty.txt')),
        1,
        /empty\.txt is empty: there is no text/,
      );
    },
  },
  {
    area: 'cli',
    input: '`--data` a text too short for the block size',
    gets: 'error: … but each part needs at least N; use a longer text …',
    check: async (dir) => {
      writeFileSync(join(dir, 'short.txt'), 'abc');
      await expectCli(
        tiny(join(dir, 'r'), '--data', join(dir, 'short.txt')),
        1,
        /needs at least \d+; use a longer text/,
      );
    },
  },
  {
    area: 'cli',
    input: '`--data task:bogus`',
    gets: 'error listing the tasks; exit 1',
    check: async (dir) => {
      await expectCli(tiny(join(dir, 'r'), '--data', 'task:bogus'), 1, /unknown task 'bogus'; available: copy/);
    },
  },
  {
    area: 'cli',
    input: '`--eval-lengths 8,x`, or a length beyond where learned positions stop',
    gets: 'error naming the entry, or the positions needed and `--pos rope, alibi or nope`; exit 1',
    fixed: true,
    check: async (dir) => {
      await expectCli(tiny(join(dir, 'r'), '--eval-lengths', '8,x'), 1, /integers or multiples like 2x, got 'x'/);
      await expectCli(
        tiny(join(dir, 'r2'), '--eval-lengths', '1x,4'),
        1,
        /--eval-lengths 4 needs 8 positions, beyond the block size 6 where learned positions stop; train with --pos/,
      );
    },
  },
  {
    area: 'cli',
    input: '`--out` a directory that holds a run',
    gets: 'refused before anything is written: pass --resume, --overwrite or another --out; exit 1',
    fixed: true,
    check: async (dir) => {
      const out = join(dir, 'run');
      await expectCli(tiny(out), 0, /final validation/, 'out');
      const before = lines(join(out, 'metrics.jsonl'));
      await expectCli(
        tiny(out),
        1,
        /already holds a run \(\d+ metric lines up to step 2\); pass --resume .* --overwrite/,
      );
      if (lines(join(out, 'metrics.jsonl')) !== before) fail('metrics.jsonl changed');
    },
  },
  {
    area: 'cli',
    input: '`--overwrite` on a directory that holds a run',
    gets: 'the old run is moved to DIR.bak-<time>, intact; a new run starts',
    fixed: true,
    check: async (dir) => {
      const out = join(dir, 'run');
      await expectCli(tiny(out), 0, /final validation/, 'out');
      const before = readFileSync(join(out, 'metrics.jsonl'), 'utf8');
      await expectCli(tiny(out, '--overwrite'), 0, /moved the run that was in .* to .*run\.bak-\d{8}-\d{6}/, 'out');
      const aside = readdirSync(dir).find((f) => f.startsWith('run.bak-'));
      if (!aside || readFileSync(join(dir, aside, 'metrics.jsonl'), 'utf8') !== before)
        fail('the old run was not kept');
    },
  },
  {
    area: 'cli',
    input: 'no `--out`',
    gets: 'a new directory runs/<data>-<attention>-<time>, printed at the start',
    fixed: true,
    check: async (dir) => {
      const cwd = process.cwd();
      process.chdir(dir);
      try {
        const r = await expectCli(
          tiny('').filter((a, i, all) => a !== '--out' && all[i - 1] !== '--out'),
          0,
          /output runs\/task-copy-len=3-learned-\d{8}-\d{6}/,
          'out',
        );
        if (!existsSync(join(dir, /output (\S+)/.exec(r.out)![1], 'metrics.jsonl'))) fail('no run there');
      } finally {
        process.chdir(cwd);
      }
    },
  },
  {
    area: 'cli',
    input: '`--resume --steps 1` when the checkpoint is at step 2',
    gets: 'error: the checkpoint is at step 2, beyond --steps 1; exit 1',
    fixed: true,
    check: async (dir) => {
      const out = join(dir, 'run');
      await expectCli(tiny(out), 0, /final validation/, 'out');
      await expectCli([...tiny(out, '--resume'), '--steps', '1'], 1, /checkpoint is at step 2, beyond --steps 1/);
    },
  },
  {
    area: 'cli',
    input: '`--resume` without a checkpoint',
    gets: 'error: cannot resume: no checkpoint at DIR/ckpt; exit 1',
    check: async (dir) => {
      await expectCli(tiny(join(dir, 'r'), '--resume'), 1, /cannot resume: no checkpoint at/);
    },
  },
  {
    area: 'cli',
    input: '`--out /proc/x` (a place no directory can be made)',
    gets: 'error: cannot write the output directory, within seconds (it used to hang)',
    fixed: true,
    check: () =>
      throwsMatching(
        () => prepareOutDir('/proc/aes-x', { resume: false, overwrite: false }, 5000),
        /cannot write the output directory \/proc\/aes-x/,
      ),
  },
  {
    area: 'cli',
    input: '`--out` below a file (`/dev/null/x`)',
    gets: 'error: cannot write the output directory …; exit 1',
    check: async () => {
      await expectCli(tiny('/dev/null/x'), 1, /cannot write the output directory \/dev\/null\/x/);
    },
  },
  {
    area: 'cli',
    input: '`--attention softmax/sparsemax/aes/learned` (one per-head list)',
    gets: 'the same four heads in every layer',
    fixed: true,
    check: async (dir) => {
      const out = join(dir, 'run');
      await expectCli(
        [...tiny(out, '--attention', 'softmax/sparsemax/aes/learned'), '--layers', '2', '--heads', '4'],
        0,
        /final validation/,
        'out',
      );
      const model = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).model;
      if (
        JSON.stringify(model.attention) !== JSON.stringify(Array(2).fill(['softmax', 'sparsemax', 'aes', 'learned']))
      ) {
        fail(`attention ${JSON.stringify(model.attention)}`);
      }
    },
  },
  {
    area: 'cli',
    input: '`--attention a,b,c` with `--layers 2`',
    gets: 'error explaining both forms (one entry per layer, or one for all)',
    fixed: true,
    check: async (dir) => {
      await expectCli(
        [...tiny(join(dir, 'r'), '--attention', 'softmax,aes,learned'), '--layers', '2'],
        1,
        /lists 3 layers .* but --layers is 2; give one entry per layer, or one entry/,
      );
    },
  },
  {
    area: 'cli',
    input: '`--block-size 100000` with a task',
    gets: 'a warning: tasks set their own sequence length',
    fixed: true,
    check: async (dir) => {
      await expectCli(
        [...tiny(join(dir, 'r')), '--block-size', '100000'],
        0,
        /warning: --block-size 100000 does not apply/,
      );
    },
  },
  {
    area: 'cli',
    input: '`aes eval` of a text checkpoint with `--data task:sort`',
    gets: 'error: the data does not fit this checkpoint (vocabularies); exit 1',
    fixed: true,
    check: async (dir) => {
      writeFileSync(join(dir, 'text.txt'), 'abcdefgh '.repeat(60));
      const out = join(dir, 'run');
      await expectCli(
        [...tiny(out, '--data', join(dir, 'text.txt')), '--block-size', '8'],
        0,
        /final validation/,
        'out',
      );
      await expectCli(
        ['eval', '--ckpt', join(out, 'ckpt'), '--data', 'task:sort', '--backend', 'cpu'],
        1,
        /--data task:sort does not fit this checkpoint: its model was trained on .*text\.txt \(vocabulary 10\)/,
      );
    },
  },
  {
    area: 'cli',
    input: '`aes sample` with prompt characters the model never saw',
    gets: 'a warning naming them (they are read as <unk>)',
    fixed: true,
    check: async (dir) => {
      writeFileSync(join(dir, 'text.txt'), 'abcdefgh '.repeat(60));
      const out = join(dir, 'run');
      await expectCli(
        [...tiny(out, '--data', join(dir, 'text.txt')), '--block-size', '8'],
        0,
        /final validation/,
        'out',
      );
      await expectCli(
        ['sample', '--ckpt', join(out, 'ckpt'), '--prompt', 'abé€', '--max-new-tokens', '2', '--backend', 'cpu'],
        0,
        /warning: the prompt's characters "é" "€" are not in the model's vocabulary/,
      );
    },
  },
  {
    area: 'cli',
    input: '`aes eval --ckpt` a missing directory',
    gets: 'error: no checkpoint at DIR; exit 1',
    check: async (dir) => {
      await expectCli(['eval', '--ckpt', join(dir, 'none'), '--backend', 'cpu'], 1, /no checkpoint at/);
    },
  },
  {
    area: 'cli',
    input: '`aes sample --sampler bogus`',
    gets: 'error listing the samplers; exit 1',
    check: async (dir) => {
      await expectCli(
        ['sample', '--ckpt', join(dir, 'none'), '--sampler', 'bogus'],
        1,
        /unknown sampler 'bogus'; use one of greedy/,
      );
    },
  },
  {
    area: 'cli',
    input: 'a learning rate that makes the loss NaN',
    gets: 'error: the loss is NaN at step N; the last good checkpoint is …; exit 1',
    check: async (dir) => {
      await expectCli(
        [...tiny(join(dir, 'r'), '--lr', '1e30', '--warmup', '0', '--clip', '0'), '--steps', '30'],
        1,
        /training stopped: the loss is (NaN|Infinity) at step \d+/,
      );
    },
  },
  {
    area: 'cli',
    input: '`aes view` with no run, a missing directory, or a directory that is not a run',
    gets: 'error saying which and why (a run has metrics.jsonl, config.json or ckpt/); exit 2 or 1',
    fixed: true,
    check: async (dir) => {
      await expectCli(['view'], 2, /aes view: give one or more run directories/);
      await expectCli(['view', join(dir, 'none')], 1, /none does not exist/);
      mkdirSync(join(dir, 'empty'));
      writeFileSync(join(dir, 'empty', 'notes.txt'), 'x');
      const notRun = /empty is not a run: it has no metrics\.jsonl, config\.json or ckpt/;
      await expectCli(['view', join(dir, 'empty')], 1, notRun);
      await expectCli(['view', join(dir, 'empty'), '--port', '70000'], 2, /--port must be an integer in 0 … 65535/);
    },
  },
  {
    area: 'cli',
    input: '`aes view RUN --export DIR` where DIR holds files',
    gets: 'error: DIR exists and is not an empty directory; nothing in it is touched; exit 1',
    fixed: true,
    check: async (dir) => {
      mkdirSync(join(dir, 'run'));
      writeFileSync(join(dir, 'run', 'metrics.jsonl'), '{"step":0,"split":"train","loss":1}\n');
      mkdirSync(join(dir, 'site'));
      writeFileSync(join(dir, 'site', 'index.html'), 'mine');
      const args = ['view', join(dir, 'run'), '--export', join(dir, 'site')];
      await expectCli(args, 1, /exists and is not an empty directory/);
      if (readFileSync(join(dir, 'site', 'index.html'), 'utf8') !== 'mine') fail('the existing file was changed');
    },
  },
];
