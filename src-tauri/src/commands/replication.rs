//! A secret's replica regions: replicate it to a paired region, stop that, and promote a
//! replica to a secret of its own. What a secret's replication looks like comes with
//! `describe_secret` (`SecretDescription::replication`).

use coffer_core::vault::replication::SecretReplication;

use super::Session;
use crate::error::{AppError, AppResult};
use crate::session::blocking;

/// `key`: the key the copy is wrapped under there; that region's default key when empty.
#[tauri::command]
pub async fn replicate_secret(
    session: Session<'_>,
    name: String,
    region: String,
    key: Option<String>,
) -> AppResult<SecretReplication> {
    let key = key.filter(|k| !k.trim().is_empty());
    blocking(&session, move |s| {
        s.with_unlocked(|v| {
            Ok(v.replicate_secret(&name, region.trim(), key.as_deref().map(str::trim))?)
        })
    })
    .await
}

#[tauri::command]
pub async fn remove_secret_region(
    session: Session<'_>,
    name: String,
    region: String,
) -> AppResult<()> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.remove_secret_region(&name, &region)?))
    })
    .await
}

#[tauri::command]
pub async fn promote_secret(session: Session<'_>, name: String) -> AppResult<()> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.promote_secret(&name)?))
    })
    .await
}

/// A secret's replication as it is now, for a screen that watches it settle: not counted
/// as user activity, so watching does not keep an idle vault from locking itself.
#[tauri::command]
pub async fn watch_secret_replication(
    session: Session<'_>,
    name: String,
) -> AppResult<Option<SecretReplication>> {
    blocking(&session, move |s| {
        s.in_background(|v| Ok(v.describe_secret(&name)?.replication))?
            .ok_or_else(AppError::locked)
    })
    .await
}
