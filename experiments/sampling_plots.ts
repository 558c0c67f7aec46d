/**
 * The Vega-Lite charts of experiment 3 (sampling.ts): the quality/diversity scatter with labels
 * placed so that they do not overlap, the entropy trajectories and the Entropix branch counts.
 * Each chart gets copies of its rows: vega tags the objects it renders (Symbol(vega_id)).
 */
import type { Json, Spec } from './common.js';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const [W, H] = [560, 360];                                           // plot area of the scatter, px
const [CHAR_PX, LINE_PX, GAP] = [7, 17, 9];                           // label size estimate at fontSize 12

type Box = [number, number, number, number];                          // x0, y0, x1, y1 in px
const overlaps = (a: Box, b: Box) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];

/** A padded [lo, hi] around values, with extra room on the right for labels when `right` > 0. */
function domain(xs: number[], left: number, right: number): [number, number] {
  const [lo, hi] = [Math.min(...xs), Math.max(...xs)];
  const r = hi - lo || Math.abs(hi) || 1;
  return [lo - left * r, hi + right * r];
}

/**
 * Label anchors (data units, left-aligned, middle baseline) for points (x, y): for each point the
 * first of twelve positions around it whose box stays inside the plot and hits no placed label and
 * no point. The axes use the returned domains with `nice: false`, so pixel and data positions
 * correspond exactly.
 */
export function placeLabels(pts: Array<{ x: number; y: number; label: string }>) {
  const xd = domain(pts.map((p) => p.x), 0.1, 0.2), yd = domain(pts.map((p) => p.y), 0.1, 0.1);
  const px = (x: number) => ((x - xd[0]) / (xd[1] - xd[0])) * W,
    py = (y: number) => (1 - (y - yd[0]) / (yd[1] - yd[0])) * H;
  const taken: Box[] = pts.map((p) => [px(p.x) - 6, py(p.y) - 6, px(p.x) + 6, py(p.y) + 6]);
  const labels = pts.map((p) => {
    const [x, y, w] = [px(p.x), py(p.y), p.label.length * CHAR_PX];
    const candidates: Array<[number, number]> = [
      [GAP, -GAP],
      [GAP, GAP],
      [-GAP - w, -GAP],
      [-GAP - w, GAP],
      [-w / 2, -2 * GAP],
      [-w / 2, 2 * GAP],
      [-GAP, -2 * GAP],
      [-GAP, 2 * GAP],
      [GAP - w, -2 * GAP],
      [GAP - w, 2 * GAP],
      [GAP, -3 * GAP],
      [GAP, 3 * GAP],
    ];
    const box = ([dx, dy]: [number, number]): Box => [x + dx, y + dy - LINE_PX / 2, x + dx + w, y + dy + LINE_PX / 2];
    // the first free position; if none is free, the one with the fewest collisions
    const cost = (b: Box) =>
      (b[0] >= 0 && b[1] >= 0 && b[2] <= W && b[3] <= H ? 0 : 100) + taken.filter((t) => overlaps(b, t)).length;
    const at = candidates.reduce((best, c) => (cost(box(c)) < cost(box(best)) ? c : best));
    taken.push(box(at));
    return { lx: xd[0] + ((x + at[0]) / W) * (xd[1] - xd[0]), ly: yd[0] + (1 - (y + at[1]) / H) * (yd[1] - yd[0]) };
  });
  return { labels, xDomain: xd, yDomain: yd };
}

/** distinct-2 against mean log-likelihood, one labelled point per sampler. */
export function diversityChart(rows: Json[], subtitle: string): Spec {
  const { labels, xDomain, yDomain } = placeLabels(
    rows.map((r) => ({ x: r.meanLogLik as number, y: r.distinct2 as number, label: String(r.sampler) })),
  );
  const values = rows.map((r, i) => ({ ...r, ...labels[i] }));
  const color = {
    field: 'sampler',
    type: 'nominal',
    scale: { scheme: 'category10', domain: rows.map((r) => r.sampler) },
    legend: null,
  };
  const x = {
    type: 'quantitative',
    scale: { domain: xDomain, nice: false },
    title: "mean ln p of the generated tokens under the model (nats; higher = closer to the model's mode)",
  };
  const y = {
    type: 'quantitative',
    scale: { domain: yDomain, nice: false },
    title: 'distinct-2 (unique / total character bigrams)',
  };
  return {
    $schema: SCHEMA,
    width: W,
    height: H,
    data: { values },
    title: { text: 'Quality against diversity: one point per sampler', subtitle },
    layer: [
      {
        mark: { type: 'point', filled: true, size: 90, opacity: 1 },
        encoding: { x: { field: 'meanLogLik', ...x }, y: { field: 'distinct2', ...y }, color },
      },
      {
        mark: { type: 'text', align: 'left', baseline: 'middle', fontSize: 12 },
        encoding: { x: { field: 'lx', ...x }, y: { field: 'ly', ...y }, color, text: { field: 'sampler' } },
      },
    ],
  } as Spec;
}

/** Mean entropy per generated position, one line per sampler, smoothed by a centred moving average of 2·smooth + 1. */
export function trajectoryChart(trajectory: Json[], order: string[], subtitle: string, smooth: number): Spec {
  // baselines solid, the four Hugging Face filters dashed, the adaptive samplers solid again (colours differ)
  const dash = order.map((s) => (['topk', 'topp', 'minp', 'typical'].includes(s) ? [6, 3] : [1, 0]));
  const legend = { orient: 'right', title: null, labelFontSize: 12, symbolStrokeWidth: 2.5 };
  return {
    $schema: SCHEMA,
    width: 620,
    height: H,
    data: { values: trajectory.map((r) => ({ ...r })) },
    title: {
      text: "The model's next-token entropy along the generated text",
      subtitle: `${subtitle}${smooth ? `; moving average over ${2 * smooth + 1} positions` : ''}`,
    },
    transform: [
      {
        window: [{ op: 'mean', field: 'entropy', as: 'smoothed' }],
        frame: [-smooth, smooth],
        groupby: ['sampler'],
        sort: [{ field: 'position' }],
      },
    ],
    mark: { type: 'line', strokeWidth: 2 },
    encoding: {
      x: { field: 'position', type: 'quantitative', title: 'generated position (characters after the prompt)' },
      y: {
        field: 'smoothed',
        type: 'quantitative',
        scale: { zero: false },
        title: 'entropy of softmax(logits) at T = 1 (nats)',
      },
      color: { field: 'sampler', type: 'nominal', scale: { scheme: 'category10', domain: order }, legend },
      strokeDash: { field: 'sampler', type: 'nominal', scale: { domain: order, range: dash }, legend },
    },
  } as Spec;
}

/** Decisions per Entropix branch, in the order of `branches`, with the share over each bar. */
export function branchesChart(branches: Json[], subtitle: string): Spec {
  return {
    $schema: SCHEMA,
    width: 520,
    height: 280,
    data: { values: branches.map((b) => ({ ...b })) },
    title: { text: 'Entropix: the branch taken at each decision', subtitle },
    encoding: {
      x: {
        field: 'branch',
        type: 'nominal',
        sort: branches.map((b) => b.branch),
        axis: { labelAngle: 0, labelFontSize: 12 },
        title: null,
      },
      y: { field: 'count', type: 'quantitative', title: 'decisions' },
    },
    layer: [
      { mark: { type: 'bar', color: '#4c78a8' } },
      {
        mark: { type: 'text', dy: -8, fontSize: 12 },
        encoding: { text: { field: 'share', type: 'quantitative', format: '.1%' } },
      },
    ],
  } as Spec;
}
