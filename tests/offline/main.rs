//! What depends on no gateway under test: the repository's generated and published files (the
//! CRD, the alert rules with Debian's `promtool`, the release's versions with Helm's SDK), the
//! parsers fuzzed, `validate` with no network, and `scripts/demo.sh` (which starts Debian's own
//! Pushgateway and Prometheus, whatever `PGW_JANITOR_TEST_*` names). Run once, with the default
//! binaries.

// The shared harness, `tests/common/`; `pub`, as its module doc explains.
#[path = "../common/mod.rs"]
pub mod common;

mod alerts;
mod crd;
mod demo_script;
mod fuzz_inputs;
mod release;
mod validate;
