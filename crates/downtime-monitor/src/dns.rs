//! `kind = "dns"`: one question (A, AAAA, CNAME or TXT) to a given DNS server over UDP (TCP
//! when the answer comes back truncated), and the answer compared with `expect` — the check
//! dns-failover's users run after a switch. A minimal client of our own (RFC 1035): one
//! question, recursion desired, compressed names followed with a bound on jumps.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use standby_common::probe::{Failure, ProbeResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The record types a `dns` target can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Txt,
}

impl RecordType {
    pub fn parse(s: &str) -> Result<RecordType, String> {
        match s.to_ascii_uppercase().as_str() {
            "A" => Ok(RecordType::A),
            "AAAA" => Ok(RecordType::Aaaa),
            "CNAME" => Ok(RecordType::Cname),
            "TXT" => Ok(RecordType::Txt),
            _ => Err(format!("record-type {s:?}: expected A, AAAA, CNAME or TXT")),
        }
    }

    fn code(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::Cname => 5,
            RecordType::Txt => 16,
            RecordType::Aaaa => 28,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Txt => "TXT",
        }
    }

    /// A value written in `expect`, in the form answers are compared in.
    pub fn normalize(self, value: &str) -> Result<String, String> {
        match self {
            RecordType::A | RecordType::Aaaa => {
                let ip: IpAddr = value.trim().parse().map_err(|_| format!("expect {value:?} is not an IP address"))?;
                match (self, ip) {
                    (RecordType::A, IpAddr::V4(_)) | (RecordType::Aaaa, IpAddr::V6(_)) => Ok(ip.to_string()),
                    _ => Err(format!("expect {value:?} is not an {} value", self.as_str())),
                }
            }
            RecordType::Cname => Ok(value.trim().trim_end_matches('.').to_ascii_lowercase()),
            RecordType::Txt => Ok(value.to_string()),
        }
    }
}

/// A validated `dns` target.
#[derive(Debug, Clone)]
pub struct DnsCheck {
    pub server: SocketAddr,
    pub query: String,
    pub record_type: RecordType,
    /// Normalized; None: any non-empty answer.
    pub expect: Option<Vec<String>>,
}

impl DnsCheck {
    /// From the target's `address` (IP or IP:port of the server), `query`, `record-type`, `expect`.
    pub fn new(address: &str, query: &str, record_type: &str, expect: Option<&[String]>) -> Result<DnsCheck, String> {
        let server = match address.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => match address.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
                Ok(ip) => SocketAddr::new(ip, 53),
                Err(_) => return Err(format!("address {address:?} must be the DNS server's IP or IP:port")),
            },
        };
        encode_name(query)?;
        let record_type = RecordType::parse(record_type)?;
        let expect = expect
            .map(|values| {
                let mut v = values.iter().map(|x| record_type.normalize(x)).collect::<Result<Vec<_>, _>>()?;
                v.sort();
                v.dedup();
                Ok::<_, String>(v)
            })
            .transpose()?;
        Ok(DnsCheck { server, query: query.trim_end_matches('.').to_string(), record_type, expect })
    }

    /// Ask once; every outcome is a [`ProbeResult`].
    pub async fn check(&self, timeout: Duration) -> ProbeResult {
        let start = Instant::now();
        let what = format!("{} {} @{}", self.query, self.record_type.as_str(), self.server);
        let answers = match tokio::time::timeout(timeout, self.ask()).await {
            Err(_) => {
                return ProbeResult::fail(
                    start.elapsed(),
                    Failure::Timeout,
                    format!("{what}: no answer within {timeout:?}"),
                )
            }
            Ok(Err((failure, e))) => return ProbeResult::fail(start.elapsed(), failure, format!("{what}: {e}")),
            Ok(Ok(a)) => a,
        };
        let elapsed = start.elapsed();
        let mut got: Vec<String> = answers.iter().filter_map(|a| self.record_type.normalize(a).ok()).collect();
        got.sort();
        got.dedup();
        match &self.expect {
            _ if got.is_empty() => ProbeResult::fail(
                elapsed,
                Failure::Unexpected,
                format!("{what}: no {} record", self.record_type.as_str()),
            ),
            Some(want) if *want != got => ProbeResult::fail(
                elapsed,
                Failure::Unexpected,
                format!("{what}: expected {}, got {}", want.join(", "), got.join(", ")),
            ),
            _ => ProbeResult::pass(elapsed),
        }
    }

    async fn ask(&self) -> Result<Vec<String>, (Failure, String)> {
        let id = fastrand::u16(..);
        let query = self.message(id);
        let bind: SocketAddr = if self.server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .map_err(|_| (Failure::Protocol, "bind address".to_string()))?;
        let io = |e: std::io::Error| (Failure::Unreachable, e.to_string());
        let socket = tokio::net::UdpSocket::bind(bind).await.map_err(io)?;
        socket.connect(self.server).await.map_err(io)?;
        socket.send(&query).await.map_err(io)?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = socket.recv(&mut buf).await.map_err(io)?;
            // Stray datagrams (not our id, not an answer) are ignored.
            if n < 12 || u16::from_be_bytes([buf[0], buf[1]]) != id || buf[2] & 0x80 == 0 {
                continue;
            }
            if buf[2] & 0x02 != 0 {
                return self.ask_tcp(id, &query).await;
            }
            return self.parse(&buf[..n]);
        }
    }

    async fn ask_tcp(&self, id: u16, query: &[u8]) -> Result<Vec<String>, (Failure, String)> {
        let io = |e: std::io::Error| (Failure::Unreachable, format!("over TCP: {e}"));
        let mut conn = tokio::net::TcpStream::connect(self.server).await.map_err(io)?;
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        conn.write_all(&framed).await.map_err(io)?;
        let len = conn.read_u16().await.map_err(io)? as usize;
        let mut buf = vec![0u8; len];
        conn.read_exact(&mut buf).await.map_err(io)?;
        if buf.len() < 12 || u16::from_be_bytes([buf[0], buf[1]]) != id {
            return Err((Failure::Protocol, "over TCP: an answer to another question".into()));
        }
        self.parse(&buf)
    }

    fn message(&self, id: u16) -> Vec<u8> {
        let mut m = Vec::with_capacity(64);
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
        m.extend(encode_name(&self.query).unwrap_or_default());
        m.extend_from_slice(&self.record_type.code().to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes()); // IN
        m
    }

    /// The answers of the asked type, as text.
    fn parse(&self, msg: &[u8]) -> Result<Vec<String>, (Failure, String)> {
        let bad = || (Failure::Protocol, "a malformed DNS answer".to_string());
        let rcode = msg[3] & 0x0f;
        if rcode != 0 {
            let name = match rcode {
                1 => "FORMERR",
                2 => "SERVFAIL",
                3 => "NXDOMAIN",
                4 => "NOTIMP",
                5 => "REFUSED",
                _ => "an error",
            };
            return Err((Failure::Unexpected, format!("the server answered {name} (rcode {rcode})")));
        }
        let count = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]) as usize;
        let (questions, answers) = (count(4), count(6));
        let mut pos = 12;
        for _ in 0..questions {
            pos = read_name(msg, pos).ok_or_else(bad)?.1 + 4;
        }
        let mut out = Vec::new();
        for _ in 0..answers {
            let (_, after) = read_name(msg, pos).ok_or_else(bad)?;
            let head = msg.get(after..after + 10).ok_or_else(bad)?;
            let rtype = u16::from_be_bytes([head[0], head[1]]);
            let len = u16::from_be_bytes([head[8], head[9]]) as usize;
            let start = after + 10;
            let data = msg.get(start..start + len).ok_or_else(bad)?;
            pos = start + len;
            if rtype != self.record_type.code() {
                continue; // the CNAME chain in front of an A answer, for instance
            }
            out.push(match self.record_type {
                RecordType::A if len == 4 => IpAddr::from(<[u8; 4]>::try_from(data).map_err(|_| bad())?).to_string(),
                RecordType::Aaaa if len == 16 => {
                    IpAddr::from(<[u8; 16]>::try_from(data).map_err(|_| bad())?).to_string()
                }
                RecordType::Cname => read_name(msg, start).ok_or_else(bad)?.0,
                RecordType::Txt => {
                    let mut text = String::new();
                    let mut i = 0;
                    while i < data.len() {
                        let l = data[i] as usize;
                        let part = data.get(i + 1..i + 1 + l).ok_or_else(bad)?;
                        text.push_str(&String::from_utf8_lossy(part));
                        i += 1 + l;
                    }
                    text
                }
                _ => return Err(bad()),
            });
        }
        Ok(out)
    }
}

/// A name in wire form; errors for empty labels, labels over 63 or names over 255 bytes.
fn encode_name(name: &str) -> Result<Vec<u8>, String> {
    let name = name.trim().trim_end_matches('.');
    if name.is_empty() {
        return Err("query must be a domain name".into());
    }
    let mut out = Vec::new();
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 || !label.is_ascii() {
            return Err(format!("query {name:?} is not a domain name (empty, non-ASCII or over-long label)"));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    if out.len() > 255 {
        return Err(format!("query {name:?} is longer than 255 bytes"));
    }
    Ok(out)
}

/// A (possibly compressed) name at `pos`: the name, lowercased, and where the field ends.
fn read_name(msg: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *msg.get(pos)? as usize;
        if len & 0xc0 == 0xc0 {
            let target = ((len & 0x3f) << 8) | *msg.get(pos + 1)? as usize;
            end.get_or_insert(pos + 2);
            pos = target;
            continue;
        }
        if len == 0 {
            return Some((labels.join(".").to_ascii_lowercase(), end.unwrap_or(pos + 1)));
        }
        labels.push(String::from_utf8_lossy(msg.get(pos + 1..pos + 1 + len)?).into_owned());
        pos += 1 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_queries_types_and_expected_values_are_refused() {
        assert!(DnsCheck::new("127.0.0.1:53", "app.example.com", "A", Some(&["10.0.0.1".into()])).is_ok());
        assert_eq!(DnsCheck::new("127.0.0.1", "x.test", "txt", None).unwrap().server.port(), 53);
        assert!(DnsCheck::new("ns.example.com", "x.test", "A", None).is_err());
        assert!(DnsCheck::new("127.0.0.1", "a..b", "A", None).is_err());
        assert!(DnsCheck::new("127.0.0.1", "x.test", "MX", None).is_err());
        assert!(DnsCheck::new("127.0.0.1", "x.test", "A", Some(&["::1".into()])).is_err());
    }

    #[test]
    fn compressed_names_are_followed_and_loops_end() {
        let msg = [3, b'w', b'w', b'w', 0xc0, 6, 3, b'c', b'o', b'm', 0];
        assert_eq!(read_name(&msg, 0), Some(("www.com".into(), 6)));
        assert_eq!(read_name(&[0xc0, 0], 0), None);
    }
}
