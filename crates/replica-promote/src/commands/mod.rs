//! One module per command: its clap arguments and `run(&Setup, ..)`.

pub mod check;
pub mod promote;
pub mod rejoin;
pub mod status;
pub mod switchover;
