//! A load of GETs through nginx from two kinds of client, run while a deploy happens:
//! `Connection: close` (a new connection per request) and keep-alive that, as browsers and
//! HTTP libraries do (RFC 9112 §9.3.1), retries an idempotent request once on a new
//! connection when a reused connection is closed before any byte of the answer. Those
//! retries are counted: each is a failure a keep-alive client that does not retry would see.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Counts {
    pub ok: AtomicU64,
    /// Non-2xx answers and errors the client could not hide.
    pub failed: AtomicU64,
    /// Keep-alive only: reused connections closed before any answer byte, retried.
    pub retried: AtomicU64,
}

enum Failure {
    /// Closed (EOF or reset) before any byte of the answer.
    ClosedBeforeAnswer,
    Other,
}

fn read_response(reader: &mut BufReader<TcpStream>) -> Result<(u16, bool), Failure> {
    let mut status_line = String::new();
    match reader.read_line(&mut status_line) {
        Ok(0) => return Err(Failure::ClosedBeforeAnswer),
        Ok(_) => {}
        Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe) => {
            return Err(Failure::ClosedBeforeAnswer)
        }
        Err(_) => return Err(Failure::Other),
    }
    let status: u16 = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or(Failure::Other)?;
    let (mut length, mut close) = (0usize, false);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(|_| Failure::Other)? == 0 {
            return Err(Failure::Other);
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().map_err(|_| Failure::Other)?;
        }
        if name.eq_ignore_ascii_case("connection") && value.trim().eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|_| Failure::Other)?;
    Ok((status, close))
}

fn connect(port: u16) -> Option<BufReader<TcpStream>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    Some(BufReader::new(stream))
}

fn request(close: bool) -> String {
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!("GET /app/ HTTP/1.1\r\nHost: 127.0.0.1\r\n{connection}\r\n")
}

/// One keep-alive client until `stop`.
fn keepalive(port: u16, stop: &AtomicBool, counts: &Counts) {
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::SeqCst) {
        let mut attempt = 0;
        loop {
            let reused = conn.is_some();
            if conn.is_none() {
                conn = connect(port);
            }
            let Some(c) = conn.as_mut() else {
                counts.failed.fetch_add(1, Ordering::SeqCst);
                break;
            };
            let sent = c.get_mut().write_all(request(false).as_bytes());
            let result = match sent {
                Ok(()) => read_response(c),
                Err(_) => Err(Failure::ClosedBeforeAnswer),
            };
            match result {
                Ok((status, close)) => {
                    let counter = if (200..300).contains(&status) { &counts.ok } else { &counts.failed };
                    counter.fetch_add(1, Ordering::SeqCst);
                    if close {
                        conn = None;
                    }
                    break;
                }
                Err(Failure::ClosedBeforeAnswer) if reused && attempt == 0 => {
                    counts.retried.fetch_add(1, Ordering::SeqCst);
                    conn = None;
                    attempt += 1;
                }
                Err(_) => {
                    counts.failed.fetch_add(1, Ordering::SeqCst);
                    conn = None;
                    break;
                }
            }
        }
    }
}

/// One `Connection: close` client until `stop`.
fn close(port: u16, stop: &AtomicBool, counts: &Counts) {
    while !stop.load(Ordering::SeqCst) {
        let result = connect(port).ok_or(Failure::Other).and_then(|mut c| {
            c.get_mut().write_all(request(true).as_bytes()).map_err(|_| Failure::Other)?;
            read_response(&mut c)
        });
        match result {
            Ok((status, _)) if (200..300).contains(&status) => counts.ok.fetch_add(1, Ordering::SeqCst),
            _ => counts.failed.fetch_add(1, Ordering::SeqCst),
        };
    }
}

/// Clients of both kinds against nginx's `port` until dropped or [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pub keepalive: Arc<Counts>,
    pub close: Arc<Counts>,
}

impl Load {
    pub fn start(port: u16, clients_each: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (ka, cl) = (Arc::new(Counts::default()), Arc::new(Counts::default()));
        let mut threads = Vec::new();
        for _ in 0..clients_each {
            let (s, c) = (stop.clone(), ka.clone());
            threads.push(std::thread::spawn(move || keepalive(port, &s, &c)));
            let (s, c) = (stop.clone(), cl.clone());
            threads.push(std::thread::spawn(move || close(port, &s, &c)));
        }
        Load { stop, threads, keepalive: ka, close: cl }
    }

    /// Requests answered so far, both kinds.
    pub fn answered(&self) -> u64 {
        self.keepalive.ok.load(Ordering::SeqCst) + self.close.ok.load(Ordering::SeqCst)
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop();
    }
}
