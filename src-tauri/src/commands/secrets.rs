//! Secrets: list, describe, create, new versions, labels, tags, delete and restore.

use std::collections::BTreeMap;

use base64::Engine as _;
use coffer_core::{
    CreateSecret, DeletedFilter, Deletion, ListQuery, Page, PutValue, SecretDescription,
    SecretSummary, SecretValue, SortBy, StagingLabel, VersionWritten,
};
use serde::Deserialize;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::Session;
use crate::error::{AppError, AppResult};
use crate::session::blocking;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletedArg {
    #[default]
    Exclude,
    Include,
    Only,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortArg {
    #[default]
    Name,
    Changed,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListArgs {
    pub text: Option<String>,
    pub tag_key: Option<String>,
    pub tag_value: Option<String>,
    pub deleted: DeletedArg,
    pub sort: SortArg,
    pub limit: Option<u32>,
    pub next_token: Option<String>,
}

impl From<ListArgs> for ListQuery {
    fn from(args: ListArgs) -> Self {
        let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let tag_key = non_empty(args.tag_key);
        ListQuery {
            text: non_empty(args.text),
            tag: tag_key.map(|key| (key, non_empty(args.tag_value))),
            deleted: match args.deleted {
                DeletedArg::Exclude => DeletedFilter::Exclude,
                DeletedArg::Include => DeletedFilter::Include,
                DeletedArg::Only => DeletedFilter::Only,
            },
            sort: match args.sort {
                SortArg::Name => SortBy::Name,
                SortArg::Changed => SortBy::ChangedDesc,
            },
            limit: args.limit,
            next_token: args.next_token,
            ..ListQuery::default()
        }
    }
}

#[tauri::command]
pub async fn list_secrets(session: Session<'_>, args: ListArgs) -> AppResult<Page<SecretSummary>> {
    let query = ListQuery::from(args);
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.list_secrets(&query)?))
    })
    .await
}

#[tauri::command]
pub async fn describe_secret(session: Session<'_>, name: String) -> AppResult<SecretDescription> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.describe_secret(&name)?))
    })
    .await
}

/// A value as the UI sends it: text, or a binary file as base64.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ValueArg {
    Text { text: String },
    Binary { base64: String },
}

impl ValueArg {
    fn into_value(self) -> AppResult<SecretValue> {
        match self {
            ValueArg::Text { text } => Ok(SecretValue::Text(Zeroizing::new(text))),
            ValueArg::Binary { base64 } => base64::engine::general_purpose::STANDARD
                .decode(Zeroizing::new(base64).as_bytes())
                .map(|bytes| SecretValue::Binary(Zeroizing::new(bytes)))
                .map_err(|_| AppError::invalid("value", "the file could not be read")),
        }
    }
}

#[derive(Deserialize)]
pub struct CreateArgs {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub value: Option<ValueArg>,
}

#[tauri::command]
pub async fn create_secret(session: Session<'_>, args: CreateArgs) -> AppResult<VersionWritten> {
    let request = CreateSecret {
        name: args.name,
        description: args.description,
        key: args.key.filter(|k| !k.is_empty()),
        tags: args.tags,
        value: args.value.map(ValueArg::into_value).transpose()?,
        client_token: None,
    };
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.create_secret(request)?))
    })
    .await
}

#[tauri::command]
pub async fn put_secret_value(
    session: Session<'_>,
    name: String,
    value: ValueArg,
) -> AppResult<VersionWritten> {
    let put = PutValue::new(value.into_value()?);
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.put_secret_value(&name, put)?))
    })
    .await
}

#[derive(Deserialize)]
pub struct UpdateArgs {
    pub name: String,
    pub description: Option<String>,
    pub key: Option<String>,
    /// Tags to set (added or changed).
    #[serde(default)]
    pub set_tags: BTreeMap<String, String>,
    /// Tag keys to remove.
    #[serde(default)]
    pub remove_tags: Vec<String>,
}

/// Edits metadata: description, key, tags. Each part is its own engine call.
#[tauri::command]
pub async fn update_secret(session: Session<'_>, args: UpdateArgs) -> AppResult<()> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| {
            if args.description.is_some() || args.key.is_some() {
                v.update_secret(
                    &args.name,
                    args.description,
                    args.key.filter(|k| !k.is_empty()),
                )?;
            }
            if !args.remove_tags.is_empty() {
                v.untag_secret(&args.name, &args.remove_tags)?;
            }
            if !args.set_tags.is_empty() {
                v.tag_secret(&args.name, &args.set_tags)?;
            }
            Ok(())
        })
    })
    .await
}

fn parse_uuid(text: &str, field: &str) -> AppResult<Uuid> {
    Uuid::parse_str(text)
        .map_err(|_| AppError::invalid(field, format!("{text:?} is not a version id")))
}

/// Moves `label` to version `to` (taking it from `from`, the version that has it now).
#[tauri::command]
pub async fn move_label(
    session: Session<'_>,
    name: String,
    label: String,
    to: String,
    from: Option<String>,
) -> AppResult<()> {
    StagingLabel::parse(&label).map_err(coffer_core::Error::from)?;
    let to = parse_uuid(&to, "version")?;
    let from = from
        .as_deref()
        .map(|f| parse_uuid(f, "version"))
        .transpose()?;
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.update_version_stage(&name, &label, Some(to), from)?))
    })
    .await
}

/// Schedules deletion after `recovery_days` (7–30), or purges at once when `force`.
/// Returns the purge date, if any.
#[tauri::command]
pub async fn delete_secret(
    session: Session<'_>,
    name: String,
    recovery_days: Option<u32>,
    force: bool,
) -> AppResult<Option<String>> {
    let deletion = if force {
        Deletion::Force
    } else {
        Deletion::RecoveryWindow(recovery_days.unwrap_or(30))
    };
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.delete_secret(&name, deletion)?.map(|t| t.rfc3339())))
    })
    .await
}

#[tauri::command]
pub async fn restore_secret(session: Session<'_>, name: String) -> AppResult<()> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.restore_secret(&name)?))
    })
    .await
}
