//! Keys and aliases.

use coffer_core::KeyDescription;

use super::Session;
use crate::error::AppResult;
use crate::session::blocking;

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
