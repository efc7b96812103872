//! What only `coffer-tpm` does: unseal keys in this process, and the commands that need
//! a TPM or the vault file itself (`init`, `recover`, `status`, `unlock`, `agent`,
//! `daemon`). Reached only from `tpm_main`, so `coffer` never links the TPM stack.

use coffer_core::service::{self, Request, Response};
use coffer_core::Vault;

use crate::cli::Command;
use crate::commands::{agent, rotation, vault, Env, Execute, LocalAccess};
use crate::failure::Failure;
use crate::input;

impl Execute for Vault {
    fn execute(&mut self, request: Request) -> Result<Response, Failure> {
        Ok(service::execute(self, request)?)
    }
}

/// The vault, unlocked here with the PIN.
pub fn open_unlocked(env: &Env) -> Result<Vault, Failure> {
    let mut vault = Vault::open(&env.vault)?;
    let pin = input::pin()?;
    vault.unlock(&env.tcti, &pin)?;
    Ok(vault)
}

fn open_boxed(env: &Env) -> Result<Box<dyn Execute>, Failure> {
    Ok(Box::new(open_unlocked(env)?))
}

fn tpm_command(env: &Env, command: Command) -> Result<(), Failure> {
    match command {
        Command::Init { pcrs, region } => vault::init(env, pcrs, region),
        Command::Recover {
            recovery_code_file,
            pcrs,
            accept_rollback,
        } => vault::recover(env, recovery_code_file, pcrs, accept_rollback),
        Command::Status => vault::status(env),
        Command::Unlock { timeout } => agent::unlock(env, &timeout),
        Command::Agent { timeout, pin_stdin } => agent::serve(env, &timeout, pin_stdin),
        Command::Daemon {
            once,
            max_sleep,
            now,
            listen,
            stay_locked,
            aws_listen,
            aws_tls,
            aws_tls_name,
            aws_tls_ca_out,
            aws_tls_cert,
            aws_tls_key,
        } => rotation::daemon(
            env,
            rotation::DaemonOptions {
                once,
                max_sleep: &max_sleep,
                now: now.as_deref(),
                listen: listen.as_deref(),
                stay_locked,
                aws_listen: aws_listen.as_deref(),
                aws_tls: rotation::AwsTls {
                    generate: aws_tls,
                    names: aws_tls_name,
                    ca_out: aws_tls_ca_out,
                    cert: aws_tls_cert.zip(aws_tls_key),
                },
            },
        ),
        _ => Err(Failure::usage(
            "not a command that needs the TPM in this process",
        )),
    }
}

pub static IN_PROCESS: LocalAccess = LocalAccess {
    open: open_boxed,
    tpm_command,
};
