//! A loopback listener that only counts who connects: the address a test says must never be
//! contacted. It answers nothing, so a connection is seen even if the client gives up at once.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Tripwire {
    pub ip: String,
    pub port: u16,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Tripwire {
    pub fn start() -> Tripwire {
        Tripwire::start_on("127.0.0.1")
    }

    /// On another loopback address (`127.0.0.2`, ...), to play a host the janitor must not reach.
    pub fn start_on(ip: &str) -> Tripwire {
        let listener = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"));
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("local addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (connections.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded by the drop of the Tripwire, which sets `halt`.
            while !halt.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok(_) => {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Tripwire {
            ip: ip.to_string(),
            port,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    /// `IP:PORT`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn connections(&self) -> usize {
        // Let an accept that raced the question land.
        std::thread::sleep(Duration::from_millis(50));
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Tripwire {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
