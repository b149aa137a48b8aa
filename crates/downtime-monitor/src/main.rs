fn main() -> std::process::ExitCode {
    standby_common::exit::main(downtime_monitor::cli::main)
}
