//! The `[backup-sync]` section of the standby config file: the repository, what to back up,
//! hooks, retention (`[backup-sync.keep]`), database dumps (`[[backup-sync.dump]]`) and
//! offsite copies (`[[backup-sync.offsite]]`). The key names are the interface of issue 12.
//!
//! ```toml
//! [backup-sync]
//! repository = "/srv/backup/repo"          # a local path (restic format)
//! password-file = "/etc/standby/backup.pw" # or password-env
//! sources = ["/etc", "/var/lib/app"]
//! exclude = ["*.tmp", "/var/lib/app/cache"]
//! one-file-system = true
//! rpo = "26h"                              # `status` exits 1 when the last snapshot is older
//! check-read-data-subset = "5%"
//! run-before = []
//! run-after = []
//! run-failed = []
//! run-finally = []
//!
//! [backup-sync.keep]
//! last = 7
//! daily = 30
//! weekly = 8
//! monthly = 12
//!
//! [[backup-sync.dump]]
//! kind = "postgres"                        # pg_dump custom format, streamed into the repository
//! conninfo = "host=127.0.0.1 user=postgres"
//! database = "app"
//!
//! [[backup-sync.dump]]
//! kind = "command"                         # its stdout is stored as a file
//! name = "vaultwarden.sqlite3"
//! command = "sqlite3 /var/lib/vaultwarden/db.sqlite3 .dump"
//!
//! [[backup-sync.offsite]]
//! remote = ":local:/mnt/usb/repo"          # any rclone remote
//! bwlimit = "8M"
//! flags = ["--fast-list"]
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use standby_common::duration::HumanDuration;
use toml::Spanned;

standby_common::section! {
    /// Settings of backup-sync.
    pub struct Config {
        /// The repository: a local directory in restic's format
        #[arg(long, value_name = "PATH")]
        pub repository: Option<PathBuf>,
        /// The repository password from this file (chmod 600)
        #[arg(long, value_name = "FILE")]
        pub password_file: Option<PathBuf>,
        /// The repository password from this env var
        #[arg(long, value_name = "VAR")]
        pub password_env: Option<String>,
        /// Directories and files to back up (repeat the flag for several)
        #[arg(long = "sources", value_name = "PATH")]
        pub sources: Vec<PathBuf>,
        /// Glob patterns to leave out, as restic's --exclude (repeat the flag for several)
        #[arg(long = "exclude", value_name = "GLOB")]
        pub exclude: Vec<String>,
        /// Do not cross into other filesystems below a source
        #[arg(long)]
        pub one_file_system: bool,
        /// Recovery point objective: `status` exits 1 when the newest snapshot is older
        #[arg(long, value_name = "DUR", default_value = "26h")]
        pub rpo: HumanDuration,
        /// Part of the pack data `run` and `check` read back: 5%, 1/10 or 500M
        #[arg(long, value_name = "SUBSET", default_value = "5%")]
        pub check_read_data_subset: Subset,
        /// Shell lines run before a backup; a failure stops the run
        #[arg(long = "run-before", value_name = "LINE")]
        pub run_before: Vec<String>,
        /// Shell lines run after a successful run
        #[arg(long = "run-after", value_name = "LINE")]
        pub run_after: Vec<String>,
        /// Shell lines run after a failed run
        #[arg(long = "run-failed", value_name = "LINE")]
        pub run_failed: Vec<String>,
        /// Shell lines run after every run
        #[arg(long = "run-finally", value_name = "LINE")]
        pub run_finally: Vec<String>,
        /// Retention: `last=7,daily=30,weekly=8,monthly=12`; in the file the
        /// `[backup-sync.keep]` table. Unset: snapshots are never forgotten
        #[arg(long, value_name = "last=N,daily=N,...")]
        pub keep: Option<Keep>,
        /// Database dumps streamed into the repository: file only
        #[arg(skip)]
        pub dump: Vec<Spanned<DumpSpec>>,
        /// Offsite copies of the repository through rclone: file only
        #[arg(skip)]
        pub offsite: Vec<Spanned<OffsiteSpec>>,
    }
}

/// How many snapshots of each kind `run` keeps (per host and path set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Keep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hourly: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weekly: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yearly: Option<u32>,
}

impl Keep {
    /// True when no rule is given (nothing would be kept: refused).
    pub fn is_empty(&self) -> bool {
        *self == Keep::default()
    }
}

impl std::str::FromStr for Keep {
    type Err = String;

    /// `last=7,daily=30` (flag or env var), or the file's inline table form.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim_start().starts_with('{') {
            #[derive(Deserialize)]
            struct Wrap {
                v: Keep,
            }
            return toml::from_str::<Wrap>(&format!("v = {s}")).map(|w| w.v).map_err(|e| e.message().to_string());
        }
        let mut keep = Keep::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || format!("expected rules like last=7,daily=30, got {part:?}");
            let (name, n) = part.split_once('=').ok_or_else(bad)?;
            let n: u32 = n.trim().parse().map_err(|_| bad())?;
            let slot = match name.trim() {
                "last" => &mut keep.last,
                "hourly" => &mut keep.hourly,
                "daily" => &mut keep.daily,
                "weekly" => &mut keep.weekly,
                "monthly" => &mut keep.monthly,
                "yearly" => &mut keep.yearly,
                other => {
                    return Err(format!("unknown keep rule {other:?}: last, hourly, daily, weekly, monthly, yearly"))
                }
            };
            *slot = Some(n);
        }
        if keep.is_empty() {
            return Err("keep needs at least one rule, e.g. last=7".to_string());
        }
        Ok(keep)
    }
}

/// A part of the repository's pack data to read back: `5%`, `1/10` (the n-th of m parts,
/// rotating) or a size such as `500M`; validated with rustic's own parser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subset(String);

impl Subset {
    pub fn option(&self) -> rustic_core::ReadSubsetOption {
        self.0.parse().unwrap_or_default()
    }
}

impl std::str::FromStr for Subset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.trim()
            .parse::<rustic_core::ReadSubsetOption>()
            .map(|_| Subset(s.trim().to_string()))
            .map_err(|e| format!("invalid subset {s:?} ({e}); expected e.g. 5%, 1/10 or 500M"))
    }
}

impl TryFrom<String> for Subset {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Subset> for String {
    fn from(s: Subset) -> String {
        s.0
    }
}

impl std::fmt::Display for Subset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a dump runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DumpKind {
    /// `pg_dump --format=custom` of one database.
    Postgres,
    /// Any shell line; its stdout is stored as a file.
    Command,
}

/// One `[[backup-sync.dump]]` as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DumpSpec {
    pub kind: DumpKind,
    /// The file name in the repository [default: `<database>.pgdump` for postgres].
    pub name: Option<String>,
    /// libpq conninfo without the database (`host=... user=...`), postgres only.
    pub conninfo: Option<String>,
    /// The database to dump, postgres only.
    pub database: Option<String>,
    /// The shell line whose stdout is stored, command only.
    pub command: Option<String>,
    /// Give up (and fail the dump) after this long [default: 6h].
    pub timeout: Option<HumanDuration>,
}

/// One `[[backup-sync.offsite]]` as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OffsiteSpec {
    /// Any rclone remote and path (`b2:bucket/standby`, `:local:/mnt/usb/repo`).
    pub remote: String,
    /// rclone's --bwlimit.
    pub bwlimit: Option<String>,
    /// More rclone flags, as an argv list.
    #[serde(default)]
    pub flags: Vec<String>,
}
