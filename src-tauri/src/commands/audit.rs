//! The audit log and its verification.

use coffer_core::vault::{AuditEntry, AuditVerification};

use super::Session;
use crate::error::AppResult;
use crate::session::blocking;

#[tauri::command]
pub async fn audit_list(
    session: Session<'_>,
    secret: Option<String>,
    before_seq: Option<i64>,
    limit: Option<u32>,
) -> AppResult<Vec<AuditEntry>> {
    let secret = secret.filter(|s| !s.trim().is_empty());
    blocking(&session, move |s| {
        s.with_unlocked(|v| {
            Ok(v.audit_list(secret.as_deref(), before_seq, limit.unwrap_or(200))?)
        })
    })
    .await
}

#[tauri::command]
pub async fn audit_verify(session: Session<'_>) -> AppResult<AuditVerification> {
    blocking(&session, |s| s.with_unlocked(|v| Ok(v.audit_verify()?))).await
}
