#!/usr/bin/env bash
# Builds the real control-plane binaries that the end-to-end tests and the quickstart run as local
# processes (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kustomize, the
# Cluster API managers and clusterctl, and kubeadm for checking the configurations the templates
# generate) from the Go module proxy, and copies the Cluster API manifests the test harness
# installs. Everything lands in a cache outside the clone, keyed by the upstream versions,
# so a second run is a no-op that never starts the Go toolchain.
#
# Usage:
#   build.sh              build what is missing; the last line of stdout is CAPMAAS_TOOLS_BIN=<dir>
#   build.sh --print-dir  print the bin dir only (nothing is built or checked)
#
# Environment:
#   CAPMAAS_TOOLS_SET   which set to build: `main` (default: everything above), `capi-1.10` or
#                       `capi-1.9` (only that Cluster API release's core manager and its
#                       manifests, the releases HyperShift's MAAS fork vendors), each in its own
#                       versioned dir
#   CAPMAAS_TOOLS_DIR   the main set's tools dir itself (holds bin/, capi/, versions.env);
#                       default $HOME/.cache/capmaas/tools/<versions>. The other sets then go
#                       beside it, in <dir>.capi-<version>
#   CAPMAAS_TOOLS_JOBS  parallel compile jobs for go build (default 2)
#
# Each wrapper module (kubernetes/, etcd/, kustomize/, capi/) pins one upstream release with exactly
# the dependency versions that release itself requires: Cluster API is built against older k8s.io
# libraries than Kubernetes, so one shared module would silently upgrade them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { echo "[tools] $*" >&2; }
die() {
  echo "[tools] error: $*" >&2
  exit 1
}

usage() {
  sed -n '/^# Usage:/,/^# Each wrapper/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
}

print_dir_only=false
case "${1:-}" in
  "") ;;
  --print-dir) print_dir_only=true ;;
  -h | --help)
    usage
    exit 0
    ;;
  *)
    usage
    die "unknown argument '$1'"
    ;;
esac

# The version a go.mod requires of a module, read without the Go toolchain so that the no-op path
# stays fast and works where go is not installed.
module_version() {
  awk -v m="$2" '{ for (i = 1; i < NF; i++) if ($i == m && $(i + 1) ~ /^v[0-9]/) { print $(i + 1); exit } }' "$1"
}

tools_set="${CAPMAAS_TOOLS_SET:-main}"
case "$tools_set" in
  main)
    k8s_version="$(module_version "$here/kubernetes/go.mod" k8s.io/kubernetes)"
    etcd_version="$(module_version "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)"
    kustomize_version="$(module_version "$here/kustomize/go.mod" sigs.k8s.io/kustomize/kustomize/v5)"
    capi_version="$(module_version "$here/capi/go.mod" sigs.k8s.io/cluster-api)"
    for v in k8s_version etcd_version kustomize_version capi_version; do
      [[ -n "${!v}" ]] || die "could not read ${v%_version}'s version from the go.mod files in $here"
    done
    key="k8s-${k8s_version#v}_etcd-${etcd_version#v}_capi-${capi_version#v}_kustomize-${kustomize_version#v}"
    ;;
  capi-1.10 | capi-1.9)
    capi_version="$(module_version "$here/$tools_set/go.mod" sigs.k8s.io/cluster-api)"
    [[ -n "$capi_version" ]] || die "could not read Cluster API's version from $here/$tools_set/go.mod"
    key="capi-${capi_version#v}"
    ;;
  *) die "unknown CAPMAAS_TOOLS_SET '$tools_set' (main, capi-1.10 or capi-1.9)" ;;
esac

if [[ -n "${CAPMAAS_TOOLS_DIR:-}" && "$tools_set" == main ]]; then
  tools_dir="$CAPMAAS_TOOLS_DIR"
elif [[ -n "${CAPMAAS_TOOLS_DIR:-}" ]]; then
  # Beside the main set's dir, never in it: a dir holds one set (its stamp drops the others).
  tools_dir="${CAPMAAS_TOOLS_DIR%/}.$key"
else
  tools_dir="${HOME:?HOME is not set; set CAPMAAS_TOOLS_DIR instead}/.cache/capmaas/tools/$key"
fi
bin_dir="$tools_dir/bin"
manifests_dir="$tools_dir/capi"
stamp="$tools_dir/versions.env"

if $print_dir_only; then
  echo "$bin_dir"
  exit 0
fi

# name | wrapper module | main package | version ldflags
# A Cluster API component's manifests: its dir in the tools dir | its config dir in the module.
if [[ "$tools_set" == main ]]; then
  binaries=(
    "etcd|etcd|go.etcd.io/etcd/server/v3|"
    "kube-apiserver|kubernetes|k8s.io/kubernetes/cmd/kube-apiserver|k8s"
    "kube-controller-manager|kubernetes|k8s.io/kubernetes/cmd/kube-controller-manager|k8s"
    "kube-scheduler|kubernetes|k8s.io/kubernetes/cmd/kube-scheduler|k8s"
    "kubectl|kubernetes|k8s.io/kubernetes/cmd/kubectl|k8s"
    "kubeadm|kubernetes|k8s.io/kubernetes/cmd/kubeadm|k8s"
    "kustomize|kustomize|sigs.k8s.io/kustomize/kustomize/v5|"
    "capi-manager|capi|sigs.k8s.io/cluster-api/core|capi"
    "clusterctl|capi|sigs.k8s.io/cluster-api/cmd/clusterctl|capi"
    "capi-kubeadm-bootstrap-manager|capi|sigs.k8s.io/cluster-api/bootstrap/kubeadm|capi"
    "capi-kubeadm-control-plane-manager|capi|sigs.k8s.io/cluster-api/controlplane/kubeadm|capi"
  )
  capi_module=capi
  components=("core|core/config" "bootstrap-kubeadm|bootstrap/kubeadm/config" "controlplane-kubeadm|controlplane/kubeadm/config")
  stamp_content="CAPMAAS_TOOLS_KEY=$key
KUBERNETES_VERSION=$k8s_version
ETCD_VERSION=$etcd_version
CLUSTER_API_VERSION=$capi_version
KUSTOMIZE_VERSION=$kustomize_version"
  go_mod_for_go_version="$here/kubernetes/go.mod"
else
  # Before 1.11 the core manager is the module root and its manifests are the root config/.
  binaries=("capi-manager|$tools_set|sigs.k8s.io/cluster-api|capi")
  capi_module="$tools_set"
  components=("core|config")
  stamp_content="CAPMAAS_TOOLS_KEY=$key
CLUSTER_API_VERSION=$capi_version"
  go_mod_for_go_version="$here/$tools_set/go.mod"
fi

missing=()
find_missing() {
  missing=()
  local entry
  for entry in "${binaries[@]}"; do
    [[ -x "$bin_dir/${entry%%|*}" ]] || missing+=("$entry")
  done
}

up_to_date() {
  [[ -f "$stamp" && "$(<"$stamp")" == "$stamp_content" && -d "$manifests_dir" ]] || return 1
  find_missing
  ((${#missing[@]} == 0))
}

finish() {
  log "tools dir: $tools_dir"
  echo "CAPMAAS_TOOLS_BIN=$bin_dir"
  exit 0
}

up_to_date && finish

# --- from here on something has to be built -----------------------------------------------------

command -v go >/dev/null 2>&1 ||
  die "the Go toolchain (go) is not on PATH: install Go >= 1.26 (https://go.dev/doc/install) and run again"
go_have="$(go env GOVERSION)"
go_need="go$(awk '$1 == "go" { print $2; exit }' "$go_mod_for_go_version")"
if [[ "$(printf '%s\n%s\n' "$go_need" "$go_have" | sort -V | head -n1)" != "$go_need" &&
  "$(go env GOTOOLCHAIN)" == local ]]; then
  die "these modules need $go_need or newer, and $(command -v go) is $go_have (GOTOOLCHAIN=local): install a newer Go or set GOTOOLCHAIN=auto"
fi

mkdir -p "$bin_dir"
# One build per tools dir at a time: a second caller waits, then finds the binaries there.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$tools_dir/.lock"
  if ! flock -n 9; then
    log "another build of $tools_dir is running; waiting for it"
    flock 9
  fi
  up_to_date && finish
fi

# A dir stamped for other versions (only possible with CAPMAAS_TOOLS_DIR) or not stamped at all:
# its binaries are of unknown versions, so drop them. Stamping first means that any binary found
# later in a dir with this stamp was built for these versions.
if [[ ! -f "$stamp" || "$(<"$stamp")" != "$stamp_content" ]]; then
  for entry in "${binaries[@]}"; do rm -f "$bin_dir/${entry%%|*}"; done
  rm -rf "$manifests_dir"
  printf '%s\n' "$stamp_content" >"$stamp.tmp.$$"
  mv -f "$stamp.tmp.$$" "$stamp"
fi

tmp_files=()
# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() { ((${#tmp_files[@]} == 0)) || rm -rf "${tmp_files[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export GOWORK=off CGO_ENABLED=0
jobs="${CAPMAAS_TOOLS_JOBS:-2}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "CAPMAAS_TOOLS_JOBS must be a positive number, got '$jobs'"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

version_ldflags() {
  local kind="$1" version major minor pkg
  case "$kind" in
    k8s)
      version="$k8s_version"
      IFS=. read -r major minor _ <<<"${version#v}"
      # kubectl and the servers report their version from both packages, as the upstream build sets.
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        printf -- ' -X %s.%s=%s' "$pkg" gitVersion "$version" "$pkg" gitMajor "$major" \
          "$pkg" gitMinor "$minor" "$pkg" gitTreeState clean "$pkg" gitCommit "" "$pkg" buildDate "$build_date"
      done
      ;;
    capi)
      version="$capi_version"
      IFS=. read -r major minor _ <<<"${version#v}"
      pkg=sigs.k8s.io/cluster-api/version
      printf -- ' -X %s.%s=%s' "$pkg" gitVersion "$version" "$pkg" gitMajor "$major" \
        "$pkg" gitMinor "$minor" "$pkg" gitTreeState clean "$pkg" buildDate "$build_date"
      ;;
  esac
}

# Downloads what a wrapper module's packages need, so that an unreachable proxy gives one clear
# message before any compiling starts. Offline with a warm module cache this needs no network.
download_modules() {
  local module="$1" errors started=$SECONDS
  shift
  errors="$(mktemp)"
  tmp_files+=("$errors")
  log "fetching the Go modules of $module (GOPROXY=$(go env GOPROXY))"
  if ! (cd "$here/$module" && go list -deps "$@" >/dev/null 2>"$errors"); then
    tail -n 15 "$errors" >&2
    die "could not fetch the Go modules of e2e/tools/$module: is the Go module proxy ($(go env GOPROXY)) reachable?"
  fi
  log "modules of $module ready in $((SECONDS - started))s"
}

copy_manifests() {
  local src="$1" staging="$tools_dir/.capi.tmp.$$" component name from
  tmp_files+=("$staging")
  rm -rf "$staging"
  # The CRDs and webhook configurations of every Cluster API controller built here; the harness
  # re-points their webhook clientConfig and conversion at its own serving address.
  for component in "${components[@]}"; do
    IFS='|' read -r name from <<<"$component"
    from="$src/$from"
    [[ -d "$from/crd/bases" && -f "$from/webhook/manifests.yaml" ]] ||
      die "sigs.k8s.io/cluster-api $capi_version has no ${from#"$src"/}/crd/bases or webhook manifests"
    mkdir -p "$staging/$name"/{crd,webhook,rbac}
    cp "$from"/crd/bases/*.yaml "$staging/$name/crd/"
    cp "$from/webhook/manifests.yaml" "$staging/$name/webhook/"
    cp "$from"/rbac/*role*.yaml "$staging/$name/rbac/"
  done
  chmod -R u+w "$staging"
  rm -rf "$manifests_dir"
  mv "$staging" "$manifests_dir"
}

started_all=$SECONDS
find_missing
log "building into $bin_dir (missing: ${#missing[@]} binaries)"

modules=()
for entry in "${missing[@]}"; do
  IFS='|' read -r _ module _ _ <<<"$entry"
  [[ " ${modules[*]} " == *" $module "* ]] || modules+=("$module")
done
[[ -d "$manifests_dir" || " ${modules[*]} " == *" $capi_module "* ]] || modules+=("$capi_module")
for module in "${modules[@]}"; do
  packages=()
  for entry in "${binaries[@]}"; do
    IFS='|' read -r _ m pkg _ <<<"$entry"
    [[ "$m" != "$module" ]] || packages+=("$pkg")
  done
  download_modules "$module" "${packages[@]}"
done

if [[ ! -d "$manifests_dir" ]]; then
  capi_src="$(cd "$here/$capi_module" && go list -m -f '{{.Dir}}' sigs.k8s.io/cluster-api)"
  copy_manifests "$capi_src"
  log "copied the Cluster API CRDs, webhook and RBAC manifests to $manifests_dir"
fi

summary=()
index=0
for entry in "${missing[@]}"; do
  index=$((index + 1))
  IFS='|' read -r name module pkg kind <<<"$entry"
  log "[$index/${#missing[@]}] building $name ($pkg)"
  started=$SECONDS
  tmp="$bin_dir/.$name.tmp.$$"
  tmp_files+=("$tmp")
  if ! (cd "$here/$module" && nice -n 19 go build -p "$jobs" -trimpath -buildvcs=false \
    -ldflags "-s -w$(version_ldflags "$kind")" -o "$tmp" "$pkg"); then
    die "go build of $name ($pkg) failed; see the compiler output above"
  fi
  mv -f "$tmp" "$bin_dir/$name"
  summary+=("$name $((SECONDS - started))s")
  log "[$index/${#missing[@]}] built $name in $((SECONDS - started))s (total $((SECONDS - started_all))s)"
done

up_to_date || die "the build finished but $tools_dir is still incomplete"
if ((${#summary[@]} > 0)); then
  built="$(printf '%s, ' "${summary[@]}")"
  log "built: ${built%, }"
fi
log "total: $((SECONDS - started_all))s"
finish
