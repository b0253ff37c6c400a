//! Spawning the real programs: one child per struct, killed by its own PID on drop, its output in a
//! log file so a failure can show what the program said.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A child process that is killed (by PID, SIGKILL) and reaped when dropped.
pub struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    /// Held open for programs that exit when their stdin closes; dropped with the `Proc`.
    stdin: Option<ChildStdin>,
    exit: Option<ExitStatus>,
}

/// Why a program did not become ready.
pub enum StartError {
    /// It exited because its port was taken between `free_port()` and its bind: try another port.
    PortTaken,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, cmd: Command, log: &Path) -> Proc {
        Self::spawn_with(name, cmd, log, false)
    }

    /// Like [`Proc::spawn`], with the child's stdin a pipe this `Proc` keeps open: a program
    /// started with an exit-on-stdin-close flag then dies with the test process, however it ends.
    pub fn spawn_holding_stdin(name: &str, cmd: Command, log: &Path) -> Proc {
        Self::spawn_with(name, cmd, log, true)
    }

    fn spawn_with(name: &str, mut cmd: Command, log: &Path, hold_stdin: bool) -> Proc {
        let out = File::create(log).expect("create log file");
        let err = out.try_clone().expect("clone log file handle");
        cmd.stdin(if hold_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {name} ({:?}): {e}", cmd.get_program()));
        Proc {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child: Some(child),
            log: log.to_path_buf(),
            exit: None,
        }
    }

    /// The exit status once the child has exited (reaping it), else `None`.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.exit = Some(status);
                self.child = None;
            }
        }
        self.exit
    }

    /// Sends `SIGTERM` to this child's PID only (`kill -TERM <pid>`), the graceful stop.
    pub fn terminate(&mut self) {
        self.signal("TERM");
    }

    /// Sends `SIG<name>` (`TERM`, `HUP`) to this child's PID only, unless it has exited.
    pub fn signal(&mut self, name: &str) {
        if self.try_exit().is_some() {
            return;
        }
        if let Some(pid) = self.pid() {
            send_signal(pid, name);
        }
    }

    /// Waits, at most `timeout`, for the child to exit on its own: its status, or `None` while it
    /// still runs (it is then still killed on drop).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the child now (SIGKILL, by its PID) and reaps it. Idempotent.
    pub fn kill(&mut self) {
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            // Already exited is fine; either way wait() reaps it so no zombie is left.
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                self.exit.get_or_insert(status);
            }
        }
    }

    /// The last `n` lines of the program's log, for panic messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Polls `GET http://addr{path}` until it answers 200 (or, with `any_answer`, any HTTP status),
    /// bounded by `timeout`.
    /// Panics with the log tail if the program exits or never becomes ready; returns
    /// `Err(PortTaken)` when it exited because its port was already in use.
    pub fn wait_ready(
        &mut self,
        addr: &str,
        path: &str,
        timeout: Duration,
        any_answer: bool,
    ) -> Result<(), StartError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    let tail = self.log_tail(40);
                    if tail.contains("address already in use") {
                        return Err(StartError::PortTaken);
                    }
                    panic!("{} exited early ({status}); log tail:\n{tail}", self.name);
                }
            }
            let status = blocking_get_status(addr, path);
            if status == Some(200) || (any_answer && status.is_some()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let tail = self.log_tail(40);
                self.kill();
                panic!(
                    "{} not ready at http://{addr}{path} after {timeout:?}; log tail:\n{tail}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `kill -<name> <pid>`, itself bounded like every other child; panics unless it succeeds.
pub fn send_signal(pid: u32, name: &str) {
    let mut cmd = Command::new("kill");
    cmd.arg(format!("-{name}")).arg(pid.to_string());
    let out = super::run_bounded(cmd, Duration::from_secs(10));
    assert!(
        out.status.success(),
        "kill -{name} {pid} failed: {}; {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A tiny blocking `GET` over std::net: the status code, or `None` when nothing answered in time.
/// Used while starting programs, before any async runtime is involved.
pub fn blocking_get_status(addr: &str, path: &str) -> Option<u16> {
    let sock: SocketAddr = addr.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&sock, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = Vec::new();
    // The status line is all we need: stop at its end, so a big or throttled body is never
    // read (the read timeout bounds each read).
    let mut buf = [0u8; 1024];
    while !head.contains(&b'\n') && head.len() < 64 * 1024 {
        match stream.read(&mut buf).ok()? {
            0 => break,
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next()?;
    status_line.split_whitespace().nth(1)?.parse().ok()
}
