#!/usr/bin/env bash
# Checks build.sh's contract with the callers (make tools, the e2e harness, the quickstart):
# where it puts things, that a full cache is a no-op without Go, that only what is missing is
# rebuilt, and that a missing toolchain or an unreachable module proxy fail with a clear message.
# Checks that need the built cache (`make tools`) are skipped with a message when it is absent.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$here/build.sh"
scratch="$(mktemp -d)"
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT

passed=0
failed=0
skipped=0
pass() {
  passed=$((passed + 1))
  echo "ok: $1"
}
fail() {
  failed=$((failed + 1))
  echo "FAILED: $1" >&2
}
skip() {
  skipped=$((skipped + 1))
  echo "skipped: $1"
}

# Runs build.sh with extra environment; its stdout, stderr and exit code land in $out, $err, $rc.
run() {
  out="$scratch/out" err="$scratch/err"
  rc=0
  env "$@" bash "$build" >"$out" 2>"$err" </dev/null || rc=$?
}

real_bin="$(bash "$build" --print-dir)"
real_dir="$(dirname "$real_bin")"
key="$(basename "$real_dir")"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubeadm kustomize capi-manager
  clusterctl capi-kubeadm-bootstrap-manager capi-kubeadm-control-plane-manager)
cache_built=true
for b in "${binaries[@]}"; do [[ -x "$real_bin/$b" ]] || cache_built=false; done

# --- --print-dir --------------------------------------------------------------------------------
if [[ "$real_bin" == "$HOME/.cache/capmaas/tools/k8s-"*"_etcd-"*"_capi-"*"_kustomize-"*/bin &&
  "$(bash "$build" --print-dir | wc -l)" -eq 1 ]]; then
  pass "--print-dir names the versioned default dir ($key) on one line"
else
  fail "--print-dir printed '$real_bin'"
fi

if [[ "$(CAPMAAS_TOOLS_DIR=/some/where bash "$build" --print-dir)" == /some/where/bin ]]; then
  pass "CAPMAAS_TOOLS_DIR replaces the tools dir"
else
  fail "CAPMAAS_TOOLS_DIR is not honoured by --print-dir"
fi

rc=0
bash "$build" --bogus >/dev/null 2>"$scratch/err" || rc=$?
if ((rc != 0)) && grep -q "unknown argument '--bogus'" "$scratch/err"; then
  pass "an unknown argument fails with its name"
else
  fail "an unknown argument gave rc=$rc"
fi

for set in capi-1.10 capi-1.9; do
  if [[ "$(CAPMAAS_TOOLS_SET=$set bash "$build" --print-dir)" == "$HOME/.cache/capmaas/tools/$set."*/bin ]]; then
    pass "the $set set has a dir of its own, keyed by its version"
  else
    fail "$set --print-dir printed '$(CAPMAAS_TOOLS_SET=$set bash "$build" --print-dir)'"
  fi
done

if [[ "$(CAPMAAS_TOOLS_SET=capi-1.9 CAPMAAS_TOOLS_DIR=/some/where bash "$build" --print-dir)" == /some/where.capi-1.9.*/bin ]]; then
  pass "with CAPMAAS_TOOLS_DIR, an older Cluster API set goes beside the main set's dir, not into it"
else
  fail "capi-1.9 with CAPMAAS_TOOLS_DIR printed '$(CAPMAAS_TOOLS_SET=capi-1.9 CAPMAAS_TOOLS_DIR=/some/where bash "$build" --print-dir)'"
fi

rc=0
CAPMAAS_TOOLS_SET=bogus bash "$build" --print-dir >/dev/null 2>"$scratch/err" || rc=$?
if ((rc != 0)) && grep -q "unknown CAPMAAS_TOOLS_SET 'bogus'" "$scratch/err"; then
  pass "an unknown tools set fails with its name"
else
  fail "an unknown tools set gave rc=$rc"
fi

# --- a complete cache is a no-op that never starts go --------------------------------------------
fake_go_dir="$scratch/fake-go"
mkdir -p "$fake_go_dir"
printf '#!/bin/sh\necho called >>"%s"\nexit 99\n' "$scratch/go-calls" >"$fake_go_dir/go"
chmod +x "$fake_go_dir/go"

if $cache_built; then
  run PATH="$fake_go_dir:$PATH"
  if ((rc == 0)) && [[ "$(tail -n1 "$out")" == "CAPMAAS_TOOLS_BIN=$real_bin" && "$(wc -l <"$out")" -eq 1 &&
    ! -e "$scratch/go-calls" ]]; then
    pass "a complete cache is reported without running go; stdout is only CAPMAAS_TOOLS_BIN"
  else
    fail "no-op run: rc=$rc stdout=$(cat "$out") go-calls=$(wc -l <"$scratch/go-calls" 2>/dev/null || echo 0)"
  fi
else
  skip "no-op run: the tools cache is not built (make tools)"
fi

# --- a missing Go toolchain ----------------------------------------------------------------------
if [[ ! -e /usr/bin/go && ! -e /bin/go ]]; then
  run PATH=/usr/bin:/bin CAPMAAS_TOOLS_DIR="$scratch/no-go"
  if ((rc != 0)) && grep -q "the Go toolchain (go) is not on PATH" "$err" && [[ ! -e "$scratch/no-go/bin" ]]; then
    pass "a missing go fails with a clear message before touching the tools dir"
  else
    fail "missing go: rc=$rc stderr=$(cat "$err")"
  fi
else
  skip "missing go: /usr/bin has a go of its own"
fi

# --- an unreachable module proxy, and a dir stamped for other versions -----------------------------
stale="$scratch/stale"
mkdir -p "$stale/bin" "$stale/capi"
echo "CAPMAAS_TOOLS_KEY=k8s-0.0.0" >"$stale/versions.env"
printf '#!/bin/sh\n' >"$stale/bin/kubectl"
chmod +x "$stale/bin/kubectl"
mkdir -p "$scratch/empty-modcache"
# Port 1 on loopback refuses connections at once; the empty module cache forces a download.
run CAPMAAS_TOOLS_DIR="$stale" GOMODCACHE="$scratch/empty-modcache" GOPROXY=http://127.0.0.1:1 \
  GOSUMDB=off GOTOOLCHAIN=local
if ((rc != 0)) && grep -q "is the Go module proxy (http://127.0.0.1:1) reachable?" "$err"; then
  pass "an unreachable proxy fails with a clear message"
else
  fail "unreachable proxy: rc=$rc stderr=$(cat "$err")"
fi
if [[ ! -e "$stale/bin/kubectl" && ! -e "$stale/capi" ]] && grep -qx "CAPMAAS_TOOLS_KEY=$key" "$stale/versions.env"; then
  pass "binaries of other versions are dropped and the dir is stamped with the current versions"
else
  fail "stale dir: $(ls "$stale/bin") / $(cat "$stale/versions.env")"
fi
if [[ -z "$(find "$stale" -name '.*.tmp.*')" ]]; then
  pass "a failed run leaves no temporary files"
else
  fail "temporary files left: $(find "$stale" -name '.*.tmp.*')"
fi

# --- a cache from before kube-scheduler joined the list is not complete ------------------------
if $cache_built; then
  older="$scratch/older"
  mkdir -p "$older/bin"
  cp "$real_dir/versions.env" "$older/"
  cp -r "$real_dir/capi" "$older/"
  for b in "${binaries[@]}"; do
    [[ "$b" == kube-scheduler ]] || ln -s "$real_bin/$b" "$older/bin/$b"
  done
  rm -f "$scratch/go-calls"
  run CAPMAAS_TOOLS_DIR="$older" PATH="$fake_go_dir:$PATH"
  if ((rc != 0)) && [[ -e "$scratch/go-calls" && ! -s "$out" ]]; then
    pass "a cache without kube-scheduler is not reported complete: go is asked to build it"
  else
    fail "cache without kube-scheduler: rc=$rc stdout=$(cat "$out") stderr=$(cat "$err")"
  fi
else
  skip "cache without kube-scheduler: the tools cache is not built (make tools)"
fi

# --- only what is missing is rebuilt -------------------------------------------------------------
if $cache_built; then
  partial="$scratch/partial"
  mkdir -p "$partial/bin"
  cp "$real_dir/versions.env" "$partial/"
  cp -r "$real_dir/capi" "$partial/"
  for b in "${binaries[@]}"; do
    [[ "$b" == kustomize ]] || ln -s "$real_bin/$b" "$partial/bin/$b"
  done
  run CAPMAAS_TOOLS_DIR="$partial" PATH="$PATH"
  if ((rc == 0)) && grep -q "missing: 1 binaries" "$err" && grep -q "built kustomize in" "$err" &&
    [[ "$(grep -c "building " "$err")" -eq 2 ]] && # the "building into" line and kustomize's
    [[ "$(tail -n1 "$out")" == "CAPMAAS_TOOLS_BIN=$partial/bin" ]] &&
    "$partial/bin/kustomize" version | grep -q v5; then
    pass "only the missing binary is built, and it runs"
  else
    fail "partial rebuild: rc=$rc stderr=$(cat "$err")"
  fi
else
  skip "partial rebuild: the tools cache is not built (make tools)"
fi

echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
