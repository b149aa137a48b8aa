//! blue-green-deploy: zero-downtime deploys behind nginx. `deploy` starts the idle colour,
//! waits for its health, runs the smoke suite against it in-process (smoke-test's library),
//! switches nginx (`nginx -t` first, the old include restored when rejected; then a reload,
//! or with `live-socket` a symlink renamed onto the colour's unix socket), verifies and
//! watches through nginx, rolls back on failure, drains and stops the old colour. `status`,
//! `switch --to COLOR` and `rollback` complete it.
//!
//! Modules: [`config`] (the section), [`color`] (colours, addresses, command templates),
//! [`proxy`] (the [`proxy::Proxy`] trait, nginx), [`health`] (probes), [`record`] (the state
//! dir's record of the last run), [`report`] (steps and the report), [`setup`] (the checked
//! configuration), [`commands`] (one file per command), [`cli`] (parsing and dispatch).

pub mod cli;
pub mod color;
pub mod commands;
pub mod config;
pub mod health;
pub mod proxy;
pub mod record;
pub mod report;
pub mod setup;
