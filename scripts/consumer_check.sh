#!/usr/bin/env bash
# Installs the packages as a user outside this workspace would and uses them there: builds dist/,
# packs @aes/node, @aes/attention, @aes/models and @aes/train, installs the tarballs with npm into a
# fresh project in a temporary directory, then (1) plain `node` imports @aes/attention and computes
# a sparsemax, (2) `npx aes train --steps 5` runs, (3) esbuild bundles @aes/attention + @aes/models +
# @tensorflow/tfjs for the browser platform (it fails on any Node built-in), (4) `npx aes view run
# --export site` bundles the view page from the installed dist/ and writes it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/aes-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
pnpm() { npx -y pnpm@12.4.2 "$@"; }

cd "$root"
pnpm build >/dev/null
mkdir -p "$work/tgz" "$work/app"
for p in node attention models train; do (cd "packages/$p" && pnpm pack --pack-destination "$work/tgz" >/dev/null); done
ls "$work/tgz"

cd "$work/app"
npm init -y >/dev/null
npm pkg set type=module
tfjs=$(node -p "require('$root/packages/attention/package.json').devDependencies['@tensorflow/tfjs']")
esb=$(node -p "require('$root/node_modules/.pnpm/node_modules/esbuild/package.json').version" 2>/dev/null || echo latest)
npm install --no-audit --no-fund --loglevel=error "$work"/tgz/*.tgz "@tensorflow/tfjs@$tfjs" "esbuild@$esb" 2>&1 | tail -3

echo "== node imports @aes/attention"
cat > sparse.mjs <<'JS'
import * as tf from '@tensorflow/tfjs';
import { sparsemax } from '@aes/attention';
const p = Array.from(sparsemax(tf.tensor2d([[3.2, 2.9, 1.0]])).dataSync()).map((x) => +x.toFixed(4));
console.log(`sparsemax([[3.2, 2.9, 1.0]]) = [${p.join(', ')}]`);
if (Math.abs(p[0] - 0.65) > 1e-4 || Math.abs(p[1] - 0.35) > 1e-4 || p[2] !== 0) { console.error('wrong values'); process.exit(1); }
JS
node sparse.mjs 2>&1 | grep -v -e '^=*$' -e 'Hi, looks like' -e '^$'

echo "== npx aes train --steps 5"
npx aes train --steps 5 --eval-every 5 --out run 2>&1 | grep -v -e '^=*$' -e 'Hi, looks like' -e '^$' | tail -4
test -f run/ckpt/model.json

echo "== esbuild, platform browser"
cat > browser.mjs <<'JS'
import * as tf from '@tensorflow/tfjs';
import { attention, planAttention } from '@aes/attention';
import { GPT } from '@aes/models';
const gpt = new GPT({ vocabSize: 8, nLayer: 1, nHead: 2, nEmbd: 8, blockSize: 8, attention: 'aes' }, { seed: 1 });
console.log(tf.version.tfjs, planAttention('sparsemax', { heads: 2 }).heads.length, typeof attention, gpt.config.nLayer);
JS
npx esbuild browser.mjs --bundle --platform=browser --format=esm --outfile=bundle.js --log-level=warning
echo "bundle.js: $(wc -c < bundle.js) bytes, no Node built-ins"

echo "== npx aes view run --export site"
npx aes view run --export site 2>&1 | tail -1
for f in index.html app.js data.js; do test -s "site/$f"; done
grep -q 'AES_VIEW_DATA' site/data.js
echo "site/app.js: $(wc -c < site/app.js) bytes"
