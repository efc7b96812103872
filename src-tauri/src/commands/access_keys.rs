//! Access keys of the AWS-compatible API. A new key's secret crosses IPC once, in
//! [`CreatedAccessKey`]; listing never returns it.

use coffer_core::vault::access_keys::AccessKeyInfo;
use serde::{Serialize, Serializer};
use zeroize::Zeroizing;

use super::Session;
use crate::error::AppResult;
use crate::session::blocking;

/// A new access key and its secret, shown to the user this once. No `Debug`: the secret
/// must not reach a log by accident.
#[derive(Serialize)]
pub struct CreatedAccessKey {
    pub key: AccessKeyInfo,
    #[serde(serialize_with = "reveal")]
    pub secret: Zeroizing<String>,
}

fn reveal<S: Serializer>(secret: &Zeroizing<String>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret)
}

#[tauri::command]
pub async fn list_access_keys(session: Session<'_>) -> AppResult<Vec<AccessKeyInfo>> {
    blocking(&session, |s| s.with_unlocked(|v| Ok(v.list_access_keys()?))).await
}

/// `policy`: the IAM-like JSON document; the engine parses it and names what is wrong.
#[tauri::command]
pub async fn create_access_key(
    session: Session<'_>,
    name: String,
    policy: Option<String>,
) -> AppResult<CreatedAccessKey> {
    let policy = policy.filter(|p| !p.trim().is_empty());
    blocking(&session, move |s| {
        s.with_unlocked(|v| {
            let (key, secret) = v.create_access_key(name.trim(), policy.as_deref())?;
            Ok(CreatedAccessKey { key, secret })
        })
    })
    .await
}

#[tauri::command]
pub async fn set_access_key_enabled(
    session: Session<'_>,
    key: String,
    enabled: bool,
) -> AppResult<AccessKeyInfo> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.set_access_key_enabled(&key, enabled)?))
    })
    .await
}

#[tauri::command]
pub async fn delete_access_key(session: Session<'_>, key: String) -> AppResult<()> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.delete_access_key(&key)?))
    })
    .await
}
