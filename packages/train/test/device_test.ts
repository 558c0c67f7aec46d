/**
 * Training, evaluation and generation on device backends, which have no synchronous read: the
 * no-sync clone of cpu (always; @aes/node's stand-in, on which any `dataSync` throws) and webgpu
 * where an adapter exists (the software GPU of scripts/software-gpu.sh; required under CI). Each
 * run is repeated on cpu and must agree: the losses and gradient norms of the first steps, the
 * validation metrics with per-head α, and the tokens every sampler draws with a seed (KV cache on).
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerNoSyncBackend, selectBackend, webgpuForTests } from '@aes/node';
import { generate, loadCheckpoint, Rng } from '@aes/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSystemIO } from '@aes/node';
import { TRAIN_DEFAULTS, train, type TrainConfig } from '../src/index.js';
import { makeSampler, SAMPLE_DEFAULTS, SAMPLERS } from '../src/sampling.js';

/** AES whose α follows S linearly over [0, 1] from the first step, so that it leaves softmax at once. */
const AES_FAST = JSON.stringify({
  aes: { varentropyThreshold: 0, S0: 0, Smax: 1, width: '1', shape: 'linear', momentum: 1 },
});
const label = (a: string) => (a === AES_FAST ? 'aes (linear over [0, 1])' : a);
/** Every normaliser: fixed α, learned α, AES per head (made to leave softmax at once) and per row, the baselines. */
const NORMALISERS = ['softmax', 'sparsemax', 'entmax15', 'alpha=1.3', 'learned', AES_FAST, 'aes-row', 'ssmax',
  'asentmax', 'adaptive-temp'];

const root = mkdtempSync(join(tmpdir(), 'aes-device-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function config(attention: string, out: string): TrainConfig {
  return {
    ...TRAIN_DEFAULTS, data: 'task:sort:len=5', attention, out, steps: 3, batch: 4, layers: 1, heads: 2, embd: 16,
    evalEvery: 3, evalBatches: 1, logEvery: 1, ckptEvery: 3, warmup: 1, lr: 1e-2, pos: 'rope', evalLengths: '10',
  };
}

type Line = Record<string, unknown> & { split: string; step: number };
const lines = (dir: string): Line[] =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);

/** Numbers equal to a relative 1e-4 (float32 kernels differ in summation order), NaN/null alike. */
function expectSame(got: unknown, ref: unknown, where: string): void {
  if (typeof ref === 'number') {
    const ok = Object.is(got, ref) || (typeof got === 'number' && Math.abs(got - ref) <= 1e-4 * (1 + Math.abs(ref)));
    if (!ok) throw new Error(`${where}: ${String(got)} vs cpu ${ref}`);
  } else if (Array.isArray(ref)) {
    expect(Array.isArray(got) && got.length === ref.length, `${where}: length`).toBe(true);
    ref.forEach((r, i) => expectSame((got as unknown[])[i], r, `${where}[${i}]`));
  } else if (ref && typeof ref === 'object') {
    for (const [k, r] of Object.entries(ref)) {
      if (k === 'tokensPerSecond' || k === 'peakMB') continue;                 // timings and memory may differ
      expectSame((got as Record<string, unknown>)[k], r, `${where}.${k}`);
    }
  } else expect(got, where).toEqual(ref);
}

async function generated(ckpt: string): Promise<number[][]> {
  const { model } = await loadCheckpoint(fileSystemIO(ckpt), ckpt);
  const out: number[][] = [];
  for (const name of SAMPLERS) {
    const sampler = makeSampler({ ...SAMPLE_DEFAULTS, sampler: name });
    const g = await generate(model, [1, 2, 3], { maxNewTokens: 5, sampler, rng: new Rng(7),
      attentionStats: name === 'entropix' });
    out.push(g.tokens);
  }
  model.dispose();
  return out;
}

const DEVICES = ['nosync', ...((await webgpuForTests(process.env)) ? ['webgpu'] : [])];

for (const device of DEVICES) {
  describe(`aes train, eval and sample on ${device} agree with cpu`, () => {
    let remove = () => {};
    const use = async (b: string) => {
      if (b === 'nosync') await tf.setBackend('nosync');
      else await selectBackend(b as 'cpu' | 'webgpu');
    };
    beforeAll(async () => {
      await selectBackend('cpu');
      if (device === 'nosync') remove = registerNoSyncBackend('nosync');
    });
    afterAll(async () => { await selectBackend('cpu'); remove(); });

    for (const attention of NORMALISERS) {
      it(`training ${label(attention)}: losses, gradient norms, validation and per-length metrics, α`, async () => {
        const dirs = { cpu: join(root, `${label(attention)}-cpu`), dev: join(root, `${label(attention)}-${device}`) };
        if (!existsSync(dirs.cpu)) {                                        // (the first device's run made it)
          await use('cpu');
          await train(config(attention, dirs.cpu));
        }
        await use(device);
        await train(config(attention, dirs.dev));
        await selectBackend('cpu');
        const [ref, got] = [lines(dirs.cpu), lines(dirs.dev)];
        expect(got.map((l) => [l.split, l.step, l.length])).toEqual(ref.map((l) => [l.split, l.step, l.length]));
        ref.forEach((r, i) => expectSame(got[i], r, `line ${i}`));
        expect(ref.filter((l) => l.split === 'train')).toHaveLength(3);
        if (attention === AES_FAST) {
          const last = ref.filter((l) => l.split === 'val').at(-1) as unknown as { alpha: number[][] };
          expect(last.alpha[0].some((a) => a > 1)).toBe(true);          // AES left softmax
        }
      });
    }

    it('every sampler draws the same tokens as on cpu (seeded, KV cache)', async () => {
      const ckpt = join(root, 'entmax15-cpu', 'ckpt');                 // written by the entmax15 training test
      await use('cpu');
      const ref = await generated(ckpt);
      await use(device);
      const got = await generated(ckpt);
      await selectBackend('cpu');
      expect(got).toEqual(ref);
      expect(ref.flat().length).toBe(5 * SAMPLERS.length);
    });
  });
}
