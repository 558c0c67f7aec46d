#!/usr/bin/env bash
# Packs TypeScript entries (e.g. packages/attention/bench/gpu_check.ts) into .gpu/, a directory that
# runs on a bare x86-64 Linux machine with an NVIDIA GPU and neither Node.js nor a network:
#   .gpu/NAME.mjs       each entry and everything it imports except the Dawn addon, bundled by esbuild
#   .gpu/node.xz        this machine's node binary
#   .gpu/webgpu/        the `webgpu` package (Dawn as a prebuilt Node addon, compressed)
#   .gpu/debs/          Vulkan and GL loader libraries (Debian packages), unpacked there at start
#   .gpu/run.sh         unpacks, points the Vulkan loader at the NVIDIA driver, runs an entry
# Usage: bash scripts/gpu_bundle.sh ENTRY.ts [MORE.ts …]; then, on the GPU machine from the project root:
#   bash .gpu/run.sh [NAME] [arguments for the entry]
# NAME is an entry's file name without .ts (e.g. `train` for packages/train/bench/train.ts); without
# it the first entry runs.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: gpu_bundle.sh ENTRY.ts [MORE.ts …]" >&2; exit 2; }
cd "$(dirname "$0")/.."
out=.gpu
rm -rf "$out" && mkdir -p "$out/debs" "$out/webgpu/node_modules"
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
esbuild=$(ls node_modules/.pnpm/@esbuild+linux-x64@*/node_modules/@esbuild/linux-x64/bin/esbuild | head -1)
# native addons other than Dawn (resvg's PNG rasteriser, imported by @aes/train's plots) become
# empty modules: the entries never draw a PNG
for entry in "$@"; do
  name=$(basename "$entry" .ts)
  "$esbuild" "$entry" --bundle --platform=node --format=esm --conditions=aes-source --external:webgpu --loader:.node=empty \
    --banner:js="import { createRequire as aesCreateRequire } from 'node:module'; const require = aesCreateRequire(import.meta.url);" \
    --outfile="$out/$name.mjs" --log-level=warning
done
echo "$(basename "$1" .ts)" > "$out/first"
wg=$(dirname "$(ls -d node_modules/.pnpm/webgpu@*/node_modules/webgpu/package.json | head -1)")
mkdir -p "$out/webgpu/node_modules/webgpu/dist/linux-x64"
cp "$wg/package.json" "$wg/index.js" "$out/webgpu/node_modules/webgpu/"
xz -T2 -6 -c "$wg/dist/linux-x64/dawn.node" > "$out/webgpu/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
xz -T2 -6 -c "$(command -v node)" > "$out/node.xz"
lists=$(mktemp -d); mkdir -p "$lists/partial"
apt=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
(cd "$out/debs" && apt-get "${apt[@]}" update >/dev/null 2>&1 &&
  apt-get "${apt[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1) ||
  echo "warning: the loader .debs were not downloaded; the GPU machine must have libvulkan1"
cat > "$out/run.sh" <<'RUN'
#!/usr/bin/env bash
set -e
here=$(cd "$(dirname "$0")" && pwd)
for deb in "$here"/debs/*.deb; do [ -f "$deb" ] && dpkg -x "$deb" /; done; ldconfig 2>/dev/null || true
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json}
[ -x /tmp/aes-node ] || { xz -dc "$here/node.xz" > /tmp/aes-node; chmod +x /tmp/aes-node; }
addon="$here/webgpu/node_modules/webgpu/dist/linux-x64/dawn.node"
[ -f "$addon" ] || xz -dc "$addon.xz" > "$addon"
name=$(cat "$here/first")
if [ $# -ge 1 ] && [ -f "$here/$1.mjs" ]; then name=$1; shift; fi
cp "$here/$name.mjs" "$here/webgpu/$name.mjs"      # resolves `webgpu` from webgpu/node_modules
exec /tmp/aes-node "$here/webgpu/$name.mjs" "$@"
RUN
chmod +x "$out/run.sh"
du -sh "$out"
