/**
 * The `aes view` page (browser code; bundled by serve.ts). Three parts:
 *  - curves of every run from metrics.jsonl, runs overlaid: loss, exact match (per length where
 *    evaluated), per-head α, entropy, varentropy and support over training;
 *  - the attention explorer: the run's checkpoint loaded into tfjs in the page, the maps of every
 *    layer and head for the model's own normalisers beside softmax, sparsemax and AES on the same
 *    scores; exact zeros white, keys a query cannot see grey;
 *  - generation with a sampler and seed, and per token the entropy and varentropy of the model's
 *    distribution with the Entropix branch they fall in.
 * Backend: `?backend=webgl|cpu` in the address, else webgl where the browser has it, else cpu.
 * The page marks its progress on <body> (data-curves, data-maps, data-generated = "ready") for tests.
 */
import * as tf from '@tensorflow/tfjs';
import {
  Rng,
  attentionMaps,
  entropixBranch,
  freeEnergyStats,
  generate,
  loadCheckpoint,
  type GPT,
  type HeadMap,
  type LayerMaps,
  type Sampler,
  type Tokenizer,
} from '@aes/models';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { SAMPLE_DEFAULTS, SAMPLERS, makeSampler } from '../sampling.js';
import { isTaskSpec, parseTask, type Task } from '../tasks.js';

interface RunData {
  name: string;
  note: string;
  config: { train?: Record<string, unknown> } | null;
  metrics: string;
  checkpoint: { artifacts: tf.io.ModelArtifacts; weights: string } | null;
}
type Row = Record<string, unknown> & { step: number; split: string };

const data = (globalThis as { AES_VIEW_DATA?: { runs: RunData[] } }).AES_VIEW_DATA ?? { runs: [] };
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const el = (tag: string, attrs: Record<string, string> = {}, text = '') => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
};
const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

const CSS = `
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
.note{color:#a33}.charts{display:flex;flex-wrap:wrap;gap:1em}.layer{margin:.6em 0}
.heads{display:grid;gap:.5em .9em;align-items:start}.map{font-size:12px}.map canvas{display:block;border:1px solid #ccc}
.map.selected canvas{outline:2px solid #d60}table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ddd;padding:2px 5px;text-align:right}textarea{width:36em;height:3em}
#error{color:#a33;white-space:pre-wrap}.legend span{display:inline-block;width:1em;height:1em;vertical-align:middle;
border:1px solid #999;margin:0 .3em 0 1em}`;

function layout(): void {
  document.head.append(el('style', {}, CSS));
  $('app').innerHTML = `
  <h1>aes view</h1><div>backend <b id="backend">…</b> · <span id="runs-count"></span></div>
  <div id="error"></div>
  <h2>Training</h2><div id="notes"></div><div class="charts" id="charts"></div>
  <h2>Attention explorer</h2>
  <div>run <select id="run"></select> <span id="explain"></span></div>
  <div><textarea id="input"></textarea></div>
  <div><button id="example">task example</button> seed <input id="example-seed" type="number" value="0" size="4">
    <button id="attend">show attention</button>
    <span class="legend"><span style="background:#fff"></span>exactly 0
    <span style="background:#ddd"></span>not visible (causal)<span style="background:#08306b"></span>1</span></div>
  <div id="maps"></div><h3>Weights of the last query (selected head)</h3><div id="weights"></div>
  <h2>Generation</h2>
  <div><textarea id="prompt"></textarea></div>
  <div>sampler <select id="sampler"></select> temperature <input id="temperature" type="number" value="1" step="0.1">
    seed <input id="seed" type="number" value="0" size="4"> tokens <input id="max" type="number" value="16" size="4">
    <button id="go">generate</button></div>
  <pre id="gen-text"></pre><div class="charts" id="gen-chart"></div><div id="trace"></div>`;
}

function showError(e: unknown): void {
  $('error').textContent = `error: ${e instanceof Error ? e.message : String(e)}`;
}

async function chooseBackend(): Promise<void> {
  const asked = new URLSearchParams(location.search).get('backend');
  for (const name of asked ? [asked] : ['webgl', 'cpu']) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        break;
      }
    } catch {
      /* next one */
    }
  }
  $('backend').textContent = tf.getBackend() ?? 'none';
}

// ---- curves --------------------------------------------------------------------------------

function rowsOf(run: RunData): Row[] {
  return run.metrics
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Row];
      } catch {
        return [];
      } // a line cut by a live run
    });
}

/** One value per (layer, head) of a val row's `[L][H]` field, as long rows. */
function perHead(run: string, rows: Row[], field: string) {
  return rows.flatMap((r) =>
    ((r[field] as Array<Array<number | null>>) ?? []).flatMap((hs, l) =>
      hs.map((v, h) => ({ run, step: r.step, head: `L${l}H${h}`, value: v })),
    ),
  );
}

/** A line chart of `values` (vega-lite encoding `enc`) appended to the element `into`. */
async function chart(into: string, title: string, values: object[], enc: Record<string, unknown>): Promise<void> {
  if (!values.length) return;
  const spec = { title, width: 300, height: 170, data: { values }, mark: { type: 'line', point: true }, encoding: enc };
  const box = el('div');
  $(into).append(box);
  const view = new vega.View(vega.parse(compile(spec as unknown as TopLevelSpec).spec), {
    renderer: 'svg',
    container: box,
  });
  await view.runAsync();
}

async function curves(): Promise<void> {
  const q = (f: string, t = 'quantitative', extra = {}) => ({ field: f, type: t, ...extra });
  const all = data.runs.map((r) => ({ name: r.name, rows: rowsOf(r) }));
  const loss = all.flatMap(({ name, rows }) =>
    rows
      .filter((r) => r.length === undefined && typeof r.loss === 'number')
      .map((r) => ({ run: name, split: r.split, step: r.step, loss: r.loss })),
  );
  const val = all.map(({ name, rows }) => ({
    name,
    rows: rows.filter((r) => r.split === 'val' && r.length === undefined),
  }));
  const exact = val.flatMap(({ name, rows }) =>
    rows.filter((r) => typeof r.exactMatch === 'number').map((r) => ({ run: name, step: r.step, exact: r.exactMatch })),
  );
  const lengths = all.flatMap(({ name, rows }) => {
    const at = rows.filter((r) => r.split === 'val' && typeof r.length === 'number');
    const last = Math.max(...at.map((r) => r.step));
    return at.filter((r) => r.step === last).map((r) => ({ run: name, length: r.length, exact: r.exact }));
  });
  await chart('charts', 'loss', loss, {
    x: q('step'),
    y: q('loss'),
    color: q('run', 'nominal'),
    strokeDash: q('split', 'nominal'),
  });
  await chart('charts', 'val exact match', exact, { x: q('step'), y: q('exact'), color: q('run', 'nominal') });
  await chart('charts', 'exact match by length (last evaluation)', lengths, {
    x: q('length', 'quantitative', { scale: { type: 'log' } }),
    y: q('exact'),
    color: q('run', 'nominal'),
  });
  for (const [field, label] of [
    ['alpha', 'α per head'],
    ['entropy', 'entropy per head (nats)'],
    ['varentropy', 'varentropy per head (nats²)'],
    ['supportFraction', 'support per head'],
  ]) {
    const values = val.flatMap(({ name, rows }) => perHead(name, rows, field)).filter((v) => v.value !== null);
    await chart('charts', label, values, {
      x: q('step'),
      y: q('value', 'quantitative', { title: field }),
      color: q('head', 'nominal'),
      strokeDash: q('run', 'nominal'),
    });
  }
  for (const r of data.runs) if (r.note) $('notes').append(el('div', { class: 'note' }, `${r.name}: ${r.note}`));
  $('runs-count').textContent = `${data.runs.length} run${data.runs.length === 1 ? '' : 's'}`;
}

// ---- the model in the page -----------------------------------------------------------------

interface Loaded {
  run: RunData;
  model: GPT;
  tokenizer: Tokenizer;
  task: Task | null;
  names: string[];
}
let loaded: Loaded | null = null;

async function load(run: RunData): Promise<Loaded> {
  if (loaded?.run === run) return loaded;
  loaded?.model.dispose();
  const { artifacts, weights } = run.checkpoint!;
  const bytes = Uint8Array.from(atob(weights), (c) => c.charCodeAt(0));
  const io: tf.io.IOHandler = { load: async () => ({ ...artifacts, weightData: bytes.buffer }) };
  const { model, tokenizer, tensors } = await loadCheckpoint(io, run.name);
  tf.dispose(Object.values(tensors));
  const spec = String(run.config?.train?.data ?? '');
  const task = isTaskSpec(spec) ? parseTask(spec) : null;
  loaded = { run, model, tokenizer, task, names: task ? task.tokenNames() : [] };
  return loaded;
}

/** The model of the run chosen in the explorer's menu (the runs with a checkpoint). */
const selectedModel = () => load(data.runs.filter((r) => r.checkpoint)[Number($<HTMLSelectElement>('run').value)]);

/** Input text → token ids: a task's token names separated by spaces, else the run's tokenizer. */
function encode(m: Loaded, text: string): number[] {
  if (!m.task) return m.tokenizer.encode(text);
  return text
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((n) => {
      const id = m.names.indexOf(n);
      if (id < 0) throw new Error(`'${n}' is not a token of ${m.task!.name}; its tokens are ${m.names.join(' ')}`);
      return id;
    });
}
const label = (m: Loaded, id: number) => (m.task ? m.names[id] : m.tokenizer.decode([id]));

function example(m: Loaded, seed: number): string {
  if (!m.task) return 'The quick brown fox';
  return m.task
    .sample(1, new Rng(seed))
    .x[0].map((id) => m.names[id])
    .join(' ');
}

// ---- attention explorer --------------------------------------------------------------------

const KINDS = ['model', 'softmax', 'sparsemax', 'aes'] as const;
let selected = { layer: 0, head: 0 };
let maps: LayerMaps[] = [];
let shown: string[] = [];

function colour(p: number, visible: boolean): string {
  if (!visible) return '#dddddd';
  if (p === 0) return '#ffffff';
  const t = Math.sqrt(p); // small weights stay visible
  const mix = (a: number, b: number) => Math.round(a + (b - a) * t);
  return `rgb(${mix(198, 8)},${mix(219, 48)},${mix(239, 107)})`;
}

function heatmap(m: HeadMap): HTMLCanvasElement {
  const T = m.probs.length;
  const cell = Math.max(3, Math.min(24, Math.floor(220 / T)));
  const c = el('canvas', { width: String(T * cell), height: String(T * cell) }) as HTMLCanvasElement;
  const g = c.getContext('2d')!;
  m.probs.forEach((row, i) =>
    row.forEach((p, j) => {
      g.fillStyle = colour(p, j <= i);
      g.fillRect(j * cell, i * cell, cell, cell);
    }),
  );
  return c;
}

function drawMaps(): void {
  const box = $('maps');
  box.innerHTML = '';
  maps.forEach((layer, l) => {
    const row = el('div', { class: 'layer' });
    row.append(el('b', {}, `layer ${l}`));
    const grid = el('div', { class: 'heads' });
    grid.style.gridTemplateColumns = `repeat(${KINDS.length}, max-content)`;
    layer.model.forEach((_, h) =>
      KINDS.forEach((kind) => {
        const m = kind === 'model' ? layer.model[h] : layer.compare[kind][h];
        const sel = selected.layer === l && selected.head === h;
        const cellBox = el('div', { class: `map${sel ? ' selected' : ''}` });
        const name = kind === 'model' ? `head ${h}: the model's` : kind;
        cellBox.append(
          el(
            'span',
            {
              'data-testid': 'head',
              'data-layer': String(l),
              'data-head': String(h),
              'data-kind': kind,
              'data-alpha': String(m.alpha),
              'data-support': String(m.support),
            },
            `${name} · α ${fmt(m.alpha, 3)} · support ${(100 * m.support).toFixed(1)}%`,
          ),
        );
        const canvas = heatmap(m);
        canvas.title = `layer ${l}, head ${h}, ${kind}`;
        canvas.onclick = () => {
          selected = { layer: l, head: h };
          drawMaps();
        };
        cellBox.append(canvas);
        grid.append(cellBox);
      }),
    );
    row.append(grid);
    box.append(row);
  });
  drawWeights();
}

function drawWeights(): void {
  const layer = maps[selected.layer];
  if (!layer) return;
  const T = shown.length;
  const table = el('table', { id: 'weights-table' });
  const head = el('tr');
  head.append(el('th', {}, `L${selected.layer} H${selected.head}`), ...shown.map((t) => el('th', {}, t)));
  table.append(head);
  for (const kind of KINDS) {
    const m = kind === 'model' ? layer.model[selected.head] : layer.compare[kind][selected.head];
    const tr = el('tr');
    tr.append(el('th', {}, kind));
    m.probs[T - 1].forEach((p, j) => tr.append(el('td', { 'data-kind': kind, 'data-key': String(j) }, fmt(p, 6))));
    table.append(tr);
  }
  $('weights').replaceChildren(table);
}

async function attend(): Promise<void> {
  document.body.dataset.maps = 'busy';
  const m = await selectedModel();
  const ids = encode(m, $<HTMLTextAreaElement>('input').value);
  if (!ids.length) throw new Error('type an input (or draw a task example) first');
  maps = (await attentionMaps(m.model, ids)).layers;
  shown = ids.map((id) => label(m, id));
  selected = {
    layer: Math.min(selected.layer, maps.length - 1),
    head: Math.min(selected.head, maps[0].model.length - 1),
  };
  drawMaps();
  document.body.dataset.maps = 'ready';
}

// ---- generation ----------------------------------------------------------------------------

async function runGeneration(): Promise<void> {
  document.body.dataset.generated = 'busy';
  const m = await selectedModel();
  const prompt = encode(m, $<HTMLTextAreaElement>('prompt').value);
  if (!prompt.length) throw new Error('the prompt must hold at least one token');
  const name = $<HTMLSelectElement>('sampler').value;
  const inner = makeSampler({
    ...SAMPLE_DEFAULTS,
    sampler: name,
    temperature: Number($<HTMLInputElement>('temperature').value),
  });
  const trace: Array<Record<string, unknown>> = [];
  const sampler: Sampler = (logits, ctx) => {
    const s = freeEnergyStats(logits as Float32Array, 1); // entropy, varentropy (nats), float64
    const branch = entropixBranch(s.entropy / Math.LN2, s.varentropy / Math.LN2 ** 2);
    const r = inner(logits, ctx);
    trace.push({
      step: trace.length,
      token: label(m, r.token),
      ...s,
      branch,
      ...(r.record.branch ? { used: r.record.branch } : {}),
    });
    return r;
  };
  const res = await generate(m.model, prompt, {
    maxNewTokens: Number($<HTMLInputElement>('max').value),
    sampler,
    seed: Number($<HTMLInputElement>('seed').value),
    attentionStats: name === 'entropix',
  });
  const sep = m.task ? ' ' : '';
  $('gen-text').textContent =
    `${prompt.map((id) => label(m, id)).join(sep)}${sep}[${res.tokens.map((id) => label(m, id)).join(sep)}]`;
  $('gen-text').dataset.tokens = JSON.stringify(res.tokens);
  const table = el('table', { id: 'trace-table' });
  const cols = ['step', 'token', 'entropy', 'varentropy', 'branch', 'used'];
  const head = el('tr');
  head.append(
    ...cols.map((c) => el('th', {}, c === 'branch' ? 'Entropix branch' : c === 'used' ? 'sampler branch' : c)),
  );
  table.append(head);
  for (const t of trace) {
    const tr = el('tr');
    tr.append(
      ...cols.map((c) =>
        el(
          'td',
          { 'data-col': c },
          typeof t[c] === 'number' && c !== 'step' ? fmt(t[c] as number) : String(t[c] ?? ''),
        ),
      ),
    );
    table.append(tr);
  }
  $('trace').replaceChildren(table);
  $('gen-chart').replaceChildren();
  const values = trace.flatMap((t) => ['entropy', 'varentropy'].map((k) => ({ step: t.step, stat: k, value: t[k] })));
  await chart('gen-chart', 'per token', values, {
    x: { field: 'step', type: 'quantitative' },
    y: { field: 'value', type: 'quantitative' },
    color: { field: 'stat', type: 'nominal' },
  });
  document.body.dataset.generated = 'ready';
}

// ---- start ---------------------------------------------------------------------------------

const guard = (f: () => Promise<void>) => () => {
  $('error').textContent = '';
  f().catch(showError);
};

async function main(): Promise<void> {
  layout();
  await chooseBackend();
  await curves();
  document.body.dataset.curves = 'ready';
  const withCkpt = data.runs.filter((r) => r.checkpoint);
  const select = $<HTMLSelectElement>('run');
  withCkpt.forEach((r, i) => select.append(el('option', { value: String(i) }, r.name)));
  SAMPLERS.forEach((s) => $('sampler').append(el('option', { value: s }, s)));
  if (!withCkpt.length) {
    $('explain').textContent = 'no run here has a checkpoint: curves only';
    return;
  }
  const fill = async () => {
    const m = await load(withCkpt[Number(select.value)]);
    $('explain').textContent = m.task ? `task ${m.task.name}: tokens are names separated by spaces` : 'text';
    $<HTMLButtonElement>('example').disabled = !m.task;
    const text = example(m, Number($<HTMLInputElement>('example-seed').value));
    $<HTMLTextAreaElement>('input').value = text;
    $<HTMLTextAreaElement>('prompt').value = m.task ? text.split(' ').slice(0, 4).join(' ') : 'The ';
  };
  select.onchange = guard(async () => {
    await fill();
    await attend();
  });
  $('example').onclick = guard(async () => {
    await fill();
    await attend();
  });
  $('attend').onclick = guard(attend);
  $('go').onclick = guard(runGeneration);
  await fill();
  await attend();
}

main().catch(showError);
