//! The app's rotation scheduler: while the vault is unlocked, it runs what is due (secret
//! rotations and their retries, automatic key rotations) through the engine's `run_due`,
//! as `coffer daemon` does headless, then re-wraps data keys left under older key
//! versions batch by batch, letting go of the vault between batches so that the screens
//! stay responsive, with the same `rewrap-progress` events as a re-wrap the user starts.
//! A vault that was locked or asleep for a while catches up once, at the first pass after
//! unlocking.

use std::sync::Arc;
use std::time::Duration;

use coffer_core::vault::rewrap::{drive_rewrap, REWRAP_BATCH};
use coffer_core::vault::rotation::{DueFailure, DueReport, DueRewrap};
use coffer_core::Timestamp;
use tauri::{AppHandle, Emitter};

use crate::error::{AppError, AppResult};
use crate::session::{Session, SharedSession};

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

/// Runs `op` if the vault is still unlocked; the user locking it ends the pass.
fn unlocked<T>(
    session: &Session,
    op: impl FnOnce(&mut coffer_core::Vault) -> AppResult<T>,
) -> AppResult<T> {
    session.in_background(op)?.ok_or_else(AppError::locked)
}

fn run_pass(app: &AppHandle, session: &Session) -> AppResult<DueReport> {
    let (mut report, keys) = unlocked(session, |vault| {
        let report = vault.run_due_with(Timestamp::now(), DueRewrap::Caller)?;
        // Rotations write audit entries; on disk before the pass counts as done.
        vault.flush_audit()?;
        Ok((report, vault.keys_to_rewrap()?))
    })?;
    for key in keys.iter().map(ToString::to_string) {
        let rewrapped = drive_rewrap(
            || {
                unlocked(session, |vault| {
                    Ok(vault.rewrap_key_batch(&key, REWRAP_BATCH)?)
                })
            },
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
    Ok(report)
}

fn did_something(report: &DueReport) -> bool {
    !report.rotated.is_empty()
        || !report.failed.is_empty()
        || !report.keys_rotated.is_empty()
        || report.data_keys_rewrapped > 0
}
