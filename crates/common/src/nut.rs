//! A client for Network UPS Tools' upsd: its small line protocol on TCP (port 3493 by default),
//! plain text as upsd speaks it unless configured otherwise. `GET VAR <ups> <var>`, `LIST VAR
//! <ups>`, optional `USERNAME`/`PASSWORD` (a [`Secret`], never printed), every connect, read and
//! write bounded by one timeout. upsd unreachable, or the UPS unknown/stale/without its driver,
//! is an error with exit code 4; any other `ERR` from upsd or a garbled answer is exit 1.
//!
//! [`read`] gives what power-aware tools need: `ups.status` flags (OL, OB, LB, CHRG, ...),
//! `battery.charge` (%) and `battery.runtime` (seconds).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::exit::{self, Code};
use crate::secret::Secret;

/// upsd's port when an address has none.
pub const DEFAULT_PORT: u16 = 3493;

/// Longest answer line accepted (upsd's are far shorter).
const MAX_LINE: usize = 64 * 1024;

/// Credentials for upsd's `USERNAME`/`PASSWORD` (only needed where upsd.users asks for them).
#[derive(Debug, Clone)]
pub struct Auth {
    pub username: String,
    pub password: Secret,
}

/// An open session with upsd.
pub struct Client {
    stream: BufReader<TcpStream>,
    address: String,
    timeout: Duration,
}

/// `host:port`, or `host` with upsd's default port.
pub fn with_port(address: &str) -> String {
    let bare_v6 = address.matches(':').count() > 1 && !address.starts_with('[');
    if bare_v6 {
        format!("[{address}]:{DEFAULT_PORT}")
    } else if address.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        address.to_string()
    } else {
        format!("{address}:{DEFAULT_PORT}")
    }
}

impl Client {
    /// Connect (and log in when `auth` is given) within `timeout` per step.
    pub async fn connect(address: &str, timeout: Duration, auth: Option<&Auth>) -> anyhow::Result<Client> {
        let address = with_port(address);
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(&address)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(exit::error(Code::Unavailable, format!("upsd at {address} is unreachable: {e}"))),
            Err(_) => {
                return Err(exit::error(
                    Code::Unavailable,
                    format!("upsd at {address} is unreachable: no connection within {timeout:?}"),
                ))
            }
        };
        let mut client = Client { stream: BufReader::new(stream), address, timeout };
        if let Some(a) = auth {
            client.expect_ok(&format!("USERNAME {}", quote(&a.username)), "USERNAME").await?;
            client.expect_ok(&format!("PASSWORD {}", quote(a.password.expose())), "PASSWORD").await?;
        }
        Ok(client)
    }

    /// `GET VAR <ups> <var>`: the variable's value.
    pub async fn get_var(&mut self, ups: &str, var: &str) -> anyhow::Result<String> {
        self.send(&format!("GET VAR {} {}", quote(ups), quote(var))).await?;
        let line = self.line().await?;
        let words = split_words(&line);
        match words.as_slice() {
            [v, u, n, value] if v == "VAR" && u == ups && n == var => Ok(value.clone()),
            _ => Err(self.answer_error(&line, &format!("GET VAR {ups} {var}"))),
        }
    }

    /// `LIST VAR <ups>`: every variable and its value.
    pub async fn list_var(&mut self, ups: &str) -> anyhow::Result<BTreeMap<String, String>> {
        self.send(&format!("LIST VAR {}", quote(ups))).await?;
        let first = self.line().await?;
        if split_words(&first) != ["BEGIN", "LIST", "VAR", ups] {
            return Err(self.answer_error(&first, &format!("LIST VAR {ups}")));
        }
        let mut vars = BTreeMap::new();
        loop {
            let line = self.line().await?;
            let words = split_words(&line);
            match words.as_slice() {
                [e, l, v, u] if e == "END" && l == "LIST" && v == "VAR" && u == ups => return Ok(vars),
                [v, u, name, value] if v == "VAR" && u == ups => {
                    vars.insert(name.clone(), value.clone());
                }
                _ => return Err(self.answer_error(&line, &format!("LIST VAR {ups}"))),
            }
        }
    }

    /// `LOGOUT`, politely (errors ignored: the connection closes either way).
    pub async fn logout(mut self) {
        if self.send("LOGOUT").await.is_ok() {
            let _ = self.line().await;
        }
    }

    async fn expect_ok(&mut self, command: &str, what: &str) -> anyhow::Result<()> {
        self.send(command).await?;
        let line = self.line().await?;
        if line == "OK" || line.starts_with("OK ") {
            Ok(())
        } else {
            Err(self.answer_error(&line, what))
        }
    }

    async fn send(&mut self, command: &str) -> anyhow::Result<()> {
        let mut bytes = command.as_bytes().to_vec();
        bytes.push(b'\n');
        let write = self.stream.get_mut().write_all(&bytes);
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(exit::error(Code::Unavailable, format!("upsd at {}: write failed: {e}", self.address))),
            Err(_) => Err(exit::error(Code::Unavailable, format!("upsd at {}: write timed out", self.address))),
        }
    }

    async fn line(&mut self) -> anyhow::Result<String> {
        let mut buf = Vec::new();
        let mut limited = (&mut self.stream).take(MAX_LINE as u64);
        let n = match tokio::time::timeout(self.timeout, limited.read_until(b'\n', &mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                return Err(exit::error(Code::Unavailable, format!("upsd at {}: read failed: {e}", self.address)))
            }
            Err(_) => {
                return Err(exit::error(
                    Code::Unavailable,
                    format!("upsd at {}: no answer within {:?}", self.address, self.timeout),
                ))
            }
        };
        if n == 0 {
            return Err(exit::error(Code::Unavailable, format!("upsd at {} closed the connection", self.address)));
        }
        if !buf.ends_with(b"\n") {
            return Err(exit::error(Code::Failed, format!("upsd at {}: an answer line is too long", self.address)));
        }
        Ok(String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string())
    }

    /// An unexpected answer as an error: upsd's `ERR` codes that mean the UPS cannot be
    /// read are exit 4, anything else exit 1.
    fn answer_error(&self, line: &str, what: &str) -> anyhow::Error {
        let shown: String = line.chars().take(200).collect();
        match line.strip_prefix("ERR ") {
            Some(code) => {
                let code = code.split_whitespace().next().unwrap_or("");
                let unavailable = matches!(code, "UNKNOWN-UPS" | "DATA-STALE" | "DRIVER-NOT-CONNECTED");
                let c = if unavailable { Code::Unavailable } else { Code::Failed };
                exit::error(c, format!("upsd at {} answered {what} with {code}", self.address))
            }
            None => {
                exit::error(Code::Failed, format!("upsd at {}: unexpected answer to {what}: {shown:?}", self.address))
            }
        }
    }
}

/// A word for the protocol: quoted (with `\"` and `\\`) when it has spaces or quotes.
fn quote(word: &str) -> String {
    if !word.is_empty() && !word.contains([' ', '"', '\\', '\t']) {
        return word.to_string();
    }
    let mut out = String::from("\"");
    for c in word.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if c != '\n' && c != '\r' {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Split an answer line into words: spaces separate, `"..."` groups, `\` escapes.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let (mut in_quotes, mut started, mut chars) = (false, false, line.chars());
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                started = true;
            }
            '"' => {
                in_quotes = !in_quotes;
                started = true;
            }
            ' ' | '\t' if !in_quotes => {
                if started {
                    words.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            c => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(cur);
    }
    words
}

/// `ups.status`: space-separated flags such as `OL CHRG` or `OB DISCHRG LB`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status(pub Vec<String>);

impl Status {
    pub fn parse(text: &str) -> Status {
        Status(text.split_whitespace().map(|f| f.to_ascii_uppercase()).collect())
    }

    pub fn has(&self, flag: &str) -> bool {
        self.0.iter().any(|f| f == flag)
    }

    /// OL: on mains.
    pub fn on_line(&self) -> bool {
        self.has("OL")
    }

    /// OB: on battery.
    pub fn on_battery(&self) -> bool {
        self.has("OB")
    }

    /// LB: low battery (the UPS is about to cut the load).
    pub fn low_battery(&self) -> bool {
        self.has("LB")
    }

    /// OFF: the UPS's output is off.
    pub fn off(&self) -> bool {
        self.has("OFF")
    }

    /// CHRG: charging.
    pub fn charging(&self) -> bool {
        self.has("CHRG")
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// What a power-aware tool wants to know of a UPS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub status: Status,
    /// `battery.charge`, percent, when the UPS reports it.
    pub charge: Option<f64>,
    /// `battery.runtime`, seconds of battery left at the present load, when reported.
    pub runtime_s: Option<f64>,
}

impl Reading {
    /// From `LIST VAR`'s variables.
    pub fn from_vars(vars: &BTreeMap<String, String>) -> anyhow::Result<Reading> {
        let status = vars.get("ups.status").context("the UPS reports no ups.status")?;
        let num = |k: &str| vars.get(k).and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite());
        Ok(Reading { status: Status::parse(status), charge: num("battery.charge"), runtime_s: num("battery.runtime") })
    }
}

/// Read `ups` at upsd `address` once: connect, `LIST VAR`, logout.
pub async fn read(address: &str, ups: &str, timeout: Duration, auth: Option<&Auth>) -> anyhow::Result<Reading> {
    let mut client = Client::connect(address, timeout, auth).await?;
    let vars = client.list_var(ups).await?;
    client.logout().await;
    Reading::from_vars(&vars).map_err(|e| exit::with_code(Code::Failed, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_quotes_round_trip() {
        assert_eq!(split_words(r#"VAR apc ups.status "OB DISCHRG""#), ["VAR", "apc", "ups.status", "OB DISCHRG"]);
        assert_eq!(split_words(r#"VAR u d "say \"hi\" \\ ok""#), ["VAR", "u", "d", r#"say "hi" \ ok"#]);
        assert_eq!(split_words(r#"VAR u d """#), ["VAR", "u", "d", ""]);
        assert_eq!(quote("apc"), "apc");
        assert_eq!(split_words(&quote(r#"pa ss"w\d"#)), [r#"pa ss"w\d"#]);
    }

    #[test]
    fn status_flags() {
        let s = Status::parse("OB DISCHRG LB");
        assert!(s.on_battery() && s.low_battery() && !s.on_line() && !s.charging() && !s.off());
        assert!(Status::parse("ol chrg").charging());
        assert_eq!(s.to_string(), "OB DISCHRG LB");
    }

    #[test]
    fn reading_from_vars() {
        let vars: BTreeMap<String, String> = [("ups.status", "OL"), ("battery.charge", "97"), ("battery.runtime", "x")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let r = Reading::from_vars(&vars).unwrap();
        assert_eq!((r.charge, r.runtime_s), (Some(97.0), None));
        assert!(Reading::from_vars(&BTreeMap::new()).is_err());
    }

    #[test]
    fn default_port() {
        assert_eq!(with_port("127.0.0.1"), "127.0.0.1:3493");
        assert_eq!(with_port("ups.lan:4000"), "ups.lan:4000");
        assert_eq!(with_port("[::1]:3493"), "[::1]:3493");
        assert_eq!(with_port("::1"), "[::1]:3493");
    }
}
