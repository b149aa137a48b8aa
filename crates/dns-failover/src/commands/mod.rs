//! One module per command: `check` (cron), `watch` (daemon), `status`, `switch`.

pub mod check;
pub mod status;
pub mod switch;
pub mod watch;
