//! One module per command: `check` (cron), `watch` (daemon), `status`, `switch`.

pub mod check;
pub mod status;
pub mod switch;
pub mod watch;

use standby_common::state::StateDir;

use crate::memory::CallLog;
use crate::provider::Providers;

/// Note the API calls this run made (for `status`' hourly figure).
pub fn log_calls(state: &StateDir, providers: &Providers) {
    let now_s = crate::memory::now_ms() / 1000;
    if let Err(e) = CallLog::record(state, now_s, providers.calls()) {
        tracing::warn!("cannot note the API calls made: {e:#}");
    }
}
