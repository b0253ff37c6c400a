//! The image users pull, run as the chart runs it (`tests/common/container.rs`: uid and gid
//! 65532, runAsNonRoot, a read-only root, every capability dropped, no privilege escalation, the
//! runtime's default seccomp profile, all read from the chart's `values.yaml`), on the host's
//! network, against real programs on loopback:
//!
//! - `runs`: what the image is (its user, entrypoint, version, the OCI archive) and the one-shot
//!   commands: `sweep` against real gateways found through a real Prometheus, `validate` on a
//!   mounted folder as docs/cli.md's CI recipe runs it.
//! - `in_cluster`: `controller` with in-cluster config only (the ServiceAccount token, `ca.crt`
//!   and `namespace` mounted where the kubelet mounts them, `KUBERNETES_SERVICE_HOST`/`_PORT` at
//!   the real kube-apiserver, the chart's RBAC applied, the token minted by TokenRequest), its
//!   probes, a token rotated while it runs, time zones from the image's tz database, and SIGTERM.
//!
//! Build the image first: `bash scripts/image.sh` (scripts/test.sh does). Without podman or the
//! image every test fails saying which is missing.

pub mod common;

// The controller scenarios' policies, conditions and serial lock; `pub`, as this binary uses a
// part of them.
#[path = "controller_e2e/setup.rs"]
pub mod setup;

#[path = "image/in_cluster.rs"]
mod in_cluster;
#[path = "image/pod.rs"]
mod pod;
#[path = "image/runs.rs"]
mod runs;
