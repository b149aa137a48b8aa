//! Human durations in config files and flags: `500ms`, `30s`, `5m`, `2h`, `1d`, `1h 30m`.
//! Serialized back in the same form, so `--json` shows what the user wrote.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration that reads and prints like `30s`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn from_secs(secs: u64) -> Self {
        HumanDuration(Duration::from_secs(secs))
    }
    pub fn from_millis(ms: u64) -> Self {
        HumanDuration(Duration::from_millis(ms))
    }
    pub fn get(self) -> Duration {
        self.0
    }
}

/// The longest duration accepted anywhere (ten years): larger values are typos, and would
/// overflow time arithmetic.
pub const MAX: Duration = Duration::from_secs(10 * 365 * 86_400);

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let d = humantime::parse_duration(s.trim())
            .map_err(|e| format!("invalid duration {s:?} ({e}); expected e.g. 500ms, 30s, 5m, 2h"))?;
        if d > MAX {
            return Err(format!("duration {s:?} is too long: at most 10 years"));
        }
        Ok(HumanDuration(d))
    }
}

/// Milliseconds as i64, saturating (for time arithmetic in Unix ms).
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_forms_operators_write() {
        let d: HumanDuration = "1h 30m".parse().unwrap();
        assert_eq!(d.get(), Duration::from_secs(5400));
        assert_eq!("500ms".parse::<HumanDuration>().unwrap().get().as_millis(), 500);
        assert_eq!(HumanDuration::from_secs(30).to_string(), "30s");
        let err = "ten seconds".parse::<HumanDuration>().unwrap_err();
        assert!(err.contains("expected e.g."), "{err}");
        let err = "18446744073709551615s".parse::<HumanDuration>().unwrap_err();
        assert!(err.contains("too long"), "{err}");
        assert_eq!(millis(Duration::MAX), i64::MAX);
    }
}
