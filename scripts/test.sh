#!/usr/bin/env bash
# Runs every test: unit and property tests of the pure core, and integration tests against real
# Pushgateway replicas and a real Prometheus (Debian's packages), started on loopback ports.
# Installs what the tests need when it is missing (as root, with apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
command -v prometheus >/dev/null || need+=(prometheus)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi

cargo test --all-targets "$@"
