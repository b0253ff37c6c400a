#!/usr/bin/env bash
# The production layout of the shared CONTEXT.md, for real, under load (issue #11): Debian's
# nginx round-robins pushes over 3 Pushgateway replicas, Prometheus scrapes each with
# honor_labels, real HTTP clients (scripts/soak_clients.py) push through nginx (SOAK_GROUPS
# groups, each every SOAK_PERIOD s, for SOAK_SECONDS; each push carries its sequence number), and
# the janitor, as `run --policies` (discovering the replicas through Prometheus' targets), deletes
# superseded copies of the live job and expired groups of an abandoned one. Then the same again
# with `controller` on a real Kubernetes API server (scripts/kube-testserver.sh), the policies
# applied with kubectl. A benchmark, not a test: it prints a table per front door and asserts
# nothing (tests/gateway/soak_short.rs asserts what is deterministic). SOAK_MODES="run" runs one half.
#
#   bash scripts/soak.sh                          # 200 groups, 5.5 s period, 300 s: > 10 000 pushes
#   SOAK_SECONDS=30 SOAK_GROUPS=50 bash scripts/soak.sh    # a quick look
#
# Loopback only; every process started here is killed by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SOAK_SECONDS:=300}" "${SOAK_GROUPS:=200}" "${SOAK_PERIOD:=5.5}" "${SOAK_GRACE:=5}"
: "${SOAK_INTERVAL:=10}" "${SOAK_MODES:=run controller}"
export SOAK_SECONDS SOAK_GROUPS SOAK_PERIOD
gateway_bin=${PGW_JANITOR_TEST_PUSHGATEWAY:-prometheus-pushgateway}
prometheus_bin=${PGW_JANITOR_TEST_PROMETHEUS:-prometheus}
for b in "$gateway_bin" "$prometheus_bin" nginx curl python3; do
  command -v "$b" >/dev/null || [[ -x /usr/sbin/$b ]] || { echo "soak.sh: $b is missing" >&2; exit 1; }
done
cargo build -q --bin pushgateway-janitor
janitor=target/debug/pushgateway-janitor
# Every gateway here listens on loopback, which `run` and the controller refuse without an
# allow-list that admits it.
export PGW_JANITOR_ALLOW_CIDRS=127.0.0.0/8
# A real kube-apiserver for the controller half (KUBE_TESTSERVER_SH points at another copy).
kube_testserver=${KUBE_TESTSERVER_SH:-scripts/kube-testserver.sh}

dir=$(mktemp -d /tmp/pgw-soak.XXXXXX)
pids=()
kube_dirs=()
kill_all() {
  for p in "${pids[@]}"; do { kill -9 "$p" && wait "$p"; } 2>/dev/null || true; done
  pids=()
  for k in "${kube_dirs[@]}"; do bash "$kube_testserver" stop "$k" >/dev/null 2>&1 || true; done
  kube_dirs=()
}
cleanup() {
  kill_all
  wait 2>/dev/null || true
  echo "logs kept in $dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL: bounded to 60 s
  for _ in $(seq 1 600); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "soak.sh: $1 never answered" >&2; exit 1
}

phase() { # MODE (run | controller): fresh gateways, nginx, Prometheus and janitor; then the table
  local mode=$1 d="$dir/$1"
  mkdir -p "$d"
  local replicas=() upstreams="" targets="" port i
  for i in 0 1 2; do
    port=$(free_port)
    "$gateway_bin" --web.listen-address="127.0.0.1:$port" --persistence.file= >"$d/gateway-$i.log" 2>&1 &
    pids+=($!)
    replicas+=("http://127.0.0.1:$port/")
    upstreams+="server 127.0.0.1:$port; "
    targets+="\"127.0.0.1:$port\", "
    wait_http "http://127.0.0.1:$port/-/ready"
  done

  local lb_port; lb_port=$(free_port)
  mkdir -p "$d/nginx"
  cat >"$d/nginx/nginx.conf" <<NGINX
daemon off; master_process off; worker_processes 1; pid $d/nginx/nginx.pid;
error_log $d/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $d/nginx/body; proxy_temp_path $d/nginx/proxy;
  fastcgi_temp_path $d/nginx/fastcgi; uwsgi_temp_path $d/nginx/uwsgi; scgi_temp_path $d/nginx/scgi;
  upstream pgw { $upstreams }
  server {
    listen 127.0.0.1:$lb_port;
    location / { proxy_pass http://pgw; add_header X-Upstream \$upstream_addr always; }
  }
}
NGINX
  /usr/sbin/nginx -c "$d/nginx/nginx.conf" -p "$d/nginx" >"$d/nginx.log" 2>&1 &
  pids+=($!)
  local lb="http://127.0.0.1:$lb_port"
  wait_http "$lb/-/ready"

  local prom_port; prom_port=$(free_port)
  cat >"$d/prometheus.yml" <<PROM
global: { scrape_interval: 5s, scrape_timeout: 4s }
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs: [ { targets: [ ${targets%, } ] } ]
PROM
  "$prometheus_bin" --config.file="$d/prometheus.yml" --storage.tsdb.path="$d/prom-data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$d/prometheus.log" 2>&1 &
  pids+=($!)
  local prom="http://127.0.0.1:$prom_port" up=0
  wait_http "$prom/-/ready"
  # The janitor discovers the replicas from Prometheus' targets: wait (bounded) until all 3 are up.
  for _ in $(seq 1 300); do
    up=$(curl -fs "$prom/api/v1/query" --data-urlencode 'query=count(up{job="pushgateway"} == 1)' |
      python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
    [[ $up == 3 ]] && break
    sleep 0.2
  done
  [[ $up == 3 ]] || { echo "soak.sh: Prometheus never saw the 3 replicas up" >&2; exit 1; }

  mkdir -p "$d/policies"
  cat >"$d/policies/soak.yaml" <<YAML
apiVersion: pgw-janitor.dev/v1alpha1
kind: PushgatewayRetention
metadata: { name: superseded, namespace: soak }
spec:
  prometheus: { url: "$prom", job: pushgateway }
  selector: '{job="soak"}'
  ttl: 1h
  superseded: { enabled: true, grace: ${SOAK_GRACE}s }
  interval: ${SOAK_INTERVAL}s
---
apiVersion: pgw-janitor.dev/v1alpha1
kind: PushgatewayRetention
metadata: { name: expired, namespace: soak }
spec:
  prometheus: { url: "$prom", job: pushgateway }
  selector: '{job="batch"}'
  ttl: 30s
  minTtl: 30s
  superseded: { enabled: false }
  interval: ${SOAK_INTERVAL}s
YAML
  local jport; jport=$(free_port)
  local levels='info,pushgateway_janitor::sweep=debug' done_pattern
  if [[ $mode == run ]]; then
    "$janitor" run --policies "$d/policies" --listen "127.0.0.1:$jport" --min-ttl 1s \
      --log-format json --log-level "$levels" >"$d/janitor.log" 2>&1 &
    pids+=($!)
    done_pattern='"message":"sweep done'
  else
    local kube="$d/kube"
    mkdir -p "$kube"
    kube_dirs+=("$kube")
    bash "$kube_testserver" start "$kube" >"$d/kube-testserver.out" 2>&1 ||
      { cat "$d/kube-testserver.out" >&2; exit 1; }
    export KUBECONFIG="$kube/kubeconfig"
    kubectl apply -f crds/pushgatewayretentions.pgw-janitor.dev.yaml >/dev/null
    kubectl wait --for condition=established --timeout=60s crd/pushgatewayretentions.pgw-janitor.dev >/dev/null
    kubectl create namespace soak >/dev/null
    kubectl apply -f "$d/policies/soak.yaml" >/dev/null
    "$janitor" controller --listen "127.0.0.1:$jport" --min-ttl 1s \
      --log-format json --log-level "$levels" >"$d/janitor.log" 2>&1 &
    pids+=($!)
    done_pattern='"message":"swept"'
  fi
  wait_http "http://127.0.0.1:$jport/readyz"

  local replica_list; replica_list=$(IFS=,; echo "${replicas[*]}")
  echo "soak ($mode): ${SOAK_GROUPS} groups every ~${SOAK_PERIOD}s for ${SOAK_SECONDS}s through $lb; sweeps every ${SOAK_INTERVAL}s, grace ${SOAK_GRACE}s"
  local started; started=$(date +%s)
  python3 scripts/soak_clients.py push "$lb" "$replica_list" "$d/pushes.json"
  local stopped_sweeps now_sweeps
  stopped_sweeps=$(grep -c "$done_pattern" "$d/janitor.log" || true)
  # One whole sweep of each policy after the pushers stopped (bounded): two more per policy.
  for _ in $(seq 1 $((SOAK_INTERVAL * 40))); do
    now_sweeps=$(grep -c "$done_pattern" "$d/janitor.log" || true)
    ((now_sweeps >= stopped_sweeps + 4)) && break
    sleep 0.25
  done
  local final metrics
  final=$(python3 scripts/soak_clients.py final "$replica_list" "$d/pushes.json" "$SOAK_GRACE")
  metrics=$(curl -fs "http://127.0.0.1:$jport/metrics")
  table "$mode" "$d/pushes.json" "$d/janitor.log" "$final" "$metrics" "$(($(date +%s) - started))" "$done_pattern"
  kill_all
}

table() { # MODE PUSHES LOG FINAL METRICS SECONDS DONE_PATTERN
python3 - "$@" <<'PY'
import json, sys
mode = sys.argv.pop(1)
pushes = json.load(open(sys.argv[1]))["counters"]
final = json.loads(sys.argv[3])
deleted = {}
for line in sys.argv[4].splitlines():
    if line.startswith("pgw_janitor_groups_deleted_total{"):
        reason = line.split('reason="')[1].split('"')[0]
        deleted[reason] = deleted.get(reason, 0) + int(float(line.split()[-1]))
windows, sweeps = [], 0
for line in open(sys.argv[2]):
    try:
        doc = json.loads(line)
    except ValueError:
        continue
    f = doc.get("fields", doc)  # the json log format flattens fields
    if f.get("message") == "replica swept" and f.get("max_delete_window_seconds") not in (None, "None"):
        windows.append(float(f["max_delete_window_seconds"]))
    if str(f.get("message", "")).startswith(sys.argv[6].split('"message":"')[1].rstrip('"')):
        sweeps += 1
windows.sort()
def pct(p):
    return windows[min(len(windows) - 1, int(p * len(windows)))] if windows else float("nan")
rate = pushes["misses"] / pushes["checks"] if pushes["checks"] else float("nan")
rows = [
    (f"{mode}: wall time", f"{sys.argv[5]} s, {sweeps} sweeps"),
    ("pushes (errors)", f"{pushes['pushes']} ({pushes['errors']})"),
    ("deletes by reason", ", ".join(f"{k} {v}" for k, v in sorted(deleted.items())) or "none"),
    ("newest copy missing from the replica that took it",
     f"{pushes['misses']} of {pushes['checks']} checks ({rate:.4%}); {pushes['lost_pushes']} distinct pushes"),
    ("copies left beyond the grace after the last sweep", str(final["copies_beyond_grace"])),
    ("groups whose newest copy lost its last value / missing", f"{final['groups_newest_without_last_value']} / {final['groups_missing']}"),
    ("read-to-delete window per replica per sweep (p50, p99, max)",
     f"{pct(0.5):.3f} s, {pct(0.99):.3f} s, {windows[-1] if windows else float('nan'):.3f} s (n={len(windows)})"),
]
w = max(len(r[0]) for r in rows)
print()
for k, v in rows:
    print(f"{k:<{w}}  {v}")
PY
}

for mode in $SOAK_MODES; do
  if [[ $mode == controller ]] && { ! [[ -f $kube_testserver ]] || ! command -v kubectl >/dev/null; }; then
    echo
    echo "controller: NOT RUN: needs $kube_testserver and kubectl (SOAK_MODES=run runs only the other half)" >&2
    exit 1
  fi
  phase "$mode"
done
