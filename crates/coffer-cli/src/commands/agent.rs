//! `unlock`, `lock`, `agent`: unlock once, use many times.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_core::agent::{AgentClient, AgentError, AgentServer, ServeOptions};
use coffer_core::service::{Request, Response};
use coffer_core::Vault;
use zeroize::Zeroizing;

use super::{say, unexpected, Env};
use crate::failure::Failure;
use crate::input;

/// A rotator step timeout as clap reads it: a duration with a unit (`30s`, `5m`, `1h`)
/// or plain seconds, as seconds from 1 to 3600.
pub fn step_timeout_secs(text: &str) -> Result<u64, String> {
    let secs = parse_duration(text).map_err(|f| f.message)?.as_secs();
    if secs > 3600 {
        return Err(format!(
            "{text:?} is longer than a step may take; use at most 1h (3600 s)"
        ));
    }
    Ok(secs)
}

/// Parses `90s`, `15m`, `8h`, `1d` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, Failure> {
    let bad = || {
        Failure::usage(format!(
            "{text:?} is not a duration; use e.g. 90s, 15m, 8h or 1d"
        ))
    };
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number.parse().map_err(|_| bad())?;
    let scale: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let seconds = number.saturating_mul(scale);
    if seconds == 0 || seconds > 30 * 86_400 {
        return Err(Failure::usage(format!(
            "{text:?} is out of range; use 1s to 30d"
        )));
    }
    Ok(Duration::from_secs(seconds))
}

pub fn unlock(env: &Env, timeout: &str) -> Result<(), Failure> {
    parse_duration(timeout)?;
    if let Some(mut client) = AgentClient::connect(&env.vault)? {
        if client.call(&Request::Ping).is_ok() {
            return say(
                env,
                "Already unlocked: an agent serves this vault. `coffer lock` locks it.",
            );
        }
    }
    // Fail early on a missing vault, before asking for the PIN; an unattended vault has
    // none to ask for (the agent unlocks it with the TPM alone).
    let unattended = crate::in_process::unattended(&Vault::open(&env.vault)?)?;
    let pin = if unattended {
        Zeroizing::new(String::new())
    } else {
        input::pin()?
    };
    let exe = std::env::current_exe()
        .map_err(|e| Failure::usage(format!("cannot find the coffer binary: {e}")))?;
    let mut child = Command::new(exe)
        .arg("--vault")
        .arg(&env.vault)
        .arg("--tcti")
        .arg(&env.tcti)
        .args(["agent", "--timeout", timeout, "--pin-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group: Ctrl-C in this terminal must not stop it.
        .process_group(0)
        .spawn()
        .map_err(|e| Failure::usage(format!("cannot start the agent: {e}")))?;
    // The PIN goes through a pipe: never an argument or an environment variable.
    if let Some(mut stdin) = child.stdin.take().filter(|_| !unattended) {
        let line = Zeroizing::new(format!("{}\n", pin.as_str()));
        stdin
            .write_all(line.as_bytes())
            .map_err(|e| Failure::usage(format!("cannot pass the PIN to the agent: {e}")))?;
    }
    let Some(stdout) = child.stdout.take() else {
        return Err(Failure::usage("cannot read the agent's answer"));
    };
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| Failure::usage(format!("cannot read the agent's answer: {e}")))?;
    let mut parts = line.trim_end().splitn(3, '\t');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("ready"), Some(socket), _) => {
            env.note(format!("agent pid {} serves {socket}", child.id()));
            say(
                env,
                &format!("Unlocked: commands use the agent until it is idle for {timeout} or you run `coffer lock`."),
            )
        }
        (Some("error"), Some(code), Some(message)) => {
            let _ = child.wait();
            Err(Failure::engine(code, message.to_owned()))
        }
        _ => {
            let _ = child.wait();
            Err(Failure::usage(
                "the agent stopped before it was ready; run `coffer agent` to see why",
            ))
        }
    }
}

pub fn lock(env: &Env) -> Result<(), Failure> {
    let Some(mut client) = AgentClient::connect(&env.vault)? else {
        return say(env, "No agent is running for this vault; nothing to lock.");
    };
    match client.call(&Request::Lock) {
        Ok(Response::Done) => say(env, "Locked: the agent wiped its keys and stopped."),
        Ok(other) => Err(unexpected(other)),
        Err(AgentError::Remote { code, .. }) if code == "locked" => {
            say(env, "The agent was already locked.")
        }
        Err(error) => Err(error.into()),
    }
}

/// The agent itself: unlock, bind the socket, serve until locked.
pub fn serve(env: &Env, timeout: &str, pin_stdin: bool) -> Result<(), Failure> {
    let idle = parse_duration(timeout)?;
    let report = |code: &str, message: &str| {
        if pin_stdin {
            println!("error\t{code}\t{message}");
        }
    };
    let mut vault = match Vault::open(&env.vault) {
        Ok(vault) => vault,
        Err(error) => {
            report(error.code(), &error.to_string());
            return Err(error.into());
        }
    };
    let unattended = match crate::in_process::unattended(&vault) {
        Ok(unattended) => unattended,
        Err(failure) => {
            report("unlock_policy", &failure.message);
            return Err(failure);
        }
    };
    let unlocked = if unattended {
        vault.unlock_unattended(&env.tcti)
    } else {
        let pin = if pin_stdin {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| Failure::usage(format!("cannot read the PIN: {e}")))?;
            Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_owned())
        } else {
            input::pin()?
        };
        vault.unlock(&env.tcti, &pin)
    };
    if let Err(error) = unlocked {
        report(error.code(), &error.to_string());
        return Err(error.into());
    }
    let shared = Arc::new(Mutex::new(Some(vault)));
    let server = match AgentServer::bind(&env.vault, shared) {
        Ok(server) => server,
        Err(error) => {
            report("agent", &error.to_string());
            return Err(error.into());
        }
    };
    if pin_stdin {
        println!("ready\t{}", server.socket().display());
        let _ = std::io::stdout().flush();
    } else {
        eprintln!(
            "Serving {} on {}; locks after {timeout} without use or on `coffer lock`.",
            env.vault.display(),
            server.socket().display()
        );
    }
    server
        .serve(ServeOptions {
            idle_lock: Some(idle),
            exit_when_locked: true,
        })
        .map_err(|e| Failure::usage(format!("the agent's socket failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_timeouts_take_units() {
        assert_eq!(step_timeout_secs("30s"), Ok(30));
        assert_eq!(step_timeout_secs("5m"), Ok(300));
        assert_eq!(step_timeout_secs("45"), Ok(45));
        assert!(step_timeout_secs("2h").unwrap_err().contains("at most 1h"));
        assert!(step_timeout_secs("30x")
            .unwrap_err()
            .contains("not a duration"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("8h").unwrap(), Duration::from_secs(28_800));
        // Too large to multiply is out of range, not a panic or a wrapped small number.
        assert!(parse_duration("307445734561825861m").is_err());
        for bad in ["", "0", "5w", "m", "-1s", "31d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
