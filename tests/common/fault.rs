//! A raw HTTP server for faults a real Pushgateway cannot be made to produce (garbage bodies,
//! truncated or hanging answers). It is a mock only for that reason: every behaviour a real gateway
//! can show is tested against the real gateway.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// How every request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `200 OK` with a `Date` header and a body that is not JSON.
    Garbage,
    /// Valid headers announcing more body than is sent, then the connection closes.
    Truncated,
    /// Headers and half of a JSON body, then nothing for ~60 s (until dropped).
    HangMidBody,
    /// Reads the request and answers nothing for ~60 s (until dropped).
    HangBeforeHeaders,
}

/// Longest a connection is held open; also bounded by the server's drop.
const HANG: Duration = Duration::from_secs(60);
/// The accept loop never outlives this, even if a test leaks the server.
const MAX_LIFETIME: Duration = Duration::from_secs(600);

const JSON_BODY: &str = r#"{"status":"success","data":[{"labels":{"job":"fault"},"last_push_successful":true,"push_time_seconds":{"time_stamp":"2024-01-01T00:00:00Z","type":"GAUGE","help":"x","metrics":[{"labels":{"job":"fault","instance":""},"value":"1.7e+09"}]}}]}"#;

pub struct FaultServer {
    /// `http://127.0.0.1:PORT/`.
    pub base_url: String,
    pub port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    accept: Option<JoinHandle<()>>,
}

impl FaultServer {
    pub fn start(kind: Fault) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("local addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let stop = stop.clone();
            let requests = requests.clone();
            std::thread::spawn(move || accept_loop(listener, kind, stop, requests))
        };
        FaultServer {
            base_url: format!("http://127.0.0.1:{port}/"),
            port,
            stop,
            requests,
            accept: Some(accept),
        }
    }

    /// Request lines received so far, e.g. `"GET /api/v1/metrics HTTP/1.1"`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.accept.take() {
            // Bounded: every loop in the server checks `stop` at least every 50 ms.
            let _ = handle.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    kind: Fault,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
) {
    let started = Instant::now();
    let mut handlers = Vec::new();
    while !stop.load(Ordering::SeqCst) && started.elapsed() < MAX_LIFETIME {
        match listener.accept() {
            Ok((stream, _)) => {
                let stop = stop.clone();
                let requests = requests.clone();
                handlers.push(std::thread::spawn(move || {
                    handle(stream, kind, &stop, &requests)
                }));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    stop.store(true, Ordering::SeqCst);
    for h in handlers {
        let _ = h.join();
    }
}

fn handle(mut stream: TcpStream, kind: Fault, stop: &AtomicBool, requests: &Mutex<Vec<String>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    if let Some(line) = read_request(&mut stream) {
        requests.lock().unwrap().push(line);
    }
    let date = httpdate::fmt_http_date(SystemTime::now());
    let head = |len: usize| {
        format!(
            "HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Type: application/json\r\n\
             Content-Length: {len}\r\nConnection: close\r\n\r\n"
        )
    };
    let _ = match kind {
        Fault::Garbage => {
            let body = "<html>502 this is not JSON {{{ \u{0}</html>\n";
            stream.write_all(format!("{}{body}", head(body.len())).as_bytes())
        }
        Fault::Truncated => {
            let body = &JSON_BODY[..JSON_BODY.len() / 2];
            let sent =
                stream.write_all(format!("{}{body}", head(JSON_BODY.len() + 1000)).as_bytes());
            let _ = stream.shutdown(std::net::Shutdown::Both);
            sent
        }
        Fault::HangMidBody => {
            let body = &JSON_BODY[..JSON_BODY.len() / 2];
            let sent = stream.write_all(format!("{}{body}", head(JSON_BODY.len())).as_bytes());
            let _ = stream.flush();
            sleep_unless_stopped(stop, HANG);
            sent
        }
        Fault::HangBeforeHeaders => {
            sleep_unless_stopped(stop, HANG);
            Ok(())
        }
    };
}

/// Reads the request head (and a `Content-Length` body, so closing does not reset the client's
/// write); returns the request line. Bounded in size and by the read timeout.
fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let content_length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
        .min(1024 * 1024);
    let mut have = buf.len() - head_end;
    while have < content_length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => have += n,
        }
    }
    head.lines().next().map(str::to_string)
}

fn sleep_unless_stopped(stop: &AtomicBool, total: Duration) {
    let until = Instant::now() + total;
    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}
