//! The command-line contract shared by every standby binary.

#[test]
fn keeps_the_shared_cli_contract() {
    standby_e2e::cli_contract::check(env!("CARGO_BIN_EXE_smoke-test"), "smoke-test");
}

#[test]
fn every_setting_is_a_flag_and_an_env_var() {
    standby_e2e::cli_contract::settings::<smoke_test::cli::Cli, smoke_test::config::Config>(
        env!("CARGO_BIN_EXE_smoke-test"),
        "smoke-test",
        &[],
    );
}
