//! The exit codes of a one-shot sweep (README, "Report and exit codes"): the bottom of the
//! house, since an error decides its own code.

/// Every replica was handled.
pub const OK: i32 = 0;
/// A remote failed: discovery (Prometheus, the Kubernetes API), or some replica (the others
/// were still handled).
pub const REPLICA_FAILED: i32 = 1;
/// The user's input: bad flags, a bad policy, a missing or bad file or Secret; refused
/// before anything was touched.
pub const USAGE: i32 = 2;
/// A guard aborted the run before the first delete.
pub const GUARD: i32 = 3;
/// The janitor itself could not start: it cannot listen on its address, install a signal
/// handler, or build its Kubernetes client.
pub const STARTUP: i32 = 4;
