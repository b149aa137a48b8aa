//! PostgreSQL WAL positions (`16/B374D848`): parsed from the text form the server prints,
//! compared and subtracted as byte offsets.

use std::fmt;
use std::str::FromStr;

/// A WAL position as a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Bytes from `earlier` to `self`, 0 when `earlier` is ahead.
    pub fn bytes_after(self, earlier: Lsn) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl FromStr for Lsn {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (hi, lo) = s.trim().split_once('/').ok_or_else(|| format!("{s:?} is not a WAL position"))?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| format!("{s:?} is not a WAL position"))?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| format!("{s:?} is not a WAL position"))?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl serde::Serialize for Lsn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Lsn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The timeline of a WAL file name (`00000002000000000000000A` → 2).
pub fn timeline_of_walfile(name: &str) -> Option<u32> {
    name.get(..8).and_then(|t| u32::from_str_radix(t, 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_round_trip_and_subtract() {
        let a: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(a.to_string(), "16/B374D848");
        let b: Lsn = "17/0".parse().unwrap();
        assert_eq!(b.bytes_after(a), 0x1_0000_0000 - 0xB374_D848);
        assert_eq!(a.bytes_after(b), 0);
        assert!("16".parse::<Lsn>().is_err());
        assert_eq!(timeline_of_walfile("00000002000000000000000A"), Some(2));
    }
}
