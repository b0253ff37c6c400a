#!/usr/bin/env bash
# A real kube-apiserver (with embedded etcd) on 127.0.0.1 for tests and by-hand checks.
#
#   scripts/kube-testserver.sh start DIR   build if needed, start in the background, wait for /readyz
#   scripts/kube-testserver.sh stop DIR    SIGTERM, wait, report
#
# DIR must exist. start writes DIR/pid, DIR/kubeconfig (cluster-admin), DIR/url, and logs to
# DIR/apiserver.log, DIR/etcd.log, DIR/audit.log (every request, Metadata level, JSON lines),
# DIR/stdout, DIR/stderr. Each start is a fresh, empty cluster. See tools/kube-testserver/main.go.
# Environment: KUBE_TESTSERVER_READY_TIMEOUT (seconds, default 90), KUBE_TESTSERVER_STOP_TIMEOUT
# (seconds, default 15; then SIGKILL).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "kube-testserver.sh: $*" >&2; exit 1; }
usage() { die "usage: scripts/kube-testserver.sh start|stop DIR"; }

(($# == 2)) || usage
cmd=$1
[[ -d $2 ]] || die "$2: no such directory (create it first)"
dir=$(cd "$2" && pwd)
bin=$PWD/target/test-deps/bin/kube-testserver

# The PID in DIR/pid if that process is alive and is a kube-testserver.
running_pid() {
  local pid
  [[ -f $dir/pid ]] || return 1
  pid=$(<"$dir/pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kube-testserver' || return 1
  echo "$pid"
}

# die, after showing the end of the server's logs.
die_with_logs() {
  local f
  echo "kube-testserver.sh: $*" >&2
  for f in stderr apiserver.log; do
    if [[ -s $dir/$f ]]; then
      echo "--- last lines of $dir/$f:" >&2
      tail -n 15 "$dir/$f" | cut -c1-300 >&2
    fi
  done
  exit 1
}

case $cmd in
start)
  if pid=$(running_pid); then
    die "already running in $dir (pid $pid, $(cat "$dir/url" 2>/dev/null || echo 'not ready yet'))"
  fi
  scripts/test-deps.sh kube-testserver
  rm -f "$dir/pid" "$dir/url" "$dir/stdout" "$dir/stderr"
  # Its own session, so a Ctrl-C meant for the caller does not reach it; stdin is /dev/null, so
  # no --exit-on-stdin-close here (stop it with `stop DIR`).
  setsid "$bin" --dir "$dir" </dev/null >"$dir/stdout" 2>"$dir/stderr" &
  pid=$!
  echo "$pid" >"$dir/pid"
  timeout=${KUBE_TESTSERVER_READY_TIMEOUT:-90}
  deadline=$((SECONDS + timeout))
  until grep -q '^ready ' "$dir/stdout" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" && status=0 || status=$?
      rm -f "$dir/pid"
      die_with_logs "kube-testserver failed to start (exit status $status)"
    fi
    if ((SECONDS >= deadline)); then
      kill -TERM "$pid" 2>/dev/null || true
      rm -f "$dir/pid"
      die_with_logs "kube-testserver not ready after ${timeout}s (sent SIGTERM to pid $pid)"
    fi
    sleep 0.2
  done
  url=$(sed -n 's/^ready //p' "$dir/stdout" | head -n 1)
  echo "kube-testserver: $url (pid $pid)"
  echo "kubeconfig: $dir/kubeconfig"
  ;;
stop)
  if ! pid=$(running_pid); then
    rm -f "$dir/pid"
    echo "kube-testserver: not running in $dir"
    exit 0
  fi
  kill -TERM "$pid"
  timeout=${KUBE_TESTSERVER_STOP_TIMEOUT:-15}
  deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$dir/pid"
      die "pid $pid did not stop within ${timeout}s of SIGTERM; sent SIGKILL"
    fi
    sleep 0.1
  done
  rm -f "$dir/pid" "$dir/url"
  echo "kube-testserver: stopped (pid $pid)"
  ;;
*)
  usage
  ;;
esac
