//! Fills a Pushgateway with many groups for the read benchmark (`scripts/bench-read.sh`).
//!
//! `cargo run --release --example fill_gateway -- URL GROUPS [SERIES_PER_GROUP]`
//! Pushes `GROUPS` groups `{job="bench", instance="i-N"}`, the way batch jobs push, 64 at a time.
//! Each group holds `SERIES_PER_GROUP` series (default 11): a gauge family of all but one, and a
//! histogram, which counts as one series as the janitor counts them.

use futures::{stream, StreamExt};
use std::fmt::Write as _;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: fill_gateway URL GROUPS [SERIES_PER_GROUP]");
        std::process::exit(2);
    }
    let base = args[1].trim_end_matches('/').to_string();
    let groups: usize = args[2].parse().expect("GROUPS is a number");
    let series: usize = args
        .get(3)
        .map_or(11, |s| s.parse().expect("SERIES is a number"));
    assert!(
        series >= 1,
        "SERIES_PER_GROUP counts the histogram: at least 1"
    );
    let mut body = String::new();
    body.push_str("# TYPE bench_rows gauge\n");
    for s in 0..series - 1 {
        let _ = writeln!(
            body,
            "bench_rows{{table=\"t{s}\",stage=\"load\"}} {}",
            s * 1000 + 7
        );
    }
    body.push_str("# TYPE bench_seconds histogram\n");
    for le in ["0.1", "1", "10", "+Inf"] {
        let _ = writeln!(body, "bench_seconds_bucket{{le=\"{le}\"}} 3");
    }
    body.push_str("bench_seconds_sum 4.2\nbench_seconds_count 3\n");
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let failures = stream::iter(0..groups)
        .map(|i| {
            let url = format!("{base}/metrics/job/bench/instance/i-{i}");
            let req = http.put(url).body(body.clone()).send();
            async move { req.await.map(|r| r.status().is_success()).unwrap_or(false) }
        })
        .buffer_unordered(64)
        .filter(|ok| futures::future::ready(!ok))
        .count()
        .await;
    eprintln!(
        "pushed {} groups ({} failed) in {:.1}s",
        groups - failures,
        failures,
        started.elapsed().as_secs_f64()
    );
    if failures > 0 {
        std::process::exit(1);
    }
}
