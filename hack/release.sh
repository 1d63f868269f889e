#!/usr/bin/env bash
# Writes the clusterctl provider repository for this version:
#   out/release/infrastructure-maas/v<version>/{metadata.yaml,infrastructure-components.yaml,cluster-template*.yaml,clusterclass-*.yaml}
# The version comes from [workspace.package] in Cargo.toml. Environment:
#   IMAGE      manager image reference (default ghcr.io/capmaas/capmaas-manager:v<version>)
#   OUT_DIR    output root (default out/release)
#   KUSTOMIZE  kustomize binary (default: the one e2e/tools/build.sh caches, else from PATH)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

version="$(awk '/^\[workspace.package\]/{p=1;next} /^\[/{p=0} p && $1=="version"{gsub(/"/,"",$3); print $3; exit}' Cargo.toml)"
if [[ -z "$version" ]]; then
  echo "release: no version in [workspace.package] of Cargo.toml" >&2
  exit 1
fi
image="${IMAGE:-ghcr.io/capmaas/capmaas-manager:v${version}}"
out_root="${OUT_DIR:-out/release}"
out="${out_root}/infrastructure-maas/v${version}"

kustomize="${KUSTOMIZE:-}"
if [[ -z "$kustomize" ]]; then
  cached="$(bash e2e/tools/build.sh --print-dir 2>/dev/null || true)/kustomize"
  if [[ -x "$cached" ]]; then
    kustomize="$cached"
  elif command -v kustomize >/dev/null; then
    kustomize="$(command -v kustomize)"
  else
    echo "release: kustomize not found (run \`make tools\` or set KUSTOMIZE)" >&2
    exit 1
  fi
fi

# Render from a copy so setting the image never edits the checkout.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -R config "$work/config"
(cd "$work/config/default" && "$kustomize" edit set image "capmaas-manager=${image}")

mkdir -p "$out"
rm -f "$out"/*.yaml
"$kustomize" build "$work/config/default" > "$out/infrastructure-components.yaml"
cp metadata.yaml "$out/metadata.yaml"
cp templates/cluster-template*.yaml templates/clusterclass-*.yaml "$out/"

echo "release v${version} (${image}) in ${out}:"
ls -1 "$out"
