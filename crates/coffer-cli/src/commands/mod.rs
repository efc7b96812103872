//! One module per command group. Each turns arguments into engine requests and renders
//! the answers; none of them implements a vault rule.

mod access_key;
pub(crate) mod agent;
mod audit;
mod key;
mod kms;
mod region;
pub(crate) mod rotation;
mod secret;
mod team;
pub(crate) mod vault;
mod workflow;

pub use agent::step_timeout_secs;
pub use workflow::Shell as EnvShell;

use std::collections::BTreeMap;
use std::path::PathBuf;

use coffer_core::agent::{AgentClient, AgentError};
use coffer_core::default_vault_path;
use coffer_core::service::{Request, Response};
use coffer_core::tpm::tcti_from_env;
use serde_json::json;

use crate::cli::{Cli, Command, Output};
use crate::failure::Failure;
use crate::output::render;

/// What every command needs to know about where it runs.
pub struct Env {
    pub vault: PathBuf,
    pub tcti: String,
    pub output: Output,
    pub verbose: bool,
    pub no_agent: bool,
    pub(crate) local: &'static LocalAccess,
    /// An agent connection `coffer` already opened (and pinged) to decide that the agent
    /// serves this command: the command's first request reuses it.
    pub(crate) agent: std::cell::RefCell<Option<AgentClient>>,
}

/// How a program holds keys itself, if it can: `coffer-tpm` unseals them in its own
/// process; `coffer` cannot (it hands such commands over before it starts them). Plain
/// function pointers, so that which of them a program links decides what it links.
pub struct LocalAccess {
    /// Opens the vault and unlocks it in this process (asking for the PIN).
    pub open: fn(&Env) -> Result<Box<dyn Execute>, Failure>,
    /// Runs a command that needs the TPM or the vault file here.
    pub tpm_command: fn(&Env, Command) -> Result<(), Failure>,
}

/// Something that runs requests against a vault: an unlocked one in this process.
pub trait Execute {
    fn execute(&mut self, request: Request) -> Result<Response, Failure>;
}

impl Env {
    pub fn note(&self, message: impl AsRef<str>) {
        if self.verbose {
            eprintln!("coffer: {}", message.as_ref());
        }
    }

    /// The agent for this vault if one is running and unlocked, else this process with
    /// keys it unseals itself (asking for the PIN).
    pub fn backend(&self) -> Result<Backend, Failure> {
        if let Some(client) = self.agent.borrow_mut().take() {
            self.note("using the running agent");
            return Ok(Backend::Agent(client));
        }
        if !self.no_agent {
            if let Some(mut client) = AgentClient::connect(&self.vault)? {
                match client.call(&Request::Ping) {
                    Ok(_) => {
                        self.note("using the running agent");
                        return Ok(Backend::Agent(client));
                    }
                    Err(AgentError::Remote { code, .. }) if code == "locked" => {
                        self.note("the agent is locked; unsealing the keys here");
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
        self.note(format!(
            "unsealing the keys here with the TPM at {}",
            self.tcti
        ));
        Ok(Backend::Local((self.local.open)(self)?))
    }
}

/// Where requests run.
pub enum Backend {
    Agent(AgentClient),
    Local(Box<dyn Execute>),
}

impl Backend {
    pub fn call(&mut self, request: Request) -> Result<Response, Failure> {
        match self {
            Backend::Agent(client) => Ok(client.call(&request)?),
            Backend::Local(vault) => vault.execute(request),
        }
    }
}

/// The answer did not have the shape the command asked for: only possible with an agent
/// of another Coffer version.
pub fn unexpected(response: Response) -> Failure {
    Failure {
        message: format!(
            "the agent answered with something unexpected ({:?}); restart it with `coffer lock` and `coffer unlock`",
            std::mem::discriminant(&response)
        ),
        code: crate::failure::exit::FAILURE,
    }
}

/// Runs a request whose answer is `Response::Done` and prints `message`.
pub fn done(
    env: &Env,
    backend: &mut Backend,
    request: Request,
    message: &str,
) -> Result<(), Failure> {
    match backend.call(request)? {
        Response::Done => say(env, message),
        other => Err(unexpected(other)),
    }
}

pub fn say(env: &Env, message: &str) -> Result<(), Failure> {
    render(
        env.output,
        &json!({ "ok": true, "message": message }),
        |_, out| writeln!(out, "{message}"),
    )
}

/// Parses repeated KEY=VALUE arguments.
pub fn pairs(items: &[String], what: &str) -> Result<BTreeMap<String, String>, Failure> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(Failure::usage(format!("{what} {item:?} is not KEY=VALUE"))),
        })
        .collect()
}

pub fn run(
    cli: Cli,
    local: &'static LocalAccess,
    agent: Option<AgentClient>,
) -> Result<(), Failure> {
    let env = Env {
        vault: cli.vault.unwrap_or_else(default_vault_path),
        tcti: cli
            .tcti
            .filter(|t| !t.is_empty())
            .unwrap_or_else(tcti_from_env),
        output: cli.output,
        verbose: cli.verbose > 0,
        no_agent: cli.no_agent,
        local,
        agent: std::cell::RefCell::new(agent),
    };
    match cli.command {
        command @ (Command::Init { .. }
        | Command::Recover { .. }
        | Command::Status
        | Command::Unlock { .. }
        | Command::Agent { .. }
        | Command::Daemon { .. }) => (local.tpm_command)(&env, command),
        Command::ChangePin => vault::change_pin(&env),
        Command::Lock => agent::lock(&env),
        Command::Run { env_file, command } => workflow::run(&env, &env_file, command),
        Command::Env { env_file, shell } => workflow::env(&env, &env_file, shell),
        Command::Inject { in_file, out_file } => {
            workflow::inject(&env, &in_file, out_file.as_deref())
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "coffer", &mut script);
            crate::output::raw(&script, false)
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .map_err(|e| Failure::usage(format!("cannot render the man page: {e}")))?;
            crate::output::raw(&page, false)
        }
        Command::SelfUpdate(args) => crate::self_update::run(&env, &args),
        Command::Secret(command) => secret::run(&env, command),
        Command::Key(command) => key::run(&env, command),
        Command::Kms(command) => kms::run(&env, command),
        Command::Audit(command) => audit::run(&env, command),
        Command::Rotation(command) => rotation::run_list(&env, command),
        Command::Region(command) => region::run(&env, command),
        Command::Team(command) => team::run(&env, command),
        Command::AccessKey(command) => access_key::run(&env, command),
        Command::Config(command) => access_key::config(&env, command),
    }
}
