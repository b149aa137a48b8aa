//! One module per command; each takes the [`Setup`](crate::setup::Setup) and returns the
//! exit code.

pub mod check;
pub mod init;
pub mod offsite;
pub mod restore;
pub mod run;
pub mod snapshots;
pub mod status;
pub mod verify;

use std::time::{Duration, SystemTime};

/// Age of a moment, saturating at zero for clocks a little ahead.
pub fn age(at: SystemTime) -> Duration {
    SystemTime::now().duration_since(at).unwrap_or_default()
}
