//! A real nginx (Debian's package) on a loopback port, for what a load balancer or a proxy in
//! front of Prometheus or a gateway does: round-robin, a redirect, an API it does not offer.

use std::process::Command;
use std::time::Duration;

use super::free_port;
use super::process::{Proc, StartError};

/// One running nginx. Dropping it kills the master process (by PID) and removes its temp dir;
/// `master_process off` keeps it a single process, so that PID is all there is.
pub struct TestNginx {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    pub port: u16,
    /// Held only so that dropping the `TestNginx` kills nginx.
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl TestNginx {
    /// Starts nginx with `server_body` (directives inside `server { ... }`, after its `listen`)
    /// and `http_extra` (directives inside `http { ... }`, e.g. `upstream` blocks), and waits
    /// (bounded) until it answers anything on `/`.
    pub fn start(http_extra: &str, server_body: &str) -> TestNginx {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("nginx is not installed: run `bash scripts/test-deps.sh` (Debian's nginx)");
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("pgw-test-nginx-")
                .tempdir()
                .expect("create temp dir");
            let port = free_port();
            let d = dir.path().display();
            let config = format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
                 error_log {d}/error.log info;\nevents {{ worker_connections 256; }}\n\
                 http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
                 proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
                 uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  {http_extra}\n  \
                 server {{\n    listen 127.0.0.1:{port};\n    {server_body}\n  }}\n}}\n"
            );
            let path = dir.path().join("nginx.conf");
            std::fs::write(&path, config).expect("write nginx.conf");
            let mut cmd = Command::new(binary);
            cmd.arg("-c").arg(&path).arg("-p").arg(dir.path());
            let mut proc = Proc::spawn("nginx", cmd, &dir.path().join("nginx.log"));
            let addr = format!("127.0.0.1:{port}");
            match proc.wait_ready(&addr, "/", Duration::from_secs(20), true) {
                Ok(()) => {
                    return TestNginx {
                        url: format!("http://{addr}"),
                        port,
                        _proc: proc,
                        _dir: dir,
                    }
                }
                Err(StartError::PortTaken) => continue,
            }
        }
        panic!("nginx: no free port after 5 attempts");
    }

    /// What nginx logged about requests it served.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("access.log")).unwrap_or_default()
    }
}
