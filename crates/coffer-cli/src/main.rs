//! `coffer`, the program people and scripts run (see the library's documentation).

fn main() -> std::process::ExitCode {
    coffer_cli::client_main()
}
