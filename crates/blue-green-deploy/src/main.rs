fn main() -> std::process::ExitCode {
    standby_common::exit::main(blue_green_deploy::cli::main)
}
