//! The app's own preferences (not vault data): auto-lock, clipboard timeout, theme.
//! Stored as JSON in `$XDG_CONFIG_HOME/coffer/app.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};

pub const AUTO_LOCK_RANGE: std::ops::RangeInclusive<u32> = 15..=86_400;
pub const CLIPBOARD_RANGE: std::ops::RangeInclusive<u32> = 5..=600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

/// Where the AWS-compatible API listens unless the user says otherwise: loopback, on
/// the port local AWS emulators use, so an SDK set up for one works with Coffer unchanged.
pub const DEFAULT_AWS_API_ADDRESS: &str = "127.0.0.1:4566";

/// The AWS-compatible API (Secrets Manager and KMS over SigV4), served by the app while
/// the vault is unlocked. Off until the user turns it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AwsApiSettings {
    pub enabled: bool,
    /// A loopback `IP:port`; the listener refuses anything else (see `coffer-aws-server`).
    pub address: String,
}

impl Default for AwsApiSettings {
    fn default() -> Self {
        AwsApiSettings {
            enabled: false,
            address: DEFAULT_AWS_API_ADDRESS.to_owned(),
        }
    }
}

/// Where the app listens for paired peers unless the user says otherwise: every
/// interface, on the port the docs give `coffer daemon --listen`, since a team's owner
/// reaches a member from another machine. Only pinned fingerprints get through TLS.
pub const DEFAULT_PEER_ADDRESS: &str = "0.0.0.0:7443";

/// Receiving from paired peers (a team owner's state and copies, a region's replicas),
/// served by the app while the vault is unlocked. Off until the user turns it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerListenSettings {
    pub enabled: bool,
    /// `IP:port`, as `coffer daemon --listen` takes it.
    pub address: String,
}

impl Default for PeerListenSettings {
    fn default() -> Self {
        PeerListenSettings {
            enabled: false,
            address: DEFAULT_PEER_ADDRESS.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Lock after this many seconds without activity (default 10 minutes).
    pub auto_lock_secs: u32,
    /// Clear the clipboard this many seconds after a copy (default 30).
    pub clipboard_clear_secs: u32,
    pub theme: Theme,
    /// Lock when the machine is about to suspend (logind's PrepareForSleep).
    pub lock_on_suspend: bool,
    /// Lock when the screen locks (logind Lock, screensaver ActiveChanged).
    pub lock_on_screen_lock: bool,
    /// Changed only through `configure_aws_api`, which starts or stops the listener.
    pub aws_api: AwsApiSettings,
    /// Changed only through `configure_peer_listener`, which starts or stops the listener.
    pub peers: PeerListenSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            auto_lock_secs: 600,
            clipboard_clear_secs: 30,
            theme: Theme::System,
            lock_on_suspend: true,
            lock_on_screen_lock: true,
            aws_api: AwsApiSettings::default(),
            peers: PeerListenSettings::default(),
        }
    }
}

impl Settings {
    pub fn validate(&self) -> AppResult<()> {
        if !AUTO_LOCK_RANGE.contains(&self.auto_lock_secs) {
            return Err(AppError::invalid(
                "auto-lock",
                "auto-lock must be between 15 seconds and 24 hours",
            ));
        }
        if !CLIPBOARD_RANGE.contains(&self.clipboard_clear_secs) {
            return Err(AppError::invalid(
                "clipboard timeout",
                "the clipboard timeout must be between 5 seconds and 10 minutes",
            ));
        }
        Ok(())
    }

    /// Reads the settings file; a missing or unreadable file gives the defaults.
    pub fn load(path: &Path) -> Settings {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Settings>(&bytes).ok())
            .filter(|settings| settings.validate().is_ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> AppResult<()> {
        self.validate()?;
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, json)?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            AppError::new(
                "settings_io",
                format!("cannot save the settings to {}: {e}", path.display()),
            )
        })
    }
}

/// `$XDG_CONFIG_HOME/coffer/app.json`, else `~/.config/coffer/app.json`.
pub fn settings_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("coffer").join("app.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coffer/app.json");
        assert_eq!(Settings::load(&path), Settings::default());
        let custom = Settings {
            auto_lock_secs: 15,
            clipboard_clear_secs: 5,
            theme: Theme::Dark,
            lock_on_suspend: false,
            lock_on_screen_lock: true,
            aws_api: AwsApiSettings {
                enabled: true,
                address: "127.0.0.1:14566".to_owned(),
            },
            peers: PeerListenSettings {
                enabled: true,
                address: "127.0.0.1:17443".to_owned(),
            },
        };
        custom.save(&path).unwrap();
        assert_eq!(Settings::load(&path), custom);
    }

    #[test]
    fn a_settings_file_from_before_lock_triggers_turns_them_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.json");
        std::fs::write(
            &path,
            r#"{"auto_lock_secs": 60, "clipboard_clear_secs": 10, "theme": "light"}"#,
        )
        .unwrap();
        let loaded = Settings::load(&path);
        assert_eq!(loaded.auto_lock_secs, 60);
        assert!(loaded.lock_on_suspend && loaded.lock_on_screen_lock);
        // The AWS-compatible API stays off until the user turns it on.
        assert_eq!(loaded.aws_api, AwsApiSettings::default());
        assert!(!loaded.aws_api.enabled);
        // So does listening for peers.
        assert_eq!(loaded.peers, PeerListenSettings::default());
    }

    #[test]
    fn out_of_range_values_are_refused_at_the_field() {
        let bad = Settings {
            auto_lock_secs: 1,
            ..Settings::default()
        };
        let error = bad.validate().unwrap_err();
        assert_eq!(error.field.as_deref(), Some("auto-lock"));
    }
}
