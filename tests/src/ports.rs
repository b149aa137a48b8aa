//! Free TCP ports on 127.0.0.1.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// A TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads the port the
/// kernel chose, and closes the socket. Never returns the same port twice in one process,
/// so servers started by tests running in parallel do not race for one port.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    for _ in 0..1000 {
        let Ok(listener) = TcpListener::bind(("127.0.0.1", 0)) else {
            continue;
        };
        let Ok(addr) = listener.local_addr() else {
            continue;
        };
        let port = addr.port();
        let mut given = GIVEN.lock().unwrap_or_else(|poison| poison.into_inner());
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
    panic!("no free TCP port on 127.0.0.1")
}

/// Starts a server on fresh ports: `start` picks them (with [`free_port`]) and starts the
/// server. A port is free only until someone binds it, so when the start fails because
/// another program took a port in between (the error's chain contains `clash`, the server's
/// own words for it), it is tried again on new ports, three times in all.
pub fn retry_on_clash(what: &str, clash: &str, mut start: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..3 {
        match start() {
            Ok(()) => return Ok(()),
            Err(e) if format!("{e:#}").contains(clash) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no free port for {what}")))
}
