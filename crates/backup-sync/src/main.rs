fn main() -> std::process::ExitCode {
    standby_common::exit::main(backup_sync::cli::main)
}
