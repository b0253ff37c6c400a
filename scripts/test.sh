#!/usr/bin/env bash
# Runs every test: unit and property tests of the pure core; integration tests against real
# Pushgateway replicas and a real Prometheus on loopback ports, once with Debian's packages
# (Pushgateway 1.5.1, Prometheus 2.42) and the gateway suites again with Pushgateway 1.11.3 and
# Prometheus 3; the controller's tests against the real kube-apiserver with etcd; nginx where a
# proxy or load balancer belongs; the Helm chart's checks (Helm's SDK from PyPI, in .venv); the
# dashboard against Grafana's models (grafana-foundation-sdk); the alerts with Debian's promtool;
# the image, built by scripts/image.sh and run with podman as the chart runs it (tests/image.rs);
# the chart installed with Helm 4 on a one-node cluster (scripts/kube-testcluster.sh, tests/node.rs);
# the release workflows with actionlint.
#
# scripts/test-deps.sh first installs what is missing (Debian packages as root, the venv) and
# builds the Go test programs into target/test-deps/bin/ (it needs Go; without it, it fails
# naming what is missing). It prints nothing when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/test-deps.sh
export PGW_JANITOR_TEST_PYTHON="$PWD/.venv/bin/python"

# The chart: lint, render with each value set, validate, assert RBAC, security and the CRD copy.
.venv/bin/python tests/chart/check_chart.py
# The dashboard against Grafana's own models (grafana-foundation-sdk), and its chart copy.
.venv/bin/python tests/dashboard/check_dashboard.py
# The docs: every relative link's file exists and every #anchor is a heading (GitHub's slugs).
python3 scripts/check-doc-links.py

deps="$PWD/target/test-deps/bin"
for bin in pushgateway prometheus pusher kube-testserver kube-node helm actionlint; do
  if [[ ! -x "$deps/$bin" ]]; then
    echo "test.sh: $deps/$bin is missing: run 'bash scripts/test-deps.sh' to build it" >&2
    exit 1
  fi
done
export PGW_JANITOR_TEST_PUSHER="$deps/pusher"

# The image users pull, from the Dockerfile on a base of Debian's own packages: tests/image.rs (in
# the first run below) starts it. A failed build stops here rather than test an older image.
bash scripts/image.sh

# The integration tests are one test binary per area (tests/<area>/main.rs, one module per file):
# `gateway` holds every test whose outcome depends on the Pushgateway or Prometheus under test and
# `controller` sweeps real gateways too, so both run once per gateway version (the harness reads
# PGW_JANITOR_TEST_PUSHGATEWAY and PGW_JANITOR_TEST_PROMETHEUS; tests/common/binaries.rs).
# `offline`, `read_memory`, `node` and `image` run once, in the first run.
gateway_areas=(gateway controller)
suite_args=()
for t in "${gateway_areas[@]}"; do suite_args+=(--test "$t"); done

# A test binary outside those areas that starts a gateway would miss the second version: it fails
# the run, named. node and image test the shipped image and chart, once.
misplaced=()
for root in tests/*.rs tests/*/main.rs; do
  name=$(basename "${root%/main.rs}" .rs)
  case " ${gateway_areas[*]} node image " in *" $name "*) continue ;; esac
  if grep -rqsE 'TestGateway|TestPrometheus' "$root" "tests/$name"; then misplaced+=("$name"); fi
done

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
run() { # label, then the command; its output is kept for the closing line
  echo "== $1" | tee -a "$log"
  shift
  set +e
  "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  ((rc == 0)) || status=$rc
}

for name in "${misplaced[@]}"; do
  echo "test.sh: the test binary $name starts a gateway but is not in gateway_areas: move it into" \
    "tests/gateway/ (one \`mod $name;\` in tests/gateway/main.rs)" | tee -a "$log" >&2
  status=1
done
# 1. Debian's Pushgateway 1.5.1 and Prometheus 2.42: unit tests and every integration test.
run "Pushgateway 1.5.1, Prometheus 2: every test" \
  env PGW_JANITOR_TEST_PUSHGATEWAY=prometheus-pushgateway PGW_JANITOR_TEST_PROMETHEUS=prometheus \
  cargo test --no-fail-fast --lib --bins --tests "$@"
# 2. Pushgateway 1.11.3 and Prometheus 3: every gateway suite again (discovery through
#    Prometheus 3 included), and the tests that need both (run with --include-ignored; they fail
#    loudly on older binaries), by their module's name in the gateway binary.
run "Pushgateway 1.11.3, Prometheus 3: ${gateway_areas[*]}" \
  env PGW_JANITOR_TEST_PUSHGATEWAY="$deps/pushgateway" PGW_JANITOR_TEST_PROMETHEUS="$deps/prometheus" \
  cargo test --no-fail-fast "${suite_args[@]}" "$@"
run "Pushgateway 1.11.3, Prometheus 3: selectors against Prometheus 3" \
  env PGW_JANITOR_TEST_PUSHGATEWAY="$deps/pushgateway" PGW_JANITOR_TEST_PROMETHEUS="$deps/prometheus" \
  cargo test --test gateway "$@" -- --include-ignored selector_prometheus3::

# The workflows (.github/workflows): actionlint, with shellcheck over their run: scripts.
run "actionlint" "$deps/actionlint" -color=false -shellcheck="$(command -v shellcheck)" .github/workflows/*.yml

# One closing line over every test binary of every run.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
