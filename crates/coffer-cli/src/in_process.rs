//! What only `coffer-tpm` does: unseal keys in this process, and the commands that need
//! a TPM or the vault file itself (`init`, `recover`, `status`, `unlock`, `agent`,
//! `daemon`). Reached only from `tpm_main`, so `coffer` never links the TPM stack.

use coffer_core::service::{self, Request, Response};
use coffer_core::vault::UnlockPolicy;
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

/// The vault, unlocked here with the PIN (asked for only if the vault has one).
pub fn open_unlocked(env: &Env) -> Result<Vault, Failure> {
    let mut vault = Vault::open(&env.vault)?;
    if unattended(&vault)? {
        vault.unlock_unattended(&env.tcti)?;
    } else {
        let pin = input::pin()?;
        vault.unlock(&env.tcti, &pin)?;
    }
    Ok(vault)
}

/// Whether `vault` unlocks with no PIN. Such a vault refuses a PIN file outright rather
/// than ignore it: whoever set COFFER_PIN_FILE expects the PIN to matter.
pub fn unattended(vault: &Vault) -> Result<bool, Failure> {
    if vault.unlock_policy()? != UnlockPolicy::Unattended {
        return Ok(false);
    }
    if std::env::var_os("COFFER_PIN_FILE").is_some() {
        return Err(coffer_core::Error::PinGivenToUnattended.into());
    }
    Ok(true)
}

fn open_boxed(env: &Env) -> Result<Box<dyn Execute>, Failure> {
    Ok(Box::new(open_unlocked(env)?))
}

fn tpm_command(env: &Env, command: Command) -> Result<(), Failure> {
    match command {
        Command::Init {
            pcrs,
            region,
            unattended,
        } => vault::init(env, pcrs, region, unattended),
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
