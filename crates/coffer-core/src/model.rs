//! The engine's public data types: what the app and the CLI render.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::names::{SecretName, StagingLabel};

/// Largest secret value accepted, in bytes (as in Secrets Manager).
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// A point in time, stored as Unix milliseconds and shown as RFC 3339 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        Timestamp((nanos / 1_000_000) as i64)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus_days(self, days: u32) -> Self {
        Timestamp(self.0 + i64::from(days) * 86_400_000)
    }

    /// Days since the Unix epoch: the granularity of "last accessed", as in Secrets Manager.
    pub fn day(self) -> i64 {
        self.0.div_euclid(86_400_000)
    }

    pub fn rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| format!("@{}ms", self.0))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed =
            time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
                .map_err(serde::de::Error::custom)?;
        Ok(Timestamp(
            (parsed.unix_timestamp_nanos() / 1_000_000) as i64,
        ))
    }
}

/// A secret value in memory: text or binary, wiped when dropped, never printed by `Debug`.
pub enum SecretValue {
    Text(Zeroizing<String>),
    Binary(Zeroizing<Vec<u8>>),
}

impl SecretValue {
    const TEXT_TAG: u8 = 0;
    const BINARY_TAG: u8 = 1;

    pub fn text(text: impl Into<String>) -> Self {
        SecretValue::Text(Zeroizing::new(text.into()))
    }

    pub fn binary(bytes: impl Into<Vec<u8>>) -> Self {
        SecretValue::Binary(Zeroizing::new(bytes.into()))
    }

    /// Text if the bytes are UTF-8, binary otherwise: how files and stdin are read.
    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Self {
        match std::str::from_utf8(&bytes) {
            Ok(text) => SecretValue::Text(Zeroizing::new(text.to_owned())),
            Err(_) => SecretValue::Binary(bytes),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            SecretValue::Text(text) => text.as_bytes(),
            SecretValue::Binary(bytes) => bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    pub fn is_text(&self) -> bool {
        matches!(self, SecretValue::Text(_))
    }

    /// The plaintext that gets encrypted: a kind tag, then the bytes, so the kind is
    /// protected along with the value.
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.len() + 1));
        out.push(if self.is_text() {
            Self::TEXT_TAG
        } else {
            Self::BINARY_TAG
        });
        out.extend_from_slice(self.as_bytes());
        out
    }

    pub(crate) fn decode(plain: Zeroizing<Vec<u8>>) -> Option<Self> {
        let (&tag, rest) = plain.split_first()?;
        match tag {
            Self::TEXT_TAG => std::str::from_utf8(rest)
                .ok()
                .map(|text| SecretValue::Text(Zeroizing::new(text.to_owned()))),
            Self::BINARY_TAG => Some(SecretValue::Binary(Zeroizing::new(rest.to_vec()))),
            _ => None,
        }
    }

    /// Constant-time comparison, used for idempotent retries.
    pub fn same_as(&self, other: &SecretValue) -> bool {
        use subtle::ConstantTimeEq;
        self.is_text() == other.is_text() && bool::from(self.as_bytes().ct_eq(other.as_bytes()))
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.is_text() { "text" } else { "binary" };
        write!(f, "SecretValue({kind}, {} bytes, <redacted>)", self.len())
    }
}

/// Which version of a secret a read means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSelector {
    Label(StagingLabel),
    Id(Uuid),
}

impl Default for VersionSelector {
    fn default() -> Self {
        VersionSelector::Label(StagingLabel::current())
    }
}

/// A value read from the vault, with the version it came from.
#[derive(Debug)]
pub struct SecretRead {
    pub name: SecretName,
    pub version_id: Uuid,
    pub labels: Vec<StagingLabel>,
    pub created_at: Timestamp,
    pub value: SecretValue,
}

/// What a write produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionWritten {
    pub name: SecretName,
    pub secret_id: Uuid,
    pub version_id: Uuid,
    pub labels: Vec<StagingLabel>,
    /// False when an idempotency token matched an earlier write and nothing new was stored.
    pub created: bool,
    /// Set when the write went to a team folder's primary, which stored it: this vault's
    /// copy follows with that region's next replication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_by: Option<String>,
}

/// One version of a secret, without its value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretVersionInfo {
    pub version_id: Uuid,
    pub created_at: Timestamp,
    pub labels: Vec<StagingLabel>,
    pub key_id: Uuid,
    pub key_version: u32,
}

/// A secret's metadata as `describe` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretDescription {
    pub id: Uuid,
    pub name: SecretName,
    pub description: String,
    pub key_id: Uuid,
    pub key_aliases: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub created_at: Timestamp,
    pub changed_at: Timestamp,
    /// Day granularity, as in Secrets Manager.
    pub last_accessed: Option<Timestamp>,
    pub deleted_at: Option<Timestamp>,
    pub purge_at: Option<Timestamp>,
    pub versions: Vec<SecretVersionInfo>,
    /// Rotation configuration and status (last and next rotation, failures), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<crate::rotation::RotationInfo>,
    /// Replica regions and their status (on a primary), or the primary it follows (on a
    /// replica); absent for a secret that is neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<crate::vault::replication::SecretReplication>,
}

/// A row of `list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretSummary {
    pub id: Uuid,
    pub name: SecretName,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    pub changed_at: Timestamp,
    pub last_accessed: Option<Timestamp>,
    pub deleted_at: Option<Timestamp>,
    pub purge_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortBy {
    #[default]
    Name,
    ChangedDesc,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeletedFilter {
    /// Only live secrets (the default, as in Secrets Manager).
    #[default]
    Exclude,
    Include,
    Only,
}

/// Filters and paging for `list`; all filters must match.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub name_prefix: Option<String>,
    pub description_contains: Option<String>,
    /// Tag key, with an optional required value.
    pub tag: Option<(String, Option<String>)>,
    /// Case-insensitive match on name, description or any tag key/value (search as you type).
    pub text: Option<String>,
    pub deleted: DeletedFilter,
    pub sort: SortBy,
    /// At most this many rows (1–1000, default 100).
    pub limit: Option<u32>,
    /// The `next_token` of the previous page.
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// How to delete a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Recoverable for this many days (7–30), then purged.
    RecoveryWindow(u32),
    /// Purged at once; its data keys are destroyed.
    Force,
}

impl Default for Deletion {
    fn default() -> Self {
        Deletion::RecoveryWindow(30)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "enabled",
            KeyState::Disabled => "disabled",
            KeyState::PendingDeletion => "pending_deletion",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "enabled" => Some(KeyState::Enabled),
            "disabled" => Some(KeyState::Disabled),
            "pending_deletion" => Some(KeyState::PendingDeletion),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyVersionInfo {
    pub version: u32,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyDescription {
    pub id: Uuid,
    pub aliases: Vec<String>,
    pub description: String,
    pub state: KeyState,
    pub is_default: bool,
    pub created_at: Timestamp,
    pub deletion_at: Option<Timestamp>,
    pub versions: Vec<KeyVersionInfo>,
}
