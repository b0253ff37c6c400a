//! End-to-end tests of `pushgateway-janitor controller` against the real kube-apiserver (with
//! etcd: `target/test-deps/bin/kube-testserver`, built by `bash scripts/test-deps.sh`), real
//! Pushgateways and a real Prometheus. One API server for this test binary, started on first
//! use; a fresh namespace per test. What each module proves is said at its top; the chart's RBAC
//! (`controller_rbac`) has an API server of its own, since its controller watches every namespace.
//! `setup` and `fixtures` are shared with `controller_rbac` (and `setup` with `tests/image.rs`,
//! which is why these files stay in `tests/controller_e2e/`).
//!
//! Every process is killed by its own handle on drop; every wait is bounded; only 127.0.0.1.

#[path = "../controller_e2e/admission.rs"]
mod admission;
#[path = "../controller_e2e/apply.rs"]
mod apply;
#[path = "../controller_e2e/backoff.rs"]
mod backoff;
#[path = "../controller_e2e/crd.rs"]
mod crd;
#[path = "../controller_e2e/egress.rs"]
mod egress;
#[path = "../controller_e2e/fixtures.rs"]
pub mod fixtures;
#[path = "../controller_e2e/leader.rs"]
mod leader;
#[path = "../controller_e2e/leader_faults.rs"]
mod leader_faults;
#[path = "../controller_e2e/lifecycle.rs"]
mod lifecycle;
#[path = "../controller_e2e/setup.rs"]
pub mod setup;
#[path = "../controller_e2e/sources.rs"]
mod sources;
#[path = "../controller_e2e/stall_proxy.rs"]
mod stall_proxy;
#[path = "../controller_e2e/sweeps.rs"]
mod sweeps;
#[path = "../controller_e2e/undecodable.rs"]
mod undecodable;
