//! A set of accepted HTTP status codes, written as operators write them: `200`, `2xx`,
//! `200-299`, or a list of those (`"200, 301-302, 4xx"` or a TOML array).

use std::fmt;
use std::str::FromStr;

/// Accepted status codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet {
    ranges: Vec<(u16, u16)>,
    text: String,
}

impl StatusSet {
    /// Any 2xx.
    pub fn success() -> Self {
        "2xx".parse().unwrap_or(StatusSet { ranges: vec![(200, 299)], text: "2xx".into() })
    }

    pub fn contains(&self, status: u16) -> bool {
        self.ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

impl FromStr for StatusSet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for part in s.split(',').map(str::trim) {
            let bad = || format!("invalid status {part:?}: expected e.g. 200, 2xx, 200-299 or a list of those");
            let code = |t: &str| -> Result<u16, String> {
                t.trim().parse::<u16>().ok().filter(|c| (100..=599).contains(c)).ok_or_else(bad)
            };
            let range = if let Some(class) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX")) {
                let digit = class.parse::<u16>().ok().filter(|d| (1..=5).contains(d)).ok_or_else(bad)?;
                (digit * 100, digit * 100 + 99)
            } else if let Some((lo, hi)) = part.split_once('-') {
                let (lo, hi) = (code(lo)?, code(hi)?);
                if lo > hi {
                    return Err(bad());
                }
                (lo, hi)
            } else {
                let c = code(part)?;
                (c, c)
            };
            ranges.push(range);
        }
        Ok(StatusSet { ranges, text: s.trim().to_string() })
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for StatusSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for StatusSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let one = |v: &toml::Value| match v {
            toml::Value::Integer(n) => Ok(n.to_string()),
            toml::Value::String(s) => Ok(s.clone()),
            other => Err(D::Error::custom(format!(
                "invalid status {other}: expected e.g. 200, \"2xx\", \"200-299\" or a list of those"
            ))),
        };
        let text = match toml::Value::deserialize(d)? {
            toml::Value::Array(items) => items.iter().map(one).collect::<Result<Vec<_>, _>>()?.join(", "),
            other => one(&other)?,
        };
        text.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_operators_write() {
        let s: StatusSet = "200, 301-302, 4xx".parse().unwrap();
        for ok in [200, 301, 302, 404, 499] {
            assert!(s.contains(ok), "{ok}");
        }
        for bad in [201, 303, 500] {
            assert!(!s.contains(bad), "{bad}");
        }
        assert!(StatusSet::success().contains(204));
    }

    #[test]
    fn nonsense_is_rejected_with_the_expected_form() {
        for bad in ["20", "6xx", "abc", "300-200", ""] {
            let e = bad.parse::<StatusSet>().unwrap_err();
            assert!(e.contains("expected e.g. 200, 2xx"), "{bad}: {e}");
        }
    }

    #[test]
    fn deserializes_number_string_and_array() {
        #[derive(serde::Deserialize)]
        struct T {
            a: StatusSet,
            b: StatusSet,
            c: StatusSet,
        }
        let t: T = toml::from_str("a = 204\nb = \"3xx\"\nc = [200, \"404\"]").unwrap();
        let err = toml::from_str::<T>("a = 99999\nb = 1\nc = 1").map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("invalid status \"99999\""), "{err}");
        assert!(t.a.contains(204) && t.b.contains(302) && t.c.contains(404) && !t.c.contains(201));
    }
}
