#!/usr/bin/env bash
# The engine's benchmark: one table, measured in one run on real gateways on 127.0.0.1.
#
#   bash scripts/bench.sh            (release build; BENCH_PUSHGATEWAY picks the gateway binary,
#                                     default Pushgateway 1.11.3 from target/test-deps/bin)
#
# Rows:
#  - deletes: 20 000 stale groups on one replica, deleted by `sweep` with its defaults (from its
#    first DELETE to the last confirmed, the report's `delete_seconds`; and its whole sweep less the
#    read), against the gateway's ceiling (the same deletes from 64 parallel keep-alive clients,
#    from the first to all processed), medians of ROUNDS rounds, both under the same scrapes; with
#    the slowest `/metrics` scrape during the janitor's deletes against one at rest, and whether
#    the write queue ever filled (the janitor says so when `/-/healthy` answers 500).
#  - reads: reads per replica (each starts with one `api/v1/status`; the gateway does not count
#    its own `/metrics`, where the groups are read) in one cycle with 1, 10 and 100 policies over 3
#    replicas, counted by each gateway itself (`pushgateway_http_requests_total`), for
#    `run --policies --once` and for the controller on the real kube-apiserver.
#  - memory at rest: VmRSS of the controller and of `run --policies` after every policy swept.
# The read of a big replica (time against curl, peak RSS at 101 000 groups) is
# `scripts/bench-read.sh`, run last.
#
# ROUNDS (default 5) sets the rounds of the delete row; SWEEP_ARGS adds flags to its sweeps (to
# compare settings); DELETES_ONLY=1 stops after that row and prints every round.
#
# Needs what `bash scripts/test-deps.sh` installs and builds (it runs it first), and kubectl.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-deps.sh
command -v kubectl >/dev/null || { echo "bench.sh: kubectl is not installed (apt-get install kubectl, or put it on PATH)" >&2; exit 1; }
gateway=${BENCH_PUSHGATEWAY:-target/test-deps/bin/pushgateway}
server=target/test-deps/bin/kube-testserver
cargo build --release --locked -q --bin pushgateway-janitor --example fill_gateway --example delete_storm
bin=target/release/pushgateway-janitor
ex=target/release/examples

POLL_INTERVAL=0.2
source scripts/lib/bench-common.sh
# Starts a gateway; prints its URL. Its PID joins $pids (the caller runs it in this shell).
start_gateway() {
  local port
  port=$(free_port)
  "$gateway" --web.listen-address="127.0.0.1:$port" --persistence.file= --push.disable-consistency-check \
    >"$work/gw-$port.log" 2>&1 &
  pids+=($!)
  gw_pid=$!
  gw_url="http://127.0.0.1:$port"
  poll 150 curl -sf "$gw_url/-/ready" -o /dev/null
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
reads_of() { # the gateway's own count of reads: each starts with one api/v1/status
  curl -s "$1/metrics" | awk '/^pushgateway_http_requests_total/ && /handler="api\/v1\/status"/ {n += $2} END {print n + 0}'
}
scrape_seconds() { curl -s -o /dev/null -w '%{time_total}' "$1/metrics"; }
ratio() { python3 -c "print($1 / $2)"; }
version=$("$gateway" --version 2>&1 | awk 'NR == 1 {print $3}')

# --- deletes: the janitor's defaults against the gateway's ceiling ---------------------------------
# ROUNDS rounds (default 5) of: the ceiling, then the janitor, on one gateway; medians of each.
# Both run under the same scrapes, one every 0.1 s; the slowest of those during the janitor's
# deletes is the scrape row.
groups=20000
rounds=${ROUNDS:-5}
start_scraper() {
  (
    for _ in $(seq 600); do scrape_seconds "$gw_url"; echo; sleep 0.1; done
  ) >"$work/scrapes" &
  scraper=$!
  pids+=($scraper)
}
start_gateway
: >"$work/rests"
: >"$work/ceilings"
: >"$work/janitors"
: >"$work/sweeps"
: >"$work/worst"
full=0
deleted=$groups
for round in $(seq "$rounds"); do
  "$ex/fill_gateway" "$gw_url" "$groups" 1 2>/dev/null
  sleep 2
  start_scraper
  storm=$("$ex/delete_storm" "$gw_url" "$groups" 64)
  stop_pid "$scraper"
  echo "${storm% *}" >>"$work/ceilings"
  "$ex/fill_gateway" "$gw_url" "$groups" 1 2>/dev/null
  sleep 2
  for _ in 1 2 3; do scrape_seconds "$gw_url"; echo; done >>"$work/rests"
  start_scraper
  "$bin" --log-level info --log-format json sweep --gateway "$gw_url" --ttl 1s --min-ttl 1s --output json ${SWEEP_ARGS:-} \
    >"$work/sweep.json" 2>"$work/sweep.log" || true
  stop_pid "$scraper"
  # The janitor's deletes: from its first DELETE to the last confirmed (as the ceiling runs from
  # its first DELETE to all processed); and its whole sweep less the first read (the plan, the
  # deletes, the per-group log lines, the report).
  read -r janitor_s sweep_s round_deleted < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
rep = r["replicas"][0]
deleting = rep["delete_seconds"] or 0
sweep = r["duration_seconds"] - (rep["read_seconds"] or 0)
print(f"{deleting:.3f} {sweep:.3f}", r["summary"]["deleted"])' "$work/sweep.json")
  echo "$janitor_s" >>"$work/janitors"
  echo "$sweep_s" >>"$work/sweeps"
  sort -n "$work/scrapes" | tail -1 >>"$work/worst"
  full=$((full + $(grep -c 'write queue full' "$work/sweep.log" || true)))
  ((round_deleted < deleted)) && deleted=$round_deleted
done
median() { sort -n "$1" | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
rest=$(median "$work/rests")
ceiling_s=$(median "$work/ceilings")
janitor_s=$(median "$work/janitors")
sweep_s=$(median "$work/sweeps")
worst=$(sort -n "$work/worst" | tail -1)
stop_pid "$gw_pid"
if [[ -n ${DELETES_ONLY:-} ]]; then
  printf '%s\n' "janitor $(tr '\n' ' ' <"$work/janitors")" "sweep less read $(tr '\n' ' ' <"$work/sweeps")" \
    "ceiling $(tr '\n' ' ' <"$work/ceilings")"
  printf 'deletes: janitor %.3f s, ceiling %.3f s, %.2fx; deleted %s; slowest scrape %.3f s, at rest %.3f s; queue full %s\n' \
    "$janitor_s" "$ceiling_s" "$(ratio "$janitor_s" "$ceiling_s")" "$deleted" "$worst" "$rest" "$full"
  exit 0
fi

# --- reads per replica per cycle ---------------------------------------------------------------
urls=()
for _ in 1 2 3; do
  start_gateway
  urls+=("$gw_url")
  for j in $(seq 1 20); do
    echo "x $j" | curl -sf --data-binary @- "$gw_url/metrics/job/bench-$j" -o /dev/null
  done
done
url_list=$(printf '"%s/",' "${urls[@]}")
url_list=[${url_list%,}]
policies() { # N [namespace]: N policies over the 3 replicas, as YAML documents
  for i in $(seq 1 "$1"); do
    cat <<YAML
---
apiVersion: pgw-janitor.dev/v1alpha1
kind: PushgatewayRetention
metadata: {name: p-$i, namespace: ${2:-bench}}
spec:
  static: {urls: $url_list}
  selector: '{job="bench-$((i % 20 + 1))"}'
  ttl: 1h
  interval: 1m
YAML
  done
}
total_reads() { local n=0; for u in "${urls[@]}"; do n=$((n + $(reads_of "$u"))); done; echo "$n"; }
# Reads per replica since the total was $1.
reads_per_replica_since() { python3 -c "print(f'{($(total_reads) - $1) / 3:g}')"; }
declare -A run_reads
for n in 1 10 100; do
  mkdir -p "$work/p$n"
  policies "$n" >"$work/p$n/policies.yaml"
  before=$(total_reads)
  "$bin" --log-level warn run --policies "$work/p$n" --once --output json >/dev/null 2>"$work/run-$n.log"
  run_reads[$n]=$(reads_per_replica_since "$before")
done

# run --policies at rest, 100 policies
port=$(free_port)
"$bin" --log-level warn run --policies "$work/p100" --listen "127.0.0.1:$port" >"$work/run.log" 2>&1 &
run_pid=$!
pids+=($run_pid)
poll 300 curl -sf "http://127.0.0.1:$port/readyz" -o /dev/null
sleep 15
rss() { awk '/^VmRSS/ {printf "%.1f MiB", $2 / 1024}' "/proc/$1/status"; }
run_rss=$(rss "$run_pid")
stop_pid "$run_pid"

# --- the controller on the real kube-apiserver ------------------------------------------------
mkdir "$work/kube"
"$server" --dir "$work/kube" >"$work/kube.out" 2>&1 &
pids+=($!)
poll 900 grep -q '^ready ' "$work/kube.out" || { echo "bench.sh: the API server did not start" >&2; exit 1; }
export KUBECONFIG=$work/kube/kubeconfig
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for condition=established --timeout=60s crd/pushgatewayretentions.pgw-janitor.dev >/dev/null
declare -A ctl_reads
for n in 1 10 100; do
  kubectl create namespace "b$n" >/dev/null
  policies "$n" "b$n" | kubectl apply --server-side -f - >/dev/null
  port=$(free_port)
  before=$(total_reads)
  "$bin" --log-level warn controller --listen "127.0.0.1:$port" --namespace "b$n" >"$work/ctl-$n.log" 2>&1 &
  ctl=$!
  pids+=($ctl)
  swept() {
    [[ $(kubectl get pgr -n "b$n" -o jsonpath='{range .items[*]}{.status.totals.sweeps}{"\n"}{end}' | awk '$1 >= 1' | wc -l) -eq $n ]]
  }
  poll 1500 swept || { echo "bench.sh: not every policy swept" >&2; tail "$work/ctl-$n.log" >&2; exit 1; }
  ctl_reads[$n]=$(reads_per_replica_since "$before")
  if ((n == 100)); then
    sleep 15
    ctl_rss=$(rss "$ctl")
  fi
  stop_pid "$ctl"
done

printf '\nPushgateway %s, release build, %s cores, %s\n\n' "$version" "$(nproc)" "$(date -u +%F)"
printf '| measure | janitor | reference | ratio |\n|---|---|---|---|\n'
printf '| %s deletes on one replica, defaults, first DELETE to last confirmed, median of %s (fewest deleted %s) | %.2f s | %.2f s at the ceiling (64 parallel keep-alive clients) | %.2fx |\n' \
  "$groups" "$rounds" "$deleted" "$janitor_s" "$ceiling_s" "$(ratio "$janitor_s" "$ceiling_s")"
printf '| the same, whole sweep less its read (plan, deletes, a log line per group, report) | %.2f s | | %.2fx |\n' \
  "$sweep_s" "$(ratio "$sweep_s" "$ceiling_s")"
printf '| slowest /metrics scrape during those deletes, all rounds | %.3f s | %.3f s at rest | %.2fx |\n' \
  "$worst" "$rest" "$(ratio "$worst" "$rest")"
printf '| write queue full during those deletes | %s times | | |\n' "$full"
for n in 1 10 100; do
  printf '| reads per replica, one cycle, %s policies over 3 replicas | run --once: %s | controller: %s | |\n' \
    "$n" "${run_reads[$n]}" "${ctl_reads[$n]}"
done
printf '| VmRSS at rest, 100 policies | run --policies: %s | controller: %s | |\n' "$run_rss" "$ctl_rss"
echo
PGW_JANITOR_BENCH_PUSHGATEWAY=$gateway bash scripts/bench-read.sh
