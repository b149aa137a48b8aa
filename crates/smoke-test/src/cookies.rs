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

/// One `Set-Cookie` header as the answer sent it: the cookie's name, value and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Attribute names in lowercase, with their values (empty for a flag such as `Secure`).
    attributes: Vec<(String, String)>,
}

impl SetCookie {
    /// `None` when the header has no `name=`.
    pub fn parse(header: &str) -> Option<SetCookie> {
        let mut parts = header.split(';');
        let (name, value) = parts.next()?.split_once('=')?;
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        let attributes = parts
            .filter(|a| !a.trim().is_empty())
            .map(|a| {
                let (k, v) = a.split_once('=').unwrap_or((a, ""));
                (k.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        Some(SetCookie { name: name.to_string(), value: value.trim().trim_matches('"').to_string(), attributes })
    }

    /// The value of the attribute `name` (any case; the last one counts), `""` for a flag.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Jar {
    /// Keep (or remove) the cookie of one `Set-Cookie` header received from `url`.
    pub fn store(&self, url: &reqwest::Url, set_cookie: &SetCookie) {
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else { return };
        let mut cookie = Cookie {
            name: set_cookie.name.clone(),
            value: set_cookie.value.clone(),
            domain: host.clone(),
            host_only: true,
            path: default_path(url.path()),
            secure: false,
        };
        let mut remove = false;
        for (key, val) in &set_cookie.attributes {
            let val = val.as_str();
            match key.as_str() {
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
        jar.store(&url("http://app.test/login"), &SetCookie::parse("session=abc; Path=/; HttpOnly").expect("a cookie"));
        jar.store(&url("http://app.test/api/x"), &SetCookie::parse("scoped=1").expect("a cookie"));
        jar.store(&url("http://app.test/"), &SetCookie::parse("s=2; Secure").expect("a cookie"));
        jar.store(&url("http://app.test/"), &SetCookie::parse("other=3; Domain=example.com").expect("a cookie"));
        assert_eq!(jar.header_for(&url("http://app.test/me")).as_deref(), Some("session=abc"));
        assert_eq!(jar.header_for(&url("http://app.test/api/y")).as_deref(), Some("scoped=1; session=abc"));
        assert_eq!(jar.header_for(&url("https://app.test/")).as_deref(), Some("session=abc; s=2"));
        assert_eq!(jar.header_for(&url("http://other.test/")), None);
        jar.store(&url("http://app.test/"), &SetCookie::parse("session=; Max-Age=0; Path=/").expect("a cookie"));
        jar.store(
            &url("http://app.test/api/"),
            &SetCookie::parse("scoped=; Expires=Thu, 01 Jan 1970 00:00:00 GMT").expect("a cookie"),
        );
        assert_eq!(jar.header_for(&url("http://app.test/api/y")), None);
    }

    #[test]
    fn a_set_cookie_keeps_its_attributes_by_any_case() {
        let c =
            SetCookie::parse("id=\"a b\"; path=/app; SECURE; HttpOnly ; SameSite=Lax; Max-Age=60;").expect("a cookie");
        assert_eq!((c.name.as_str(), c.value.as_str()), ("id", "a b"));
        assert_eq!(c.attribute("Path"), Some("/app"));
        assert_eq!(c.attribute("secure"), Some(""));
        assert_eq!(c.attribute("httponly"), Some(""));
        assert_eq!(c.attribute("samesite"), Some("Lax"));
        assert_eq!(c.attribute("max-age"), Some("60"));
        assert_eq!(c.attribute("domain"), None);
        assert_eq!(SetCookie::parse("=x; Secure"), None);
        assert_eq!(SetCookie::parse("no-equals-sign"), None);
    }
}
