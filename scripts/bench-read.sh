#!/usr/bin/env bash
# Measures reading one big replica: the janitor's streamed read (a dry-run sweep, which reads
# every group and plans) next to `curl -s URL/api/v1/metrics -o /dev/null` on the same replica, in
# one run, taking turns ROUNDS times. Wall time and peak memory (max RSS) come from GNU time; the
# row shows the median wall time of each, their ratio, the median time each took after the
# gateway's first byte (the gateway builds its whole answer first, so that is the client's own
# share) and the janitor's highest max RSS.
#
#   bash scripts/bench-read.sh [GROUPS] [SERIES_PER_GROUP]     (default 101000 11)
#
# SERIES_PER_GROUP counts every pushed series of a group (a histogram counts once), so the
# default is 1.1 million series. Environment:
#   PGW_JANITOR_BENCH_PUSHGATEWAY  gateway binary (default Debian's prometheus-pushgateway, 1.5.1;
#                                  target/test-deps/bin/pushgateway is 1.11.3)
#   ROUNDS                         curl/janitor pairs to run (default 9: the gateway's own time
#                                  varies by 20 % from one answer to the next)
#   SETTLE                         seconds of rest before each measured request (default 2), so the
#                                  gateway's collection of the last answer's garbage is over
set -euo pipefail
cd "$(dirname "$0")/.."
groups=${1:-101000}
series=${2:-11}
rounds=${ROUNDS:-9}
settle=${SETTLE:-2}
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
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The consistency check compares every push with the whole store, which makes filling 100 000
# groups quadratic; it plays no part in reading, so the benchmark's gateway skips it.
"$gateway" --web.listen-address="127.0.0.1:$port" --persistence.file= \
  --push.disable-consistency-check >"$work/gateway.log" 2>&1 &
gw_pid=$!
trap 'kill "$gw_pid" 2>/dev/null; wait "$gw_pid" 2>/dev/null; rm -rf "$work"' EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$url/-/ready" >/dev/null && break; sleep 0.1; done
version=$(curl -s "$url/api/v1/status" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["build_information"]["version"])')

./target/release/examples/fill_gateway "$url" "$groups" "$series"
# Writes are queued: wait until the gateway holds every group (bounded: 10 minutes).
seen() {
  timeout 120 "$janitor" sweep --gateway "$url" --ttl 1h --dry-run --output json --log-level error |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["groups_seen"])'
}
deadline=$((SECONDS + 600))
until [ "$(seen)" -ge "$groups" ]; do
  ((SECONDS < deadline)) || { echo "gateway never showed $groups groups" >&2; exit 1; }
  sleep 1
done

body=$(curl -s "$url/api/v1/metrics" | wc -c)
# The janitor asks for gzip (reqwest's `gzip` feature); say whether this gateway compresses.
encoding=$(curl -s -D - -o /dev/null -H 'Accept-Encoding: gzip' "$url/api/v1/metrics" |
  tr -d '\r' | awk -F': ' 'tolower($1)=="content-encoding" {print $2}')

# One measured command: "<wall s> <max RSS KiB> <CPU s>" on stdout; its own output in $work/out
# and $work/err.
measure() {
  sleep "$settle"
  /usr/bin/time -f '%e %M %U+%S' -o "$work/time" timeout 300 "$@" >"$work/out" 2>"$work/err" || {
    cat "$work/err" >&2
    exit 1
  }
  cat "$work/time"
}
# The gateway builds its whole answer before its first byte, so a read is the gateway's wait
# (to the first byte) plus the client's own time after it: curl's from its -w, the janitor's
# from its debug line "answer started".
measure_curl() {
  read -r curl_wall _ curl_cpu < <(measure curl -s "$url/api/v1/metrics" -o /dev/null \
    -w '%{time_starttransfer}')
  curl_first=$(cat "$work/out")
}
measure_janitor() {
  read -r janitor_wall kib cpu < <(measure "$janitor" sweep --gateway "$url" --ttl 1h --dry-run \
    --output json --log-level error,pushgateway_janitor::gateway=debug --log-format json)
  janitor_first=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    event = json.loads(line)
    if event.get("message") == "answer started":
        print(event["seconds"])
        break
else:
    sys.exit("no \"answer started\" line from the janitor")' "$work/err")
}
curl_walls=()
janitor_walls=()
curl_tails=()
janitor_tails=()
rss=0
for round in $(seq "$rounds"); do
  # The gateway's own time varies by a second or more from one answer to the next (its garbage
  # collector); taking turns at going first keeps the order from favouring either.
  if ((round % 2)); then
    measure_curl
    measure_janitor
  else
    measure_janitor
    measure_curl
  fi
  curl_walls+=("$curl_wall")
  janitor_walls+=("$janitor_wall")
  curl_tails+=("$(awk -v w="$curl_wall" -v f="$curl_first" 'BEGIN { printf "%.3f", w - f }')")
  janitor_tails+=("$(awk -v w="$janitor_wall" -v f="$janitor_first" 'BEGIN { printf "%.3f", w - f }')")
  ((kib > rss)) && rss=$kib
  echo "round $round: curl $curl_wall s (first byte $curl_first s, CPU $curl_cpu s)," \
    "janitor $janitor_wall s (first byte $janitor_first s, CPU $cpu s, max RSS $kib KiB)" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
curl_wall=$(median "${curl_walls[@]}")
janitor_wall=$(median "${janitor_walls[@]}")
curl_tail=$(median "${curl_tails[@]}")
janitor_tail=$(median "${janitor_tails[@]}")

echo "gateway $version, body content-encoding when gzip is asked: ${encoding:-none}, $rounds rounds, ${settle}s of rest before each"
echo "| groups | series | body MiB | curl wall s | janitor wall s | ratio | curl after the first byte s | janitor after the first byte s | janitor max RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|"
awk -v g="$groups" -v s="$series" -v b="$body" -v c="$curl_wall" -v j="$janitor_wall" -v r="$rss" \
  -v ct="$curl_tail" -v jt="$janitor_tail" \
  'BEGIN { printf "| %d | %d | %.0f | %.1f | %.1f | %.2f | %.2f | %.2f | %.1f |\n", g, g * s, b / 1048576, c, j, j / c, ct, jt, r / 1024 }'
