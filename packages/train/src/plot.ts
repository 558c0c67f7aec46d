/**
 * Plots with a real plotting library: Vega-Lite specs compiled by vega-lite, rendered headless to
 * SVG by vega (no canvas needed), and rasterised to PNG by resvg. Training writes loss and α curves
 * from metrics.jsonl; experiments reuse `renderChart`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import * as vl from 'vega-lite';

/** SVG and PNG (2× scale) of a Vega-Lite spec. */
export async function renderChart(spec: vl.TopLevelSpec): Promise<{ svg: string; png: Buffer }> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: 2 },
    background: 'white',
    font: { loadSystemFonts: true },
  })
    .render()
    .asPng();
  return { svg, png };
}

/** Writes `<base>.svg` and `<base>.png`; returns their paths. */
export async function writeChart(spec: vl.TopLevelSpec, base: string): Promise<string[]> {
  const { svg, png } = await renderChart(spec);
  writeFileSync(`${base}.svg`, svg);
  writeFileSync(`${base}.png`, png);
  return [`${base}.svg`, `${base}.png`];
}

type Row = { step: number; split: string; loss?: number; alpha?: number[][]; length?: number };

/** loss.svg/png (train and validation loss) and alpha.svg/png (α per head) from a run's metrics. */
export async function writeTrainingPlots(outDir: string): Promise<string[]> {
  const rows = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Row)
    .filter((r) => r.length === undefined); // per-length rows have their own chart (aes sweep --report)
  const loss = rows
    .filter((r) => typeof r.loss === 'number')
    .map((r) => ({ step: r.step, loss: r.loss, split: r.split }));
  const alpha = rows
    .filter((r) => r.split === 'val' && r.alpha)
    .flatMap((r) =>
      r.alpha!.flatMap((layer, l) => layer.map((a, h) => ({ step: r.step, alpha: a, head: `layer ${l} head ${h}` }))),
    );
  const common = { width: 480, height: 260, $schema: 'https://vega.github.io/schema/vega-lite/v6.json' } as const;
  const files = await writeChart(
    {
      ...common,
      title: 'Loss (nats per token)',
      data: { values: loss },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'step', type: 'quantitative' },
        y: { field: 'loss', type: 'quantitative', scale: { zero: false } },
        color: { field: 'split', type: 'nominal' },
      },
    },
    join(outDir, 'loss'),
  );
  files.push(
    ...(await writeChart(
      {
        ...common,
        title: 'α per head (1 softmax, 2 sparsemax)',
        data: { values: alpha.filter((a) => Number.isFinite(a.alpha)) },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'step', type: 'quantitative' },
          y: { field: 'alpha', type: 'quantitative', scale: { domain: [1, 2] } },
          color: { field: 'head', type: 'nominal' },
        },
      },
      join(outDir, 'alpha'),
    )),
  );
  return files;
}
