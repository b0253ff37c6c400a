//! A TCP proxy in front of the API server that can stall: while stalled it forwards nothing in
//! either direction and holds new connections, so its client's requests hang (they neither fail
//! nor answer) until their own timeouts, as when a node is cut off from the control plane. TLS
//! passes through untouched. Threads poll a stop flag every 50 ms; the proxy never outlives its
//! drop, nor ten minutes.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(50);
const MAX_LIFETIME: Duration = Duration::from_secs(600);

pub struct StallProxy {
    /// `https://127.0.0.1:PORT`, for a kubeconfig.
    pub url: String,
    stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl StallProxy {
    /// Forwards to `upstream` (`https://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> StallProxy {
        let target = upstream
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("local addr").port();
        let stalled = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (stalled, stop) = (stalled.clone(), stop.clone());
            std::thread::spawn(move || accept_loop(listener, target, stalled, stop))
        };
        StallProxy {
            url: format!("https://127.0.0.1:{port}"),
            stalled,
            stop,
            accept: Some(accept),
        }
    }

    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn done(stop: &AtomicBool, born: Instant) -> bool {
    stop.load(Ordering::SeqCst) || born.elapsed() > MAX_LIFETIME
}

fn accept_loop(
    listener: TcpListener,
    target: String,
    stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    let born = Instant::now();
    let mut pumps = Vec::new();
    while !done(&stop, born) {
        match listener.accept() {
            Ok((client, _)) => {
                let Ok(server) = TcpStream::connect(&target) else {
                    continue; // the client sees a closed connection, as from a dead server
                };
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let (stalled, stop) = (stalled.clone(), stop.clone());
                    pumps.push(std::thread::spawn(move || {
                        pump(from, to, &stalled, &stop, born)
                    }));
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(_) => std::thread::sleep(TICK),
        }
        pumps.retain(|p: &JoinHandle<()>| !p.is_finished());
    }
    for p in pumps {
        let _ = p.join();
    }
}

/// Copies `from` to `to` until either closes; reads nothing while stalled, so the kernel
/// buffers fill and the sender blocks, like a link that went quiet.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    stalled: &AtomicBool,
    stop: &AtomicBool,
    born: Instant,
) {
    let _ = from.set_read_timeout(Some(TICK));
    let _ = to.set_write_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 16 * 1024];
    while !done(stop, born) {
        if stalled.load(Ordering::SeqCst) {
            std::thread::sleep(TICK);
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
