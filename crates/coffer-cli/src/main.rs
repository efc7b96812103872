//! `coffer`: parse the command line, call the engine, render the answer.

mod cli;
mod commands;
mod dotenv;
mod failure;
mod input;
mod output;
mod private_file;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Any command may unseal keys or handle values (and `coffer agent` holds them for
    // hours): keep them out of core dumps and away from debuggers of the same user.
    if let Err(error) = coffer_core::process::harden() {
        eprintln!("coffer: warning: cannot disable core dumps ({error}); continuing");
    }
    // The TSS libraries log their own errors to stderr; Coffer reports every failure
    // itself, in one sentence, so silence them unless the user asked for them.
    if std::env::var_os("TSS2_LOG").is_none() {
        std::env::set_var("TSS2_LOG", "all+NONE");
    }
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("coffer: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
