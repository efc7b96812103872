//! The only commands that touch secret values: reveal (value crosses IPC, on explicit
//! request), copy (value stays in Rust and goes to the clipboard), and the password generator.

use std::time::Duration;

use base64::Engine as _;
use coffer_core::password::{generate_password as engine_generate, PasswordOptions};
use coffer_core::{SecretValue, StagingLabel, VersionSelector};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::Session;
use crate::error::{AppError, AppResult};
use crate::session::blocking;

fn selector(version_id: Option<&str>) -> AppResult<VersionSelector> {
    match version_id {
        None => Ok(VersionSelector::Label(StagingLabel::current())),
        Some(id) => Uuid::parse_str(id)
            .map(VersionSelector::Id)
            .map_err(|_| AppError::invalid("version", format!("{id:?} is not a version id"))),
    }
}

#[derive(Serialize)]
pub struct Revealed {
    pub version_id: Uuid,
    pub labels: Vec<StagingLabel>,
    pub size: usize,
    /// `text` or `binary`.
    pub kind: &'static str,
    pub text: Option<String>,
    pub base64: Option<String>,
}

#[tauri::command]
pub async fn reveal_secret(
    session: Session<'_>,
    name: String,
    version_id: Option<String>,
) -> AppResult<Revealed> {
    let selector = selector(version_id.as_deref())?;
    blocking(&session, move |s| {
        s.with_unlocked(|v| {
            let read = v.get_secret_value(&name, &selector)?;
            let size = read.value.len();
            let (kind, text, base64) = match &read.value {
                SecretValue::Text(text) => ("text", Some(text.as_str().to_owned()), None),
                SecretValue::Binary(bytes) => (
                    "binary",
                    None,
                    Some(base64::engine::general_purpose::STANDARD.encode(bytes.as_slice())),
                ),
            };
            Ok(Revealed {
                version_id: read.version_id,
                labels: read.labels,
                size,
                kind,
                text,
                base64,
            })
        })
    })
    .await
}

#[derive(Serialize)]
pub struct Copied {
    pub clear_after_secs: u32,
}

/// Copies a text value (or one field of a JSON value) to the clipboard and clears it after
/// the timeout if it still holds it. The value never reaches the web view.
#[tauri::command]
pub async fn copy_secret(
    app: AppHandle,
    session: Session<'_>,
    name: String,
    version_id: Option<String>,
    json_key: Option<String>,
) -> AppResult<Copied> {
    let selector = selector(version_id.as_deref())?;
    let clear_after = session.settings().clipboard_clear_secs;
    let generation = blocking(&session, move |s| {
        let text = s.with_unlocked(|v| {
            let read = v.get_secret_value(&name, &selector)?;
            match read.value {
                SecretValue::Text(text) => Ok(text),
                SecretValue::Binary(_) => Err(AppError::new(
                    "binary_value",
                    "this secret is a binary file, which cannot be copied as text; reveal it to see it as base64",
                )),
            }
        })?;
        let text = match json_key {
            None => text,
            Some(key) => json_field(&text, &key)?,
        };
        s.clipboard.copy(&text)
    })
    .await?;
    let session = std::sync::Arc::clone(&session);
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(Duration::from_secs(u64::from(clear_after))).await;
        let cleared = tauri::async_runtime::spawn_blocking(move || {
            session.clipboard.clear_if_ours(generation)
        })
        .await
        .unwrap_or(false);
        if cleared {
            let _ = app.emit("clipboard-cleared", ());
        }
    });
    Ok(Copied {
        clear_after_secs: clear_after,
    })
}

/// One top-level field of a JSON object value, as text (strings unquoted).
fn json_field(text: &str, key: &str) -> AppResult<Zeroizing<String>> {
    let not_json = || AppError::invalid("field", "this value is not a JSON object");
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| not_json())?;
    let field = value
        .as_object()
        .ok_or_else(not_json)?
        .get(key)
        .ok_or_else(|| AppError::invalid("field", format!("the value has no field {key:?}")))?;
    Ok(Zeroizing::new(match field {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct PasswordArgs {
    pub length: usize,
    pub exclude_characters: String,
    pub exclude_numbers: bool,
    pub exclude_punctuation: bool,
    pub exclude_uppercase: bool,
    pub exclude_lowercase: bool,
    pub include_space: bool,
    pub require_each_included_type: bool,
}

impl Default for PasswordArgs {
    fn default() -> Self {
        let d = PasswordOptions::default();
        PasswordArgs {
            length: d.length,
            exclude_characters: d.exclude_characters,
            exclude_numbers: d.exclude_numbers,
            exclude_punctuation: d.exclude_punctuation,
            exclude_uppercase: d.exclude_uppercase,
            exclude_lowercase: d.exclude_lowercase,
            include_space: d.include_space,
            require_each_included_type: d.require_each_included_type,
        }
    }
}

#[tauri::command]
pub fn generate_password(options: PasswordArgs) -> AppResult<String> {
    let options = PasswordOptions {
        length: options.length,
        exclude_characters: options.exclude_characters,
        exclude_numbers: options.exclude_numbers,
        exclude_punctuation: options.exclude_punctuation,
        exclude_uppercase: options.exclude_uppercase,
        exclude_lowercase: options.exclude_lowercase,
        include_space: options.include_space,
        require_each_included_type: options.require_each_included_type,
    };
    Ok(engine_generate(&options)?.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_are_unquoted_strings() {
        let text = r#"{"user":"admin","port":5432}"#;
        assert_eq!(json_field(text, "user").unwrap().as_str(), "admin");
        assert_eq!(json_field(text, "port").unwrap().as_str(), "5432");
        assert_eq!(
            json_field(text, "nope").unwrap_err().code,
            "invalid_argument"
        );
        assert!(json_field("plain", "user").is_err());
    }

    #[test]
    fn selectors_parse() {
        assert!(matches!(selector(None).unwrap(), VersionSelector::Label(_)));
        assert!(selector(Some("not-a-uuid")).is_err());
    }
}
