//! The suite file: TOML with `[vars]`, `[defaults]` and `[[check]]` entries, loaded and fully
//! validated (keys, regexes, JSON pointers, placeholders, captures) before any request is
//! sent. Every error is a usage error (exit 2) that starts with `file:line:col` of the key
//! or value at fault (found in the check's text by `locate`). Besides `body`/`json`, a
//! request may carry `form`, `multipart` (files read here), `query` and `basic-auth` (its
//! password a secret, like `{{env.*}}` values); `cookies` and `after` shape the run's order.
//!
//! ```toml
//! [vars]
//! user = "demo"
//!
//! [defaults]
//! timeout = "5s"
//! retries = 1
//!
//! [[check]]
//! name = "login"
//! method = "POST"
//! path = "/api/login"
//! json = { user = "{{user}}", password = "{{env.APP_PASSWORD}}" }
//! expect = { status = 200, json = [{ pointer = "/token", exists = true }] }
//! capture = { token = { json = "/token" } }
//!
//! [[check]]
//! name = "profile"
//! path = "/api/me"
//! headers = { Authorization = "Bearer {{token}}" }
//! expect = { status = "2xx", body-contains = "demo", max-latency = "500ms" }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use standby_common::config::{suggest, ConfigFile};
use standby_common::duration::HumanDuration;
use standby_common::probe::StatusSet;
use toml::Spanned;

use crate::cookie_test::{CookieSpec, CookieTest};
use crate::template::Template;

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SuiteFile {
    #[serde(default)]
    vars: BTreeMap<String, String>,
    #[serde(default)]
    defaults: DefaultsSpec,
    #[serde(default, rename = "check")]
    checks: Vec<Spanned<CheckSpec>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct DefaultsSpec {
    base_url: Option<String>,
    timeout: Option<HumanDuration>,
    retries: Option<u32>,
    retry_delay: Option<HumanDuration>,
    follow_redirects: Option<bool>,
    cookies: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CheckSpec {
    name: String,
    method: Option<String>,
    url: Option<String>,
    path: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<String>,
    json: Option<toml::Value>,
    form: Option<BTreeMap<String, String>>,
    multipart: Option<BTreeMap<String, PartSpec>>,
    #[serde(default)]
    query: BTreeMap<String, String>,
    basic_auth: Option<BasicAuthSpec>,
    cookies: Option<bool>,
    #[serde(default)]
    after: Vec<String>,
    timeout: Option<HumanDuration>,
    retries: Option<u32>,
    retry_delay: Option<HumanDuration>,
    follow_redirects: Option<bool>,
    #[serde(default)]
    expect: ExpectSpec,
    #[serde(default)]
    capture: BTreeMap<String, CaptureSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ExpectSpec {
    status: Option<StatusSet>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    header_regex: BTreeMap<String, String>,
    body_contains: Option<OneOrMany>,
    body_not_contains: Option<OneOrMany>,
    body_regex: Option<String>,
    #[serde(default)]
    json: Vec<JsonSpec>,
    max_latency: Option<HumanDuration>,
    cert_valid_days: Option<u32>,
    url: Option<String>,
    redirects: Option<u32>,
    sha256: Option<String>,
    bytes: Option<u64>,
    #[serde(default)]
    cookies: BTreeMap<String, CookieSpec>,
}

/// A multipart part: a text value, or a file (read when the suite loads).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PartSpec {
    Text(String),
    File(FilePartSpec),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FilePartSpec {
    file: PathBuf,
    content_type: Option<String>,
    filename: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct BasicAuthSpec {
    user: String,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct JsonSpec {
    pointer: String,
    equals: Option<toml::Value>,
    not_equals: Option<toml::Value>,
    matches: Option<String>,
    count: Option<usize>,
    exists: Option<bool>,
    gt: Option<f64>,
    gte: Option<f64>,
    lt: Option<f64>,
    lte: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CaptureSpec {
    json: Option<String>,
    header: Option<String>,
    regex: Option<String>,
}

/// A JSON expectation on one pointer.
#[derive(Debug, Clone)]
pub enum JsonTest {
    Equals(serde_json::Value),
    NotEquals(serde_json::Value),
    /// A string value (or the JSON text of another value) matches.
    Matches(Regex),
    /// The number of items of an array (or keys of an object).
    Count(usize),
    Exists(bool),
    Compare(Compare, f64),
}

/// A numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// What the answer must be.
#[derive(Debug, Clone)]
pub struct Expect {
    pub status: StatusSet,
    pub headers: Vec<(String, String)>,
    pub header_regex: Vec<(String, Regex)>,
    pub body_contains: Vec<String>,
    pub body_not_contains: Vec<String>,
    pub body_regex: Option<Regex>,
    pub json: Vec<(String, JsonTest)>,
    pub max_latency: Option<Duration>,
    pub cert_valid_days: Option<u32>,
    /// The URL that answered last (after redirects); may hold `{{placeholders}}`.
    pub url: Option<String>,
    /// How many redirects were followed.
    pub redirects: Option<u32>,
    /// SHA-256 of the (decoded) body, lowercase hex.
    pub sha256: Option<String>,
    /// Length in bytes of the (decoded) body.
    pub bytes: Option<u64>,
    /// Cookies the answer sets (`Set-Cookie`, on any hop), by name: their values and
    /// attributes.
    pub cookies: Vec<(String, CookieTest)>,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            status: StatusSet::success(),
            headers: Vec::new(),
            header_regex: Vec::new(),
            body_contains: Vec::new(),
            body_not_contains: Vec::new(),
            body_regex: None,
            json: Vec::new(),
            max_latency: None,
            cert_valid_days: None,
            url: None,
            redirects: None,
            sha256: None,
            bytes: None,
            cookies: Vec::new(),
        }
    }
}

/// Where a captured value comes from.
#[derive(Debug, Clone)]
pub enum CaptureFrom {
    Json(String),
    Header(String),
    Regex(Regex),
}

/// The request body.
#[derive(Debug, Clone)]
pub enum Body {
    Text(Template),
    /// A JSON document whose string leaves are templates.
    Json(serde_json::Value),
    /// `application/x-www-form-urlencoded` fields, values templates.
    Form(Vec<(String, Template)>),
    /// `multipart/form-data` parts.
    Multipart(Vec<(String, Part)>),
}

/// One multipart part.
#[derive(Debug, Clone)]
pub enum Part {
    Text(Template),
    /// A file's bytes, read when the suite loaded.
    File {
        filename: String,
        content_type: String,
        data: std::sync::Arc<Vec<u8>>,
    },
}

/// One check, validated.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub line: usize,
    pub method: reqwest::Method,
    /// Either a full URL or a path joined to the base URL.
    pub target: Target,
    pub headers: Vec<(String, Template)>,
    /// Query parameters added to the URL, each percent-encoded.
    pub query: Vec<(String, Template)>,
    /// `Authorization: Basic` from a user and a secret password.
    pub basic_auth: Option<(String, standby_common::secret::Secret)>,
    pub body: Option<Body>,
    /// Send and keep the suite's cookies (default true).
    pub cookies: bool,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub retry_delay: Option<Duration>,
    pub follow_redirects: Option<bool>,
    pub expect: Expect,
    pub captures: Vec<(String, CaptureFrom)>,
    /// Indexes (in this suite) of the checks whose captures this one uses.
    pub depends_on: BTreeSet<usize>,
    /// Indexes of checks this one only waits for (cookies they set, `after`): it runs
    /// whether they passed or not.
    pub after: BTreeSet<usize>,
}

/// Where a check sends its request.
#[derive(Debug, Clone)]
pub enum Target {
    Url(Template),
    Path(Template),
}

/// A loaded, validated suite file.
#[derive(Debug, Clone)]
pub struct Suite {
    pub path: PathBuf,
    pub base_url: Option<String>,
    pub vars: BTreeMap<String, String>,
    pub checks: Vec<Check>,
    /// The values of the `{{env.NAME}}` variables the checks use: reports show them as `***`.
    pub secrets: BTreeSet<String>,
}

impl Suite {
    /// Read and validate a suite file. `cli_vars` (`--var K=V`) are known names too.
    pub fn load(path: &Path, cli_vars: &BTreeMap<String, String>) -> anyhow::Result<Suite> {
        let file = ConfigFile::read(path)?;
        Self::parse(&file, cli_vars)
    }

    /// Validate a suite from text (the file name is used in errors).
    pub fn parse(file: &ConfigFile, cli_vars: &BTreeMap<String, String>) -> anyhow::Result<Suite> {
        let spec: SuiteFile = file.document()?;
        let mut vars = spec.vars.clone();
        vars.extend(cli_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut defined: BTreeMap<String, usize> = BTreeMap::new();
        let mut checks = Vec::new();
        let mut names = BTreeSet::new();
        let mut secrets = BTreeSet::new();
        let dir = file.path.as_deref().and_then(Path::parent).unwrap_or(Path::new("")).to_path_buf();
        let mut index_of: BTreeMap<String, usize> = BTreeMap::new();
        // The last check with cookies on whose method may change state (POST /login): later
        // checks with cookies on wait for it, so they see what it set.
        let mut barrier: Option<usize> = None;
        // (byte offset, line number at that offset) of the last check seen.
        let mut counted = (0usize, 1usize);
        for (index, spanned) in spec.checks.iter().enumerate() {
            let span = spanned.span();
            let at = span.start;
            let c = spanned.get_ref();
            if !names.insert(c.name.clone()) {
                return Err(file.error_at(
                    locate(&file.text, span.clone(), Some("name"), None),
                    format!("check name {:?} is used twice", c.name),
                ));
            }
            let check = compile(c, &spec.defaults, &dir).map_err(|l| {
                let offset = locate(&file.text, span.clone(), l.key, l.needle.as_deref());
                file.error_at(offset, format!("check {:?}: {}", c.name, l.msg))
            })?;
            if let Some((user, password)) = &check.basic_auth {
                secrets.insert(password.expose().to_string());
                secrets.insert(base64(format!("{user}:{}", password.expose()).as_bytes()));
            }
            let mut after = BTreeSet::new();
            for name in &c.after {
                match index_of.get(name) {
                    Some(&i) => after.insert(i),
                    None => {
                        let offset = locate(&file.text, span.clone(), Some("after"), Some(name));
                        return Err(file.error_at(
                            offset,
                            format!("check {:?}: after: no earlier check is named {name:?}", c.name),
                        ));
                    }
                };
            }
            if check.cookies {
                after.extend(barrier);
                if !matches!(check.method, reqwest::Method::GET | reqwest::Method::HEAD | reqwest::Method::OPTIONS) {
                    barrier = Some(index);
                }
            }
            index_of.insert(c.name.clone(), index);
            let mut depends_on = BTreeSet::new();
            for name in check_vars(&check) {
                if let Some(&by) = defined.get(&name) {
                    depends_on.insert(by);
                } else if !vars.contains_key(&name) {
                    let later = spec.checks[index..].iter().any(|s| s.get_ref().capture.contains_key(&name));
                    let known = vars.keys().chain(defined.keys()).map(String::as_str);
                    let hint = match (later, suggest(&name, known)) {
                        (true, _) => {
                            " (it is captured by a later check: captures are used after the check that defines them)"
                                .to_string()
                        }
                        (false, Some(s)) => format!("; did you mean {{{{{s}}}}}?"),
                        (false, None) => {
                            "; define it in [vars], with --var, or capture it in an earlier check".to_string()
                        }
                    };
                    let offset = locate_var(&file.text, span.clone(), &name);
                    return Err(
                        file.error_at(offset, format!("check {:?}: unknown variable {{{{{name}}}}}{hint}", c.name))
                    );
                }
            }
            for var in check_env_vars(&check) {
                match std::env::var(&var) {
                    Ok(value) => secrets.insert(value),
                    Err(_) => {
                        let offset = locate(&file.text, span.clone(), None, Some(&format!("env.{var}")));
                        return Err(
                            file.error_at(offset, format!("check {:?}: environment variable {var} is not set", c.name))
                        );
                    }
                };
            }
            // A URL made only of [vars], --var and env values is known now: it must parse.
            if let Target::Url(t) = &check.target {
                if t.vars().all(|v| !defined.contains_key(v)) {
                    check_url(&t.render(&vars)).map_err(|e| {
                        file.error_at(
                            locate(&file.text, span.clone(), Some("url"), None),
                            standby_common::secret::redact(&format!("check {:?}: url: {e}", c.name)),
                        )
                    })?;
                }
            }
            for (name, _) in &check.captures {
                defined.insert(name.clone(), index);
            }
            // Lines counted on from the previous check (spans only grow): linear in the file.
            let upto = at.min(file.text.len()).max(counted.0);
            counted = (upto, counted.1 + file.text.as_bytes()[counted.0..upto].iter().filter(|&&b| b == b'\n').count());
            checks.push(Check { line: counted.1, depends_on, after, ..check });
        }
        if checks.is_empty() {
            return Err(file.error_at(0, "no [[check]] in this suite: expected at least one"));
        }
        Ok(Suite {
            path: file.path.clone().unwrap_or_default(),
            base_url: spec.defaults.base_url.clone(),
            vars,
            checks,
            secrets,
        })
    }

    /// A suite of one check, for the ad-hoc `--url` form.
    pub fn single(check: Check) -> Suite {
        Suite {
            path: PathBuf::from("(command line)"),
            base_url: None,
            vars: BTreeMap::new(),
            checks: vec![check],
            secrets: BTreeSet::new(),
        }
    }

    /// The file name shown in reports.
    pub fn display_name(&self) -> String {
        self.path.display().to_string()
    }
}

impl Check {
    /// A GET of `url` expecting a 2xx: the starting point of the ad-hoc form.
    pub fn get(name: &str, url: &str) -> Result<Check, String> {
        Ok(Check {
            name: name.to_string(),
            line: 0,
            method: reqwest::Method::GET,
            target: Target::Url(Template::parse(url)?),
            headers: Vec::new(),
            query: Vec::new(),
            basic_auth: None,
            body: None,
            cookies: true,
            timeout: None,
            retries: None,
            retry_delay: None,
            follow_redirects: None,
            expect: Expect::default(),
            captures: Vec::new(),
            depends_on: BTreeSet::new(),
            after: BTreeSet::new(),
        })
    }

    /// Every template of the check: target, headers, text body and expectation strings.
    fn templates(&self) -> Vec<Template> {
        let mut all = vec![match &self.target {
            Target::Url(t) | Target::Path(t) => t.clone(),
        }];
        all.extend(self.headers.iter().chain(&self.query).map(|(_, t)| t.clone()));
        match &self.body {
            Some(Body::Text(t)) => all.push(t.clone()),
            Some(Body::Form(fields)) => all.extend(fields.iter().map(|(_, t)| t.clone())),
            Some(Body::Multipart(parts)) => all.extend(parts.iter().filter_map(|(_, p)| match p {
                Part::Text(t) => Some(t.clone()),
                Part::File { .. } => None,
            })),
            _ => {}
        }
        all.extend(self.expect.strings().filter_map(|s| Template::parse(s).ok()));
        all
    }
}

impl Expect {
    /// The expectation strings that may hold `{{placeholders}}`.
    fn strings(&self) -> impl Iterator<Item = &String> {
        let json = self.json.iter().filter_map(|(_, t)| match t {
            JsonTest::Equals(serde_json::Value::String(s)) | JsonTest::NotEquals(serde_json::Value::String(s)) => {
                Some(s)
            }
            _ => None,
        });
        self.body_contains
            .iter()
            .chain(&self.body_not_contains)
            .chain(self.headers.iter().map(|(_, v)| v))
            .chain(json)
            .chain(&self.url)
            .chain(self.cookies.iter().filter_map(|(_, c)| c.value.as_ref()))
    }

    /// A copy with `{{placeholders}}` in its strings filled in.
    pub fn render(&self, vars: &BTreeMap<String, String>) -> Expect {
        let fill = |s: &String| Template::parse(s).map(|t| t.render(vars)).unwrap_or_else(|_| s.clone());
        let mut out = self.clone();
        out.body_contains = self.body_contains.iter().map(fill).collect();
        out.body_not_contains = self.body_not_contains.iter().map(fill).collect();
        out.headers = self.headers.iter().map(|(k, v)| (k.clone(), fill(v))).collect();
        out.url = self.url.as_ref().map(fill);
        for (_, cookie) in &mut out.cookies {
            cookie.value = cookie.value.as_ref().map(fill);
        }
        for (_, test) in &mut out.json {
            if let JsonTest::Equals(serde_json::Value::String(s)) | JsonTest::NotEquals(serde_json::Value::String(s)) =
                test
            {
                *s = fill(s);
            }
        }
        out
    }
}

fn check_vars(check: &Check) -> BTreeSet<String> {
    let mut vars: BTreeSet<String> = check.templates().iter().flat_map(|t| t.vars().map(String::from)).collect();
    if let Some(Body::Json(v)) = &check.body {
        json_templates(v, &mut |t| vars.extend(t.vars().map(String::from)));
    }
    vars
}

fn check_env_vars(check: &Check) -> BTreeSet<String> {
    let mut vars: BTreeSet<String> = check.templates().iter().flat_map(|t| t.env_vars().map(String::from)).collect();
    if let Some(Body::Json(v)) = &check.body {
        json_templates(v, &mut |t| vars.extend(t.env_vars().map(String::from)));
    }
    vars
}

/// Visit the templates in a JSON body's string leaves (validated at load, so parse succeeds).
pub fn json_templates(value: &serde_json::Value, f: &mut dyn FnMut(&Template)) {
    match value {
        serde_json::Value::String(s) => {
            if let Ok(t) = Template::parse(s) {
                f(&t);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_templates(v, f)),
        serde_json::Value::Object(map) => map.values().for_each(|v| json_templates(v, f)),
        _ => {}
    }
}

fn validate_json_templates(value: &serde_json::Value) -> Result<(), String> {
    match value {
        serde_json::Value::String(s) => Template::parse(s).map(|_| ()),
        serde_json::Value::Array(items) => items.iter().try_for_each(validate_json_templates),
        serde_json::Value::Object(map) => map.values().try_for_each(validate_json_templates),
        _ => Ok(()),
    }
}

/// An absolute http(s) URL, or why not.
pub fn check_url(u: &str) -> Result<(), String> {
    match reqwest::Url::parse(u) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(()),
        Ok(url) => Err(format!("URL {u:?} has scheme {:?}: expected http:// or https://", url.scheme())),
        Err(e) => Err(format!("invalid URL {u:?} ({e}): expected e.g. https://example.com/health")),
    }
}

fn positive(what: &str, d: Option<HumanDuration>) -> Result<Option<Duration>, String> {
    match d.map(HumanDuration::get) {
        Some(d) if d.is_zero() => Err(format!("{what} must be more than 0s")),
        other => Ok(other),
    }
}

fn regex(what: &str, pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("invalid regex in {what}: {e}"))
}

fn pointer(what: &str, p: &str) -> Result<String, String> {
    if p.is_empty() || p.starts_with('/') {
        // RFC 6901: `~` only as `~0` (a `~`) or `~1` (a `/`).
        let mut chars = p.chars();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                return Err(format!(
                    "invalid JSON pointer {p:?} in {what}: `~` must be followed by 0 (for ~) or 1 (for /)"
                ));
            }
        }
        Ok(p.to_string())
    } else {
        Err(format!(
            "invalid JSON pointer {p:?} in {what}: expected \"\" or a path starting with '/', e.g. \"/data/0/id\""
        ))
    }
}

fn to_json(value: &toml::Value) -> Result<serde_json::Value, String> {
    serde_json::to_value(value).map_err(|e| format!("cannot express {value} as JSON: {e}"))
}

/// A compile error and the key it is about (`expect.json`), located in the check's text.
struct Located {
    key: Option<&'static str>,
    /// A text to find after the key (the offending value), for a closer position.
    needle: Option<String>,
    msg: String,
}

impl From<String> for Located {
    fn from(msg: String) -> Located {
        Located { key: None, needle: None, msg }
    }
}

/// Tag an error with the key it is about.
fn at(key: &'static str) -> impl Fn(String) -> Located {
    move |msg| Located { key: Some(key), needle: None, msg }
}

/// Tag an error with its key and the offending value's text.
fn at_value(key: &'static str, needle: &str) -> impl Fn(String) -> Located {
    let needle = needle.to_string();
    move |msg| Located { key: Some(key), needle: Some(needle.clone()), msg }
}

/// The byte offset of `key` (dotted: `expect.json`) inside `text[span]`, then of `needle`
/// after it; the check's start when not found. A plain textual search: good enough to point
/// a person at the line, never used to read values.
fn locate(text: &str, span: std::ops::Range<usize>, key: Option<&str>, needle: Option<&str>) -> usize {
    let end = span.end.min(text.len());
    let mut pos = span.start.min(end);
    for segment in key.into_iter().flat_map(|k| k.split('.')) {
        let pattern = format!(r#"(?m)(^|[\s{{,])("{0}"|{0})\s*="#, regex::escape(segment));
        let Ok(re) = Regex::new(&pattern) else { break };
        match re.captures(text.get(pos..end).unwrap_or("")).and_then(|c| c.get(2)) {
            Some(m) => pos += m.start(),
            None => break,
        }
    }
    if let Some(n) = needle.filter(|n| !n.is_empty()) {
        if let Some(i) = text.get(pos..end).and_then(|t| t.find(n)) {
            pos += i;
        }
    }
    pos
}

/// Where a check's `{{name}}` is written, for an error about it.
fn locate_var(text: &str, span: std::ops::Range<usize>, name: &str) -> usize {
    let end = span.end.min(text.len());
    let re = Regex::new(&format!(r"\{{\{{\s*{}\s*\}}\}}", regex::escape(name)));
    match re.ok().and_then(|re| re.find(text.get(span.start..end).unwrap_or("")).map(|m| m.start())) {
        Some(i) => span.start + i,
        None => span.start,
    }
}

/// Base64 (RFC 4648, padded), for `Authorization: Basic`.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn compile(c: &CheckSpec, d: &DefaultsSpec, dir: &Path) -> Result<Check, Located> {
    let method = c.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| at("method")(format!("invalid method {method:?}")))?;
    let target = match (&c.url, &c.path) {
        (Some(u), None) => {
            let t = Template::parse(u).map_err(at("url"))?;
            if t.vars().next().is_none() && t.env_vars().next().is_none() {
                check_url(u).map_err(at("url"))?;
            }
            Target::Url(t)
        }
        (None, Some(p)) if p.starts_with('/') => Target::Path(Template::parse(p).map_err(at("path"))?),
        (None, Some(p)) => return Err(at("path")(format!("path {p:?} must start with '/'"))),
        _ => return Err("needs exactly one of `url` (absolute) or `path` (joined to --base-url)".to_string().into()),
    };
    let mut headers = Vec::new();
    // A check's header replaces a default of the same name in any case (`user-agent` and
    // `User-Agent` are one header).
    let overridden = |k: &String| c.headers.keys().any(|own| own.eq_ignore_ascii_case(k));
    for (k, v) in d.headers.iter().filter(|(k, _)| !overridden(k)).chain(&c.headers) {
        reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| at_value("headers", k)(format!("invalid header name {k:?}")))?;
        if reqwest::header::HeaderValue::from_str(v).is_err() {
            return Err(at_value("headers", k)(format!(
                "invalid value for header {k}: control characters such as newlines are not allowed"
            )));
        }
        headers.push((k.clone(), Template::parse(v).map_err(at_value("headers", k))?));
    }
    let has_header =
        |headers: &[(String, Template)], name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let given = [c.body.is_some(), c.json.is_some(), c.form.is_some(), c.multipart.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err("has more than one of `body`, `json`, `form`, `multipart`: expected one".to_string().into());
    }
    let body = if let Some(b) = &c.body {
        Some(Body::Text(Template::parse(b).map_err(at("body"))?))
    } else if let Some(j) = &c.json {
        let value = to_json(j).map_err(at("json"))?;
        validate_json_templates(&value).map_err(at("json"))?;
        if !has_header(&headers, "content-type") {
            headers.push(("content-type".into(), Template::parse("application/json")?));
        }
        Some(Body::Json(value))
    } else if let Some(form) = &c.form {
        let fields = form
            .iter()
            .map(|(k, v)| Ok((k.clone(), Template::parse(v).map_err(at_value("form", k))?)))
            .collect::<Result<Vec<_>, Located>>()?;
        if !has_header(&headers, "content-type") {
            headers.push(("content-type".into(), Template::parse("application/x-www-form-urlencoded")?));
        }
        Some(Body::Form(fields))
    } else if let Some(parts) = &c.multipart {
        if has_header(&headers, "content-type") {
            return Err(at("multipart")(
                "`multipart` sets its own content-type (with the boundary): remove the content-type header".into(),
            ));
        }
        let mut out = Vec::new();
        for (name, part) in parts {
            let part = match part {
                PartSpec::Text(t) => Part::Text(Template::parse(t).map_err(at_value("multipart", name))?),
                PartSpec::File(f) => {
                    let path = dir.join(&f.file);
                    let data = std::fs::read(&path).map_err(|e| {
                        at_value("multipart", name)(format!("multipart.{name}: cannot read {}: {e}", path.display()))
                    })?;
                    let filename = f.filename.clone().unwrap_or_else(|| {
                        f.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| name.clone())
                    });
                    let content_type = f.content_type.clone().unwrap_or_else(|| "application/octet-stream".into());
                    if content_type.contains(['\r', '\n']) || filename.contains(['\r', '\n', '"']) {
                        return Err(at_value("multipart", name)(format!(
                            "multipart.{name}: filename and content-type may not hold quotes or newlines"
                        )));
                    }
                    Part::File { filename, content_type, data: std::sync::Arc::new(data) }
                }
            };
            out.push((name.clone(), part));
        }
        Some(Body::Multipart(out))
    } else {
        None
    };
    let query = c
        .query
        .iter()
        .map(|(k, v)| Ok((k.clone(), Template::parse(v).map_err(at_value("query", k))?)))
        .collect::<Result<Vec<_>, Located>>()?;
    let basic_auth = match &c.basic_auth {
        None => None,
        Some(b) => {
            if b.user.contains(':') {
                return Err(at("basic-auth")("basic-auth.user may not contain ':'".into()));
            }
            let password = match (&b.password_env, &b.password_file) {
                (Some(var), None) => std::env::var(var)
                    .map(standby_common::secret::Secret::new)
                    .map_err(|_| at("password-env")(format!("basic-auth: environment variable {var} is not set")))?,
                (None, Some(file)) => standby_common::secret::read_file("basic-auth.password-file", &dir.join(file))
                    .map_err(|e| at("password-file")(format!("{e:#}")))?,
                _ => {
                    return Err(at("basic-auth")(
                        "basic-auth needs exactly one of password-env or password-file (never a password in the file)"
                            .into(),
                    ))
                }
            };
            Some((b.user.clone(), password))
        }
    };
    let e = &c.expect;
    let mut json = Vec::new();
    for j in &e.json {
        let at_json = at_value("expect.json", &j.pointer);
        let p = pointer("expect.json", &j.pointer).map_err(&at_json)?;
        let tests: Vec<JsonTest> = [
            j.equals.as_ref().map(|v| to_json(v).map(JsonTest::Equals)).transpose().map_err(&at_json)?,
            j.not_equals.as_ref().map(|v| to_json(v).map(JsonTest::NotEquals)).transpose().map_err(&at_json)?,
            j.matches
                .as_deref()
                .map(|r| regex("expect.json.matches", r).map(JsonTest::Matches))
                .transpose()
                .map_err(&at_json)?,
            j.count.map(JsonTest::Count),
            j.exists.map(JsonTest::Exists),
            j.gt.map(|n| JsonTest::Compare(Compare::Gt, n)),
            j.gte.map(|n| JsonTest::Compare(Compare::Gte, n)),
            j.lt.map(|n| JsonTest::Compare(Compare::Lt, n)),
            j.lte.map(|n| JsonTest::Compare(Compare::Lte, n)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if tests.is_empty() {
            return Err(at_json(format!(
                "expect.json {:?} needs one of equals, not-equals, matches, count, exists, gt, gte, lt, lte",
                j.pointer
            )));
        }
        json.extend(tests.into_iter().map(|t| (p.clone(), t)));
    }
    let sha256 = match &e.sha256 {
        Some(h) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) => Some(h.to_ascii_lowercase()),
        Some(h) => return Err(at("sha256")(format!("expect.sha256 {h:?}: expected 64 hex digits"))),
        None => None,
    };
    let expect = Expect {
        status: e.status.clone().unwrap_or_else(StatusSet::success),
        headers: e.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect(),
        header_regex: e
            .header_regex
            .iter()
            .map(|(k, v)| Ok((k.to_ascii_lowercase(), regex(&format!("expect.header-regex.{k}"), v)?)))
            .collect::<Result<_, String>>()
            .map_err(at("header-regex"))?,
        body_contains: e.body_contains.clone().map(OneOrMany::into_vec).unwrap_or_default(),
        body_not_contains: e.body_not_contains.clone().map(OneOrMany::into_vec).unwrap_or_default(),
        body_regex: e
            .body_regex
            .as_deref()
            .map(|r| regex("expect.body-regex", r))
            .transpose()
            .map_err(at("body-regex"))?,
        json,
        max_latency: e.max_latency.map(HumanDuration::get),
        cert_valid_days: e.cert_valid_days,
        url: e.url.clone(),
        redirects: e.redirects,
        sha256,
        bytes: e.bytes,
        cookies: e.cookies.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect(),
    };
    for text in expect.strings() {
        Template::parse(text).map_err(|e| at_value("expect", text)(format!("in expect: {e}")))?;
    }
    let mut captures = Vec::new();
    for (name, spec) in &c.capture {
        let at_capture = at_value("capture", name);
        Template::parse(&format!("{{{{{name}}}}}"))
            .map_err(|_| at_capture(format!("invalid capture name {name:?}")))?;
        let from = match (&spec.json, &spec.header, &spec.regex) {
            (Some(p), None, None) => CaptureFrom::Json(pointer(&format!("capture.{name}"), p).map_err(&at_capture)?),
            (None, Some(h), None) => CaptureFrom::Header(h.to_ascii_lowercase()),
            (None, None, Some(r)) => {
                let re = regex(&format!("capture.{name}"), r).map_err(&at_capture)?;
                if re.captures_len() < 2 {
                    return Err(at_capture(format!("capture.{name}: the regex needs a group, e.g. \"id=(\\\\d+)\"")));
                }
                CaptureFrom::Regex(re)
            }
            _ => return Err(at_capture(format!("capture.{name} needs exactly one of json, header, regex"))),
        };
        captures.push((name.clone(), from));
    }
    Ok(Check {
        name: c.name.clone(),
        line: 0,
        method,
        target,
        headers,
        query,
        basic_auth,
        body,
        cookies: c.cookies.or(d.cookies).unwrap_or(true),
        timeout: positive("timeout", c.timeout.or(d.timeout)).map_err(at("timeout"))?,
        retries: c.retries.or(d.retries),
        retry_delay: c.retry_delay.or(d.retry_delay).map(HumanDuration::get),
        follow_redirects: c.follow_redirects.or(d.follow_redirects),
        expect,
        captures,
        depends_on: BTreeSet::new(),
        after: BTreeSet::new(),
    })
}
