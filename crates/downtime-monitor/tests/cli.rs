//! The command-line contract shared by every standby binary.

#[test]
fn keeps_the_shared_cli_contract() {
    standby_e2e::cli_contract::check(env!("CARGO_BIN_EXE_downtime-monitor"), "downtime-monitor");
}

#[test]
fn every_setting_is_a_flag_and_an_env_var() {
    let decision = [
        ("96,86,81", "{ do-nothing-above = 96.0, watch-above = 86.0, ups-above = 81.0 }"),
        ("97,87,82", "{ do-nothing-above = 97.0, watch-above = 87.0, ups-above = 82.0 }"),
    ];
    standby_e2e::cli_contract::settings::<downtime_monitor::cli::Cli, downtime_monitor::config::Config>(
        env!("CARGO_BIN_EXE_downtime-monitor"),
        "downtime-monitor",
        &decision,
    );
}
