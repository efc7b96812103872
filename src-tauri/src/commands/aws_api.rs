//! Settings → AWS-compatible API: whether the app serves it, where, and the account id
//! its ARNs carry (a vault setting, `aws.account-id`).

use coffer_core::vault::access_keys::AWS_ACCOUNT_ID;
use serde::Serialize;

use super::Session;
use crate::error::AppResult;
use crate::session::blocking;
use crate::settings::{AwsApiSettings, DEFAULT_AWS_API_ADDRESS};

#[derive(Serialize)]
pub struct AwsApiStatus {
    pub enabled: bool,
    pub address: String,
    pub default_address: &'static str,
    /// Where it listens now (`IP:port`); `None` while off or locked.
    pub listening: Option<String>,
    /// Why it is on but not listening (a taken port).
    pub problem: Option<String>,
    pub account_id: String,
}

fn status(session: &crate::session::Session, account_id: String) -> AwsApiStatus {
    let settings = session.settings().aws_api;
    AwsApiStatus {
        enabled: settings.enabled,
        address: settings.address,
        default_address: DEFAULT_AWS_API_ADDRESS,
        listening: session.aws_api.listening(),
        problem: session.aws_api.problem(),
        account_id,
    }
}

#[tauri::command]
pub async fn aws_api_status(session: Session<'_>) -> AppResult<AwsApiStatus> {
    blocking(&session, |s| {
        let account_id = s.with_unlocked(|v| Ok(v.aws_account_id()?))?;
        Ok(status(s, account_id))
    })
    .await
}

/// Turns the API on or off or moves it; a refused address changes nothing.
#[tauri::command]
pub async fn configure_aws_api(
    session: Session<'_>,
    enabled: bool,
    address: String,
) -> AppResult<AwsApiStatus> {
    blocking(&session, move |s| {
        let account_id = s.with_unlocked(|v| Ok(v.aws_account_id()?))?;
        s.configure_aws_api(AwsApiSettings {
            enabled,
            address: address.trim().to_owned(),
        })?;
        Ok(status(s, account_id))
    })
    .await
}

#[tauri::command]
pub async fn set_aws_account_id(
    session: Session<'_>,
    account_id: String,
) -> AppResult<AwsApiStatus> {
    blocking(&session, move |s| {
        let account_id =
            s.with_unlocked(|v| Ok(v.set_setting(AWS_ACCOUNT_ID, account_id.trim())?))?;
        Ok(status(s, account_id))
    })
    .await
}
