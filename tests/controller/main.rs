//! The Kubernetes controller: its reconcile at request level (`controller_reconcile`, a
//! `tower-test` mock API and real gateways) and the `controller` command against the real
//! kube-apiserver with etcd (`target/test-deps/bin/kube-testserver`). One API server for this
//! binary, shared by its tests (a namespace each); a test that would disturb the others (an API
//! server restart, a controller over every namespace) starts one of its own
//! (`common::k8s::OwnServer`). These tests sweep real gateways too, so `scripts/test.sh` runs this
//! binary with both gateway versions, as it runs `gateway`.

// The shared harness, `tests/common/`; `pub`, as its module doc explains.
#[path = "../common/mod.rs"]
pub mod common;

pub mod controller_e2e;
mod controller_rbac;
mod controller_reconcile;
mod controller_restart;
