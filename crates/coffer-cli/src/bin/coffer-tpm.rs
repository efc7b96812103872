//! `coffer-tpm`: what `coffer` hands a command to when this process must hold the keys.

fn main() -> std::process::ExitCode {
    coffer_cli::tpm_main()
}
