//! Secret rotation: configure, turn off, rotate now, history, the schedule across all
//! secrets, and the schedule preview the rotation form checks as it is typed.

use coffer_core::rotation::{
    RotationHistoryEntry, RotationInfo, RotationOutcome, RotationSettings,
};
use coffer_core::vault::rotation::{drive_rotation, preview_schedule as preview, SchedulePreview};
use coffer_core::Timestamp;

use super::Session;
use crate::error::AppResult;
use crate::session::{blocking, SessionVault};

#[tauri::command]
pub async fn configure_rotation(
    session: Session<'_>,
    name: String,
    settings: RotationSettings,
) -> AppResult<RotationInfo> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.configure_rotation(&name, &settings)?))
    })
    .await
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
