//! `coffer`: parse the command line, call the engine, render the answer.
//!
//! Two programs share this code. `coffer` is what people and scripts run: when an
//! unlocked agent serves the vault it does the whole command itself, and it never links
//! the TPM stack (libtss2 and the libcrypto it pulls in), whose symbol binding was most of
//! a command's start-up time. Every command that needs this process to hold keys (no
//! agent, `--no-agent`, `init`, `unlock`, `status`, …) it hands, before doing anything
//! else, to `coffer-tpm` by `exec` with the same arguments, environment and terminal.
//! What `coffer-tpm` links is decided by which functions each entry point reaches, so
//! [`in_process`] is reached only from [`tpm_main`].

pub mod cli;
pub mod commands;
pub mod dotenv;
mod failure;
mod handoff;
mod in_process;
mod input;
mod output;
mod peers;
mod private_file;
mod self_update;
pub mod template;

use std::process::ExitCode;

use clap::Parser;

use failure::Failure;

/// `coffer`: serves the command through the agent, or hands it to `coffer-tpm`.
pub fn client_main() -> ExitCode {
    harden();
    let cli = cli::Cli::parse();
    let outcome = match handoff::route(&cli) {
        handoff::Route::Here(agent) => commands::run(cli, &handoff::AGENT_ONLY, agent),
        handoff::Route::Tpm => Err(handoff::exec_tpm()),
    };
    finish(outcome)
}

/// `coffer-tpm`: the same commands, with the keys unsealed in this process when needed.
pub fn tpm_main() -> ExitCode {
    harden();
    // The TSS libraries log their own errors to stderr; Coffer reports every failure
    // itself, in one sentence, so silence them unless the user asked for them.
    if std::env::var_os("TSS2_LOG").is_none() {
        std::env::set_var("TSS2_LOG", "all+NONE");
    }
    let cli = cli::Cli::parse();
    finish(commands::run(cli, &in_process::IN_PROCESS, None))
}

fn harden() {
    // Any command may handle values (and `coffer agent` holds keys for hours): keep them
    // out of core dumps and away from debuggers of the same user.
    if let Err(error) = coffer_core::process::harden() {
        eprintln!("coffer: warning: cannot disable core dumps ({error}); continuing");
    }
}

fn finish(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("coffer: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
