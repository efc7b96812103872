//! Validated names: secret names, staging labels, key aliases, tags.
//!
//! Rules follow AWS Secrets Manager and KMS so that names move between the two freely;
//! every rejection says which character or length was wrong.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {shown:?} is not valid: {reason}")]
pub struct NameError {
    pub what: &'static str,
    pub shown: String,
    pub reason: String,
}

fn reject(what: &'static str, value: &str, reason: impl Into<String>) -> NameError {
    let mut shown: String = value.chars().take(64).collect();
    if value.chars().count() > 64 {
        shown.push('…');
    }
    NameError {
        what,
        shown,
        reason: reason.into(),
    }
}

/// A secret's name: 1–512 characters from `A-Z a-z 0-9 / _ + = . @ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretName(String);

impl SecretName {
    pub fn parse(name: &str) -> Result<Self, NameError> {
        const WHAT: &str = "secret name";
        if name.is_empty() {
            return Err(reject(WHAT, name, "it is empty; use 1 to 512 characters"));
        }
        if name.chars().count() > 512 {
            return Err(reject(WHAT, name, "it is longer than 512 characters"));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c)))
        {
            return Err(reject(
                WHAT,
                name,
                format!("it contains {bad:?}; use letters, digits and / _ + = . @ - only"),
            ));
        }
        Ok(SecretName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SecretName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        SecretName::parse(&value)
    }
}

impl From<SecretName> for String {
    fn from(value: SecretName) -> Self {
        value.0
    }
}

impl std::fmt::Display for SecretName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A staging label on a secret version. `CURRENT`, `PENDING` and `PREVIOUS` are
/// reserved and moved by the vault itself as values are put and rotated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StagingLabel(String);

impl StagingLabel {
    pub const CURRENT: &'static str = "CURRENT";
    pub const PENDING: &'static str = "PENDING";
    pub const PREVIOUS: &'static str = "PREVIOUS";

    pub fn parse(label: &str) -> Result<Self, NameError> {
        const WHAT: &str = "staging label";
        if label.is_empty() || label.chars().count() > 256 {
            return Err(reject(WHAT, label, "use 1 to 256 characters"));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_-.:/+=@".contains(*c)))
        {
            return Err(reject(
                WHAT,
                label,
                format!("it contains {bad:?}; use letters, digits and _ - . : / + = @ only"),
            ));
        }
        Ok(StagingLabel(label.to_owned()))
    }

    pub fn current() -> Self {
        StagingLabel(Self::CURRENT.to_owned())
    }

    pub fn previous() -> Self {
        StagingLabel(Self::PREVIOUS.to_owned())
    }

    pub fn pending() -> Self {
        StagingLabel(Self::PENDING.to_owned())
    }

    pub fn is_current(&self) -> bool {
        self.0 == Self::CURRENT
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StagingLabel {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        StagingLabel::parse(&value)
    }
}

impl From<StagingLabel> for String {
    fn from(value: StagingLabel) -> Self {
        value.0
    }
}

impl std::fmt::Display for StagingLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key alias, written `alias/NAME` as in KMS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyAlias(String);

impl KeyAlias {
    pub fn parse(alias: &str) -> Result<Self, NameError> {
        const WHAT: &str = "key alias";
        let Some(rest) = alias.strip_prefix("alias/") else {
            return Err(reject(
                WHAT,
                alias,
                "it must start with \"alias/\", for example alias/team-db",
            ));
        };
        if rest.is_empty() || rest.len() > 250 {
            return Err(reject(
                WHAT,
                alias,
                "the part after alias/ must be 1 to 250 characters",
            ));
        }
        if let Some(bad) = rest
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "/_-".contains(*c)))
        {
            return Err(reject(
                WHAT,
                alias,
                format!("it contains {bad:?}; use letters, digits and / _ - only"),
            ));
        }
        Ok(KeyAlias(alias.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyAlias {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        KeyAlias::parse(&value)
    }
}

impl From<KeyAlias> for String {
    fn from(value: KeyAlias) -> Self {
        value.0
    }
}

/// Checks a tag key (1–128 characters) and value (0–256), as Secrets Manager does.
pub fn check_tag(key: &str, value: &str) -> Result<(), NameError> {
    if key.is_empty() || key.chars().count() > 128 {
        return Err(reject("tag key", key, "use 1 to 128 characters"));
    }
    if key.starts_with("aws:") || key.starts_with("coffer:") {
        return Err(reject(
            "tag key",
            key,
            "the prefixes aws: and coffer: are reserved",
        ));
    }
    if value.chars().count() > 256 {
        return Err(reject("tag value", value, "use at most 256 characters"));
    }
    for (what, text) in [("tag key", key), ("tag value", value)] {
        if let Some(bad) = text.chars().find(|c| c.is_control()) {
            return Err(reject(
                what,
                text,
                format!("it contains the control character {bad:?}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_follow_aws_rules() {
        for ok in ["a", "prod/db/password", "x+y=z.w@q-1_2"] {
            SecretName::parse(ok).unwrap();
        }
        let err = SecretName::parse("has space").unwrap_err();
        assert!(err.to_string().contains("' '"), "{err}");
        assert!(SecretName::parse("").is_err());
        assert!(SecretName::parse(&"a".repeat(513)).is_err());
        assert!(SecretName::parse(&"a".repeat(512)).is_ok());
        assert!(SecretName::parse("naïve").is_err());
    }

    #[test]
    fn labels_and_aliases() {
        assert!(StagingLabel::parse("CURRENT").unwrap().is_current());
        assert!(StagingLabel::parse("blue green").is_err());
        KeyAlias::parse("alias/team-db").unwrap();
        assert!(KeyAlias::parse("team-db")
            .unwrap_err()
            .to_string()
            .contains("alias/"));
        assert!(check_tag("env", "prod").is_ok());
        assert!(check_tag("", "x").is_err());
        assert!(check_tag("aws:x", "x").is_err());
    }
}
