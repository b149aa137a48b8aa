//! Running suites: every check is a task; a check that uses captures waits for the checks
//! that define them, and at most `jobs` requests are in flight at once. Each check is retried
//! up to its retry count with backoff (an app that is still warming up after a deploy), and
//! can never hang past its timeout.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use standby_common::exit::{self, Code};
use standby_common::probe::http::{self, ClientOptions, FetchError, HttpResponse, Request, TlsOptions};
use standby_common::probe::Failure;
use standby_common::retry::Backoff;
use tokio::sync::{watch, Semaphore};

use crate::config::Config;
use crate::cookies::Jar;
use crate::exchange::Exchange;
use crate::expect::{self, Hops};
use crate::redact::Redactor;
use crate::report::{CheckResult, Report};
use crate::suite::{Body, Check, Part, Suite, Target};

/// Bytes of a body read at most (raw, and again decoded) unless `max-body` says otherwise.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// How to run: the CLI flags and config merged.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Joined with each check's `path` (overrides a suite's `[defaults] base-url`).
    pub base_url: Option<String>,
    /// Requests in flight at most.
    pub jobs: usize,
    /// Default retries for checks that set none.
    pub retries: u32,
    pub retry_delay: Duration,
    /// Default whole-request timeout for checks that set none.
    pub timeout: Duration,
    pub tls: TlsOptions,
    pub follow_redirects: bool,
    /// Bytes of a body read at most, raw and decoded.
    pub max_body: usize,
    /// Query parameters whose values reports hide, besides the built-in list.
    pub redact_query: Vec<String>,
    /// Pin host names to IPs (`--resolve host:ip`).
    pub resolve: Vec<(String, IpAddr)>,
    /// Ticked once per finished check (the CLI shows it only when stderr is a terminal).
    pub progress: indicatif::ProgressBar,
    /// Show each request and answer on stderr, redacted (`-vv`).
    pub trace: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions::build(&Config::default())
    }
}

impl RunOptions {
    /// The options of a `[smoke-test]` section (merged with flags by the CLI, or read from
    /// the file by blue-green-deploy), checked: bad values are usage errors (exit 2).
    pub fn from_config(config: &Config) -> anyhow::Result<RunOptions> {
        if config.jobs == 0 {
            return Err(exit::error(Code::Usage, "jobs (--jobs) must be at least 1"));
        }
        if config.max_body == 0 {
            return Err(exit::error(Code::Usage, "max-body (--max-body) must be at least 1 byte"));
        }
        if config.timeout.get().is_zero() {
            return Err(exit::error(Code::Usage, "timeout (--timeout) must be more than 0s"));
        }
        if let Some(base) = &config.base_url {
            crate::suite::check_url(base).map_err(|e| {
                exit::error(Code::Usage, standby_common::secret::redact(&format!("base-url (--base-url): {e}")))
            })?;
        }
        Ok(RunOptions::build(config))
    }

    fn build(config: &Config) -> RunOptions {
        RunOptions {
            base_url: config.base_url.clone(),
            jobs: config.jobs,
            retries: config.retries,
            retry_delay: config.retry_delay.get(),
            timeout: config.timeout.get(),
            tls: TlsOptions { ca_file: config.cacert.clone(), insecure: config.insecure },
            follow_redirects: config.follow_redirects,
            redact_query: config.redact_query.clone(),
            max_body: config.max_body,
            resolve: Vec::new(),
            progress: indicatif::ProgressBar::hidden(),
            trace: false,
        }
    }
}

/// What a finished check hands to the checks that depend on it.
#[derive(Debug, Default)]
struct Outcome {
    captures: BTreeMap<String, String>,
    ok: bool,
}

type Slot = watch::Receiver<Option<Arc<Outcome>>>;

/// Run suites from synchronous code (blue-green-deploy, tests). Also callable from inside a
/// tokio runtime: the suites then run on a runtime of their own in a scoped thread.
pub fn run_blocking(suites: &[Suite], opts: &RunOptions) -> anyhow::Result<Report> {
    if tokio::runtime::Handle::try_current().is_err() {
        return standby_common::runtime()?.block_on(run(suites, opts));
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| standby_common::runtime()?.block_on(run(suites, opts)))
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the smoke-test runner thread panicked")))
    })
}

/// Run every check of every suite and report. Errors are setup errors only (no base URL for
/// a `path` check, an unreadable CA file): then no request was sent.
pub async fn run(suites: &[Suite], opts: &RunOptions) -> anyhow::Result<Report> {
    for suite in suites {
        if let Some(c) = suite.checks.iter().find(|c| matches!(c.target, Target::Path(_))) {
            if opts.base_url.is_none() && suite.base_url.is_none() {
                return Err(exit::error(
                    Code::Usage,
                    format!(
                        "{}:{}: check {:?} has a `path` but no base URL was given: pass --base-url URL (or set base-url in [defaults])",
                        suite.display_name(),
                        c.line,
                        c.name
                    ),
                ));
            }
        }
    }
    // Redirects are followed by the exchange (cookies on every hop), never by the client.
    let client = http::client(&ClientOptions {
        tls: opts.tls.clone(),
        timeout: opts.timeout,
        follow_redirects: false,
        resolve: opts.resolve.clone(),
    })?;
    let redactor = Arc::new(crate::redact::Redactor::new(
        suites.iter().flat_map(|s| s.secrets.iter().cloned()),
        &opts.redact_query,
    ));
    let limit = Arc::new(Semaphore::new(opts.jobs.max(1)));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut order = 0usize;
    for suite in suites {
        let base = opts.base_url.clone().or_else(|| suite.base_url.clone());
        let jar = Arc::new(Jar::default());
        let mut slots: Vec<Slot> = Vec::new();
        for check in &suite.checks {
            let (tx, rx) = watch::channel(None);
            let deps: Vec<(usize, Slot)> = check.depends_on.iter().map(|&i| (i, slots[i].clone())).collect();
            let after: Vec<Slot> = check.after.iter().map(|&i| slots[i].clone()).collect();
            slots.push(rx);
            let job = Job {
                order,
                suite_name: suite.display_name(),
                check: check.clone(),
                vars: suite.vars.clone(),
                base: base.clone(),
                client: client.clone(),
                jar: jar.clone(),
                redactor: redactor.clone(),
                limit: limit.clone(),
                opts: opts.clone(),
                dep_names: check.depends_on.iter().map(|&i| suite.checks[i].name.clone()).collect(),
            };
            order += 1;
            let progress = opts.progress.clone();
            tasks.spawn(async move {
                let (result, outcome) = job.run(deps, after).await;
                progress.inc(1);
                let _ = tx.send(Some(Arc::new(outcome)));
                result
            });
        }
    }
    let mut results = Vec::new();
    while let Some(done) = tasks.join_next().await {
        results.push(done?);
    }
    opts.progress.finish_and_clear();
    results.sort_by_key(|r| r.order);
    results.iter_mut().for_each(|r| redactor.result(r));
    Ok(Report::new(results, started.elapsed()))
}

struct Job {
    order: usize,
    suite_name: String,
    check: Check,
    vars: BTreeMap<String, String>,
    base: Option<String>,
    client: reqwest::Client,
    jar: Arc<Jar>,
    redactor: Arc<Redactor>,
    limit: Arc<Semaphore>,
    opts: RunOptions,
    dep_names: Vec<String>,
}

impl Job {
    async fn run(self, deps: Vec<(usize, Slot)>, after: Vec<Slot>) -> (CheckResult, Outcome) {
        // Checks this one only follows (cookies they set): done, passed or not.
        for mut slot in after {
            let _ = slot.wait_for(Option::is_some).await;
        }
        let mut vars = self.vars.clone();
        for ((_, mut slot), dep_name) in deps.into_iter().zip(&self.dep_names) {
            let outcome = match slot.wait_for(Option::is_some).await {
                Ok(v) => v.clone().unwrap_or_default(),
                Err(_) => Arc::new(Outcome::default()),
            };
            if !outcome.ok {
                let why = format!("skipped: check {dep_name:?}, whose captures this check uses, failed");
                let result = self.result_without_answer("(not sent)".into(), 0, None, vec![why], Duration::ZERO);
                return (CheckResult { skipped: true, ..result }, Outcome::default());
            }
            vars.extend(outcome.captures.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let request = self.request(&vars);
        let wanted = self.check.expect.render(&vars);
        let retries = self.check.retries.unwrap_or(self.opts.retries);
        let delay = self.check.retry_delay.unwrap_or(self.opts.retry_delay);
        let backoff = Backoff { attempts: retries.saturating_add(1), base: delay, max: delay.saturating_mul(8) };
        let timeout = self.check.timeout.unwrap_or(self.opts.timeout);
        let exchange = Exchange {
            client: &self.client,
            jar: self.check.cookies.then_some(&*self.jar),
            follow: self.check.follow_redirects.unwrap_or(self.opts.follow_redirects),
            timeout,
            max_body: self.opts.max_body,
            trace: self.opts.trace.then_some(&*self.redactor),
            name: &self.check.name,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer = {
                let _permit = self.limit.acquire().await;
                exchange.send(&request).await
            };
            let judged = self.judge(&request, &wanted, answer, attempt);
            let last = attempt >= backoff.attempts;
            if judged.0.ok || last {
                return judged;
            }
            tracing::info!("{}: attempt {attempt} failed, retrying", self.check.name);
            tokio::time::sleep(backoff.delay(attempt - 1)).await;
        }
    }

    fn request(&self, vars: &BTreeMap<String, String>) -> Request {
        let mut url = match &self.check.target {
            Target::Url(t) => t.render_url(vars),
            Target::Path(t) => {
                format!("{}{}", self.base.as_deref().unwrap_or("").trim_end_matches('/'), t.render_url(vars))
            }
        };
        if !self.check.query.is_empty() {
            // A URL that does not parse is sent as it is: the request fails and says why.
            if let Ok(mut parsed) = reqwest::Url::parse(&url) {
                parsed.query_pairs_mut().extend_pairs(self.check.query.iter().map(|(k, t)| (k, t.render(vars))));
                url = parsed.to_string();
            }
        }
        let mut headers: Vec<(String, String)> =
            self.check.headers.iter().map(|(k, t)| (k.clone(), t.render(vars))).collect();
        if let Some((user, password)) = &self.check.basic_auth {
            let token = crate::suite::base64(format!("{user}:{}", password.expose()).as_bytes());
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
            headers.push(("authorization".into(), format!("Basic {token}")));
        }
        let body = self.check.body.as_ref().map(|b| match b {
            Body::Text(t) => t.render(vars).into_bytes(),
            Body::Json(v) => render_json(v, vars).to_string().into_bytes(),
            Body::Form(fields) => url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields.iter().map(|(k, t)| (k, t.render(vars))))
                .finish()
                .into_bytes(),
            Body::Multipart(parts) => {
                let (content_type, body) = multipart(parts, vars, self.order);
                headers.push(("content-type".into(), content_type));
                body
            }
        });
        Request { method: self.check.method.clone(), url, headers, body }
    }

    fn judge(
        &self,
        request: &Request,
        wanted: &crate::suite::Expect,
        answer: Result<(HttpResponse, Hops), FetchError>,
        attempts: u32,
    ) -> (CheckResult, Outcome) {
        match answer {
            Err(e) => {
                // No answer: the error names the URL, with any password or token in it.
                let r = self.result_without_answer(
                    standby_common::secret::redact(&request.url),
                    attempts,
                    Some(e.failure),
                    vec![standby_common::secret::redact(&e.message)],
                    e.latency,
                );
                (r, Outcome::default())
            }
            Ok((mut resp, hops)) => {
                let mut failures = match crate::decode::decode(&mut resp, self.opts.max_body) {
                    Ok(()) => expect::unmet(wanted, &resp, &hops),
                    Err(e) => vec![e],
                };
                let captures = match expect::captures(&self.check.captures, &resp) {
                    Ok(c) => c,
                    Err(e) => {
                        failures.push(e);
                        BTreeMap::new()
                    }
                };
                let ok = failures.is_empty();
                let result = CheckResult {
                    order: self.order,
                    suite: self.suite_name.clone(),
                    name: self.check.name.clone(),
                    line: self.check.line,
                    method: request.method.to_string(),
                    url: standby_common::secret::redact(&request.url),
                    ok,
                    skipped: false,
                    status: Some(resp.status),
                    latency_ms: standby_common::probe::ms_of(resp.latency),
                    attempts,
                    failure: (!ok).then_some(Failure::Unexpected),
                    failures,
                    body_excerpt: (!ok).then(|| expect::body_excerpt(&resp)),
                };
                (result, Outcome { captures, ok })
            }
        }
    }

    fn result_without_answer(
        &self,
        url: String,
        attempts: u32,
        failure: Option<Failure>,
        failures: Vec<String>,
        latency: Duration,
    ) -> CheckResult {
        CheckResult {
            order: self.order,
            suite: self.suite_name.clone(),
            name: self.check.name.clone(),
            line: self.check.line,
            method: self.check.method.to_string(),
            url,
            ok: false,
            skipped: false,
            status: None,
            latency_ms: standby_common::probe::ms_of(latency),
            attempts,
            failure,
            failures,
            body_excerpt: None,
        }
    }
}

fn render_json(value: &serde_json::Value, vars: &BTreeMap<String, String>) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => match crate::template::Template::parse(s) {
            Ok(t) => Value::String(t.render(vars)),
            Err(_) => Value::String(s.clone()),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| render_json(v, vars)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), render_json(v, vars))).collect()),
        other => other.clone(),
    }
}

/// A `multipart/form-data` body and its content type; the boundary is unique to the run and
/// check, and a part that happens to hold it is not possible in practice (random-looking).
fn multipart(parts: &[(String, Part)], vars: &BTreeMap<String, String>, order: usize) -> (String, Vec<u8>) {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let boundary = format!("----smoke-test-{:x}-{order:x}-{:x}", std::process::id(), nanos);
    let mut body = Vec::new();
    let quote = |s: &str| s.replace('"', "%22").replace(['\r', '\n'], " ");
    for (name, part) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Text(t) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{}\"\r\n\r\n", quote(name)).as_bytes(),
                );
                body.extend_from_slice(t.render(vars).as_bytes());
            }
            Part::File { filename, content_type, data } => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {content_type}\r\n\r\n",
                        quote(name),
                        quote(filename)
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(data);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
