//! The `[replica-promote]` section of the standby config file. Roles are never configured:
//! `local` and `peer` are asked `pg_is_in_recovery()` at run time, so the same file stays
//! right on both machines after a failover.
//!
//! ```toml
//! [replica-promote]
//! local = "host=/var/run/postgresql port=5432 user=postgres dbname=postgres"   # this machine's node
//! peer = "host=192.0.2.5 port=5432 user=postgres dbname=postgres"             # the other node
//! password-env = "PGPASSWORD"        # or password-file; PGPASSFILE is honoured
//! max-lag-bytes = "1MB"
//! max-lag-seconds = 60
//! data-dir = "/var/lib/postgresql/15/main"   # of the local node, for rejoin and pg_ctl
//! bin-dir = "/usr/lib/postgresql/15/bin"
//! system-user = "postgres"           # pg_ctl / pg_rewind run as the data directory's owner
//! fence = "ssh old-primary systemctl stop postgresql"   # optional, must succeed before a forced promote
//! peer-checks = ["https://app.example.com/health", "tcp://203.0.113.10:5432"]
//! post-promote = ["dns-failover switch --to backup --record db.example.com"]
//! ```

use std::path::PathBuf;

use standby_common::duration::HumanDuration;

use crate::size::ByteSize;

standby_common::section! {
    /// Settings of replica-promote.
    pub struct Config {
        /// This machine's node: a libpq conninfo or postgres:// URL (no password: see password-env)
        #[arg(long, value_name = "CONNINFO",
              default_value = "host=/var/run/postgresql port=5432 user=postgres dbname=postgres")]
        pub local: String,
        /// The other node: a libpq conninfo or postgres:// URL
        #[arg(long, value_name = "CONNINFO")]
        pub peer: Option<String>,
        /// Read the PostgreSQL password from this env var [default: PGPASSWORD when set;
        /// else ~/.pgpass or $PGPASSFILE]
        #[arg(long, value_name = "VAR")]
        pub password_env: Option<String>,
        /// Read the PostgreSQL password from this file (chmod 600)
        #[arg(long, value_name = "FILE")]
        pub password_file: Option<PathBuf>,
        /// The standby is unhealthy when its replay is further behind than this (1MB, 512kB, 2GB)
        #[arg(long, value_name = "SIZE", default_value = "1MB")]
        pub max_lag_bytes: ByteSize,
        /// The standby is unhealthy when its replay is further behind than this many seconds
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        pub max_lag_seconds: u64,
        /// The local node's data directory (for rejoin, switchover and pg_ctl)
        #[arg(long, value_name = "DIR")]
        pub data_dir: Option<PathBuf>,
        /// Where pg_ctl, pg_rewind and pg_controldata are
        #[arg(long, value_name = "DIR", default_value = "/usr/lib/postgresql/15/bin")]
        pub bin_dir: PathBuf,
        /// The data directory's owner: pg_ctl and pg_rewind run as this user (via runuser when root)
        #[arg(long, value_name = "USER", default_value = "postgres")]
        pub system_user: String,
        /// A shell command that stops the old primary for good; `promote --force` runs it first
        /// and refuses unless it succeeds
        #[arg(long, value_name = "COMMAND")]
        pub fence: Option<String>,
        /// The old primary seen through other paths (https://…, http://…, tcp://host:port): if
        /// any answers, `promote` refuses
        #[arg(long, value_name = "URL")]
        pub peer_checks: Vec<String>,
        /// Shell commands run after a promotion, with the result in REPLICA_PROMOTE_* env vars
        #[arg(long, value_name = "COMMAND")]
        pub post_promote: Vec<String>,
        /// Bound on each connection to a node (TCP, TLS and login) and on each peer check
        #[arg(long, value_name = "DUR", default_value = "5s")]
        pub connect_timeout: HumanDuration,
    }
}
