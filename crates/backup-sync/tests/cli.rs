//! The command-line contract shared by every standby binary.

#[test]
fn keeps_the_shared_cli_contract() {
    standby_e2e::cli_contract::check(env!("CARGO_BIN_EXE_backup-sync"), "backup-sync");
}

#[test]
fn every_setting_is_a_flag_and_an_env_var() {
    standby_e2e::cli_contract::settings::<backup_sync::cli::Cli, backup_sync::config::Config>(
        env!("CARGO_BIN_EXE_backup-sync"),
        "backup-sync",
        &[
            ("/a", "[\"/a\"]"),
            ("/b", "[\"/b\"]"),
            ("last=2", "{ last = 2 }"),
            ("last=3,daily=4", "{ last = 3, daily = 4 }"),
            ("5%", "\"5%\""),
            ("1/10", "\"1/10\""),
        ],
    );
}
