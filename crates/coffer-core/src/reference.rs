//! Secret references: `coffer://NAME`, `coffer://NAME#field`, `coffer://NAME?label=L`,
//! `coffer://NAME?version=ID`, usable wherever a tool wants a value but a config file
//! should only say where the value is.

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::model::{SecretValue, VersionSelector};
use crate::names::{SecretName, StagingLabel};
use crate::vault::{Error, Result};

pub const SCHEME: &str = "coffer://";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretReference {
    pub name: SecretName,
    pub selector: VersionSelector,
    /// A top-level field of a JSON secret.
    pub field: Option<String>,
}

impl SecretReference {
    /// True when `text` is meant as a reference (so a malformed one is an error, not a
    /// literal value).
    pub fn looks_like(text: &str) -> bool {
        text.starts_with(SCHEME)
    }

    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: &str| Error::invalid("secret reference", format!("{text:?}: {reason}"));
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("it must start with coffer://"))?;
        let (rest, field) = match rest.split_once('#') {
            Some((rest, field)) if !field.is_empty() => (rest, Some(field.to_owned())),
            Some(_) => return Err(bad("the field after # is empty")),
            None => (rest, None),
        };
        let (name, query) = match rest.split_once('?') {
            Some((name, query)) => (name, Some(query)),
            None => (rest, None),
        };
        let name = SecretName::parse(name)?;
        let selector = match query {
            None => VersionSelector::default(),
            Some(query) => match query.split_once('=') {
                Some(("label", label)) => VersionSelector::Label(StagingLabel::parse(label)?),
                Some(("version", id)) => VersionSelector::Id(
                    Uuid::parse_str(id).map_err(|_| bad("the version is not a version id"))?,
                ),
                _ => return Err(bad("use ?label=LABEL or ?version=VERSION_ID")),
            },
        };
        Ok(SecretReference {
            name,
            selector,
            field,
        })
    }

    /// The text this reference stands for, given the secret's value.
    pub fn extract(&self, value: &SecretValue) -> Result<Zeroizing<String>> {
        let SecretValue::Text(text) = value else {
            return Err(Error::invalid(
                "secret reference",
                format!(
                    "secret {:?} holds binary data; references need a text value",
                    self.name.as_str()
                ),
            ));
        };
        let Some(field) = &self.field else {
            return Ok(Zeroizing::new(text.to_string()));
        };
        let not_json = || {
            Error::invalid(
                "secret reference",
                format!(
                    "secret {:?} is not a JSON object, so it has no field {field:?}",
                    self.name.as_str()
                ),
            )
        };
        let parsed: serde_json::Value = serde_json::from_str(text).map_err(|_| not_json())?;
        let object = parsed.as_object().ok_or_else(not_json)?;
        let found = object.get(field).ok_or_else(|| {
            Error::invalid(
                "secret reference",
                format!("secret {:?} has no field {field:?}", self.name.as_str()),
            )
        })?;
        Ok(Zeroizing::new(match found {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let plain = SecretReference::parse("coffer://prod/db").unwrap();
        assert_eq!(plain.name.as_str(), "prod/db");
        assert_eq!(plain.selector, VersionSelector::default());
        let field = SecretReference::parse("coffer://prod/db#password").unwrap();
        assert_eq!(field.field.as_deref(), Some("password"));
        let label = SecretReference::parse("coffer://prod/db?label=PREVIOUS#user").unwrap();
        assert_eq!(
            label.selector,
            VersionSelector::Label(StagingLabel::previous())
        );
        let id = Uuid::new_v4();
        let version = SecretReference::parse(&format!("coffer://x?version={id}")).unwrap();
        assert_eq!(version.selector, VersionSelector::Id(id));
        for bad in [
            "coffer://",
            "coffer://a?lbl=x",
            "coffer://a#",
            "coffer://a b",
            "coffer://a?version=12",
        ] {
            assert!(SecretReference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn extracts_json_fields() {
        let reference = SecretReference::parse("coffer://db#port").unwrap();
        let value = SecretValue::text(r#"{"port": 5432, "user": "app"}"#);
        assert_eq!(&*reference.extract(&value).unwrap(), "5432");
        let missing = SecretReference::parse("coffer://db#host").unwrap();
        assert!(missing
            .extract(&value)
            .unwrap_err()
            .to_string()
            .contains("no field"));
        assert!(reference.extract(&SecretValue::text("plain")).is_err());
        assert!(reference
            .extract(&SecretValue::binary(vec![0u8, 1]))
            .is_err());
    }
}
