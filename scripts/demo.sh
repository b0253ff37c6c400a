#!/usr/bin/env bash
# A real sweep on a fresh machine: 3 Pushgateway replicas + Prometheus on loopback, sample groups
# pushed with curl, then `pushgateway-janitor sweep` (dry run, then for real).
#
#   bash scripts/demo.sh
#
# Installs prometheus-pushgateway, prometheus, curl and python3 with apt-get when missing (Debian
# or Ubuntu; the packages also start their own system services on :9091/:9090, which this demo does
# not use). Everything it starts listens on 127.0.0.1 free ports, lives in a temp dir, and is
# killed by PID on exit.
#
# Environment:
#   DEMO_SKIP_SWEEP=1  set everything up and show it, but skip building and running the janitor.
#   DEMO_JANITOR=PATH  run this janitor binary instead of building a release one (used by tests).
#   DEMO_KEEP_DIR=1    keep the temp dir (logs, Prometheus config) after exit.
#   DEMO_NO_INSTALL=1  fail instead of running apt-get when something is missing (used by tests).
set -euo pipefail

TTL_SECS=8
JOB=pushgateway
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites
missing=()
command -v prometheus-pushgateway >/dev/null || missing+=(prometheus-pushgateway)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
    [[ "${DEMO_NO_INSTALL:-}" != 1 ]] || die "missing ${missing[*]} (DEMO_NO_INSTALL=1: not installing)"
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    say "Installing ${missing[*]}"
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

JANITOR="${DEMO_JANITOR:-}"
if [[ -n "$JANITOR" ]]; then
    [[ -x "$JANITOR" ]] || die "DEMO_JANITOR=$JANITOR is not an executable"
elif [[ "${DEMO_SKIP_SWEEP:-}" != 1 ]]; then
    command -v cargo >/dev/null || die "cargo not found: install Rust from https://rustup.rs"
    say "Building pushgateway-janitor (cargo build --release)"
    (cd "$REPO" && cargo build --release)
    JANITOR="${CARGO_TARGET_DIR:-$REPO/target}/release/pushgateway-janitor"
    [[ -x "$JANITOR" ]] || die "built binary not found at $JANITOR"
fi

# ---------------------------------------------------------------- processes and cleanup
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pgw-demo.XXXXXX")"
PIDS=()
SLEEPER=""

cleanup() {
    local pid i
    [[ -z "$SLEEPER" ]] || kill "$SLEEPER" 2>/dev/null || true
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${DEMO_KEEP_DIR:-}" == 1 ]]; then
        echo "demo: kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A sleep that a signal interrupts at once (bash runs traps only after a foreground command ends).
pause() {
    sleep "$1" &
    SLEEPER=$!
    wait "$SLEEPER"
    SLEEPER=""
}

# Distinct free loopback ports, all held open until every one is chosen.
read -r -a PORTS <<<"$(python3 - <<'EOF'
import socket
socks = []
for _ in range(4):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)"
GW_PORTS=("${PORTS[0]}" "${PORTS[1]}" "${PORTS[2]}")
PROM_PORT="${PORTS[3]}"

c() { curl -sS --noproxy '*' --max-time 5 "$@"; }

# wait_ready URL NAME LOG: bounded poll (about 30 s) for a 200.
wait_ready() {
    local i
    for ((i = 0; i < 150; i++)); do
        c -f -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    tail -n 20 "$3" >&2 || true
    die "$2 did not become ready at $1"
}

say "Starting 3 Pushgateway replicas (admin API on replica 2) and Prometheus"
for i in 0 1 2; do
    args=(--web.listen-address="127.0.0.1:${GW_PORTS[$i]}" --persistence.file=)
    [[ $i -eq 2 ]] && args+=(--web.enable-admin-api)
    prometheus-pushgateway "${args[@]}" >"$WORK/gateway$i.log" 2>&1 &
    PIDS+=($!)
    echo "replica $i: http://127.0.0.1:${GW_PORTS[$i]}/ (pid $!)"
done

cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: "$JOB"
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:${GW_PORTS[0]}", "127.0.0.1:${GW_PORTS[1]}", "127.0.0.1:${GW_PORTS[2]}"]
EOF
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
PROM="http://127.0.0.1:$PROM_PORT"
echo "prometheus: $PROM/ (pid $!)"

for i in 0 1 2; do
    wait_ready "http://127.0.0.1:${GW_PORTS[$i]}/-/ready" "replica $i" "$WORK/gateway$i.log"
done
wait_ready "$PROM/-/ready" prometheus "$WORK/prometheus.log"

# ---------------------------------------------------------------- pushing like real clients
b64() { # URL-safe base64 without padding; an empty value is written "=".
    if [[ -z "$1" ]]; then printf '='; else printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; fi
}
group_path() { # group_path job VALUE [name VALUE]...
    local path="metrics"
    while (($#)); do path+="/$1@base64/$(b64 "$2")"; shift 2; done
    printf '%s' "$path"
}
# push_status REPLICA BODY job VALUE [name VALUE]... → prints the HTTP status
push_status() {
    local replica=$1 body=$2
    shift 2
    printf '%s\n' "$body" | c -o "$WORK/last-push.txt" -w '%{http_code}' -X PUT --data-binary @- \
        "http://127.0.0.1:${GW_PORTS[$replica]}/$(group_path "$@")"
}
# push REPLICA BODY KEY...: fails unless the gateway accepted it (curl exits 0 on HTTP errors).
push() {
    local status
    status=$(push_status "$@")
    [[ $status == 200 || $status == 202 ]] || die "push $* answered $status: $(cat "$WORK/last-push.txt")"
    echo "pushed to replica $1: ${*:3}"
}

show_groups() {
    python3 - "${GW_PORTS[@]}" <<'EOF'
import email.utils, json, sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def gauge(group, name):
    try:
        return float(group[name]["metrics"][0]["value"])
    except (KeyError, IndexError, ValueError):
        return None
for i, port in enumerate(sys.argv[1:]):
    base = f"http://127.0.0.1:{port}"
    try:
        scrape = opener.open(base + "/metrics", timeout=5).status
    except urllib.error.HTTPError as e:
        scrape = e.code
    with opener.open(base + "/api/v1/metrics", timeout=10) as resp:
        now = email.utils.parsedate_to_datetime(resp.headers["Date"]).timestamp()
        groups = json.load(resp)["data"]
    note = "" if scrape == 200 else f"  <- GET /metrics answers {scrape}: Prometheus sees it down"
    print(f"replica {i} 127.0.0.1:{port}{note}")
    if not groups:
        print("    (no groups)")
    for g in sorted(groups, key=lambda g: sorted(g["labels"].items())):
        key = ",".join(f'{k}="{v}"' for k, v in sorted(g["labels"].items()))
        pushed, failed = gauge(g, "push_time_seconds"), gauge(g, "push_failure_time_seconds")
        if pushed:
            age = f"pushed {now - pushed:4.0f}s ago"
        else:
            age = f"phantom: never pushed, failed push {now - failed:.0f}s ago" if failed else "phantom"
        print(f"    {{{key}}}  {age}")
EOF
}

# ---------------------------------------------------------------- the scenario
say "Pushing sample groups"
push 0 'backup_last_success_timestamp_seconds 1.7e9' job nightly-backup
push 2 'ci_tests_passed 412' job ci-run instance runner-17
push 0 'disk_backup_bytes 123456' job disk-backup path '/var/lib x'
echo "waiting 6s, then the nightly job runs again and lands on replica 1 (load balancer)"
pause 6
push 1 'backup_last_success_timestamp_seconds 1.7e9' job nightly-backup
# Poisoned replica: {job="batch"}, then a push to {job="batch",instance=""} that is refused with
# 400 but leaves a phantom group; /metrics of replica 2 then answers 500 for everything.
push 2 'batch_records 10' job batch
status=$(push_status 2 'batch_records 10' job batch instance '')
echo "push to replica 2 {job=\"batch\",instance=\"\"} answered $status (refused; leaves a phantom group)"
echo "waiting 4s so the first groups are older than the ${TTL_SECS}s TTL and the rest are not"
pause 4
push 1 'api_smoke_ok 1' job api-smoke
push 0 'api_smoke_ok 1' job api-smoke instance eu-1

say "Prometheus discovers the replicas through up{job=\"$JOB\"}"
up_query() { c -G "$PROM/api/v1/query" --data-urlencode "query=up{job=\"$JOB\"}"; }
for ((i = 0; i < 60; i++)); do
    n=$(up_query | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["result"]))')
    [[ $n -ge 3 ]] && break
    sleep 0.5
done
[[ $n -ge 3 ]] || die "Prometheus never listed the 3 replicas in up{job=\"$JOB\"}"
up_query | python3 -c '
import json, sys
for s in json.load(sys.stdin)["data"]["result"]:
    print("    up{instance=\"%s\"} = %s" % (s["metric"]["instance"], s["value"][1]))'

say "Groups per replica before the sweep"
show_groups
cat <<EOF

Expected with --ttl ${TTL_SECS}s: nightly-backup's stale copy on replica 0, ci-run, disk-backup and
the phantom {job="batch",instance=""} go; nightly-backup on replica 1, batch on replica 2 and both
api-smoke groups stay, and replica 2 heals.
EOF

if [[ -z "$JANITOR" ]]; then
    say "DEMO_SKIP_SWEEP=1: not running the janitor"
    exit 0
fi

sweep_failed=0
sweep() {
    local args=(sweep --prometheus "$PROM" --job "$JOB" --ttl "${TTL_SECS}s" --min-ttl 1s "$@")
    echo "\$ pushgateway-janitor ${args[*]}"
    "$JANITOR" "${args[@]}" ||
        { echo "demo: sweep exited with status $?" >&2; sweep_failed=1; }
}
say "Dry run: what would go"
sweep --dry-run
say "Sweep"
sweep
pause 1 # deletes are queued on the gateway; give them a moment before reading back

say "Groups per replica after the sweep"
show_groups
exit "$sweep_failed"
