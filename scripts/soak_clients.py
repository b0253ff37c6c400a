#!/usr/bin/env python3
"""Soak clients for scripts/soak.sh: real HTTP pushes through the load balancer, a checker that
reads every replica, and the closing numbers. Standard library only.

push:   GROUPS groups {job="soak", instance="g<k>"}, each pushed every PERIOD seconds (jittered)
        through nginx for SECONDS, each push a text-format gauge `soak_seq <n>` (n counts up per
        group); nginx names the replica that took it (X-Upstream). Plus BATCH abandoned groups
        {job="batch"}, pushed once, for the TTL policy. Meanwhile, every CHECK seconds, the checker
        snapshots the newest acknowledged push of every group, then reads every replica: a miss is
        a replica that took a group's newest push and no longer holds it (with that seq or later).
final:  after the last sweep, reads every replica: copies older than the newest copy by more than
        the grace (+ the Date-header slack), and groups whose newest copy lost its last value.
"""
import json, os, random, sys, threading, time, urllib.request

def env(name, default):
    return type(default)(os.environ.get(name, default))

def put(url, body):
    req = urllib.request.Request(url, data=body.encode(), method="PUT",
                                 headers={"Content-Type": "text/plain; version=0.0.4"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.headers.get("X-Upstream", "")

def groups_of(replica):
    with urllib.request.urlopen(replica.rstrip("/") + "/api/v1/metrics", timeout=30) as r:
        data = json.load(r)["data"]
    out = {}
    for g in data:
        labels = g.get("labels", {})
        if labels.get("job") != "soak":
            continue
        def gauge(name):
            try:
                return float(g[name]["metrics"][0]["value"])
            except (KeyError, IndexError, TypeError, ValueError):
                return None
        out[labels.get("instance")] = (gauge("push_time_seconds"), gauge("soak_seq"))
    return out

def push(lb, replicas, state_file):
    groups, seconds, period = env("SOAK_GROUPS", 200), env("SOAK_SECONDS", 300), env("SOAK_PERIOD", 6.0)
    batch, check_every = env("SOAK_BATCH", 50), env("SOAK_CHECK", 2.0)
    workers = env("SOAK_WORKERS", 8)
    upstream_to_replica = {r.split("//")[1].rstrip("/"): r for r in replicas}
    lock = threading.Lock()
    newest = {}  # group -> (seq, replica)
    counters = {"pushes": 0, "errors": 0, "checks": 0, "misses": 0}
    lost = set()  # distinct (group, seq) whose replica lost it while it was the newest
    seq = {f"g{k}": 0 for k in range(groups)}
    end = time.time() + seconds
    for k in range(batch):
        put(f"{lb}/metrics/job/batch/instance/b{k}", "batch_done 1\n")
        counters["pushes"] += 1
    # Each group's next due time, spread over one period.
    due = {g: time.time() + random.uniform(0, period) for g in seq}
    queue_lock = threading.Lock()

    def worker(mine):
        while time.time() < end:
            now = time.time()
            ready = [g for g in mine if due[g] <= now]
            if not ready:
                time.sleep(0.02)
                continue
            for g in ready:
                with queue_lock:
                    seq[g] += 1
                    n = seq[g]
                    due[g] = now + period * random.uniform(0.5, 1.5)
                try:
                    status, upstream = put(f"{lb}/metrics/job/soak/instance/{g}",
                                           f"# TYPE soak_seq gauge\nsoak_seq {n}\n")
                    with lock:
                        counters["pushes"] += 1
                        if status in (200, 202):
                            newest[g] = (n, upstream_to_replica.get(upstream, upstream))
                        else:
                            counters["errors"] += 1
                except Exception:
                    with lock:
                        counters["errors"] += 1

    def checker():
        while time.time() < end:
            time.sleep(check_every)
            with lock:
                snapshot = dict(newest)
            held = {}
            try:
                for r in replicas:
                    held[r] = groups_of(r)
            except Exception:
                continue
            with lock:
                for g, (n, r) in snapshot.items():
                    counters["checks"] += 1
                    copy = held.get(r, {}).get(g)
                    if copy is None or copy[1] is None or copy[1] < n:
                        counters["misses"] += 1
                        lost.add((g, n))

    names = list(seq)
    threads = [threading.Thread(target=worker, args=(names[i::workers],)) for i in range(workers)]
    threads.append(threading.Thread(target=checker))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(state_file, "w") as f:
        counters["lost_pushes"] = len(lost)
        json.dump({"counters": counters, "last": {g: n for g, (n, _) in newest.items()}}, f)

def final(replicas, state_file, grace):
    state = json.load(open(state_file))
    copies = {}
    for r in replicas:
        for g, (pt, n) in groups_of(r).items():
            copies.setdefault(g, []).append((pt, n, r))
    slack = 2.0
    beyond = 0
    lost_last = 0
    for g, cs in copies.items():
        newest = max(cs, key=lambda c: c[0])
        beyond += sum(1 for c in cs if newest[0] - c[0] > grace + slack)
        if newest[1] != state["last"].get(g):
            lost_last += 1
    missing = len(set(state["last"]) - set(copies))
    print(json.dumps({"copies_beyond_grace": beyond, "groups_missing": missing,
                      "groups_newest_without_last_value": lost_last, "groups": len(copies)}))

if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "push":
        push(sys.argv[2], sys.argv[3].split(","), sys.argv[4])
    elif mode == "final":
        final(sys.argv[2].split(","), sys.argv[3], float(sys.argv[4]))
    else:
        sys.exit(f"unknown mode {mode}")
