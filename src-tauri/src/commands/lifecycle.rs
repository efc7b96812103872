//! Vault status, first run, unlock, recovery, lock and PIN change.

use coffer_core::tpm::{PcrBinding, TpmInfo};
use coffer_core::vault::UnlockPolicy;
use coffer_core::Vault;
use serde::Serialize;
use tauri::AppHandle;
use zeroize::Zeroizing;

use super::Session;
use crate::error::{AppError, AppResult};
use crate::session::blocking;
use crate::tpm_backend::TpmSource;

#[derive(Debug, Serialize)]
pub struct TpmStatus {
    pub source: TpmSource,
    pub tcti: String,
    /// What the TPM says about itself, if it answered.
    pub info: Option<TpmInfo>,
    pub attempts_left: Option<u32>,
    pub retry_after_secs: Option<u32>,
    /// Why the TPM could not be reached.
    pub problem: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AppStatus {
    pub vault_path: String,
    pub vault_exists: bool,
    pub unlocked: bool,
    pub tpm: TpmStatus,
    /// How the vault unlocks (`pin` or `unattended`), if there is a readable vault.
    pub unlock_policy: Option<UnlockPolicy>,
    pub version: &'static str,
}

#[tauri::command]
pub async fn app_status(session: Session<'_>) -> AppResult<AppStatus> {
    blocking(&session, |session| {
        let unlocked = session.is_unlocked();
        // Holding the vault mutex keeps this from racing an unlock for the TPM's few slots.
        let guard = session.vault_guard()?;
        let unlock_policy = match guard.as_ref() {
            Some(vault) => vault.unlock_policy().ok(),
            None if session.vault_path.exists() => Vault::open(&session.vault_path)
                .and_then(|vault| vault.unlock_policy())
                .ok(),
            None => None,
        };
        let (info, problem) = match session.tcti() {
            Ok(tcti) => match Vault::tpm_info(tcti) {
                Ok(info) => (Some(info), None),
                Err(error) => (None, Some(error.to_string())),
            },
            Err(error) => (None, Some(error.message)),
        };
        let da = info.as_ref().map(|i| i.dictionary_attack);
        Ok(AppStatus {
            vault_path: session.vault_path.display().to_string(),
            vault_exists: session.vault_path.exists(),
            unlocked,
            tpm: TpmStatus {
                source: session.tpm.source,
                tcti: session.tpm.tcti.clone(),
                attempts_left: da.map(|d| d.attempts_left()),
                retry_after_secs: da
                    .filter(|d| d.in_lockout)
                    .and_then(|d| d.retry_after_secs()),
                info,
                problem,
            },
            unlock_policy,
            version: env!("CARGO_PKG_VERSION"),
        })
    })
    .await
}

fn parse_pcrs(pcrs: &[u8]) -> AppResult<PcrBinding> {
    PcrBinding::new(pcrs.iter().copied())
        .map_err(|e| AppError::invalid("PCR binding", e.to_string()))
}

#[derive(Serialize)]
pub struct Created {
    /// Shown once, never stored by the app.
    pub recovery_code: String,
}

/// Creates the vault and returns it unlocked, with the recovery code to show once.
#[tauri::command]
pub async fn init_vault(session: Session<'_>, pin: String, pcrs: Vec<u8>) -> AppResult<Created> {
    let pin = Zeroizing::new(pin);
    let pcrs = parse_pcrs(&pcrs)?;
    blocking(&session, move |session| {
        if session.vault_path.exists() {
            return Err(AppError::new(
                "vault_exists",
                format!("a vault already exists at {}", session.vault_path.display()),
            ));
        }
        if let Some(dir) = session.vault_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                AppError::new("storage", format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let created = Vault::init(&session.vault_path, session.tcti()?, &pin, pcrs)?;
        let code = created.recovery_code.display();
        session.install(created.vault)?;
        Ok(Created {
            recovery_code: code.as_str().to_owned(),
        })
    })
    .await
}

#[tauri::command]
pub async fn unlock_vault(session: Session<'_>, pin: String) -> AppResult<()> {
    let pin = Zeroizing::new(pin);
    blocking(&session, move |session| {
        let tcti = session.tcti()?.to_owned();
        session.with_vault(|vault| Ok(vault.unlock(&tcti, &pin)?))?;
        session.touch();
        session.sync_while_unlocked();
        Ok(())
    })
    .await
}

/// Unlocks a vault whose policy is unattended (`coffer init --unattended`): the TPM
/// releases its keys with no PIN. The engine refuses it for a vault that needs a PIN, so
/// this cannot be used to skip one.
#[tauri::command]
pub async fn unlock_vault_unattended(session: Session<'_>) -> AppResult<()> {
    blocking(&session, unlock_unattended).await
}

fn unlock_unattended(session: &crate::session::Session) -> AppResult<()> {
    let tcti = session.tcti()?.to_owned();
    session.with_vault(|vault| Ok(vault.unlock_unattended(&tcti)?))?;
    session.touch();
    session.sync_while_unlocked();
    Ok(())
}

/// Unlocks with the recovery code and seals the keys again under a new PIN.
#[tauri::command]
pub async fn recover_vault(
    session: Session<'_>,
    recovery_code: String,
    new_pin: String,
) -> AppResult<()> {
    let (recovery_code, new_pin) = (Zeroizing::new(recovery_code), Zeroizing::new(new_pin));
    blocking(&session, move |session| {
        let mut guard = session.vault_guard()?;
        // Close our handle first: recovery opens the file itself.
        *guard = None;
        let vault = Vault::recover(
            &session.vault_path,
            session.tcti()?,
            &recovery_code,
            &new_pin,
            None,
        )?;
        *guard = Some(vault);
        drop(guard);
        session.touch();
        session.sync_while_unlocked();
        Ok(())
    })
    .await
}

#[tauri::command]
pub async fn lock_vault(app: AppHandle, session: Session<'_>) -> AppResult<()> {
    blocking(&session, move |session| {
        crate::locking::lock(&app, session, crate::locking::LockReason::Manual)
    })
    .await
}

#[tauri::command]
pub async fn change_pin(
    session: Session<'_>,
    current_pin: String,
    new_pin: String,
) -> AppResult<()> {
    // The engine proves the current PIN with a TPM unseal in this process: a script in
    // the web view that reaches this command cannot lock the owner out without it.
    let current_pin = Zeroizing::new(current_pin);
    let new_pin = Zeroizing::new(new_pin);
    blocking(&session, move |session| {
        session.with_unlocked(|vault| Ok(vault.change_pin(&current_pin, &new_pin)?))
    })
    .await
}

/// The UI reports keyboard or pointer activity (throttled) so auto-lock measures real idleness.
#[tauri::command]
pub fn note_activity(session: Session<'_>) {
    session.touch();
}

#[cfg(test)]
mod tests {
    use coffer_core::tpm::PcrBinding;

    use super::*;
    use crate::session::Session as AppSession;
    use crate::tpm_backend::{TpmBackend, TpmSource};

    fn session(dir: &std::path::Path, tcti: String) -> AppSession {
        AppSession::new(
            dir.join("v/vault.db"),
            dir.join("app.json"),
            TpmBackend::fixed(TpmSource::Environment, tcti),
        )
    }

    #[test]
    fn an_unattended_vault_unlocks_with_no_pin_and_a_pin_vault_does_not() {
        let swtpm = coffer_testkit::Swtpm::start();
        let unattended = tempfile::tempdir().unwrap();
        let path = unattended.path().join("v/vault.db");
        drop(Vault::init_unattended(&path, &swtpm.tcti(), PcrBinding::default()).unwrap());
        let app = session(unattended.path(), swtpm.tcti());
        assert!(!app.is_unlocked());
        unlock_unattended(&app).unwrap();
        assert!(app.is_unlocked());

        let with_pin = tempfile::tempdir().unwrap();
        let path = with_pin.path().join("v/vault.db");
        drop(Vault::init(&path, &swtpm.tcti(), "app-pin-4711", PcrBinding::default()).unwrap());
        let app = session(with_pin.path(), swtpm.tcti());
        let refused = unlock_unattended(&app).unwrap_err();
        assert!(!app.is_unlocked());
        assert!(refused.message.contains("PIN"), "{}", refused.message);
    }
}
