//! Health checks of a colour, directly or through the proxy: one probe, or polling until
//! healthy within a deadline. A check passes on a 2xx answer (and, when a colour header is
//! configured, on that header naming the expected colour).

use std::time::{Duration, Instant};

use standby_common::probe::http::{self, ClientOptions, Request};

/// The longest a single probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between probes while waiting.
const POLL: Duration = Duration::from_millis(200);

/// One probe's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Probe {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The colour the answer named (the colour header), when configured and present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.status, &self.error) {
            (_, Some(e)) => f.write_str(e),
            (Some(s), None) => write!(f, "HTTP {s}"),
            (None, None) => f.write_str("no answer"),
        }
    }
}

/// Sends health probes (its own runtime and connection-less client: every probe opens a new
/// connection, as a new client would).
pub struct Prober {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    /// Header naming the colour that answered.
    pub color_header: Option<String>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober").field("color_header", &self.color_header).finish()
    }
}

impl Prober {
    pub fn new(color_header: Option<String>) -> anyhow::Result<Prober> {
        let runtime = standby_common::runtime()?;
        let client = http::client(&ClientOptions { timeout: PROBE_TIMEOUT, ..ClientOptions::default() })?;
        Ok(Prober { runtime, client, color_header })
    }

    /// GET `url` once. `expect_color`: fail unless the colour header names it (ignored when
    /// no colour header is configured).
    pub fn probe(&self, url: &str, expect_color: Option<&str>) -> Probe {
        let fetched = self.runtime.block_on(http::fetch(&self.client, &Request::get(url), PROBE_TIMEOUT, 4096));
        let resp = match fetched {
            Ok(r) => r,
            Err(e) => return Probe { ok: false, status: None, color: None, error: Some(e.message) },
        };
        let color = self
            .color_header
            .as_deref()
            .and_then(|h| resp.headers.get(h))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut probe = Probe { ok: (200..300).contains(&resp.status), status: Some(resp.status), color, error: None };
        if !probe.ok {
            probe.error = Some(format!("HTTP {}: {}", resp.status, http::excerpt(&resp.body, 120)));
        } else if let (Some(header), Some(want)) = (&self.color_header, expect_color) {
            if probe.color.as_deref() != Some(want) {
                probe.ok = false;
                probe.error = Some(format!(
                    "answered by {} ({header}), not {want}",
                    probe.color.as_deref().unwrap_or("an unnamed backend")
                ));
            }
        }
        probe
    }

    /// Probe until a probe passes or `timeout` passes; the last failure otherwise.
    pub fn wait_healthy(&self, url: &str, expect_color: Option<&str>, timeout: Duration) -> Result<Probe, Probe> {
        let deadline = Instant::now() + timeout;
        loop {
            let probe = self.probe(url, expect_color);
            if probe.ok {
                return Ok(probe);
            }
            if Instant::now() + POLL >= deadline {
                return Err(probe);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Like [`Self::wait_healthy`], but the answer must hold for `n` probes in a row, 50 ms
    /// apart: right after an nginx reload, old workers may still answer for a moment.
    pub fn wait_settled(
        &self,
        url: &str,
        expect_color: Option<&str>,
        timeout: Duration,
        n: u32,
    ) -> Result<Probe, Probe> {
        let deadline = Instant::now() + timeout;
        let mut in_a_row = 0;
        loop {
            let probe = self.probe(url, expect_color);
            in_a_row = if probe.ok { in_a_row + 1 } else { 0 };
            if in_a_row >= n.max(1) {
                return Ok(probe);
            }
            if Instant::now() + POLL >= deadline {
                return Err(probe);
            }
            std::thread::sleep(if probe.ok { Duration::from_millis(50) } else { POLL });
        }
    }

    /// Probe every `interval` for `period`; the first failure ends it.
    pub fn watch(
        &self,
        url: &str,
        expect_color: Option<&str>,
        period: Duration,
        interval: Duration,
    ) -> Result<u32, Probe> {
        let end = Instant::now() + period;
        let mut passed = 0;
        loop {
            let probe = self.probe(url, expect_color);
            if !probe.ok {
                return Err(probe);
            }
            passed += 1;
            if Instant::now() + interval >= end {
                return Ok(passed);
            }
            std::thread::sleep(interval);
        }
    }
}
