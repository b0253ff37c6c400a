//! Presses one Pushgateway as hard as it can take with DELETEs, to measure its ceiling for
//! `scripts/bench.sh`: deletes `{job="bench", instance="i-N"}` for N below GROUPS with CLIENTS
//! requests in flight on keep-alive connections, then re-reads until the gateway has processed
//! them all (writes are queued). Prints `seconds deletes_per_second` of the whole, answered and
//! processed.
//!
//! `cargo run --release --example delete_storm -- URL GROUPS CLIENTS`
//!
//! One runtime thread, as the janitor: on a box the gateway shares, a client on one thread
//! presses harder than one on several (cross-thread wake-ups per request cost the gateway CPU);
//! on 2 cores 20 000 deletes took 0.35-0.40 s so, against 0.46-0.52 s with a worker per core.

use std::time::{Duration, Instant};

use futures::{stream, StreamExt};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: delete_storm URL GROUPS CLIENTS");
        std::process::exit(2);
    }
    let base = args[1].trim_end_matches('/').to_string();
    let groups: usize = args[2].parse().expect("GROUPS is a number");
    let clients: usize = args[3].parse().expect("CLIENTS is a number");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("a client");
    let started = Instant::now();
    let failures = stream::iter(0..groups)
        .map(|i| {
            let req = http
                .delete(format!("{base}/metrics/job/bench/instance/i-{i}"))
                .send();
            async move { req.await.map(|r| r.status().is_success()).unwrap_or(false) }
        })
        .buffer_unordered(clients)
        .filter(|ok| futures::future::ready(!ok))
        .count()
        .await;
    if failures > 0 {
        eprintln!("{failures} deletes failed");
        std::process::exit(1);
    }
    // Bounded: 600 polls of an emptying store.
    for _ in 0..600 {
        let body = http
            .get(format!("{base}/api/v1/metrics"))
            .send()
            .await
            .and_then(|r| r.error_for_status());
        let left = match body {
            Ok(r) => r
                .text()
                .await
                .map(|t| t.matches("\"i-").count())
                .unwrap_or(1),
            Err(_) => 1,
        };
        if left == 0 {
            let secs = started.elapsed().as_secs_f64();
            println!("{secs:.3} {:.0}", groups as f64 / secs);
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("the gateway did not process the deletes within the bound");
    std::process::exit(1);
}
