/**
 * Runs every experiment in turn at the quick size (`--full` for the size behind docs/results.md):
 *   pnpm experiments [--full] [--only complexity,free-energy,training,sampling]
 * Each writes experiments/results/<name>/ (config.json, CSV/JSON, SVG+PNG plots).
 */
import { run as complexity } from './complexity.js';
import { run as freeEnergy } from './free_energy.js';
import { run as sampling } from './sampling.js';
import { run as training } from './training.js';

const EXPERIMENTS: Record<string, (argv: string[]) => Promise<Record<string, unknown>>> = {
  complexity,
  'free-energy': freeEnergy,
  training,
  sampling,
};

async function main(argv: string[]) {
  const onlyAt = argv.indexOf('--only');
  const only = onlyAt >= 0 ? argv[onlyAt + 1]?.split(',') ?? [] : Object.keys(EXPERIMENTS);
  const unknown = only.filter((n) => !(n in EXPERIMENTS));
  if (unknown.length)
    throw new Error(`unknown experiment(s) ${unknown.join(', ')}; available: ${Object.keys(EXPERIMENTS).join(', ')}`);
  const pass = argv.filter((a, i) => a === '--full' || (a.startsWith('--backend') || argv[i - 1] === '--backend'));
  for (const name of only) {
    const t0 = performance.now();
    console.log(`\n== ${name} ${pass.join(' ')}`);
    const summary = await EXPERIMENTS[name](pass);
    console.log(JSON.stringify(summary, null, 2));
    console.log(`== ${name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}

main(process.argv.slice(2)).catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
