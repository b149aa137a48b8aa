//! The `[smoke-test]` section of the standby config file. Keys are added with the commands
//! that use them; until then any key is reported as unknown (exit 2).

use serde::{Deserialize, Serialize};

/// Settings of smoke-test.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {}
