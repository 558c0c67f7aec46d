#!/usr/bin/env bash
# A software GPU for the webgpu backend: Mesa's lavapipe (a Vulkan driver that runs on the CPU)
# from Debian's backports suite, on which Dawn (npm 'webgpu') runs our WGSL through real Tint
# compilation. Debian 12's own Mesa (22.3) is refused by Dawn; bookworm-backports has Mesa 25.
#
# The backports entry is derived from the machine's own Debian source entry (same archive address,
# same signing key), so no mirror host is written here. Idempotent; needs root (or sudo).
# Ends by checking that Dawn finds an adapter (after `pnpm install`; skipped before it).
#
#   bash scripts/software-gpu.sh          # install if needed, then check
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || { echo "software-gpu: not a Debian system (no VERSION_CODENAME)" >&2; exit 1; }
suite="$codename-backports"
target=/etc/apt/sources.list.d/aes-backports.sources

# The Debian archive's address (URIs) and key (Signed-By) from the first entry serving "$codename"
# itself: deb822 files first (Debian 12's default), then the one-line sources.list.
derive_entry() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && [ "$f" != "$target" ] || continue
    awk -v want="$codename" '
      function flush() {
        if (uris != "" && types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " want " ") && !done) {
          print uris "\t" key; done = 1
        }
        uris = ""; suites = ""; key = ""; types = ""
      }
      /^[[:space:]]*$/ { flush(); next }
      /^Types:/     { sub(/^Types:[[:space:]]*/, ""); types = $0 }
      /^URIs:/      { sub(/^URIs:[[:space:]]*/, ""); uris = $0 }
      /^Suites:/    { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
      /^Signed-By:/ { sub(/^Signed-By:[[:space:]]*/, ""); key = $0 }
      END { flush() }' "$f" | head -n 1
  done
  if [ -f /etc/apt/sources.list ]; then
    # deb [signed-by=KEY] URI SUITE COMPONENTS…
    awk -v want="$codename" '$1 == "deb" {
      key = ""; i = 2
      if ($2 ~ /^\[/) { while ($i !~ /\]$/) { if ($i ~ /signed-by=/) key = $i; i++ }
                        if ($i ~ /signed-by=/) key = $i; i++ }
      gsub(/.*signed-by=|\]/, "", key)
      if ($(i + 1) == want) { print $i "\t" key; exit }
    }' /etc/apt/sources.list
  fi
}

has_backports() {
  grep -rqsE "(^|[[:space:]])$suite([[:space:]]|$)" /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null
}

mesa_version() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true; }

major=$(mesa_version | sed -E 's/^([0-9]+).*/\1/')
if [ -z "$major" ] || [ "$major" -lt 25 ]; then
  if ! has_backports; then
    entry=$(derive_entry | head -n 1)
    [ -n "$entry" ] || { echo "software-gpu: no Debian source entry for '$codename' to derive $suite from" >&2; exit 1; }
    uris=${entry%%$'\t'*}; key=${entry#*$'\t'}
    {
      echo "# Added by scripts/software-gpu.sh: $suite from the same archive as the '$codename' entry"
      echo "Types: deb"; echo "URIs: $uris"; echo "Suites: $suite"; echo "Components: main"
      [ -z "$key" ] || echo "Signed-By: $key"
    } | $sudo tee "$target" >/dev/null
    echo "software-gpu: added $suite ($uris) in $target"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -t "$suite" mesa-vulkan-drivers >/dev/null
fi
echo "software-gpu: mesa-vulkan-drivers $(mesa_version)"

if [ -d packages/node/node_modules/webgpu ]; then
  (cd packages/node && node --input-type=module -e '
    const { create, globals } = await import("webgpu");
    Object.assign(globalThis, globals);
    const adapter = await create([]).requestAdapter();
    if (!adapter) { console.error("software-gpu: Dawn finds no adapter"); process.exit(1); }
    const info = adapter.info ?? {};
    console.log(`software-gpu: Dawn adapter: ${info.vendor ?? "?"} ${info.description || info.device || ""}`);
    process.exit(0);')
else
  echo "software-gpu: run 'npx -y pnpm@12.4.2 install' and this script again to check the adapter"
fi
