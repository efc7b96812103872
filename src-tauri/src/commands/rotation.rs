//! Secret rotation: configure, turn off, rotate now, history, the schedule across all
//! secrets, and the schedule preview the rotation form checks as it is typed.

use coffer_core::rotation::{
    RotationHistoryEntry, RotationInfo, RotationOutcome, RotationSettings, RotatorConfig,
};
use coffer_core::vault::rotation::{drive_rotation, preview_schedule as preview, SchedulePreview};
use coffer_core::{Timestamp, Vault};

use super::Session;
use zeroize::Zeroizing;

use crate::error::{AppError, AppResult};
use crate::session::{blocking, SessionVault};

/// Saves a rotation. A `command` rotator runs a program of the user's with their values,
/// so a script in the web view (an XSS, a compromised UI dependency) must not be able to
/// point one at `/bin/sh`: a new or changed command rotator needs the PIN, proved by a TPM
/// unseal here, and takes no argument list over IPC. Saving the rotator already saved
/// (turning rotation back on, changing only the schedule) needs neither.
#[tauri::command]
pub async fn configure_rotation(
    session: Session<'_>,
    name: String,
    settings: RotationSettings,
    pin: Option<String>,
) -> AppResult<RotationInfo> {
    let pin = pin.map(Zeroizing::new);
    blocking(&session, move |s| {
        s.with_unlocked(|v| {
            authorize_rotator(v, &name, &settings, pin.as_deref().map(|p| p.as_str()))?;
            Ok(v.configure_rotation(&name, &settings)?)
        })
    })
    .await
}

/// The app's own rule for rotators (see `configure_rotation`): a command rotator other
/// than the one already saved needs the PIN and no arguments.
fn authorize_rotator(
    vault: &mut Vault,
    name: &str,
    settings: &RotationSettings,
    pin: Option<&str>,
) -> AppResult<()> {
    let RotatorConfig::Command { args, .. } = &settings.rotator else {
        return Ok(());
    };
    if vault.has_rotator(name, &settings.rotator)? {
        return Ok(());
    }
    if !args.is_empty() {
        return Err(AppError::invalid(
            "rotator",
            "the app does not set arguments for a command rotator: put them in a small script and name that script, or use `coffer secret rotate` in a terminal",
        ));
    }
    let Some(pin) = pin.filter(|p| !p.is_empty()) else {
        return Err(AppError::invalid(
            "PIN",
            "enter your PIN: a command rotator runs a program with this secret's values",
        ));
    };
    vault.prove_pin("configure_rotation", pin)?;
    Ok(())
}

#[tauri::command]
pub async fn cancel_rotation(session: Session<'_>, name: String) -> AppResult<RotationInfo> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.cancel_rotation(&name)?))
    })
    .await
}

/// Runs all four steps now (or resumes the rotation in progress). The rotator may talk to
/// another system for up to its step timeout; the vault is not held meanwhile.
#[tauri::command]
pub async fn rotate_secret(session: Session<'_>, name: String) -> AppResult<RotationOutcome> {
    blocking(&session, move |s| {
        drive_rotation(
            &mut SessionVault::for_user(s),
            &name,
            None,
            Timestamp::now(),
        )
    })
    .await
}

#[tauri::command]
pub async fn rotation_history(
    session: Session<'_>,
    name: String,
    limit: Option<u32>,
) -> AppResult<Vec<RotationHistoryEntry>> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.rotation_history(&name, limit.unwrap_or(50))?))
    })
    .await
}

#[tauri::command]
pub async fn list_rotations(session: Session<'_>) -> AppResult<Vec<RotationInfo>> {
    blocking(&session, |s| s.with_unlocked(|v| Ok(v.list_rotations()?))).await
}

/// Pure: touches no vault, so it answers as fast as the user types. `last_rotated` is
/// the secret's last rotation, which the next one is counted from.
#[tauri::command]
pub fn preview_schedule(
    schedule: String,
    window: Option<String>,
    last_rotated: Option<Timestamp>,
    count: Option<usize>,
) -> AppResult<SchedulePreview> {
    let window = window.filter(|w| !w.trim().is_empty());
    Ok(preview(
        &schedule,
        window.as_deref(),
        last_rotated,
        Timestamp::now(),
        count.unwrap_or(3),
    )?)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use coffer_core::rotation::RotatorConfig;
    use coffer_core::tpm::PcrBinding;
    use coffer_core::{CreateSecret, SecretValue};

    use super::*;

    const PIN: &str = "app-pin-4711";

    #[test]
    fn a_new_command_rotator_needs_the_pin_and_no_arguments() {
        let swtpm = coffer_testkit::Swtpm::start();
        let dir = tempfile::tempdir().unwrap();
        let mut vault = Vault::init(
            &dir.path().join("v/vault.db"),
            &swtpm.tcti(),
            PIN,
            PcrBinding::default(),
        )
        .unwrap()
        .vault;
        vault
            .create_secret(CreateSecret {
                name: "svc".into(),
                value: Some(SecretValue::text("value")),
                ..Default::default()
            })
            .unwrap();
        let script = dir.path().join("rotate.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let command = |args: Vec<String>| RotationSettings {
            schedule: None,
            window: None,
            rotator: RotatorConfig::Command {
                path: script.display().to_string(),
                args,
                timeout_secs: 30,
            },
        };
        let shell = RotationSettings {
            rotator: RotatorConfig::Command {
                path: "/bin/sh".into(),
                args: vec!["-c".into(), "id".into()],
                timeout_secs: 30,
            },
            ..command(Vec::new())
        };
        let code = |r: AppResult<()>| r.err().map(|e| (e.code, e.field));
        assert_eq!(
            code(authorize_rotator(&mut vault, "svc", &shell, Some(PIN))),
            Some(("invalid_argument".into(), Some("rotator".into())))
        );
        let plain = command(Vec::new());
        assert_eq!(
            code(authorize_rotator(&mut vault, "svc", &plain, None)),
            Some(("invalid_argument".into(), Some("PIN".into())))
        );
        assert_eq!(
            code(authorize_rotator(
                &mut vault,
                "svc",
                &plain,
                Some("not-the-pin")
            ))
            .map(|c| c.0),
            Some("wrong_pin".into())
        );
        authorize_rotator(&mut vault, "svc", &plain, Some(PIN)).unwrap();
        vault.configure_rotation("svc", &plain).unwrap();
        // Saving the same rotator again (turning rotation back on) runs nothing new.
        authorize_rotator(&mut vault, "svc", &plain, None).unwrap();
        // Other rotators run no program of the user's.
        let generate = RotationSettings {
            rotator: RotatorConfig::named("generate").unwrap(),
            ..command(Vec::new())
        };
        authorize_rotator(&mut vault, "svc", &generate, None).unwrap();
    }
}
