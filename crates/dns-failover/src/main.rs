fn main() -> std::process::ExitCode {
    standby_common::exit::main(dns_failover::cli::main)
}
