#!/usr/bin/env bash
# Captures real `GET /api/v1/metrics` bodies into tests/corpus/metrics/, the seeds of the reader's
# property tests (src/gateway/read/fuzz.rs): Debian's Pushgateway 1.5.1 and 1.11.3
# (target/test-deps/bin/pushgateway, from scripts/test-deps.sh), each holding every metric kind
# (pushed by the Go test pusher), awkward label values, a phantom group and, on 1.11.3, UTF-8
# names. Loopback only; every gateway is killed by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/corpus/metrics
pusher=target/test-deps/bin/pusher
mkdir -p "$out"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

capture() { # NAME BINARY EXTRA_FLAGS...
  local name=$1 bin=$2; shift 2
  local port; port=$(free_port)
  "$bin" --web.listen-address="127.0.0.1:$port" --persistence.file= "$@" >/dev/null 2>&1 &
  pids+=($!)
  local url="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do curl -fs "$url/-/ready" >/dev/null && break; sleep 0.1; done
  for kind in counter gauge summary histogram untyped; do
    "$pusher" --url "$url" --job "kinds" --label "kind=$kind" --kind "$kind" --format text --method put
  done
  "$pusher" --url "$url" --job "kinds" --label "kind=native" --kind native-histogram --format protobuf --method put || true
  # awkward values: a slash, a space, unicode, empty (base64 paths, '=' for empty)
  curl -fs -X PUT --data-binary $'some_gauge{x="1"} 2\n' "$url/metrics/job@base64/$(printf 'a/b' | base64 | tr '+/' '-_' | tr -d '=')/path@base64/$(printf 'grüße /日本' | base64 | tr '+/' '-_' | tr -d '=')"
  curl -fs -X PUT --data-binary $'x 1\n' "$url/metrics/job/empty/instance@base64/="
  curl -fs -X PUT --data-binary $'# TYPE labels gauge\nlabels 1\n' "$url/metrics/job/family-named-labels" || true
  # a phantom: the colliding push fails with 400 and leaves push_time_seconds 0
  curl -fs -X PUT --data-binary $'p 1\n' "$url/metrics/job/poison"
  curl -s -o /dev/null -X PUT --data-binary $'p 1\n' "$url/metrics/job/poison/instance@base64/=" || true
  if [ "$name" = "1.11.3" ]; then
    curl -fs -X PUT --data-binary $'{"service.name"="x"} 1\n' "$url/metrics/job/utf8/U__service_2e_name@base64/eA" \
      -H 'Content-Type: text/plain; version=0.0.4; escaping=allow-utf-8' || true
  fi
  curl -fs "$url/api/v1/metrics" -o "$out/$name.json"
  curl -fs "$url/api/v1/status" -o "$out/$name-status.json"
  echo "$out/$name.json: $(wc -c <"$out/$name.json") bytes"
}

capture 1.5.1 prometheus-pushgateway
capture 1.11.3 target/test-deps/bin/pushgateway --push.enable-utf8-names
