//! The command-line contract shared by every standby binary.

#[test]
fn keeps_the_shared_cli_contract() {
    standby_e2e::cli_contract::check(env!("CARGO_BIN_EXE_blue-green-deploy"), "blue-green-deploy");
}

#[test]
fn every_setting_is_a_flag_and_an_env_var() {
    standby_e2e::cli_contract::settings::<blue_green_deploy::cli::Cli, blue_green_deploy::config::Config>(
        env!("CARGO_BIN_EXE_blue-green-deploy"),
        "blue-green-deploy",
        &[
            ("nginx -p /srv/a", r#"["nginx", "-p", "/srv/a"]"#),
            ("nginx -p /srv/b", r#"["nginx", "-p", "/srv/b"]"#),
            ("127.0.0.1:3001", r#"{ address = "127.0.0.1:3001" }"#),
            ("127.0.0.1:3002", r#"{ address = "127.0.0.1:3002" }"#),
        ],
    );
}
