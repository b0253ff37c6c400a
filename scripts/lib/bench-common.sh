# Sourced by the benchmark scripts: a work directory, the PIDs they start (stopped and waited for
# on exit, by PID), free loopback ports, and bounded polling.
work=$(mktemp -d)
# Every gateway here listens on loopback, which `run` and the controller refuse without an
# allow-list that admits it.
export PGW_JANITOR_ALLOW_CIDRS=127.0.0.0/8
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Polls "$@" every $POLL_INTERVAL seconds (default 1) until it succeeds, at most $1 times.
poll() {
  local bound=$1
  shift
  for ((i = 0; i < bound; i++)); do "$@" && return 0; sleep "${POLL_INTERVAL:-1}"; done
  return 1
}
