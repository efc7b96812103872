//! The app's rotation scheduler: while the vault is unlocked, it runs what is due, as
//! `coffer daemon` does headless: automatic key rotations through the engine's
//! `run_due_with`, then secret rotations (and their retries) and re-wraps of data keys
//! left under older key versions, taking the vault for each piece of work and letting go
//! between pieces, so that a slow rotator or a long re-wrap does not hold up the screens.
//! Re-wraps send the same `rewrap-progress` events as one the user starts. A vault that
//! was locked or asleep for a while catches up once, at the first pass after unlocking.

use std::sync::Arc;
use std::time::Duration;

use coffer_core::vault::rewrap::{drive_rewrap, REWRAP_BATCH};
use coffer_core::vault::rotation::{drive_rotation, DueFailure, DueReport, DueWork, VaultAccess};
use coffer_core::Timestamp;
use tauri::{AppHandle, Emitter};

use crate::error::AppResult;
use crate::session::{Session, SessionVault, SharedSession};

/// How often to look. Rotations are scheduled in hours or days; half a minute late is on
/// time, and an idle pass only reads a few rows.
const TICK: Duration = Duration::from_secs(30);

pub fn spawn(app: AppHandle, session: SharedSession) {
    tauri::async_runtime::spawn(async move {
        loop {
            tokio::time::sleep(TICK).await;
            if !session.is_unlocked() {
                continue;
            }
            let session = Arc::clone(&session);
            let handle = app.clone();
            let pass =
                tauri::async_runtime::spawn_blocking(move || run_pass(&handle, &session)).await;
            match pass {
                Ok(Ok(report)) if did_something(&report) => {
                    let _ = app.emit("rotations-ran", report);
                }
                Ok(Ok(_)) => {}
                // Locked meanwhile, or a failure the next pass meets again; rotation
                // failures themselves are in the report and the secrets' status.
                Ok(Err(error)) if error.code == "locked" => {}
                Ok(Err(error)) => {
                    eprintln!(
                        "coffer: a rotation scheduler pass failed: {}",
                        error.message
                    )
                }
                Err(error) => eprintln!("coffer: the rotation scheduler stopped a pass: {error}"),
            }
        }
    });
}

fn run_pass(app: &AppHandle, session: &Session) -> AppResult<DueReport> {
    let mut vault = SessionVault::for_scheduler(session);
    let now = Timestamp::now();
    let (mut report, due) = vault.with(|vault| {
        let report = vault.run_due_with(now, DueWork::KeysOnly)?;
        Ok((report, vault.due_rotations(now)?))
    })?;
    for name in due {
        match drive_rotation(&mut vault, &name, None, now) {
            Ok(_) => report.rotated.push(name),
            Err(error) if error.code == "locked" => return Err(error),
            Err(error) => report.failed.push(DueFailure {
                name,
                code: error.code,
                message: error.message,
            }),
        }
    }
    for key in vault.with(|vault| vault.keys_to_rewrap())? {
        let key = key.to_string();
        let rewrapped = drive_rewrap(
            || vault.with(|vault| vault.rewrap_key_batch(&key, REWRAP_BATCH)),
            &mut |progress| {
                let _ = app.emit("rewrap-progress", progress);
            },
        );
        match rewrapped {
            Ok(progress) => report.data_keys_rewrapped += progress.done,
            Err(error) if error.code == "locked" => return Err(error),
            Err(error) => report.failed.push(DueFailure {
                name: format!("key {key}"),
                code: error.code,
                message: error.message,
            }),
        }
    }
    // Rotations wrote audit entries; on disk before the pass counts as done.
    vault.with(|vault| vault.flush_audit())?;
    Ok(report)
}

fn did_something(report: &DueReport) -> bool {
    !report.rotated.is_empty()
        || !report.failed.is_empty()
        || !report.keys_rotated.is_empty()
        || report.data_keys_rewrapped > 0
}
