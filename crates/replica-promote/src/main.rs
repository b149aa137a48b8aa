fn main() -> std::process::ExitCode {
    standby_common::exit::main(replica_promote::cli::main)
}
