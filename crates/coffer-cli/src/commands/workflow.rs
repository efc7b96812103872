//! `run`, `env`, `inject`: secret references resolved for other programs.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use coffer_core::reference::SecretReference;
use coffer_core::service::{Request, Response};
use zeroize::Zeroizing;

use super::{unexpected, Backend, Env};
use crate::dotenv;
use crate::failure::Failure;
use crate::output;

/// Resolves references, asking the vault once per distinct reference and unlocking only
/// if there is something to resolve.
struct Resolver<'a> {
    env: &'a Env,
    backend: Option<Backend>,
    cache: HashMap<String, Zeroizing<String>>,
}

impl<'a> Resolver<'a> {
    fn new(env: &'a Env) -> Self {
        Resolver {
            env,
            backend: None,
            cache: HashMap::new(),
        }
    }

    fn resolve(&mut self, text: &str, place: &str) -> Result<Zeroizing<String>, Failure> {
        if let Some(value) = self.cache.get(text) {
            return Ok(value.clone());
        }
        let in_place = |f: Failure| Failure {
            message: format!("{place}: {}", f.message),
            code: f.code,
        };
        let reference = SecretReference::parse(text).map_err(|e| in_place(e.into()))?;
        if self.backend.is_none() {
            self.backend = Some(self.env.backend()?);
        }
        let Some(backend) = self.backend.as_mut() else {
            return Err(Failure::usage("no vault to resolve references with"));
        };
        let (label, version_id) = match &reference.selector {
            coffer_core::VersionSelector::Label(l) => (Some(l.to_string()), None),
            coffer_core::VersionSelector::Id(id) => (None, Some(*id)),
        };
        let request = Request::GetSecretValue {
            name: reference.name.to_string(),
            label,
            version_id,
        };
        let read = match backend.call(request).map_err(in_place)? {
            Response::Value(read) => read,
            other => return Err(unexpected(other)),
        };
        let value = read.value.to_value().map_err(|e| in_place(e.into()))?;
        let text_value = reference.extract(&value).map_err(|e| in_place(e.into()))?;
        self.cache.insert(text.to_owned(), text_value.clone());
        Ok(text_value)
    }

    /// Ends the vault session: a local vault writes its audit entries and wipes its keys.
    fn finish(self) {
        drop(self.backend);
    }
}

/// The variables `run` and `env` set: references in the environment, then env files in
/// order (later files win).
fn collect(env: &Env, env_files: &[PathBuf]) -> Result<Vec<(String, Zeroizing<String>)>, Failure> {
    let mut resolver = Resolver::new(env);
    let mut vars: Vec<(String, Zeroizing<String>)> = Vec::new();
    let mut set = |key: String, value: Zeroizing<String>| {
        vars.retain(|(k, _)| *k != key);
        vars.push((key, value));
    };
    for (key, value) in std::env::vars_os() {
        let (Some(key), Some(value)) = (key.to_str(), value.to_str()) else {
            continue;
        };
        if SecretReference::looks_like(value) {
            // The name is printed into `export` lines that a shell evaluates: a variable
            // named `x;cmd;y` must not become a command.
            if !dotenv::is_variable_name(key) {
                return Err(Failure::usage(format!(
                    "the environment variable {key:?} holds a secret reference but its name is not a shell variable name (letters, digits and _, not starting with a digit); rename it"
                )));
            }
            let resolved = resolver.resolve(value, &format!("environment variable {key}"))?;
            set(key.to_owned(), resolved);
        }
    }
    for file in env_files {
        for entry in dotenv::parse(file)? {
            let value = if SecretReference::looks_like(&entry.value) {
                let place = format!("{}:{} ({})", file.display(), entry.line, entry.key);
                resolver.resolve(&entry.value, &place)?
            } else {
                entry.value.clone()
            };
            set(entry.key, value);
        }
    }
    resolver.finish();
    Ok(vars)
}

pub fn run(env: &Env, env_files: &[PathBuf], command: Vec<OsString>) -> Result<(), Failure> {
    let Some((program, args)) = command.split_first() else {
        return Err(Failure::usage("give the command to run after --"));
    };
    // Everything is resolved before the command starts: a missing secret means no start.
    let vars = collect(env, env_files)?;
    let mut child = std::process::Command::new(program);
    child.args(args);
    for (key, value) in &vars {
        child.env(key, value.as_str());
    }
    // exec replaces this process: the exit code and every signal are the command's own.
    let error = child.exec();
    Err(Failure {
        message: format!("cannot run {}: {error}", Path::new(program).display()),
        code: if error.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        },
    })
}

/// Which shell `coffer env` writes for: their quoting rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// sh, bash, zsh, dash: `export KEY='value'`.
    Posix,
    /// fish: `set -gx KEY 'value'`, where \\ and \' are escapes inside single quotes.
    Fish,
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

fn fish_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn assignment(shell: Shell, key: &str, value: &str) -> String {
    match shell {
        Shell::Posix => format!("export {key}={}\n", shell_quote(value)),
        Shell::Fish => format!("set -gx {key} {}\n", fish_quote(value)),
    }
}

pub fn env(env: &Env, env_files: &[PathBuf], shell: Shell) -> Result<(), Failure> {
    let vars = collect(env, env_files)?;
    let mut text = Zeroizing::new(String::new());
    for (key, value) in &vars {
        text.push_str(&assignment(shell, key, value));
    }
    output::raw(text.as_bytes(), false)
}

/// Replaces `{{ coffer://… }}` in a template with what the vault holds.
fn render(
    template: &str,
    resolver: &mut Resolver<'_>,
    source: &Path,
) -> Result<Zeroizing<String>, Failure> {
    crate::template::render(template, &mut |reference, line_no| {
        resolver.resolve(reference, &format!("{}:{line_no}", source.display()))
    })
}

pub fn inject(env: &Env, input: &Path, output_path: Option<&Path>) -> Result<(), Failure> {
    let template = std::fs::read_to_string(input).map_err(|e| {
        Failure::usage(format!("cannot read the template {}: {e}", input.display()))
    })?;
    let mut resolver = Resolver::new(env);
    let rendered = render(&template, &mut resolver, input)?;
    resolver.finish();
    match output_path {
        None => output::raw(rendered.as_bytes(), false),
        Some(path) => crate::private_file::write(path, rendered.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    /// What a shell makes of an assignment line: the value it sets.
    fn evaluated(shell: &str, script: &str) -> Option<String> {
        let out = std::process::Command::new(shell)
            .args(["-c", &format!("{script}\nprintf %s \"$K\"")])
            .output()
            .ok()?;
        Some(String::from_utf8(out.stdout).unwrap())
    }

    #[test]
    fn each_shell_gets_back_the_exact_value() {
        let tricky = r"it's a \'back\slash\' $HOME `id` \n end\";
        let posix = assignment(Shell::Posix, "K", tricky);
        assert_eq!(evaluated("sh", &posix).unwrap(), tricky, "{posix}");
        let fish = assignment(Shell::Fish, "K", tricky);
        assert_eq!(
            fish,
            "set -gx K 'it\\'s a \\\\\\'back\\\\slash\\\\\\' $HOME `id` \\\\n end\\\\'\n"
        );
        // Where fish is installed, it agrees.
        if let Some(out) = evaluated("fish", &fish) {
            assert_eq!(out, tricky, "{fish}");
        }
    }

    #[test]
    fn templates_without_references_are_left_alone() {
        let env = Env {
            vault: PathBuf::from("/nonexistent"),
            tcti: String::new(),
            output: crate::cli::Output::Table,
            verbose: false,
            no_agent: true,
            local: &crate::handoff::AGENT_ONLY,
            agent: Default::default(),
        };
        let mut resolver = Resolver::new(&env);
        let text = "a {{ name }} b {{ unterminated";
        assert_eq!(&*render(text, &mut resolver, Path::new("t")).unwrap(), text);
    }
}
