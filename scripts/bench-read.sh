#!/usr/bin/env bash
# Measures reading one replica with many groups: the janitor's streamed read (a dry-run sweep,
# which reads every group and plans) next to `curl -s URL/api/v1/metrics -o /dev/null` on the same
# replica, in one run. Peak memory (max RSS) and wall time come from GNU time.
#
#   bash scripts/bench-read.sh [GROUPS] [SERIES_PER_GROUP]     (default 100000 10)
set -euo pipefail
cd "$(dirname "$0")/.."
groups=${1:-100000}
series=${2:-10}

need=()
command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
[ -x /usr/bin/time ] || need+=(time)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo build --release --quiet --bin pushgateway-janitor --example fill_gateway

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The consistency check compares every push with the whole store, which makes filling 100 000
# groups quadratic; it plays no part in reading, so the benchmark's gateway skips it.
prometheus-pushgateway --web.listen-address="127.0.0.1:$port" --persistence.file= \
  --push.disable-consistency-check \
  >"$work/gateway.log" 2>&1 &
gw_pid=$!
trap 'kill "$gw_pid" 2>/dev/null; wait "$gw_pid" 2>/dev/null; rm -rf "$work"' EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$url/-/ready" >/dev/null && break; sleep 0.1; done

./target/release/examples/fill_gateway "$url" "$groups" "$series"
# Wait until the gateway has processed every push (writes are queued).
for _ in $(seq 600); do
  n=$(./target/release/pushgateway-janitor sweep --gateway "$url" --ttl 1h --dry-run --output json \
        --log-level error | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["groups_seen"])')
  [ "$n" -ge "$groups" ] && break
  sleep 1
done

bytes=$(curl -s "$url/api/v1/metrics" | wc -c)
echo "replica: $groups groups x $series series, /api/v1/metrics body $((bytes / 1024 / 1024)) MiB"
fmt='%e s wall, %M KiB max RSS'
echo -n "curl -s $url/api/v1/metrics -o /dev/null: "
/usr/bin/time -f "$fmt" curl -s "$url/api/v1/metrics" -o /dev/null 2>&1
echo -n "pushgateway-janitor sweep --dry-run (read + plan): "
/usr/bin/time -f "$fmt" ./target/release/pushgateway-janitor sweep --gateway "$url" --ttl 1h \
  --dry-run --output json --log-level error 2>&1 >/dev/null
