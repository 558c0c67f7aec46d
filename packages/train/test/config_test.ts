/**
 * Every `--attention` form the README shows resolves to the per-layer, per-head specs it describes,
 * and the GPT accepts them; `--help` describes every flag.
 */
import { layerHeads, resolveConfig } from '@aes/models';
import { describe, expect, it } from 'vitest';
import { parseAttention, runCli, TRAIN_DEFAULTS, TRAIN_FLAG_HELP } from '../src/index.js';

describe('--attention forms', () => {
  const heads = (list: string, nLayer: number, nHead: number) => {
    const attention = parseAttention(list, nLayer);
    return layerHeads(resolveConfig({ vocabSize: 10, nLayer, nHead, nEmbd: 4 * nHead, attention }));
  };
  it.each([
    ['learned', 2, 4, [Array(4).fill('learned'), Array(4).fill('learned')]],
    ['softmax,aes', 2, 2, [['softmax', 'softmax'], ['aes', 'aes']]],
    ['softmax,learned', 2, 2, [['softmax', 'softmax'], ['learned', 'learned']]],
    ['softmax/sparsemax/aes/aes,learned', 2, 4, [['softmax', 'sparsemax', 'aes', 'aes'], Array(4).fill('learned')]],
    ['softmax/sparsemax/aes/learned', 3, 4, Array(3).fill(['softmax', 'sparsemax', 'aes', 'learned'])],
    ['softmax,learned/aes', 2, 2, [['softmax', 'softmax'], ['learned', 'aes']]],
    ['alpha=1.3', 1, 2, [['alpha=1.3', 'alpha=1.3']]],
  ] as const)('%s with %i layers × %i heads', (list, nLayer, nHead, expected) => {
    expect(heads(list, nLayer, nHead)).toEqual(expected);
  });
});

describe('aes train --help', () => {
  it('describes every flag, with its default', async () => {
    let out = '';
    expect(await runCli(['train', '--help'], { out: (s) => void (out += s), err: () => {}, tty: false })).toBe(0);
    for (const k of [...Object.keys(TRAIN_DEFAULTS), 'stopAt', 'backend']) {
      const flag = `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      expect(out).toMatch(new RegExp(`^  ${flag} +\\S.* \\(default `, 'm'));
    }
    expect(Object.keys(TRAIN_FLAG_HELP).sort()).toEqual([...Object.keys(TRAIN_DEFAULTS), 'stopAt'].sort());
    expect(out).not.toMatch(/undefined/);
  });
});
