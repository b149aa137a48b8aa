//! The cookie jar of a suite: `Set-Cookie` of every answer (and of every redirect hop) kept,
//! and sent back as `Cookie` on later requests to a matching host and path (RFC 6265, the
//! parts a smoke test needs: host-only and `Domain` cookies, `Path`, `Secure`, removal by
//! `Max-Age=0` or an `Expires` in the past). One jar per suite file, for one run.

use std::sync::Mutex;
use std::time::SystemTime;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cookie {
    name: String,
    value: String,
    domain: String,
    host_only: bool,
    path: String,
    secure: bool,
}

/// A suite's cookies.
#[derive(Debug, Default)]
pub struct Jar {
    cookies: Mutex<Vec<Cookie>>,
}

/// Name and value of a `Set-Cookie` header, `None` when it has no `name=`.
pub fn name_value(set_cookie: &str) -> Option<(String, String)> {
    let first = set_cookie.split(';').next()?;
    let (name, value) = first.split_once('=')?;
    let name = name.trim();
    (!name.is_empty()).then(|| (name.to_string(), value.trim().trim_matches('"').to_string()))
}

impl Jar {
    /// Keep (or remove) the cookie of one `Set-Cookie` header received from `url`.
    pub fn store(&self, url: &reqwest::Url, set_cookie: &str) {
        let Some((name, value)) = name_value(set_cookie) else { return };
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else { return };
        let mut cookie = Cookie {
            name,
            value,
            domain: host.clone(),
            host_only: true,
            path: default_path(url.path()),
            secure: false,
        };
        let mut remove = false;
        for attr in set_cookie.split(';').skip(1) {
            let (key, val) = attr.split_once('=').map(|(k, v)| (k.trim(), v.trim())).unwrap_or((attr.trim(), ""));
            match key.to_ascii_lowercase().as_str() {
                "domain" if !val.is_empty() => {
                    let domain = val.trim_start_matches('.').to_ascii_lowercase();
                    if !domain_match(&host, &domain) {
                        return; // a server may not set cookies for another site
                    }
                    cookie.domain = domain;
                    cookie.host_only = false;
                }
                "path" if val.starts_with('/') => cookie.path = val.to_string(),
                "secure" => cookie.secure = true,
                "max-age" => remove |= val.parse::<i64>().is_ok_and(|s| s <= 0),
                "expires" => remove |= httpdate::parse_http_date(val).is_ok_and(|t| t <= SystemTime::now()),
                _ => {}
            }
        }
        let mut cookies = self.cookies.lock().unwrap_or_else(|p| p.into_inner());
        cookies.retain(|c| !(c.name == cookie.name && c.domain == cookie.domain && c.path == cookie.path));
        if !remove {
            cookies.push(cookie);
        }
    }

    /// The `Cookie` header for a request to `url`, if any cookie matches.
    pub fn header_for(&self, url: &reqwest::Url) -> Option<String> {
        let host = url.host_str()?.to_ascii_lowercase();
        let path = url.path();
        let cookies = self.cookies.lock().unwrap_or_else(|p| p.into_inner());
        let mut matching: Vec<&Cookie> = cookies
            .iter()
            .filter(|c| if c.host_only { c.domain == host } else { domain_match(&host, &c.domain) })
            .filter(|c| path_match(path, &c.path))
            .filter(|c| !c.secure || url.scheme() == "https")
            .collect();
        // Longer paths first (RFC 6265 §5.4); otherwise in the order they were set.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        (!matching.is_empty())
            .then(|| matching.iter().map(|c| format!("{}={}", c.name, c.value)).collect::<Vec<_>>().join("; "))
    }
}

fn default_path(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => path[..i].to_string(),
    }
}

fn domain_match(host: &str, domain: &str) -> bool {
    host == domain || (host.ends_with(domain) && host[..host.len() - domain.len()].ends_with('.'))
}

fn path_match(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie) && (cookie.ends_with('/') || request[cookie.len()..].starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> reqwest::Url {
        reqwest::Url::parse(u).unwrap_or_else(|e| panic!("{u}: {e}"))
    }

    #[test]
    fn cookies_match_host_path_and_scheme_and_can_be_removed() {
        let jar = Jar::default();
        jar.store(&url("http://app.test/login"), "session=abc; Path=/; HttpOnly");
        jar.store(&url("http://app.test/api/x"), "scoped=1");
        jar.store(&url("http://app.test/"), "s=2; Secure");
        jar.store(&url("http://app.test/"), "other=3; Domain=example.com");
        assert_eq!(jar.header_for(&url("http://app.test/me")).as_deref(), Some("session=abc"));
        assert_eq!(jar.header_for(&url("http://app.test/api/y")).as_deref(), Some("scoped=1; session=abc"));
        assert_eq!(jar.header_for(&url("https://app.test/")).as_deref(), Some("session=abc; s=2"));
        assert_eq!(jar.header_for(&url("http://other.test/")), None);
        jar.store(&url("http://app.test/"), "session=; Max-Age=0; Path=/");
        jar.store(&url("http://app.test/api/"), "scoped=; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(jar.header_for(&url("http://app.test/api/y")), None);
    }
}
