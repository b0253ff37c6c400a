//! Every test whose outcome depends on the Pushgateway (and Prometheus) under test: one test
//! binary, one module per area of behaviour. `scripts/test.sh` runs this binary twice, with
//! Debian's Pushgateway 1.5.1 and Prometheus 2.42 and again with Pushgateway 1.11.3 and
//! Prometheus 3 (`PGW_JANITOR_TEST_PUSHGATEWAY`, `PGW_JANITOR_TEST_PROMETHEUS`): a test that
//! starts a `TestGateway` or a `TestPrometheus` belongs here, so that both versions run it.
//! `gateway_faults` (a raw-HTTP stand-in for faults a gateway cannot produce) sits with the
//! gateway client it tests; it takes seconds.
//!
//! One binary instead of one per file: each test binary links the crate and the harness, which
//! was most of a cold `cargo test` on two cores. Tests of one binary share a process: nothing
//! here sets a process-wide environment variable (children get theirs on their `Command`), and
//! the heaviest tests take `common::heavy()` so that no two of them run at once.

// The shared harness, `tests/common/`; `pub`, as its module doc explains.
#[path = "../common/mod.rs"]
pub mod common;

mod auth_tls;
mod bad_input;
mod dashboard;
mod delete_log;
mod discovery;
mod faults_gateway;
mod faults_prometheus;
mod faults_stalls;
mod gateway_client;
mod gateway_faults;
mod harness_facts;
mod inspect;
mod metric_kinds;
mod progress;
mod read_light;
mod read_memory_limit;
mod run_policies;
mod run_reload;
mod selector_prometheus3;
mod soak_short;
mod sweep_cli;
mod utf8_names;
mod version_facts;
