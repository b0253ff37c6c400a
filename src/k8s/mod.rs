//! The Kubernetes edges the sweep needs: a Service's replicas (discovery) and Secrets (a secret
//! source). The controller's own API use (watch, status, Lease) lives in `controller`.

pub mod discovery;
pub mod secrets;

pub use discovery::discover_service;
pub use secrets::KubeSecrets;
