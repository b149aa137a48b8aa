//! The `[backup-sync]` section of the standby config file. Keys are added with the commands
//! that use them; until then any key is reported as unknown (exit 2).

standby_common::section! {
    /// Settings of backup-sync.
    pub struct Config {}
}
