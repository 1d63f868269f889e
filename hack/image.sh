#!/usr/bin/env bash
# Builds the manager image without a container engine, as an OCI image layout, and checks it:
# the same final stage as the Dockerfile (a static musl binary at /capmaas-manager, user
# 65532:65532, that entrypoint, ports 8080 and 9440), on an empty base holding only what
# distroless/static gives the binary (CA certificates, a passwd entry for the user).
#
#   hack/image.sh            build out/image/oci (tag v<version>) for amd64 and check it
#
# Needs: umoci (Debian package `umoci`), musl-gcc (package `musl-tools`) and the Rust target
# x86_64-unknown-linux-musl (`rustup target add x86_64-unknown-linux-musl`). Reproducible: the
# layer's file times and the image's creation time are the last commit's time, so two builds of
# one commit give the same digests (the check builds twice and compares).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() {
  echo "image: $*" >&2
  exit 1
}

command -v umoci >/dev/null || die "umoci not found (apt-get install umoci)"
command -v musl-gcc >/dev/null || die "musl-gcc not found (apt-get install musl-tools)"
rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl ||
  die "the Rust target x86_64-unknown-linux-musl is missing (rustup target add x86_64-unknown-linux-musl)"

version="$(awk '/^\[workspace.package\]/{p=1;next} /^\[/{p=0} p && $1=="version"{gsub(/"/,"",$3); print $3; exit}' Cargo.toml)"
tag="v${version}"
out="${OUT_DIR:-out/image}"
epoch="$(git log -1 --format=%ct)"
created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"

echo "image: building the static manager binary"
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked \
  --target x86_64-unknown-linux-musl -p capmaas-controllers --bin capmaas-manager
binary="target/x86_64-unknown-linux-musl/release/capmaas-manager"

work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# One image layout built from scratch into $1.
build() {
  local layout="$1" bundle="$work/bundle"
  rm -rf "$layout" "$bundle"
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci unpack --rootless --image "$layout:$tag" "$bundle"
  local rootfs="$bundle/rootfs"
  install -m 0755 "$binary" "$rootfs/capmaas-manager"
  mkdir -p "$rootfs/etc/ssl/certs"
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
  find "$rootfs" -exec touch -h -d "@$epoch" {} +
  umoci repack --image "$layout:$tag" --history.created "$created" --history.created_by "hack/image.sh" "$bundle"
  umoci config --image "$layout:$tag" --created "$created" --history.created "$created" \
    --os linux --architecture amd64 --config.user 65532:65532 \
    --config.entrypoint /capmaas-manager \
    --config.exposedports 8080/tcp --config.exposedports 9440/tcp
  umoci gc --layout "$layout"
  rm -rf "$bundle"
}

echo "image: building the layout twice"
build "$work/first"
build "$out/oci"
first="$(umoci stat --image "$work/first:$tag" --json | sha256sum)"
second="$(umoci stat --image "$out/oci:$tag" --json | sha256sum)"
[[ "$(cat "$work/first/index.json")" == "$(cat "$out/oci/index.json")" ]] ||
  die "two builds of one commit differ: not reproducible"
[[ "$first" == "$second" ]] || die "two builds of one commit have different histories"

echo "image: checking the layout"
bundle="$work/check"
umoci unpack --rootless --image "$out/oci:$tag" "$bundle"
config="$bundle/config.json"
python3 - "$config" <<'EOF'
import json, sys
process = json.load(open(sys.argv[1]))["process"]
assert process["args"] == ["/capmaas-manager"], process["args"]
assert (process["user"]["uid"], process["user"]["gid"]) == (65532, 65532), process["user"]
EOF
exe="$bundle/rootfs/capmaas-manager"
[[ -x "$exe" ]] || die "/capmaas-manager is not executable"
if readelf -l "$exe" | grep -q "INTERP"; then die "/capmaas-manager is not static (it names an interpreter)"; fi
grep -q '^nonroot:x:65532:65532:' "$bundle/rootfs/etc/passwd" || die "no passwd entry for 65532"
"$exe" --help >/dev/null || die "/capmaas-manager --help failed"
files="$(cd "$bundle/rootfs" && find . -type f | sort | tr '\n' ' ')"
echo "image: $out/oci:$tag, files: $files"
echo "image: manifest $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$out/oci/index.json")"
