//! Where updates come from: the user's choice, in `$XDG_CONFIG_HOME/coffer/updates.json`
//! (beside `app.json`). No endpoint, the default, means Coffer never checks.
//!
//! Only `https://` endpoints are accepted, loopback included: the manifest names what to
//! download, so it must come from the server the user meant. A private update server
//! whose certificate is not from a public CA is trusted through `ca_file`, a PEM file the
//! user names, in addition to the system's CAs (never instead of them).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tauri::Url;

use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdatePreferences {
    /// The manifest (`latest.json`) URL; `None` means never check.
    pub endpoint: Option<String>,
    /// An extra CA certificate (PEM) for a private update server.
    pub ca_file: Option<String>,
}

impl UpdatePreferences {
    /// Empty fields become `None`; what is left must be usable.
    pub fn normalized(self) -> AppResult<UpdatePreferences> {
        let clean =
            |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let preferences = UpdatePreferences {
            endpoint: clean(self.endpoint),
            ca_file: clean(self.ca_file),
        };
        if let Some(endpoint) = &preferences.endpoint {
            endpoint_url(endpoint)?;
        }
        if let Some(ca_file) = &preferences.ca_file {
            if !Path::new(ca_file).is_absolute() {
                return Err(AppError::invalid(
                    "CA certificate",
                    "give the CA certificate as a full path, like /etc/ssl/private-ca.pem",
                ));
            }
        }
        Ok(preferences)
    }

    pub fn load(path: &Path) -> UpdatePreferences {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<UpdatePreferences>(&bytes).ok())
            .and_then(|preferences| preferences.normalized().ok())
            .unwrap_or_default()
    }

    pub fn save(self, path: &Path) -> AppResult<UpdatePreferences> {
        let preferences = self.normalized()?;
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let json = serde_json::to_vec_pretty(&preferences).map_err(std::io::Error::other)?;
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, json)?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            AppError::new(
                "settings_io",
                format!("cannot save the update settings to {}: {e}", path.display()),
            )
        })?;
        Ok(preferences)
    }
}

/// The endpoint as a URL, refused unless it is `https://` with a host.
pub fn endpoint_url(endpoint: &str) -> AppResult<Url> {
    let field = "update endpoint";
    let url = Url::parse(endpoint).map_err(|_| {
        AppError::invalid(
            field,
            "the update endpoint is not a URL; give the full address of latest.json, like https://updates.example.org/coffer/latest.json",
        )
    })?;
    if url.scheme() != "https" {
        return Err(AppError::invalid(
            field,
            format!(
                "the update endpoint must use https://, not {}://: the manifest decides what is downloaded",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(AppError::invalid(
            field,
            "the update endpoint has no host name",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AppError::invalid(
            field,
            "the update endpoint must not carry a user name or password",
        ));
    }
    Ok(url)
}

/// `updates.json` beside the app's other settings.
pub fn preferences_path() -> PathBuf {
    crate::settings::settings_path().with_file_name("updates.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_blank_means_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("updates.json");
        assert_eq!(UpdatePreferences::load(&path), UpdatePreferences::default());
        let saved = UpdatePreferences {
            endpoint: Some("   ".into()),
            ca_file: Some(String::new()),
        }
        .save(&path)
        .unwrap();
        assert_eq!(saved, UpdatePreferences::default());
    }

    #[test]
    fn an_https_endpoint_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coffer/updates.json");
        let chosen = UpdatePreferences {
            endpoint: Some("https://127.0.0.1:8443/latest.json".into()),
            ca_file: Some("/etc/ssl/test-ca.pem".into()),
        };
        assert_eq!(chosen.clone().save(&path).unwrap(), chosen);
        assert_eq!(UpdatePreferences::load(&path), chosen);
    }

    #[test]
    fn plain_http_other_schemes_credentials_and_relative_ca_files_are_refused() {
        for (endpoint, needle) in [
            (
                "http://127.0.0.1:8080/latest.json",
                "must use https://, not http://",
            ),
            ("file:///tmp/latest.json", "must use https://, not file://"),
            ("updates.example.org/latest.json", "not a URL"),
            (
                "https://user:pw@example.org/latest.json",
                "user name or password",
            ),
        ] {
            let error = UpdatePreferences {
                endpoint: Some(endpoint.into()),
                ca_file: None,
            }
            .normalized()
            .unwrap_err();
            assert_eq!(error.field.as_deref(), Some("update endpoint"));
            assert!(
                error.message.contains(needle),
                "{endpoint}: {}",
                error.message
            );
        }
        let error = UpdatePreferences {
            endpoint: None,
            ca_file: Some("ca.pem".into()),
        }
        .normalized()
        .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("CA certificate"));
    }

    #[test]
    fn a_hand_edited_file_with_plain_http_loads_as_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("updates.json");
        std::fs::write(&path, r#"{"endpoint": "http://example.org/latest.json"}"#).unwrap();
        assert_eq!(UpdatePreferences::load(&path), UpdatePreferences::default());
    }
}
