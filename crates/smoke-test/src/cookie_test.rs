//! What a check expects of a cookie its answer sets: `expect.cookies = { session = "abc" }`
//! (its value), or a table of its value and attributes, as Hurl's `cookie "session[Secure]"`
//! asserts them:
//!
//! ```toml
//! [[check]]
//! name = "login keeps a hardened session cookie"
//! method = "POST"
//! path = "/login"
//! expect = { cookies = { session = { secure = true, http-only = true, same-site = "Lax" } } }
//! ```

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::cookies::SetCookie;

/// The expectations on one cookie (the table form); `None` is not checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CookieTest {
    /// May hold `{{placeholders}}`.
    pub value: Option<String>,
    pub secure: Option<bool>,
    pub http_only: Option<bool>,
    /// Compared without regard to case (`Lax`, `Strict`, `None`).
    pub same_site: Option<String>,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub max_age: Option<i64>,
}

/// A cookie's entry in a suite: its value (a string) or a [`CookieTest`] table.
#[derive(Debug)]
pub struct CookieSpec(pub CookieTest);

const EXPECTING: &str =
    "a cookie value (a string) or a table of value, secure, http-only, same-site, path, domain, max-age";

impl<'de> Deserialize<'de> for CookieSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> Visitor<'de> for Either {
            type Value = CookieSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTING)
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<CookieSpec, E> {
                Ok(CookieSpec(CookieTest { value: Some(value.to_string()), ..CookieTest::default() }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CookieSpec, A::Error> {
                let test = CookieTest::deserialize(de::value::MapAccessDeserializer::new(map))?;
                if test == CookieTest::default() {
                    return Err(de::Error::custom(format!("an empty cookie table: expected {EXPECTING}")));
                }
                Ok(CookieSpec(test))
            }
        }
        deserializer.deserialize_any(Either)
    }
}

impl CookieTest {
    /// The unmet expectations on the cookie `name` the answer set as `got`.
    pub fn unmet(&self, name: &str, got: &SetCookie) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(want) = &self.value {
            if got.value != *want {
                out.push(format!("expected cookie {name} = {want:?}, got {:?}", got.value));
            }
        }
        for (want, attribute) in [(self.secure, "Secure"), (self.http_only, "HttpOnly")] {
            match (want, got.attribute(attribute).is_some()) {
                (Some(true), false) => out.push(format!("expected cookie {name} to be {attribute}, it is not")),
                (Some(false), true) => out.push(format!("expected cookie {name} not to be {attribute}, it is")),
                _ => {}
            }
        }
        let texts = [
            (self.same_site.as_deref(), "SameSite", true),
            (self.path.as_deref(), "Path", false),
            (self.domain.as_deref(), "Domain", true),
        ];
        let max_age = self.max_age.map(|n| n.to_string());
        for (want, attribute, any_case) in texts.into_iter().chain([(max_age.as_deref(), "Max-Age", false)]) {
            let Some(want) = want else { continue };
            let got = got.attribute(attribute);
            let same = got.is_some_and(|g| if any_case { g.eq_ignore_ascii_case(want) } else { g == want });
            if !same {
                let got = got.map_or_else(|| format!("no {attribute}"), |g| format!("{attribute}={g}"));
                out.push(format!("expected cookie {name} {attribute}={want}, got {got}"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(toml_text: &str) -> Result<CookieTest, String> {
        #[derive(Deserialize)]
        struct Doc {
            c: CookieSpec,
        }
        toml::from_str::<Doc>(toml_text).map(|d| d.c.0).map_err(|e| e.to_string())
    }

    #[test]
    fn a_string_is_the_value_and_a_table_names_attributes() {
        assert_eq!(test("c = \"abc\"").expect("a value").value.as_deref(), Some("abc"));
        let t = test("c = { secure = true, same-site = \"lax\", max-age = 60 }").expect("a table");
        assert_eq!((t.secure, t.same_site.as_deref(), t.max_age, t.value), (Some(true), Some("lax"), Some(60), None));
        assert!(test("c = { httponly = true }").expect_err("a typo").contains("unknown field `httponly`"));
        assert!(test("c = {}").expect_err("empty").contains("an empty cookie table"));
        assert!(test("c = 3").expect_err("a number").contains("a cookie value (a string) or a table"));
    }

    #[test]
    fn every_unmet_attribute_is_named_with_what_came() {
        let got = SetCookie::parse("s=1; Path=/; HttpOnly; SameSite=None").expect("a cookie");
        let want = test(
            "c = { value = \"2\", secure = true, http-only = false, same-site = \"Lax\", path = \"/app\", \
             domain = \"example.com\", max-age = 60 }",
        )
        .expect("a table");
        assert_eq!(
            want.unmet("s", &got),
            [
                "expected cookie s = \"2\", got \"1\"",
                "expected cookie s to be Secure, it is not",
                "expected cookie s not to be HttpOnly, it is",
                "expected cookie s SameSite=Lax, got SameSite=None",
                "expected cookie s Path=/app, got Path=/",
                "expected cookie s Domain=example.com, got no Domain",
                "expected cookie s Max-Age=60, got no Max-Age",
            ]
        );
        let met = test("c = { value = \"1\", http-only = true, secure = false, same-site = \"none\", path = \"/\" }")
            .expect("a table");
        assert!(met.unmet("s", &got).is_empty());
    }
}
