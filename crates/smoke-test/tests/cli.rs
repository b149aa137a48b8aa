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

#[test]
fn check_config_loads_and_validates_the_suites_given() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[[check]]\nname = \"home\"\npath = \"/\"\n").unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[check]]\nname = \"home\"\npath = \"/{{nope}}\"\n").unwrap();
    let run = |suite: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_smoke-test"))
            .arg(suite)
            .args(["--check-config", "-q"])
            .env_remove("STANDBY_CONFIG")
            .output()
            .unwrap()
    };
    let ok = run(&good);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let err = run(&bad);
    assert_eq!(err.status.code(), Some(2), "{}", String::from_utf8_lossy(&err.stderr));
    assert!(String::from_utf8_lossy(&err.stderr).contains("nope"), "{}", String::from_utf8_lossy(&err.stderr));
}
