//! The command-line contract shared by every standby binary.

#[test]
fn keeps_the_shared_cli_contract() {
    standby_e2e::cli_contract::check(env!("CARGO_BIN_EXE_replica-promote"), "replica-promote");
}

#[test]
fn every_setting_is_a_flag_and_an_env_var() {
    standby_e2e::cli_contract::settings::<replica_promote::cli::Cli, replica_promote::config::Config>(
        env!("CARGO_BIN_EXE_replica-promote"),
        "replica-promote",
        &[
            ("tcp://192.0.2.1:5432", "[\"tcp://192.0.2.1:5432\"]"),
            ("tcp://192.0.2.2:5432", "[\"tcp://192.0.2.2:5432\"]"),
        ],
    );
}
