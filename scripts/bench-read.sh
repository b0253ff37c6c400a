#!/usr/bin/env bash
# Measures reading one big replica, the gateway's side and the reader's: for each way of reading
# (curl of the JSON API, curl of /metrics as text, as gzip'd text and as delimited protobuf, the
# janitor's light read, the janitor with the JSON read forced), the gateway's resting RSS, its
# peak RSS during the read (VmHWM, reset right before the read through /proc/PID/clear_refs), the
# reader's wall time, CPU and max RSS (GNU time), and the body size.
#
# The store is filled once (with a persistence file), then every measured read gets a fresh
# gateway loaded from that file: a read's garbage stays in a Go process's RSS for minutes, so a
# gateway that served one read would make the next one's peak meaningless.
#
#   bash scripts/bench-read.sh [GROUPS] [SERIES_PER_GROUP]     (default 101000 11)
#
# SERIES_PER_GROUP counts every pushed series of a group (a histogram counts once), so the
# default is 1.1 million series. Environment:
#   PGW_JANITOR_BENCH_PUSHGATEWAY  gateway binary (default Debian's prometheus-pushgateway, 1.5.1;
#                                  target/test-deps/bin/pushgateway is 1.11.3)
#   ROUNDS                         rounds of every read (default 3; each row shows medians)
#   SETTLE                         seconds of rest between a gateway's start and its read
#                                  (default 5), so its start-up garbage is collected
#   KINDS                          the reads to measure (default all: json text gzip protobuf
#                                  janitor janitor-json)
set -euo pipefail
cd "$(dirname "$0")/.."
groups=${1:-101000}
series=${2:-11}
rounds=${ROUNDS:-3}
settle=${SETTLE:-5}
gateway=${PGW_JANITOR_BENCH_PUSHGATEWAY:-prometheus-pushgateway}

need=()
if [ "$gateway" = prometheus-pushgateway ] && ! command -v prometheus-pushgateway >/dev/null; then
  need+=(prometheus-pushgateway)
fi
[ -x /usr/bin/time ] || need+=(time)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo build --release --quiet --bin pushgateway-janitor --example fill_gateway
janitor=./target/release/pushgateway-janitor

work=$(mktemp -d)
gw_pid=
stop_gateway() {
  if [ -n "$gw_pid" ]; then
    # SIGKILL: a SIGTERM'd gateway would write the store back to the file first.
    kill -KILL "$gw_pid" 2>/dev/null || true
    wait "$gw_pid" 2>/dev/null || true
    gw_pid=
  fi
}
trap 'stop_gateway; rm -rf "$work"' EXIT

# Starts a gateway on a free port, its store in $1; sets gw_pid and url. Bounded: 10 minutes
# (loading a big store takes a while).
start_gateway() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # The consistency check compares every push with the whole store, which makes filling 100 000
  # groups quadratic; it plays no part in reading, so the benchmark's gateway skips it.
  "$gateway" --web.listen-address="127.0.0.1:$port" --persistence.file="$1" \
    --persistence.interval=24h --push.disable-consistency-check >"$work/gateway.log" 2>&1 &
  gw_pid=$!
  url="http://127.0.0.1:$port"
  for _ in $(seq 6000); do
    curl -sf "$url/-/ready" >/dev/null && return 0
    kill -0 "$gw_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "gateway did not start:" >&2
  tail -20 "$work/gateway.log" >&2
  exit 1
}
kib() { awk -v f="$1" '$1 == f":" {print $2}' "/proc/$gw_pid/status"; }
shown() {
  curl -s "$url/metrics" | grep -c '^push_time_seconds{' || true
}

start_gateway "$work/store"
version=$(curl -s "$url/api/v1/status" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["build_information"]["version"])')
./target/release/examples/fill_gateway "$url" "$groups" "$series"
# Writes are queued: wait until the gateway holds every group (bounded: 10 minutes).
deadline=$((SECONDS + 600))
until [ "$(shown)" -ge "$groups" ]; do
  ((SECONDS < deadline)) || { echo "gateway never showed $groups groups" >&2; exit 1; }
  sleep 1
done
# SIGTERM: the gateway writes its store to the file on the way out.
kill -TERM "$gw_pid"
wait "$gw_pid" 2>/dev/null || true
gw_pid=

text='text/plain;version=1.0.0;escaping=allow-utf-8'
proto='application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;escaping=allow-utf-8'
read -r -a kinds <<<"${KINDS:-json text gzip protobuf janitor janitor-json}"
declare -A label=(
  [json]='curl GET /api/v1/metrics'
  [text]='curl GET /metrics, text'
  [gzip]='curl GET /metrics, text, gzip'
  [protobuf]='curl GET /metrics, protobuf delimited'
  [janitor]='janitor sweep --dry-run (light read)'
  [janitor-json]='janitor sweep --dry-run, PGW_JANITOR_READ=json'
)
# The janitor's debug lines "answer started" and "answer read" time its read's first byte and end.
logs=(--log-level error,pushgateway_janitor::gateway=debug --log-format json)
# Sets cmd to the reading command of kind $1.
read_cmd() {
  local size=(curl -s -o /dev/null -w '%{size_download} %{time_starttransfer} %{time_total}\n')
  case $1 in
    json) cmd=("${size[@]}" "$url/api/v1/metrics") ;;
    text) cmd=("${size[@]}" -H "Accept: $text" -H 'Accept-Encoding: identity' "$url/metrics") ;;
    gzip) cmd=("${size[@]}" -H "Accept: $text" -H 'Accept-Encoding: gzip' "$url/metrics") ;;
    protobuf) cmd=("${size[@]}" -H "Accept: $proto" "$url/metrics") ;;
    janitor) cmd=(env -u PGW_JANITOR_READ "$janitor" sweep --gateway "$url" --ttl 1h --dry-run
      --output json --request-timeout 10m "${logs[@]}") ;;
    janitor-json) cmd=(env PGW_JANITOR_READ=json "$janitor" sweep --gateway "$url" --ttl 1h
      --dry-run --output json --request-timeout 10m "${logs[@]}") ;;
  esac
}

declare -A walls rests peaks cpus rsss bodies tails
for round in $(seq "$rounds"); do
  for kind in "${kinds[@]}"; do
    start_gateway "$work/store"
    sleep "$settle"
    rest=$(kib VmRSS)
    echo 5 >"/proc/$gw_pid/clear_refs"
    read_cmd "$kind"
    /usr/bin/time -f '%e %M %U %S' -o "$work/time" timeout 900 "${cmd[@]}" \
      >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    peak=$(kib VmHWM)
    stop_gateway
    read -r wall rss user sys <"$work/time"
    tail=0
    # The gateway builds (JSON) or gathers (/metrics) everything before its first byte: the
    # time after it is the reader's own share.
    case $kind in
      janitor*)
        seen=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["groups_seen"])' "$work/out")
        [ "$seen" -ge "$groups" ] || { echo "the janitor saw $seen groups" >&2; exit 1; }
        tail=$(python3 -c '
import json, sys
at = {}
for line in open(sys.argv[1]):
    event = json.loads(line)
    if event.get("message") in ("answer started", "answer read"):
        at[event["message"]] = event["seconds"]
print("%.3f" % (at["answer read"] - at["answer started"]))' "$work/err")
        body=0 ;;
      *)
        read -r body first total <"$work/out"
        tail=$(awk -v t="$total" -v f="$first" 'BEGIN { printf "%.3f", t - f }') ;;
    esac
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    echo "round $round, $kind: wall $wall s, gateway rest $rest KiB, peak $peak KiB," \
      "reader CPU $cpu s, max RSS $rss KiB, body $body bytes, after the first byte $tail s" >&2
    walls[$kind]+="$wall "
    rests[$kind]+="$rest "
    peaks[$kind]+="$peak "
    cpus[$kind]+="$cpu "
    rsss[$kind]+="$rss "
    bodies[$kind]+="$body "
    tails[$kind]+="$tail "
  done
done

median() { printf '%s\n' $1 | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo
echo "gateway $version, $groups groups x $series series, $rounds rounds (medians), a fresh gateway per read, ${settle}s of rest before each"
echo "| read | body MiB | wall s | after the first byte s | gateway rest GB | gateway peak GB | peak / rest | reader CPU s | reader max RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|"
for kind in "${kinds[@]}"; do
  awk -v l="${label[$kind]}" -v b="$(median "${bodies[$kind]}")" -v w="$(median "${walls[$kind]}")" \
    -v r="$(median "${rests[$kind]}")" -v p="$(median "${peaks[$kind]}")" \
    -v c="$(median "${cpus[$kind]}")" -v m="$(median "${rsss[$kind]}")" -v t="$(median "${tails[$kind]}")" \
    'BEGIN { printf "| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f |\n", l,
      (b > 0 ? sprintf("%.0f", b / 1048576) : "-"), w, t, r * 1024 / 1e9, p * 1024 / 1e9, p / r, c, m / 1024 }'
done
if [ -n "${walls[janitor]:-}" ] && [ -n "${walls[text]:-}" ]; then
  awk -v j="$(median "${walls[janitor]}")" -v t="$(median "${walls[text]}")" \
    -v jt="$(median "${tails[janitor]}")" -v tt="$(median "${tails[text]}")" \
    'BEGIN { printf "janitor light read / curl of the same /metrics: %.2f (after the first byte: %.2f s against %.2f s)\n", j / t, jt, tt }'
fi
if [ -n "${walls[janitor]:-}" ] && [ -n "${walls[json]:-}" ]; then
  awk -v j="$(median "${walls[janitor]}")" -v k="$(median "${walls[json]}")" \
    'BEGIN { printf "janitor light read / curl of the JSON API: %.2f\n", j / k }'
fi
