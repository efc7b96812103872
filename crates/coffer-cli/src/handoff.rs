//! Whether `coffer` can serve a command itself (through the agent), and if not, the
//! hand-over to `coffer-tpm`.
//!
//! The decision is made before anything else happens (no prompt, no stdin read, no
//! output), so `coffer-tpm` starts the command from the beginning with the same
//! arguments, environment, terminal and process id.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use coffer_core::agent::AgentClient;
use coffer_core::default_vault_path;
use coffer_core::service::Request;

use crate::cli::{Cli, Command};
use crate::commands::{Env, Execute, LocalAccess};
use crate::failure::Failure;

/// The name of the program that holds keys in its own process.
pub const TPM_PROGRAM: &str = "coffer-tpm";

pub enum Route {
    /// An unlocked agent serves the vault (here is the connection), or the command needs
    /// no vault at all.
    Here(Option<AgentClient>),
    /// This command needs keys (or a TPM) in this process.
    Tpm,
}

pub fn route(cli: &Cli) -> Route {
    match cli.command {
        Command::Completions { .. } | Command::Man | Command::SelfUpdate(_) => {
            return Route::Here(None)
        }
        Command::Init { .. }
        | Command::Recover { .. }
        | Command::Status
        | Command::Unlock { .. }
        | Command::Agent { .. }
        | Command::Daemon { .. } => return Route::Tpm,
        _ => {}
    }
    if cli.no_agent {
        return Route::Tpm;
    }
    let vault = cli.vault.clone().unwrap_or_else(default_vault_path);
    // Any doubt (no agent, a locked one, one that refuses us) goes to `coffer-tpm`,
    // which checks again and says exactly what is wrong.
    match AgentClient::connect(&vault) {
        Ok(Some(mut client)) => match client.call(&Request::Ping) {
            Ok(_) => Route::Here(Some(client)),
            Err(_) => Route::Tpm,
        },
        _ => Route::Tpm,
    }
}

/// `coffer-tpm` beside this program, or in `../libexec/coffer/` as packages install it.
/// Whoever can replace it there can replace `coffer` itself, so its location is trusted
/// as much as ours and no more.
fn tpm_program() -> Result<PathBuf, Failure> {
    let exe = std::env::current_exe().map_err(|e| {
        Failure::usage(format!(
            "cannot find where the coffer program is installed: {e}"
        ))
    })?;
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let candidates = [
        dir.join(TPM_PROGRAM),
        dir.join("../libexec/coffer").join(TPM_PROGRAM),
    ];
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| Failure {
            message: format!(
                "this command needs {TPM_PROGRAM}, which is installed with coffer, but it is neither at {} nor at {}; reinstall Coffer",
                candidates[0].display(),
                candidates[1].display()
            ),
            code: crate::failure::exit::FAILURE,
        })
}

/// Replaces this process with `coffer-tpm` running the same command. Returns only if
/// that could not be done.
pub fn exec_tpm() -> Failure {
    let program = match tpm_program() {
        Ok(program) => program,
        Err(failure) => return failure,
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| OsString::from("coffer"));
    let error = std::process::Command::new(&program)
        .arg0(arg0)
        .args(args)
        .exec();
    Failure {
        message: format!("cannot start {}: {error}", program.display()),
        code: crate::failure::exit::FAILURE,
    }
}

fn agent_went_away(_: &Env) -> Result<Box<dyn Execute>, Failure> {
    Err(Failure {
        message: "the agent stopped (locked or timed out) while this command ran; run it again"
            .to_owned(),
        code: crate::failure::exit::FAILURE,
    })
}

fn not_here(_: &Env, _: Command) -> Result<(), Failure> {
    Err(Failure {
        message: format!("this command runs in {TPM_PROGRAM}; run it through `coffer`"),
        code: crate::failure::exit::FAILURE,
    })
}

/// What `coffer` can do without the TPM: nothing, which [`route`] made sure of.
pub static AGENT_ONLY: LocalAccess = LocalAccess {
    open: agent_went_away,
    tpm_command: not_here,
};
