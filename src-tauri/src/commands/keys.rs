//! Keys and aliases, key versions, automatic key rotation and re-wrapping.

use coffer_core::vault::rewrap::{drive_rewrap, RewrapProgress, REWRAP_BATCH};
use coffer_core::vault::rotation::{KeyRotationInfo, VaultAccess};
use coffer_core::KeyDescription;
use tauri::{AppHandle, Emitter};

use super::Session;
use crate::error::AppResult;
use crate::session::{blocking, SessionVault};

#[tauri::command]
pub async fn list_keys(session: Session<'_>) -> AppResult<Vec<KeyDescription>> {
    blocking(&session, |s| s.with_unlocked(|v| Ok(v.list_keys()?))).await
}

#[tauri::command]
pub async fn create_key(
    session: Session<'_>,
    description: String,
    alias: Option<String>,
) -> AppResult<KeyDescription> {
    let alias = alias.filter(|a| !a.trim().is_empty());
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.create_key(&description, alias.as_deref())?))
    })
    .await
}

#[tauri::command]
pub async fn create_alias(session: Session<'_>, alias: String, key: String) -> AppResult<()> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.create_alias(&alias, &key)?))
    })
    .await
}

#[tauri::command]
pub async fn rotate_key(session: Session<'_>, key: String) -> AppResult<KeyDescription> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.rotate_key(&key)?))
    })
    .await
}

#[tauri::command]
pub async fn key_rotation_status(session: Session<'_>, key: String) -> AppResult<KeyRotationInfo> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.key_rotation_status(&key)?))
    })
    .await
}

#[tauri::command]
pub async fn enable_key_rotation(
    session: Session<'_>,
    key: String,
    period_days: u32,
) -> AppResult<KeyRotationInfo> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.enable_key_rotation(&key, period_days)?))
    })
    .await
}

#[tauri::command]
pub async fn disable_key_rotation(session: Session<'_>, key: String) -> AppResult<KeyRotationInfo> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| {
            v.disable_key_rotation(&key)?;
            Ok(v.key_rotation_status(&key)?)
        })
    })
    .await
}

#[tauri::command]
pub async fn retire_key_version(
    session: Session<'_>,
    key: String,
    version: u32,
) -> AppResult<KeyRotationInfo> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| {
            v.retire_key_version(&key, version)?;
            Ok(v.key_rotation_status(&key)?)
        })
    })
    .await
}

/// Re-wraps every data key of `key` under its newest version, one batch (one
/// transaction) at a time. The vault is let go between batches, so the rest of the app
/// (and the CLI through the agent socket) keeps working during a long re-wrap; each
/// batch's progress goes to the UI as a `rewrap-progress` event.
#[tauri::command]
pub async fn rewrap_key(
    app: AppHandle,
    session: Session<'_>,
    key: String,
) -> AppResult<RewrapProgress> {
    blocking(&session, move |s| {
        drive_rewrap(
            || SessionVault::for_user(s).with(|v| v.rewrap_key_batch(&key, REWRAP_BATCH)),
            &mut |progress| {
                let _ = app.emit("rewrap-progress", progress);
            },
        )
    })
    .await
}
