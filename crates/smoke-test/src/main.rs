fn main() -> std::process::ExitCode {
    standby_common::exit::main(smoke_test::cli::main)
}
