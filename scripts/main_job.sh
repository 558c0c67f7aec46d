#!/usr/bin/env bash
# Runs the README's main job and records what it printed, for the README (scripts/render_docs.ts):
# experiments/results/main_job/{stdout.txt,run.json}. About 2–8 minutes on 2 cores; run it on an
# otherwise idle machine, since the tokens/s it prints are quoted.
set -euo pipefail
cd "$(dirname "$0")/.."
out=experiments/results/main_job
mkdir -p "$out"
run=$(mktemp -d)/main
cmd="npx -y pnpm@12.4.2 aes train --out runs/main"
start=$(date +%s.%N)
npx -y pnpm@12.4.2 aes train --out "$run" | sed "s#$run#runs/main#g" > "$out/stdout.txt"
end=$(date +%s.%N)
node -e "
const [cmd, s, e, out] = process.argv.slice(1);
const line = require('fs').readFileSync(out + '/stdout.txt', 'utf8').match(/^backend (.*)$/m)[1];
require('fs').writeFileSync(out + '/run.json', JSON.stringify({ command: cmd, seconds: +(e - s).toFixed(1),
  cores: require('os').cpus().length, backend: line, node: process.version }, null, 2) + '\n');" "$cmd" "$start" "$end" "$out"
rm -rf "$(dirname "$run")"
cat "$out/run.json"
