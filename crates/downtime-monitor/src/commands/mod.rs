//! One module per command, each with its clap arguments and its `run` over a
//! [`Setup`](crate::setup::Setup); `cli` only parses and dispatches. The work itself is in the
//! library modules (`monitor`, `report`, `store`, ...).

pub mod check;
pub mod import;
pub mod maintenance;
pub mod ping;
pub mod report;
pub mod status;
pub mod watch;
