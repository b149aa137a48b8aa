//! A small SMTP client for `kind = "email"` notifiers: STARTTLS (default, port 587), implicit
//! TLS (`tls = "implicit"`, port 465) or plain (`tls = "none"`, port 25, loopback relays and
//! tests), `AUTH PLAIN` with a [`Secret`] password (only over TLS or to a loopback server), one
//! text/plain UTF-8 message to every recipient. Every step is bounded by the caller's timeout;
//! errors quote the server's reply, never the password.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::secret::Secret;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tls {
    /// Plain connection upgraded with STARTTLS; refused when the server does not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Implicit,
    /// No TLS at all.
    None,
}

/// A validated email notifier.
#[derive(Debug, Clone)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub from: String,
    pub to: Vec<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Extra trusted certificates (a private CA or the server's self-signed certificate).
    pub ca_file: Option<PathBuf>,
}

/// An address as `MAIL FROM`/`RCPT TO` take it: no display name, no spaces or angle brackets.
pub fn check_address(a: &str) -> Result<(), String> {
    let ok = a.contains('@') && !a.starts_with('@') && !a.ends_with('@');
    if ok && !a.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',')) {
        Ok(())
    } else {
        Err(format!("`{a}` is not an email address (write it bare: user@example.org)"))
    }
}

/// `host`, `host:port` or `[v6]:port`; the port defaults by TLS mode.
pub fn parse_server(s: &str, tls: Tls) -> Result<(String, u16), String> {
    let default = match tls {
        Tls::Starttls => 587,
        Tls::Implicit => 465,
        Tls::None => 25,
    };
    let bad = || format!("`server = \"{s}\"` is not host or host:port");
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, rest) = v6.split_once(']').ok_or_else(bad)?;
        match rest.strip_prefix(':') {
            Some(p) => (h, p.parse().map_err(|_| bad())?),
            None if rest.is_empty() => (h, default),
            None => return Err(bad()),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
            None => (s, default),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

pub fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Anything we can talk SMTP over.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

struct Conn<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// One reply: the code and its text lines.
    async fn reply(&mut self) -> anyhow::Result<(u16, Vec<String>)> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = (&mut self.io).take(4096).read_line(&mut line).await.context("reading the server's reply")?;
            if n == 0 {
                bail!("the server closed the connection");
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .with_context(|| format!("not an SMTP reply: {:?}", line.chars().take(80).collect::<String>()))?;
            lines.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') || lines.len() > 100 {
                return Ok((code, lines));
            }
        }
    }

    /// Send `line` (shown as `shown` in errors) and expect a reply with code `want`.
    async fn command(&mut self, line: &str, shown: &str, want: u16) -> anyhow::Result<Vec<String>> {
        self.io.get_mut().write_all(format!("{line}\r\n").as_bytes()).await?;
        self.io.get_mut().flush().await?;
        self.expect(shown, want).await
    }

    async fn expect(&mut self, shown: &str, want: u16) -> anyhow::Result<Vec<String>> {
        let (code, text) = self.reply().await?;
        if code != want {
            bail!("{shown}: the server answered {code} {}", text.join(" "));
        }
        Ok(text)
    }
}

/// The name we greet with (EHLO): this host's name when it is a plain DNS name.
fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        "localhost".to_string()
    } else {
        name.to_string()
    }
}

/// RFC 2047 for a header value that is not plain ASCII.
fn header_text(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    if s.is_ascii() {
        s
    } else {
        format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(s))
    }
}

impl Email {
    /// The message as sent after `DATA`: headers, the body with CRLF line ends and dots
    /// stuffed, and the final `.`.
    fn data(&self, subject: &str, body: &str) -> String {
        let id = format!("<{:016x}.{}@standby>", fastrand::u64(..), std::process::id());
        let mut out = format!(
            "From: <{}>\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: {id}\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
            self.from,
            self.to.iter().map(|t| format!("<{t}>")).collect::<Vec<_>>().join(", "),
            header_text(subject),
            httpdate::fmt_http_date(std::time::SystemTime::now()),
        );
        for line in body.lines() {
            if line.starts_with('.') {
                out.push('.');
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str(".\r\n");
        out
    }

    fn tls_connector(&self) -> anyhow::Result<tokio_rustls::TlsConnector> {
        let mut config = crate::probe::tls::client_config(self.ca_file.as_deref())?;
        config.alpn_protocols.clear();
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }

    async fn tls<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
    ) -> anyhow::Result<tokio_rustls::client::TlsStream<S>> {
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|_| anyhow::anyhow!("`{}` is not a valid TLS server name", self.host))?;
        self.tls_connector()?.connect(name, stream).await.context("TLS handshake with the SMTP server")
    }

    /// Send one message. The caller bounds the time.
    pub async fn send(&self, subject: &str, body: &str) -> anyhow::Result<()> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("cannot connect to SMTP server {}:{}", self.host, self.port))?;
        let mut conn: Conn<Box<dyn Stream>> = match self.tls {
            Tls::Implicit => Conn { io: BufReader::new(Box::new(self.tls(tcp).await?)) },
            Tls::None => Conn { io: BufReader::new(Box::new(tcp)) },
            Tls::Starttls => {
                let mut plain = Conn { io: BufReader::new(tcp) };
                plain.expect("greeting", 220).await?;
                let caps = plain.command(&format!("EHLO {}", hostname()), "EHLO", 250).await?;
                if !caps.iter().any(|c| c.eq_ignore_ascii_case("STARTTLS")) {
                    bail!(
                        "the SMTP server does not offer STARTTLS (set `tls = \"implicit\"` or, on loopback, \"none\")"
                    );
                }
                plain.command("STARTTLS", "STARTTLS", 220).await?;
                let tcp = plain.io.into_inner();
                let mut c: Conn<Box<dyn Stream>> = Conn { io: BufReader::new(Box::new(self.tls(tcp).await?)) };
                c.command(&format!("EHLO {}", hostname()), "EHLO", 250).await?;
                return self.transaction(&mut c, subject, body, true).await;
            }
        };
        conn.expect("greeting", 220).await?;
        conn.command(&format!("EHLO {}", hostname()), "EHLO", 250).await?;
        let secure = self.tls == Tls::Implicit;
        self.transaction(&mut conn, subject, body, secure).await
    }

    async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        c: &mut Conn<S>,
        subject: &str,
        body: &str,
        secure: bool,
    ) -> anyhow::Result<()> {
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            if !secure && !is_loopback(&self.host) {
                bail!("refusing to send the SMTP password without TLS");
            }
            let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{}", password.expose()));
            c.command(&format!("AUTH PLAIN {token}"), "AUTH PLAIN", 235).await?;
        }
        c.command(&format!("MAIL FROM:<{}>", self.from), "MAIL FROM", 250).await?;
        for to in &self.to {
            c.command(&format!("RCPT TO:<{to}>"), &format!("RCPT TO <{to}>"), 250).await?;
        }
        c.command("DATA", "DATA", 354).await?;
        let data = self.data(subject, body);
        c.io.get_mut().write_all(data.as_bytes()).await?;
        c.io.get_mut().flush().await?;
        c.expect("message", 250).await?;
        // The message is accepted; a failed QUIT changes nothing.
        let _ = c.command("QUIT", "QUIT", 221).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_addresses_and_the_message_text() {
        assert_eq!(parse_server("mail.example.org", Tls::Starttls).unwrap(), ("mail.example.org".into(), 587));
        assert_eq!(parse_server("127.0.0.1:2525", Tls::None).unwrap(), ("127.0.0.1".into(), 2525));
        assert_eq!(parse_server("[::1]:25", Tls::None).unwrap(), ("::1".into(), 25));
        assert!(parse_server("host:port", Tls::None).is_err());
        assert!(check_address("ops@example.org").is_ok());
        assert!(check_address("Ops <ops@example.org>").is_err());
        let e = Email {
            host: "h".into(),
            port: 25,
            tls: Tls::None,
            from: "a@b.c".into(),
            to: vec!["x@y.z".into(), "p@q.r".into()],
            username: None,
            password: None,
            ca_file: None,
        };
        let d = e.data("app DOWN é\r\nBcc: x", "line\n.dot\n");
        assert!(d.contains("To: <x@y.z>, <p@q.r>\r\n"), "{d}");
        assert!(d.contains("Subject: =?UTF-8?B?"), "control characters never split the header: {d}");
        assert!(!d.contains("\r\nBcc:"), "{d}");
        assert!(d.ends_with("\r\n\r\nline\r\n..dot\r\n.\r\n"), "{d}");
    }
}
