//! What a read keeps per group, counted by the allocator (issue 10: "a kept group costs at most
//! 300 bytes on top of its key's own characters"). A counting global allocator sees every heap
//! byte of this test binary; `Gateway::read_json` reads a generated `/api/v1/metrics` body shaped
//! like a real gateway's (Go's sorted keys, a gauge family, a histogram, long-ish instance names),
//! and `Gateway::read` the same store as `/metrics` text, from a local HTTP server (a generated
//! body of 20 000 groups: a real gateway would take minutes to fill), exactly as they read a
//! replica. Memory only: no timing here (`scripts/bench-read.sh` measures time and RSS on a real
//! gateway; `tests/gateway/read_memory_limit.rs` runs a real gateway under a memory limit).

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use pushgateway_janitor::gateway::Gateway;
use pushgateway_janitor::model::{Naming, Snapshot, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Live heap bytes, and the most there ever were since the last `reset_peak`.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grow(n: usize) {
    let live = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(live, Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, size) };
        if !q.is_null() {
            // Counted as the old block freed and the new one taken; a copying realloc briefly
            // holds both, which the peak margin below allows for.
            LIVE.fetch_sub(layout.size(), Relaxed);
            grow(size);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const GROUPS: usize = 20_000;
const JOBS: usize = 10;
/// Pushed series per group: a gauge family of 10 and a histogram, as `bench-read.sh` pushes.
const GAUGES: usize = 10;
/// What a read may hold besides the groups while it runs: read buffers, the connection, the
/// runtime. The body itself (tens of MB here) must never be held.
const READ_MARGIN: usize = 4 << 20;

fn instance(i: usize) -> String {
    format!(
        "ip-10-{}-{}-{}.eu-west-1.compute.internal:9102",
        i % 7,
        (i / 7) % 256,
        i / 1792
    )
}

fn job(i: usize) -> String {
    format!("nightly-batch-export-{}", i % JOBS)
}

/// One group as Pushgateway 1.5.1 writes it: keys sorted, the gateway's own families last.
fn group(out: &mut String, i: usize) {
    let (job, instance) = (job(i), instance(i));
    let key = format!(r#"{{"instance":"{instance}","job":"{job}"}}"#);
    let stamp = r#""time_stamp":"2026-12-02T00:51:05.573679681Z""#;
    let series = |extra: &str| format!(r#"{{"instance":"{instance}","job":"{job}"{extra}}}"#);
    write!(
        out,
        r#"{{"bench_rows":{{{stamp},"type":"GAUGE","help":"rows","metrics":["#
    )
    .unwrap();
    for s in 0..GAUGES {
        let sep = if s > 0 { "," } else { "" };
        let labels = series(&format!(r#","stage":"load","table":"t{s}""#));
        write!(
            out,
            r#"{sep}{{"labels":{labels},"value":"{}"}}"#,
            s * 1000 + 7
        )
        .unwrap();
    }
    write!(
        out,
        r#"]}},"bench_seconds":{{{stamp},"type":"HISTOGRAM","help":"seconds","metrics":[{{"buckets":{{"+Inf":"3","0.1":"3","1":"3","10":"3"}},"count":"3","labels":{},"sum":"4.2"}}]}},"#,
        series("")
    )
    .unwrap();
    write!(
        out,
        r#""labels":{key},"last_push_successful":true,"push_failure_time_seconds":{{{stamp},"type":"GAUGE","help":"failed","metrics":[{{"labels":{},"value":"0"}}]}},"push_time_seconds":{{{stamp},"type":"GAUGE","help":"succeeded","metrics":[{{"labels":{},"value":"1.7966{i:06}e+09"}}]}}}}"#,
        series(""),
        series("")
    )
    .unwrap();
}

fn body() -> String {
    let mut out = String::from(r#"{"status":"success","data":["#);
    for i in 0..GROUPS {
        if i > 0 {
            out.push(',');
        }
        group(&mut out, i);
    }
    out.push_str("]}");
    out
}

/// The same store as `/metrics` text, as 1.11.3 writes it: families sorted by name, each group's
/// key on its push times with `instance` always shown.
fn text_body() -> String {
    let mut out = String::new();
    let series = |i: usize, extra: &str| {
        format!(r#"{{instance="{}",job="{}"{extra}}}"#, instance(i), job(i))
    };
    out.push_str(
        "# HELP bench_rows rows
# TYPE bench_rows gauge
",
    );
    for i in 0..GROUPS {
        for s in 0..GAUGES {
            let labels = series(i, &format!(r#",stage="load",table="t{s}""#));
            writeln!(out, "bench_rows{labels} {}", s * 1000 + 7).unwrap();
        }
    }
    out.push_str(
        "# HELP bench_seconds seconds
# TYPE bench_seconds histogram
",
    );
    for i in 0..GROUPS {
        for le in ["0.1", "1", "10", "+Inf"] {
            writeln!(
                out,
                "bench_seconds_bucket{} 3",
                series(i, &format!(r#",le="{le}""#))
            )
            .unwrap();
        }
        writeln!(out, "bench_seconds_sum{} 4.2", series(i, "")).unwrap();
        writeln!(out, "bench_seconds_count{} 3", series(i, "")).unwrap();
    }
    out.push_str(
        "# HELP push_failure_time_seconds failed
# TYPE push_failure_time_seconds gauge
",
    );
    for i in 0..GROUPS {
        writeln!(out, "push_failure_time_seconds{} 0", series(i, "")).unwrap();
    }
    out.push_str(
        "# HELP push_time_seconds succeeded
# TYPE push_time_seconds gauge
",
    );
    for i in 0..GROUPS {
        writeln!(out, "push_time_seconds{} 1.7966{i:06}e+09", series(i, "")).unwrap();
    }
    out
}

/// Serves `body` to every connection as the gateway answers (JSON, or text), until the test ends.
async fn serve(body: Arc<String>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = conn.read(&mut request).await;
                let content_type = if body.starts_with('{') {
                    "application/json"
                } else {
                    "text/plain; version=0.0.4; charset=utf-8; escaping=allow-utf-8"
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nDate: {}\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    httpdate::fmt_http_date(std::time::SystemTime::now()),
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(body.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/")
}

/// One test for both reads: the allocator's counts are the whole binary's, so two tests running
/// at once would count each other's bytes.
#[test]
fn a_kept_group_costs_at_most_300_bytes_beyond_its_own_key_characters_in_either_read() {
    kept_group_cost(Source::Json);
    kept_group_cost(Source::Metrics);
}

fn kept_group_cost(source: Source) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = Arc::new(match source {
        Source::Json => body(),
        Source::Metrics => text_body(),
    });
    let url = runtime.block_on(serve(body.clone()));
    let gateway = Gateway::new(
        url.parse().unwrap(),
        reqwest::Client::new(),
        Duration::from_secs(60),
    );
    let read = || -> Snapshot {
        let snapshot = runtime.block_on(async {
            match source {
                Source::Json => gateway.read_json(None, Naming::Legacy).await,
                Source::Metrics => gateway.read(None, Naming::Legacy).await,
            }
        });
        let snapshot = snapshot.expect("read");
        assert_eq!(snapshot.source, source);
        snapshot
    };
    // A first read warms up what stays whatever is read (the connection pool, the runtime).
    drop(read());

    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let snapshot = read();
    let peak = PEAK.load(Relaxed) - before;
    let with = LIVE.load(Relaxed);
    assert_eq!(snapshot.groups.len(), GROUPS);
    assert!(snapshot.unkeyed.is_empty());
    // Every group read, with its key, push time and series count.
    for (i, g) in snapshot.groups.iter().enumerate() {
        assert_eq!(g.labels.get("job"), Some(job(i).as_str()));
        assert_eq!(g.labels.get("instance"), Some(instance(i).as_str()));
        assert_eq!(
            g.push_time,
            format!("1.7966{i:06}e+09").parse::<f64>().unwrap()
        );
        let series = (source == Source::Json).then_some(GAUGES as u64 + 1);
        assert_eq!(g.series, series, "only the JSON API counts series");
    }

    // Label names and job names are one copy each, shared by every group.
    let first = &snapshot.groups[0].labels;
    for g in &snapshot.groups[JOBS..] {
        for ((name, _), (first_name, _)) in g.labels.iter().zip(first.iter()) {
            assert!(std::ptr::eq(name, first_name), "label name {name:?} copied");
        }
    }
    for (g, twin) in snapshot.groups.iter().zip(&snapshot.groups[JOBS..]) {
        let (job, twin_job) = (
            g.labels.get("job").unwrap(),
            twin.labels.get("job").unwrap(),
        );
        assert!(std::ptr::eq(job, twin_job), "job name {job:?} copied");
    }

    // What the snapshot holds is what goes when it is dropped.
    let own_chars: usize = snapshot
        .groups
        .iter()
        .map(|g| g.labels.get("instance").unwrap().len())
        .sum();
    drop(snapshot);
    let kept = with - LIVE.load(Relaxed);
    let per_group = (kept - own_chars) as f64 / GROUPS as f64;
    eprintln!(
        "{} read, {GROUPS} groups, body {} MiB: kept {kept} bytes, {per_group:.1} per group beyond their \
         own {own_chars} key characters; peak while reading {peak} bytes",
        source.as_str(),
        body.len() >> 20
    );
    assert!(
        kept <= GROUPS * 300 + own_chars,
        "{per_group:.1} bytes per group beyond its own key characters"
    );
    // Streamed: the read never held more than the groups and its buffers, never the body.
    assert!(body.len() > 10 * READ_MARGIN);
    assert!(
        peak <= kept + READ_MARGIN,
        "peak {peak} bytes while reading, {kept} kept"
    );
}
