#!/usr/bin/env bash
# A one-node Kubernetes cluster on this machine, for tests and by-hand checks: kube-apiserver with
# etcd (tools/kube-testserver --node-ip), kube-controller-manager, kube-scheduler, kube-proxy
# (iptables) and a kubelet (tools/kube-node) driving Debian's containerd with runc, pods on a CNI
# bridge with no route off the machine.
#
#   scripts/kube-testcluster.sh start DIR   build what is missing, start everything, wait until the
#                                           node is Ready and the `default` ServiceAccount exists
#   scripts/kube-testcluster.sh stop DIR    stop everything, remove every pod, mount, bridge,
#                                           cgroup and iptables chain start made
#
# start prints the API server's URL, writes DIR/kubeconfig (cluster-admin), DIR/url and DIR/pid
# (one "NAME PID" line per process it started), and imports into containerd: the sandbox image
# (localhost/kube-testcluster/pause:1, built here), the janitor's image under the name the chart
# pulls by default (ghcr.io/pgw-janitor/pushgateway-janitor:<appVersion>, from target/image/, see
# scripts/image.sh), the Pushgateway and the Prometheus (built with Kubernetes discovery) of
# target/test-deps/bin as localhost/kube-testcluster/pushgateway:<version> and
# localhost/kube-testcluster/prometheus:<version>, and every docker/OCI archive named in
# KUBE_TESTCLUSTER_IMAGES (space separated). Logs:
# DIR/logs/. The API server listens on the bridge's address, which pods reach directly and through
# the `kubernetes` Service (kube-proxy). Needs root (scripts/test-deps.sh installs the packages).
#
# Environment: KUBE_TESTCLUSTER_BRIDGE (kp0), KUBE_TESTCLUSTER_POD_CIDR (10.244.0.0/24; the bridge
# takes .1), KUBE_TESTCLUSTER_NODE (node name, kube-testcluster), KUBE_TESTCLUSTER_READY_TIMEOUT
# (seconds, 180). One cluster per bridge name and pod range at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

die() { echo "kube-testcluster.sh: $*" >&2; exit 1; }
(($# == 2)) || die "usage: scripts/kube-testcluster.sh start|stop DIR"
cmd=$1
[[ -d $2 ]] || die "$2: no such directory (create it first)"
DIR=$(cd "$2" && pwd)
BIN=$ROOT/target/test-deps/bin
BRIDGE=${KUBE_TESTCLUSTER_BRIDGE:-kp0}
POD_CIDR=${KUBE_TESTCLUSTER_POD_CIDR:-10.244.0.0/24}
NODE=${KUBE_TESTCLUSTER_NODE:-kube-testcluster}
GW=${POD_CIDR%.*/*}.1
SERVICE_CIDR=10.0.0.0/24 # what kube-testserver gives the API server
# The kubelet's pods go under a cgroup of our own, so stop removes exactly ours.
CGROUP=kube-testcluster-$BRIDGE
SANDBOX_IMAGE=localhost/kube-testcluster/pause:1
SOCK=$DIR/containerd/containerd.sock
KUBECTL=(kubectl --kubeconfig "$DIR/kubeconfig")

log() { echo "kube-testcluster: $*"; }
tail_log() {
  if [[ -s $DIR/logs/$1.log ]]; then
    { echo "--- last lines of logs/$1.log:"; tail -n 15 "$DIR/logs/$1.log" | cut -c1-300; } >&2
  fi
}

free_port() { python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$1"; }

# Starts "$@" in its own session with its output in logs/NAME.log and records it in DIR/pid.
spawn() {
  local name=$1
  shift
  setsid "$@" </dev/null >>"$DIR/logs/$name.log" 2>&1 &
  echo "$name $!" >>"$DIR/pid"
}

# The PID recorded for NAME if that process is still the one we started (its cmdline names it).
pid_of() {
  local pid
  pid=$(awk -v n="$1" '$1 == n { print $2 }' "$DIR/pid" 2>/dev/null | tail -n 1)
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2" || return 1
  echo "$pid"
}

# Waits up to $2 seconds for `$3...` to succeed; dies naming $1 and its log otherwise.
wait_for() {
  local what=$1 secs=$2 deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { tail_log "${what%% *}"; die "$what: not ready after ${secs}s"; }
    sleep 0.5
  done
}

# Kills NAME (pattern $2 must be in its cmdline) with SIGTERM, SIGKILL after $3 seconds.
stop_one() {
  local name=$1 pid deadline
  pid=$(pid_of "$name" "$2") || return 0
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + $3))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "$name (pid $pid) ignored SIGTERM for $3s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  log "stopped $name (pid $pid)"
}

# A one-layer docker archive (for `ctr import`) named $1 whose entrypoint is the program $2, put at
# /$(basename $2) with the shared libraries `ldd` lists for it: no registry is reachable, so the
# images the cluster runs are made here from programs of this machine. Prints the archive's path.
image_archive() {
  local name=$1 prog=$2 w cfg layer lib
  w=$DIR/images/$(basename "$prog").d
  rm -rf "$w" && mkdir -p "$w/rootfs" "$w/img"
  cp "$prog" "$w/rootfs/"
  for lib in $(ldd "$prog" 2>/dev/null | grep -o '/[^ ]*' || true); do
    mkdir -p "$w/rootfs$(dirname "$lib")"
    cp -L "$lib" "$w/rootfs$lib"
  done
  tar -C "$w/rootfs" --owner=0 --group=0 --mtime=@0 -cf "$w/layer.tar" .
  layer=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
  printf '{"architecture":"%s","os":"linux","config":{"Entrypoint":["/%s"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$(dpkg --print-architecture)" "$(basename "$prog")" "$layer" >"$w/config.json"
  cfg=$(sha256sum "$w/config.json" | cut -d' ' -f1)
  mkdir -p "$w/img/$layer"
  mv "$w/layer.tar" "$w/img/$layer/layer.tar"
  mv "$w/config.json" "$w/img/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg" "$name" "$layer" >"$w/img/manifest.json"
  tar -C "$w/img" -cf "$w/image.tar" .
  rm -rf "$w/rootfs" "$w/img"
  echo "$w/image.tar"
}

# The program every pod's sandbox runs: waits for a signal, reaps children. Built from source here
# (static), since containerd's usual sandbox image is pulled from a registry.
pause_binary() {
  mkdir -p "$DIR/images"
  cat >"$DIR/images/pause.c" <<'EOF'
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGINT, quit);
  signal(SIGTERM, quit);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
EOF
  gcc -static -Os -s -o "$DIR/images/pause" "$DIR/images/pause.c"
  echo "$DIR/images/pause"
}

write_configs() {
  mkdir -p "$DIR/containerd" "$DIR/cni/net.d" "$DIR/kubelet" "$DIR/logs"
  cat >"$DIR/containerd/config.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$SANDBOX_IMAGE"
  # No CAP_SYS_RESOURCE here: the sandbox's -998 OOM score cannot be set, runc would fail.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
EOF
  # No default route and no masquerade: a pod reaches its bridge (and through it this machine) and
  # the Service range (kube-proxy's rules), nothing else.
  cat >"$DIR/cni/net.d/10-kube-testcluster.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "kube-testcluster", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$DIR/cni/ipam",
            "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$GW"}]],
            "routes": [{"dst": "$SERVICE_CIDR"}]}}]}
EOF
  cat >"$DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$SOCK
address: $GW
port: $(free_port "$GW")
readOnlyPort: 0
healthzPort: 0
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
# The disk of these machines is fuller than the defaults allow: no eviction, no image GC (the
# imported images cannot be pulled again).
evictionHard: {}
imageGCHighThresholdPercent: 100
enforceNodeAllocatable: []
podLogsDir: $DIR/kubelet/pod-logs
EOF
  cat >"$DIR/proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $DIR/kubeconfig}
hostnameOverride: $NODE
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:$(free_port 127.0.0.1)
metricsBindAddress: 127.0.0.1:$(free_port 127.0.0.1)
nodePortAddresses: ["$GW/32"]
# No sysctl changes on this machine: no route_localnet, no conntrack table sizing.
iptables: {localhostNodePorts: false}
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
oomScoreAdj: 0
EOF
}

start() {
  if pid_of kube-testserver kube-testserver >/dev/null; then
    die "a cluster is already running in $DIR (stop it first)"
  fi
  ((EUID == 0)) || die "needs root (containerd, the kubelet, a bridge, iptables)"
  local t
  for t in containerd ctr runc iptables conntrack gcc kubectl ip; do
    command -v "$t" >/dev/null || die "$t is missing: run 'bash scripts/test-deps.sh' as root"
  done
  [[ -x /usr/lib/cni/bridge ]] || die "/usr/lib/cni/bridge is missing: apt-get install containernetworking-plugins"
  ip link show "$BRIDGE" >/dev/null 2>&1 && die "bridge $BRIDGE exists already (another cluster? KUBE_TESTCLUSTER_BRIDGE picks another)"
  local version
  version=$(awk -F'"' '/^appVersion:/ { print $2 }' charts/pushgateway-janitor/Chart.yaml)
  local janitor=target/image/pushgateway-janitor-$version.oci.tar
  [[ -f $janitor ]] || die "$janitor is missing: run 'bash scripts/image.sh'"
  scripts/test-deps.sh kube-testserver kube-node pushgateway prometheus

  # A start that fails half way takes down what it started.
  trap 'if (($?)); then log "start failed; stopping what it started"; stop; fi' EXIT
  local t0=$SECONDS
  rm -rf "$DIR/pid" "$DIR/url" "$DIR/kubeconfig" "$DIR/logs"
  mkdir -p "$DIR/logs" "$DIR/apiserver"
  iptables-save >"$DIR/iptables.before"
  # The pods' network namespaces are containerd's, named cni-<uuid>; these were there before.
  ls /var/run/netns >"$DIR/netns.before" 2>/dev/null || true
  ip6tables-save >"$DIR/ip6tables.before" 2>/dev/null || true

  # The bridge first: the API server listens on its address.
  ip link add "$BRIDGE" type bridge
  echo "bridge $BRIDGE" >>"$DIR/made"
  ip addr add "$GW/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up

  # The API server reaches the kubelet (kubectl logs, exec) at the node's address, not its name.
  spawn kube-testserver "$BIN/kube-testserver" --dir "$DIR/apiserver" --node-ip "$GW" \
    -- --kubelet-preferred-address-types=InternalIP
  wait_for "kube-testserver (logs/kube-testserver.log, apiserver/apiserver.log)" 120 grep -q '^ready ' "$DIR/logs/kube-testserver.log"
  local url
  url=$(sed -n 's/^ready //p' "$DIR/logs/kube-testserver.log" | head -n 1)
  cp "$DIR/apiserver/kubeconfig" "$DIR/kubeconfig"
  echo "$url" >"$DIR/url"

  write_configs
  local c
  for c in /sys/fs/cgroup/*/; do
    if mkdir -p "$c$CGROUP" 2>/dev/null; then echo "cgroup $c$CGROUP" >>"$DIR/made"; fi
  done

  spawn containerd containerd --config "$DIR/containerd/config.toml"
  wait_for "containerd" 30 ctr --address "$SOCK" version
  local a pgw_version prom_version
  pgw_version=$(sed -n 's/^version //p' target/test-deps/stamps/pushgateway)
  prom_version=$(sed -n 's/^version //p' target/test-deps/stamps/prometheus)
  for a in "$(image_archive "$SANDBOX_IMAGE" "$(pause_binary)")" "$janitor" \
    "$(image_archive "localhost/kube-testcluster/pushgateway:$pgw_version" "$BIN/pushgateway")" \
    "$(image_archive "localhost/kube-testcluster/prometheus:$prom_version" "$BIN/prometheus")" \
    ${KUBE_TESTCLUSTER_IMAGES:-}; do
    ctr --address "$SOCK" -n k8s.io images import "$a" >/dev/null
  done

  local pki=$DIR/apiserver/pki
  spawn controller-manager "$BIN/kube-node" controller-manager --kubeconfig "$DIR/kubeconfig" \
    --secure-port 0 --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-cidr "$POD_CIDR" --service-cluster-ip-range "$SERVICE_CIDR"
  spawn scheduler "$BIN/kube-node" scheduler --kubeconfig "$DIR/kubeconfig" --secure-port 0 --leader-elect=false
  spawn proxy "$BIN/kube-node" proxy --config "$DIR/proxy.yaml"
  spawn kubelet "$BIN/kube-node" kubelet --config "$DIR/kubelet/config.yaml" \
    --kubeconfig "$DIR/kubeconfig" --root-dir "$DIR/kubelet/root" --cert-dir "$DIR/kubelet/pki" \
    --hostname-override "$NODE" --node-ip "$GW"

  local timeout=${KUBE_TESTCLUSTER_READY_TIMEOUT:-180}
  wait_for "kubelet (node $NODE Ready)" "$timeout" node_ready
  wait_for "controller-manager (ServiceAccount default/default)" "$timeout" "${KUBECTL[@]}" get serviceaccount default -n default
  trap - EXIT
  log "ready in $((SECONDS - t0))s: $url (node $NODE, pods on $BRIDGE $POD_CIDR)"
  echo "kubeconfig: $DIR/kubeconfig"
}

# The chains and rules of iptables-save output, without counters.
rules() { sed -n 's/^\(:[^ ]*\) .*/\1/p; /^-A /p'; }

node_ready() {
  [[ $("${KUBECTL[@]}" get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

# Removes the iptables chains named KUBE-* (kube-proxy's and the kubelet's) that were not there
# before start, with the jumps to them.
drop_kube_chains() {
  local tool=$1 table rule chain before=$DIR/$1.before
  for table in filter nat mangle; do
    "$tool" -t "$table" -S >/dev/null 2>&1 || continue
    { "$tool" -t "$table" -S | grep -E '^-A [A-Z]+ .*-j KUBE-' | grep -Ev '^-A KUBE-' || true; } | while read -r rule; do
      eval "\"$tool\" -t $table ${rule/-A/-D}" || true
    done
    local ours=()
    for chain in $("$tool" -t "$table" -S | awk '$1 == "-N" && $2 ~ /^KUBE-/ { print $2 }'); do
      grep -q "^:$chain " "$before" 2>/dev/null || ours+=("$chain")
    done
    for chain in "${ours[@]}"; do "$tool" -t "$table" -F "$chain" || true; done
    for chain in "${ours[@]}"; do "$tool" -t "$table" -X "$chain" || true; done
  done
}

stop() {
  [[ -f $DIR/pid || -f $DIR/made ]] || { log "nothing started in $DIR"; return 0; }
  # Every step runs even when one before it failed (a full disk, a process already gone): the
  # point of stop is to leave nothing behind.
  set +e
  # Nothing may recreate or reschedule pods while they go, so the controllers stop first.
  stop_one controller-manager "kube-node controller-manager" 15
  stop_one scheduler "kube-node scheduler" 15
  stop_one kubelet "kube-node kubelet" 30
  local cri_failed=""
  if ! pid_of containerd "containerd --config $DIR" >/dev/null ||
    ! "$BIN/kube-node" remove-pods --endpoint "unix://$SOCK" >>"$DIR/logs/remove-pods.log" 2>&1; then
    cri_failed=1
    log "pods not removed through CRI (logs/remove-pods.log); removing what is left by hand"
  fi
  # What CRI could not remove: the pods' processes are in our cgroup, so they are ours.
  local pid
  while read -r pid; do
    log "killing leftover pod process $pid"
    kill -KILL "$pid" 2>/dev/null
  done < <(find /sys/fs/cgroup/pids/"$CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null)
  stop_one containerd "containerd --config $DIR" 15
  # A shim outlives containerd; ours name our socket.
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $SOCK" || true); do
    log "killing leftover shim $pid"
    kill -KILL "$pid" 2>/dev/null || true
  done
  stop_one proxy "kube-node proxy" 15
  if [[ -x $BIN/kube-node ]]; then
    "$BIN/kube-node" proxy --cleanup >>"$DIR/logs/proxy-cleanup.log" 2>&1 || true
  fi
  drop_kube_chains iptables
  drop_kube_chains ip6tables
  stop_one kube-testserver "kube-testserver --dir $DIR/apiserver" 20

  # Mounts under DIR (pod volumes, the sandboxes' shm, snapshots), deepest first.
  local m
  awk -v d="$DIR/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || { log "could not unmount $m"; touch "$DIR/.left"; }
  done
  # Network namespaces of pods CRI could not remove: containerd's (cni-*) that appeared since start.
  local ns
  if [[ -n $cri_failed && -f $DIR/netns.before ]]; then
    for ns in /var/run/netns/cni-*; do
      [[ -e $ns ]] || continue
      grep -qx "${ns##*/}" "$DIR/netns.before" || ip netns delete "${ns##*/}"
    done
  fi
  local kind what
  if [[ -f $DIR/made ]]; then
    tac "$DIR/made" | while read -r kind what; do
      case $kind in
      bridge)
        # The pods' veths on it (left only when CRI could not tear the pods down), then it.
        local veth
        for veth in $(ip -o link show master "$what" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
          ip link del "$veth" 2>/dev/null
        done
        ip link del "$what" 2>/dev/null || true
        ;;
      cgroup) find "$what" -depth -type d -exec rmdir {} + 2>/dev/null || { sleep 1; find "$what" -depth -type d -exec rmdir {} + 2>/dev/null; } || { log "cgroup $what not empty"; touch "$DIR/.left"; } ;;
      esac
    done
  fi
  rm -f "$DIR/pid" "$DIR/made" "$DIR/url"
  # What is left that start did not find: chains and rules (not counters or empty tables).
  local left
  if [[ -f $DIR/iptables.before ]]; then
    left=$(diff <(rules <"$DIR/iptables.before") <(iptables-save | rules) | grep '^>' || true)
    [[ -z $left ]] || { log "iptables rules left that were not there before start:"; echo "$left" >&2; touch "$DIR/.left"; }
  fi
  if [[ -e $DIR/.left ]]; then
    rm -f "$DIR/.left"
    log "stopped, but something was left (above)"
    return 1
  fi
  log "stopped"
}

case $cmd in
start) start ;;
stop) stop ;;
*) die "usage: scripts/kube-testcluster.sh start|stop DIR" ;;
esac
