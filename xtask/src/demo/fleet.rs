//! The primary site's app: two colours (harness app backends named blue and green) behind
//! nginx, started and stopped by blue-green-deploy's `start`/`stop` commands through a tiny
//! control server (`curl http://127.0.0.1:PORT/start/{color}/{version}`), as systemd would.
//! Also a load generator that counts the requests that failed through nginx.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use standby_e2e::AppBackend;

pub struct Fleet {
    /// `[blue, green]`.
    pub apps: Arc<Mutex<[AppBackend; 2]>>,
    pub ports: [u16; 2],
    pub control_port: u16,
}

fn index(color: &str) -> usize {
    usize::from(color == "green")
}

/// What `/` answers for a colour and version (the smoke suite checks the colour's name).
pub fn body(color: &str, version: &str) -> String {
    format!("hello from {color}, release {version}")
}

impl Fleet {
    /// Blue runs (release 1), green is stopped.
    pub fn start() -> anyhow::Result<Fleet> {
        let blue = AppBackend::start("blue")?;
        blue.set_body(&body("blue", "1"));
        let mut green = AppBackend::start("green")?;
        green.stop();
        let ports = [blue.port, green.port];
        let apps = Arc::new(Mutex::new([blue, green]));
        let control = TcpListener::bind("127.0.0.1:0").context("bind the control server")?;
        let control_port = control.local_addr()?.port();
        let served = apps.clone();
        std::thread::spawn(move || {
            for stream in control.incoming().flatten() {
                let mut line = String::new();
                if BufReader::new(&stream).read_line(&mut line).is_err() {
                    continue;
                }
                let ok = handle(&served, &line);
                let status = if ok { "200 OK" } else { "500 Internal Server Error" };
                let _ = (&stream).write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
                );
            }
        });
        Ok(Fleet { apps, ports, control_port })
    }

    /// Stops every colour (the power cut); returns the ones that were running.
    pub fn stop_all(&self) -> Vec<usize> {
        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        let mut stopped = Vec::new();
        for (i, app) in apps.iter_mut().enumerate() {
            if app.is_running() {
                app.stop();
                stopped.push(i);
            }
        }
        stopped
    }

    /// Starts these colours again (power is back and systemd starts the units).
    pub fn start_again(&self, which: &[usize]) -> anyhow::Result<()> {
        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        for &i in which {
            apps[i].start_again()?;
        }
        Ok(())
    }
}

fn handle(apps: &Arc<Mutex<[AppBackend; 2]>>, line: &str) -> bool {
    let path = line.split_whitespace().nth(1).unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut guard = apps.lock().unwrap_or_else(|p| p.into_inner());
    match parts.as_slice() {
        ["start", color, version] => {
            let app = &mut guard[index(color)];
            app.set_body(&body(color, version));
            app.start_again().is_ok()
        }
        ["stop", color] => {
            guard[index(color)].stop();
            true
        }
        _ => false,
    }
}

/// Clients that each open a connection per request to `port` and `GET path`, until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    pub sent: Arc<AtomicU64>,
    pub failed: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(port: u16, path: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let threads = (0..clients)
            .map(|_| {
                let (stop, sent, failed, path) = (stop.clone(), sent.clone(), failed.clone(), path.to_string());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        sent.fetch_add(1, Ordering::SeqCst);
                        if !get_ok(port, &path) {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        Load { stop, sent, failed, threads }
    }

    /// Stops the clients; returns (requests sent, requests failed).
    pub fn finish(mut self) -> (u64, u64) {
        self.halt();
        (self.sent.load(Ordering::SeqCst), self.failed.load(Ordering::SeqCst))
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One `GET` on a fresh connection: true on a complete `200` answer.
fn get_ok(port: u16, path: &str) -> bool {
    get(port, path).is_some_and(|answer| answer.starts_with("HTTP/1.1 200"))
}

/// One `GET` on a fresh connection: the whole answer (status line, headers, body).
pub fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: drill\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    Some(String::from_utf8_lossy(&answer).into_owned())
}
