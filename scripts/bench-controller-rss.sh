#!/usr/bin/env bash
# The controller's resident memory at rest on the real kube-apiserver: first with no policies, then
# with N (default 100) PushgatewayRetention policies applied, each swept once against one real
# gateway. "At rest": every policy has swept and the next sweep is a minute away. Release build.
#
#   bash scripts/bench-controller-rss.sh [N]
#
# Measured 2026-12-01, release build, 2 shared cores, kube-apiserver v1.34.4 (kube-testserver):
#   | Kubernetes | policies | VmRSS at rest | VmHWM |
#   | v1.34.4    | 0        | 15.5 MiB      |       |
#   | v1.34.4    | 100      | 21.6 MiB      | 21.6 MiB |
#
# Needs target/test-deps/bin/kube-testserver (bash scripts/test-deps.sh), kubectl,
# prometheus-pushgateway. Everything runs on 127.0.0.1 and is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
server=${PGW_JANITOR_TEST_KUBE_TESTSERVER:-target/test-deps/bin/kube-testserver}
[[ -x $server ]] || { echo "error: $server is missing: build it with \`bash scripts/test-deps.sh\` (needs Go)" >&2; exit 1; }
for tool in kubectl prometheus-pushgateway curl; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed" >&2; exit 1; }
done
cargo build --release --locked -q
bin=target/release/pushgateway-janitor

source scripts/lib/bench-common.sh

mkdir "$work/kube"
"$server" --dir "$work/kube" >"$work/kube.out" 2>&1 &
pids+=($!)
poll 180 grep -q '^ready ' "$work/kube.out" || { echo "error: the API server did not start:" >&2; tail "$work/kube/apiserver.log" >&2; exit 1; }
export KUBECONFIG=$work/kube/kubeconfig
version=$(kubectl version -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for condition=established --timeout=60s crd/pushgatewayretentions.pgw-janitor.dev >/dev/null
kubectl create namespace bench >/dev/null

gw_port=$(free_port)
prometheus-pushgateway --web.listen-address="127.0.0.1:$gw_port" --persistence.file= >"$work/gw.log" 2>&1 &
pids+=($!)
poll 30 curl -sf "http://127.0.0.1:$gw_port/-/ready" -o /dev/null
for i in $(seq 1 20); do
  echo "x $i" | curl -sf --data-binary @- "http://127.0.0.1:$gw_port/metrics/job/bench-$i" -o /dev/null
done

ctl_port=$(free_port)
"$bin" --log-level warn controller --listen "127.0.0.1:$ctl_port" --namespace bench >"$work/ctl.log" 2>&1 &
ctl=$!
pids+=($ctl)
poll 60 curl -sf "http://127.0.0.1:$ctl_port/readyz" -o /dev/null
sleep 10
rss() { awk '/^VmRSS/ {printf "%.1f MiB", $2 / 1024}' "/proc/$ctl/status"; }
hwm() { awk '/^VmHWM/ {printf "%.1f MiB", $2 / 1024}' "/proc/$ctl/status"; }
rss0=$(rss)

for i in $(seq 1 "$n"); do
  cat <<YAML
---
apiVersion: pgw-janitor.dev/v1alpha1
kind: PushgatewayRetention
metadata: {name: p-$i, namespace: bench}
spec:
  static: {urls: ["http://127.0.0.1:$gw_port/"]}
  selector: '{job="bench-$((i % 20 + 1))"}'
  ttl: 1h
  interval: 1m
YAML
done >"$work/policies.yaml"
kubectl apply --server-side -f "$work/policies.yaml" >/dev/null
swept() {
  local done
  done=$(kubectl get pgr -n bench -o jsonpath='{range .items[*]}{.status.totals.sweeps}{"\n"}{end}' | awk '$1 >= 1' | wc -l)
  [[ $done -eq $n ]]
}
poll 300 swept || { echo "error: not every policy swept within 300s" >&2; tail "$work/ctl.log" >&2; exit 1; }
sleep 20 # settle: no sweep in flight, the next one is ~40s away
printf '| Kubernetes | policies | VmRSS at rest | VmHWM |\n|---|---|---|---|\n'
printf '| %s | 0 | %s | |\n' "$version" "$rss0"
printf '| %s | %s | %s | %s |\n' "$version" "$n" "$(rss)" "$(hwm)"
