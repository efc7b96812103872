//! `init`, `recover`, `change-pin`, `status`: the vault itself.

use std::path::PathBuf;

use coffer_core::agent::AgentClient;
use coffer_core::service::{Request, Response, WireValue};
use coffer_core::tpm::PcrBinding;
use coffer_core::vault::read_audit::{ReadAudit, READ_SYNC_DELAY};
use coffer_core::vault::UnlockPolicy;
use coffer_core::{SecretValue, Vault};
use serde_json::json;
use zeroize::Zeroizing;

use super::Env;
use crate::cli::Output;
use crate::failure::Failure;
use crate::input;
use crate::output::{self, fields, render};

fn parse_pcrs(text: &str) -> Result<PcrBinding, Failure> {
    let pcrs = text.parse::<PcrBinding>().map_err(Failure::from)?;
    let resettable = pcrs.resettable();
    if !resettable.is_empty() {
        let list: Vec<String> = resettable.iter().map(u8::to_string).collect();
        eprintln!(
            "coffer: WARNING: PCR {} can be reset by any program on this machine, so binding to \
             it does not tie the vault to a measured boot; bind to PCRs such as 7 (Secure Boot \
             state) instead",
            list.join(", ")
        );
    }
    Ok(pcrs)
}

pub fn init(
    env: &Env,
    pcrs: Option<String>,
    region: Option<String>,
    unattended: bool,
) -> Result<(), Failure> {
    // A PIN file with --unattended is a contradiction: refused before anything is made,
    // rather than one of the two silently winning.
    if unattended && std::env::var_os("COFFER_PIN_FILE").is_some() {
        return Err(Failure::usage(
            "--unattended makes a vault that unlocks with no PIN, but COFFER_PIN_FILE gives one: \
             unset COFFER_PIN_FILE for an unattended vault, or drop --unattended for a PIN vault",
        ));
    }
    let pcrs = pcrs
        .as_deref()
        .map(parse_pcrs)
        .transpose()?
        .unwrap_or_default();
    // Checked before anything is created, so a bad name leaves no vault behind.
    let region = region
        .as_deref()
        .map(coffer_core::region::RegionName::parse)
        .transpose()
        .map_err(coffer_core::Error::from)?;
    let mut created = if unattended {
        warn_unattended(&pcrs);
        Vault::init_unattended(&env.vault, &env.tcti, pcrs)?
    } else {
        let pin = input::new_pin("COFFER_PIN_FILE")?;
        Vault::init(&env.vault, &env.tcti, &pin, pcrs)?
    };
    if let Some(region) = region {
        created.vault.set_region_name(region.as_str())?;
    }
    if !unattended {
        warn_weak_lockout(env);
    }
    let code = created.recovery_code.display();
    match env.output {
        Output::Json => {
            let text = Zeroizing::new(format!(
                "{:#}\n",
                json!({
                    "vault": env.vault.display().to_string(),
                    "vault_id": created.vault.id(),
                    "recovery_code": code.as_str(),
                })
            ));
            output::raw(text.as_bytes(), false)
        }
        Output::Table => {
            let text = Zeroizing::new(format!(
                "Created the vault at {}.\n\n\
                 Recovery code (shown once; write it down and keep it offline):\n\n    {}\n\n\
                 With it, `coffer recover` brings the vault back after a TPM reset,\n\
                 a new motherboard or a PCR change. Without it, such a change loses every secret.\n",
                env.vault.display(),
                code.as_str()
            ));
            output::raw(text.as_bytes(), false)
        }
    }
}

pub fn recover(
    env: &Env,
    code_file: Option<PathBuf>,
    pcrs: Option<String>,
    accept_rollback: bool,
) -> Result<(), Failure> {
    let pcrs = pcrs.as_deref().map(parse_pcrs).transpose()?;
    let code = input::recovery_code(code_file.as_deref())?;
    let pin = input::new_pin("COFFER_NEW_PIN_FILE")?;
    let vault = if accept_rollback {
        Vault::recover_accepting_rollback(&env.vault, &env.tcti, &code, &pin, pcrs)?
    } else {
        Vault::recover(&env.vault, &env.tcti, &code, &pin, pcrs)?
    };
    eprintln!(
        "Recovered vault {}: every key is sealed in this TPM again under the new PIN.",
        vault.id()
    );
    Ok(())
}

/// What `init --unattended` must say before it seals anything: who can unlock from now on.
fn warn_unattended(pcrs: &PcrBinding) {
    eprintln!(
        "coffer: WARNING: unattended vault: its keys are sealed in this machine's TPM with no \
         PIN, so anyone with root on this machine (or access to the TPM device) can unlock it. \
         The vault file copied elsewhere stays useless: the keys come out of this TPM only."
    );
    if pcrs.is_empty() {
        eprintln!(
            "coffer: consider --pcrs 7 (or e.g. 0,2,7) to also bind the keys to this machine's \
             boot state, as `systemd-creds --tpm2-pcrs` does: a changed boot chain then cannot \
             unlock it either (and `coffer recover` is needed after a firmware update)."
        );
    }
}

pub fn change_pin(env: &Env, to_unattended: bool) -> Result<(), Failure> {
    let mut backend = env.backend()?;
    // Asked before any prompt: an unattended vault has no current PIN to type.
    let unattended = match backend.call(Request::UnlockPolicy)? {
        Response::UnlockPolicy { policy, .. } => policy == UnlockPolicy::Unattended,
        other => return Err(super::unexpected(other)),
    };
    if unattended {
        let error = if to_unattended {
            coffer_core::Error::AlreadyUnattended
        } else {
            coffer_core::Error::NoPinToChange
        };
        return Err(error.into());
    }
    let current_pin = input::current_pin()?;
    if to_unattended {
        let request = Request::MakeUnattended {
            current_pin: WireValue::from_value(&SecretValue::Text(current_pin)),
        };
        return super::done(
            env,
            &mut backend,
            request,
            "Every key was re-sealed with no PIN: this vault now unlocks unattended, by anyone \
             with root on this machine. `coffer recover` gives it a PIN again.",
        );
    }
    let new_pin = input::new_pin("COFFER_NEW_PIN_FILE")?;
    let request = Request::ChangePin {
        current_pin: WireValue::from_value(&SecretValue::Text(current_pin)),
        new_pin: WireValue::from_value(&SecretValue::Text(new_pin)),
    };
    super::done(
        env,
        &mut backend,
        request,
        "PIN changed; every key was re-sealed under the new PIN.",
    )
}

/// Says loudly when the TPM's PIN lockout can be bypassed (the PIN was accepted because it
/// is long enough to stand on its own, but the user should know).
fn warn_weak_lockout(env: &Env) {
    if let Ok(info) = Vault::tpm_info(&env.tcti) {
        if let Some(weakness) = info.dictionary_attack.brake_weakness() {
            eprintln!(
                "coffer: WARNING: {weakness}; the TPM does not really limit PIN guessing, so only \
                 the PIN's length protects the vault if someone gets this machine. Set a lockout \
                 password with `tpm2_changeauth -c lockout` to fix this."
            );
        }
    }
}

pub fn status(env: &Env) -> Result<(), Failure> {
    let vault = Vault::open(&env.vault)?;
    let pcrs = vault.pcr_binding()?;
    let unlock = vault.unlock_policy()?;
    let audit_reads = vault.read_audit_as_stored()?;
    drop(vault);
    let socket = coffer_core::agent::socket_path(&env.vault).ok();
    let (agent, agent_pid) = match AgentClient::connect(&env.vault)? {
        Some(mut client) => match client.call(&Request::Ping) {
            Ok(Response::Pong { pid, .. }) => ("running, unlocked", Some(pid)),
            Ok(_) => ("running, unlocked", None),
            Err(_) => ("running, locked", None),
        },
        None => ("not running", None),
    };
    let tpm = Vault::tpm_info(&env.tcti);
    // What a process that unseals keys gets here: pages kept out of swap, and no core
    // dumps (see coffer_core::process and crypto::locked).
    let key_memory_locked = coffer_core::crypto::LockedKey::zeroed().is_locked();
    let core_dumps_disabled = coffer_core::process::is_hardened();
    let value = json!({
        "vault": env.vault.display().to_string(),
        "pcr_binding": pcrs.to_string(),
        "unlock_policy": unlock,
        "agent": agent,
        "agent_pid": agent_pid,
        "agent_socket": socket.as_ref().map(|p| p.display().to_string()),
        "tcti": env.tcti,
        "tpm": tpm.as_ref().ok(),
        "tpm_error": tpm.as_ref().err().map(|e| e.to_string()),
        "key_memory_locked": key_memory_locked,
        "core_dumps_disabled": core_dumps_disabled,
        "audit_reads": audit_reads.as_str(),
        "pin_lockout_weakness": tpm
            .as_ref()
            .ok()
            .and_then(|info| info.dictionary_attack.brake_weakness()),
    });
    render(env.output, &value, |_, out| {
        let mut rows = vec![
            ("vault", env.vault.display().to_string()),
            (
                "PCR binding",
                if pcrs.is_empty() {
                    "none".to_owned()
                } else {
                    pcrs.to_string()
                },
            ),
            ("unlock", unlock.describe().to_owned()),
            ("agent", agent.to_owned()),
            (
                "key memory",
                match (key_memory_locked, core_dumps_disabled) {
                    (true, true) => "locked in RAM, no core dumps".to_owned(),
                    (false, true) => {
                        "may be swapped (raise RLIMIT_MEMLOCK to lock it), no core dumps".to_owned()
                    }
                    (true, false) => "locked in RAM; core dumps could not be disabled".to_owned(),
                    (false, false) => {
                        "may be swapped, and core dumps could not be disabled".to_owned()
                    }
                },
            ),
            ("TPM", env.tcti.clone()),
            (
                "audit of reads",
                match audit_reads {
                    ReadAudit::Durable => "durable (one fsync per read)".to_owned(),
                    ReadAudit::Batched => format!(
                        "batched (committed before the value leaves, fsynced within {} ms)",
                        READ_SYNC_DELAY.as_millis()
                    ),
                },
            ),
        ];
        match &tpm {
            Ok(info) => {
                let kind = if info.is_software {
                    "software TPM — NOT SECURE"
                } else {
                    "hardware TPM"
                };
                rows.push((
                    "TPM maker",
                    format!(
                        "{} {} ({kind})",
                        info.manufacturer.trim(),
                        info.vendor.trim()
                    ),
                ));
                let da = &info.dictionary_attack;
                rows.push((
                    "PIN attempts",
                    format!(
                        "{} of {} left{}",
                        da.attempts_left(),
                        da.max_auth_fail,
                        if da.in_lockout { " (in lockout)" } else { "" }
                    ),
                ));
                if let Some(weakness) = da.brake_weakness() {
                    rows.push(("PIN lockout", format!("NOT EFFECTIVE: {weakness}")));
                }
            }
            Err(error) => rows.push(("TPM error", error.to_string())),
        }
        fields(out, &rows)
    })
}
