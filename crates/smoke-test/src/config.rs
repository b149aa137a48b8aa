//! The `[smoke-test]` section: defaults for every run, each also a flag
//! (`--key`) and an env var (`STANDBY_SMOKE_TEST_KEY`); the flag wins, then the env var, then
//! this file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use standby_common::duration::HumanDuration;

use crate::Format;

/// Settings of smoke-test.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub base_url: Option<String>,
    pub jobs: Option<usize>,
    pub retries: Option<u32>,
    pub retry_delay: Option<HumanDuration>,
    pub timeout: Option<HumanDuration>,
    pub format: Option<Format>,
    pub cacert: Option<PathBuf>,
    pub insecure: Option<bool>,
    pub follow_redirects: Option<bool>,
}
