/**
 * Synthetic tasks: every example checked by an independent decoder of its sequence, shapes, mask
 * positions, vocabulary bounds, determinism by seed, spec parsing and its errors, and taskAccuracy on
 * hand-made predictions.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '@aes/models';
import { TASKS, isTaskSpec, makeTask, parseTask, taskAccuracy, type Task, type TaskBatch } from '../src/tasks.js';

/** The full sequence of example b: x followed by y's last token. */
const seqOf = (batch: TaskBatch, b: number) => [...batch.x[b], batch.y[b].at(-1)!];

/** Checks one example from its tokens alone; returns the expected answer (the tail of the sequence). */
function expectedAnswer(task: Task, seq: number[]): number[] {
  const { len, vocab, pairs } = task.params;
  const names = task.tokenNames();
  const id = (name: string) => names.indexOf(name);
  switch (task.name) {
    case 'copy': case 'reverse': case 'sort': {
      expect(seq[len]).toBe(id('<sep>'));
      const x = seq.slice(0, len);
      expect(x.every((t) => t < vocab)).toBe(true);
      if (task.name === 'copy') return x;
      if (task.name === 'reverse') return x.map((_, i) => x[len - 1 - i]);
      return [...x].sort((a, b) => a - b);
    }
    case 'recall': {
      const keys = seq.filter((_, i) => i < 2 * pairs && i % 2 === 0);
      const values = seq.filter((_, i) => i < 2 * pairs && i % 2 === 1);
      expect(new Set(keys).size).toBe(pairs);
      expect(keys.every((k) => names[k].startsWith('k'))).toBe(true);
      expect(values.every((v) => names[v].startsWith('v'))).toBe(true);
      expect(seq[2 * pairs]).toBe(id('<query>'));
      return [values[keys.indexOf(seq[2 * pairs + 1])]];
    }
    case 'needle': {
      const hay = seq.slice(0, len);
      expect(hay.filter((t) => t === id('<key>')).length).toBe(1);
      if (!task.params.noise) expect(hay.filter((t) => t < vocab).length).toBe(1);
      expect(seq[len]).toBe(id('<query>'));
      return [hay[hay.indexOf(id('<key>')) + 1]];
    }
  }
  throw new Error(`no check for ${task.name}`);
}

const specs = [
  'task:copy',
  'task:reverse',
  'task:sort',
  'task:recall',
  'task:needle',
  'task:needle:len=9,noise=1,vocab=4',
  'task:sort:len=3,vocab=2',
  'task:recall:pairs=8,vocab=17',
];

describe('tasks', () => {
  for (const spec of specs) {
    it(`${spec}: examples are right, shapes, mask, vocabulary`, () => {
      const task = parseTask(spec);
      const batch = task.sample(64, new Rng(11));
      expect(task.tokenNames().length).toBe(task.vocabSize);
      const answerLen = ['recall', 'needle'].includes(task.name) ? 1 : task.params.len;
      for (const rows of [batch.x, batch.y, batch.mask]) {
        expect(rows.length).toBe(64);
        for (const r of rows) expect(r.length).toBe(task.seqLen - 1);
      }
      for (let b = 0; b < 64; b++) {
        expect(batch.y[b].slice(0, -1)).toEqual(batch.x[b].slice(1));   // y is x shifted by one
        const seq = seqOf(batch, b);
        expect(seq.every((t) => Number.isInteger(t) && t >= 0 && t < task.vocabSize)).toBe(true);
        expect(batch.mask[b]).toEqual(
          Array.from({ length: task.seqLen - 1 }, (_, t) => (t >= task.seqLen - 1 - answerLen ? 1 : 0)),
        );
        expect(batch.y[b].filter((_, t) => batch.mask[b][t])).toEqual(expectedAnswer(task, seq));
      }
    });
  }

  it('layouts: sequence length and vocabulary from the parameters', () => {
    const cases: Array<[string, number, number]> = [
      ['task:copy', 17, 11],
      ['task:reverse:len=5,vocab=3', 11, 4],
      ['task:recall', 15, 17],
      ['task:needle', 34, 19],
      ['task:needle:len=100', 102, 19],
    ];
    for (const [spec, seqLen, vocabSize] of cases) expect(parseTask(spec)).toMatchObject({ seqLen, vocabSize });
    expect(parseTask('task:recall').tokenNames()).toEqual(
      [...'01234567']
        .map((i) => `k${i}`)
        .concat(
          [...'01234567'].map((i) => `v${i}`),
          '<query>',
        ),
    );
    expect(parseTask('task:copy:vocab=3').tokenNames()).toEqual(['0', '1', '2', '<sep>']);
  });

  it('needle positions cover the whole haystack; recall queries every pair', () => {
    const needle = parseTask('task:needle:len=6');
    const recall = parseTask('task:recall:pairs=3');
    const at = new Set<number>(), asked = new Set<number>();
    const rng = new Rng(5);
    const nb = needle.sample(200, rng), rb = recall.sample(200, rng);
    for (let b = 0; b < 200; b++) {
      at.add(seqOf(nb, b).indexOf(needle.tokenNames().indexOf('<key>')));
      asked.add(seqOf(rb, b).slice(0, 6).indexOf(rb.x[b][7]) / 2);
    }
    expect([...at].sort()).toEqual([0, 1, 2, 3, 4]);
    expect([...asked].sort()).toEqual([0, 1, 2]);
  });

  it('recall pairs=4: answering with a random in-context value scores 1/4 + 3/4 · 1/8 ≈ 34.4%, not 12.5%', () => {
    // values are drawn with replacement from 8 symbols, so another pair's value is the answer 1/8 of the time
    const recall = parseTask('task:recall:pairs=4');
    const rng = new Rng(11), pick = new Rng(12);
    const n = 20000, batch = recall.sample(n, rng);
    const guesses = batch.x.map((x) => x.map((t, i) => (i % 2 === 1 && i < 8 ? t : -1)).filter((t) => t >= 0));
    const pred = batch.y.map((y, b) => y.map((t, i) => (i === y.length - 1 ? guesses[b][pick.int(4)] : t)));
    const { exactMatch } = taskAccuracy(pred, batch);
    expect(exactMatch).toBeGreaterThan(0.344 - 0.01);
    expect(exactMatch).toBeLessThan(0.344 + 0.01);
  });

  it('is deterministic by seed and differs across seeds', () => {
    for (const name of Object.keys(TASKS)) {
      const task = parseTask(`task:${name}`);
      expect(task.sample(8, new Rng(3))).toEqual(task.sample(8, new Rng(3)));
      expect(task.sample(8, new Rng(3)).x).not.toEqual(task.sample(8, new Rng(4)).x);
    }
  });

  it('parses specs and fills defaults', () => {
    expect(isTaskSpec('task:copy')).toBe(true);
    expect(isTaskSpec('data/input.txt')).toBe(false);
    expect(parseTask('task:needle:len=64').params).toEqual({ len: 64, vocab: 16, noise: 0 });
    expect(parseTask('task:recall: pairs = 3 ,vocab=8').params).toEqual({ pairs: 3, vocab: 8 });
    expect(makeTask('sort', { len: 4 }).params).toEqual({ len: 4, vocab: 10, vary: 0 });
    for (const [name, inf] of Object.entries(TASKS)) {
      expect(parseTask(`task:${name}`).params).toEqual(inf.defaults);
      expect(inf.description.length).toBeGreaterThan(10);
    }
  });

  it('rejects bad specs with clear errors', () => {
    expect(() => parseTask('copy')).toThrow(/not a task spec/);
    expect(() => parseTask('task:shuffle')).toThrow(
      "unknown task 'shuffle'; available: copy, reverse, sort, recall, needle",
    );
    expect(() => parseTask('task:toString')).toThrow(/unknown task/);
    expect(() => parseTask('task:copy:width=3')).toThrow(
      "task copy: unknown parameter 'width'; valid: len, vocab, vary",
    );
    expect(() => parseTask('task:copy:len=2.5')).toThrow("task copy: len must be an integer, got '2.5'");
    expect(() => parseTask('task:copy:len=abc')).toThrow(/must be an integer/);
    expect(() => parseTask('task:copy:len=0')).toThrow('task copy: len=0 is out of range [1, 4096]');
    expect(() => parseTask('task:needle:noise=2')).toThrow(/noise=2 is out of range \[0, 1\]/);
    expect(() => parseTask('task:copy:len')).toThrow(/malformed parameter 'len'/);
    expect(() => parseTask('task:copy:len=3,len=4')).toThrow(/given twice/);
    expect(() => parseTask('task:copy:len=3:vocab=4')).toThrow(/one ':'/);
    expect(() => parseTask('task:recall:pairs=9')).toThrow(/pairs=9 exceeds the 8 distinct keys of vocab=16/);
    expect(() => makeTask('copy', { len: 1.5 })).toThrow(/must be an integer/);
    expect(() => parseTask('task:copy').sample(0, new Rng(0))).toThrow(/batch/);
  });
});

describe('taskAccuracy', () => {
  const batch = parseTask('task:copy:len=3').sample(4, new Rng(2));   // 3 answer tokens per row

  it('is 1 for the targets themselves, whatever is predicted outside the mask', () => {
    expect(taskAccuracy(batch.y, batch)).toEqual({ exactMatch: 1, tokenAccuracy: 1 });
    const offMask = batch.y.map((r, b) => r.map((v, t) => (batch.mask[b][t] ? v : v + 1)));
    expect(taskAccuracy(offMask, batch)).toEqual({ exactMatch: 1, tokenAccuracy: 1 });
  });

  it('one wrong answer token drops exact match by a row and token accuracy by a token', () => {
    const pred = batch.y.map((r) => [...r]);
    pred[1][4] = (pred[1][4] + 1) % 10;   // t = 4 is an answer position (answers at t = 3, 4, 5)
    expect(batch.mask[1][4]).toBe(1);
    expect(taskAccuracy(pred, batch)).toEqual({ exactMatch: 3 / 4, tokenAccuracy: 11 / 12 });
    pred[1][5] = (pred[1][5] + 1) % 10;
    expect(taskAccuracy(pred, batch)).toEqual({ exactMatch: 3 / 4, tokenAccuracy: 10 / 12 });
  });

  it('errors on shape mismatches', () => {
    expect(() => taskAccuracy(batch.y.slice(1), batch)).toThrow(/3 prediction rows for a batch of 4/);
    expect(() => taskAccuracy(batch.y.map((r) => r.slice(1)), batch)).toThrow(/row 0 has 5 predictions for 6 targets/);
  });
});

describe('the length-generalisation suite', () => {
  const rng = () => new Rng(7);
  it('mqmtar: 2-token keys and values, ⌊len/6⌋ pairs, 4 queries whose answers are their values', () => {
    const task = parseTask('task:mqmtar');
    const { x, y, mask } = task.sample(16, rng());
    const [COLON, COMMA, Q] = [256, 257, 258];
    for (let b = 0; b < 16; b++) {
      const seq = [...x[b], y[b].at(-1)!];
      expect(seq.length).toBe(8 * 6 + 4 * 5);
      const table = new Map<string, string>();
      for (let p = 0; p < 8; p++) {
        const at = p * 6;
        expect([seq[at + 2], seq[at + 5]]).toEqual([COLON, COMMA]);
        table.set(`${seq[at]},${seq[at + 1]}`, `${seq[at + 3]},${seq[at + 4]}`);
      }
      expect(table.size).toBe(8);                                          // keys are distinct
      const answered: number[] = [];
      for (let q = 0; q < 4; q++) {
        const at = 48 + q * 5;
        expect(seq[at]).toBe(Q);
        expect(`${seq[at + 3]},${seq[at + 4]}`).toBe(table.get(`${seq[at + 1]},${seq[at + 2]}`));
        answered.push(at + 2, at + 3);                                     // y positions that predict the value
      }
      expect(mask[b].flatMap((m, t) => (m ? [t] : []))).toEqual(answered);
    }
  });

  it('flipflop: (w|i, bit) pairs from a write, then r; the answer is the last written bit', () => {
    const { x, y, mask } = parseTask('task:flipflop:len=20,write=50').sample(32, rng());
    for (let b = 0; b < 32; b++) {
      const seq = [...x[b], y[b].at(-1)!];
      expect(seq.length).toBe(20);
      expect(seq[0]).toBe(0);                                               // starts with a write
      expect(seq[18]).toBe(2);                                              // read
      let last = -1;
      for (let i = 0; i < 18; i += 2) if (seq[i] === 0) last = seq[i + 1];
      expect(seq[19]).toBe(last);
      expect(mask[b].reduce((a, c) => a + c)).toBe(1);
    }
  });

  it('nback and localcount: a label at every position, by their rules', () => {
    const nb = parseTask('task:nback:len=30').sample(8, rng());
    for (let b = 0; b < 8; b++) {
      nb.x[b].forEach((_, t) => expect([nb.y[b][t], nb.mask[b][t]]).toEqual(t >= 2 ? [nb.x[b][t - 2], 1] : [0, 0]));
    }
    const lc = parseTask('task:localcount:len=40,reps=4').sample(8, rng());
    for (let b = 0; b < 8; b++) {
      let run = 0;
      lc.x[b].forEach((s, t) => {
        run = t > 0 && lc.x[b][t - 1] === s ? run + 1 : 0;
        expect(lc.y[b][t]).toBe(16 + run);
        expect(run).toBeLessThan(4);
      });
      expect(lc.mask[b].every((m) => m === 1)).toBe(true);
    }
  });

  it('vary draws each batch from len ± vary; sampleAt makes any length; seqLen is the longest training length', () => {
    const task = parseTask('task:copy:len=48,vary=16');
    expect(task.seqLen).toBe(2 * 64 + 1);
    const r = rng();
    const lengths = new Set(Array.from({ length: 60 }, () => task.sample(2, r).x[0].length));
    expect(Math.min(...lengths)).toBeGreaterThanOrEqual(2 * 32);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(2 * 64);
    expect(lengths.size).toBeGreaterThan(10);
    expect(task.sampleAt(2, 512, r).x[0].length).toBe(2 * 512);
    expect(parseTask('task:flipflop:len=48,vary=16').sampleAt(1, 256, r).x[0].length).toBe(255);
    expect(() => parseTask('task:copy:len=8,vary=8')).toThrow(/len − vary = 0 is below the smallest len, 1/);
    expect(() => task.sampleAt(1, 0, r)).toThrow(/length 0 is out of range/);
  });
});
