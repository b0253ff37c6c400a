#!/usr/bin/env bash
# Runs every test: unit and property tests of the pure core; integration tests against real
# Pushgateway replicas and a real Prometheus (Debian's packages) on loopback ports; the
# controller's end-to-end tests against the real kube-apiserver (target/test-deps/bin/kube-testserver,
# built from the Go module proxy by scripts/test-deps.sh: needs Go); and the Helm chart's checks
# (tests/chart/check_chart.py, Helm's SDK from PyPI, in .venv).
# Installs what the tests need when it is missing (as root, with apt-get and pip).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
command -v prometheus >/dev/null || need+=(prometheus)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
if ! .venv/bin/python -c 'import helm_python, kubernetes_validate' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q -r tests/requirements.txt
fi
export PGW_JANITOR_TEST_PYTHON="$PWD/.venv/bin/python"

# The real API server for the controller's tests. A missing one fails here, naming what is missing.
if [[ ! -x target/test-deps/bin/kube-testserver && -z "${PGW_JANITOR_TEST_KUBE_TESTSERVER:-}" ]]; then
  bash scripts/test-deps.sh || {
    echo "error: target/test-deps/bin/kube-testserver is missing and \`bash scripts/test-deps.sh\` could not build it (it needs Go)" >&2
    exit 1
  }
fi

# The chart: lint, render with each value set, validate, assert RBAC, security and the CRD copy.
.venv/bin/python tests/chart/check_chart.py

# Unit tests of the library and binary, and every integration test under tests/.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --lib --bins --tests "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
