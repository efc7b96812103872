//! Secret rotation, modelled on Secrets Manager: a schedule, a rotator, and the four steps
//! `create` → `set` → `test` → `finish`.
//!
//! This module holds what needs no vault: schedules ([`schedule`]), the rotators
//! ([`rotator`], [`postgres`]) and the types the vault, the CLI and the app share. The
//! state machine that runs the steps and persists their progress is
//! `vault::rotation` (an `impl Vault`), because every step's bookkeeping is one vault
//! transaction with its audit entry.

pub mod executable;
pub mod pg_tls;
pub mod postgres;
mod process;
pub mod rotator;
pub mod schedule;

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;
use crate::password::PasswordOptions;
pub use pg_tls::PgSslMode;
pub use rotator::{run_step, RotatorFailure, StepInput};
pub use schedule::{format_duration, parse_duration, Schedule, ScheduleError};

/// One of the four rotation steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Create,
    Set,
    Test,
    Finish,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Create, Step::Set, Step::Test, Step::Finish];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Set => "set",
            Step::Test => "test",
            Step::Finish => "finish",
        }
    }

    pub fn parse(text: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn next(self) -> Option<Step> {
        match self {
            Step::Create => Some(Step::Set),
            Step::Set => Some(Step::Test),
            Step::Test => Some(Step::Finish),
            Step::Finish => None,
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two strategies of the PostgreSQL rotator, as in Secrets Manager.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PgStrategy {
    /// The user changes its own password, logging in with the current one.
    #[default]
    SingleUser,
    /// An admin (another secret) alternates between `user` and `user_clone`, so the
    /// previous credentials keep working until the next rotation.
    AlternatingUsers,
}

pub const DEFAULT_STEP_TIMEOUT_SECS: u64 = 30;

fn default_timeout() -> u64 {
    DEFAULT_STEP_TIMEOUT_SECS
}

/// Which rotator a secret uses and how; never contains a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rotator", rename_all = "snake_case", deny_unknown_fields)]
pub enum RotatorConfig {
    /// A new random password; for a JSON secret, in `field` only.
    Generate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        #[serde(default)]
        password: PasswordOptions,
    },
    /// An executable called once per step as `PATH ARGS… STEP SECRET_NAME TOKEN`, with the
    /// values as JSON on stdin and the new value as JSON on stdout.
    Command {
        path: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
        #[serde(default = "default_timeout")]
        timeout_secs: u64,
    },
    /// A PostgreSQL role's password; the secret is JSON `{host, port, username, password, dbname}`.
    Postgres {
        #[serde(default)]
        strategy: PgStrategy,
        /// The secret holding the admin credentials (alternating users only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        admin_secret: Option<String>,
        #[serde(default = "default_timeout")]
        timeout_secs: u64,
        #[serde(default)]
        password: PasswordOptions,
        /// How the connection is protected (libpq's names).
        #[serde(default)]
        sslmode: PgSslMode,
        /// The CA certificates (PEM) that verify-ca and verify-full trust, copied in when
        /// the rotator is saved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_pem: Option<String>,
    },
}

impl RotatorConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            RotatorConfig::Generate { .. } => "generate",
            RotatorConfig::Command { .. } => "command",
            RotatorConfig::Postgres { .. } => "postgres",
        }
    }

    /// The default config of a rotator named on the command line.
    pub fn named(kind: &str) -> Result<RotatorConfig, String> {
        match kind {
            "generate" => Ok(RotatorConfig::Generate {
                field: None,
                password: PasswordOptions::default(),
            }),
            "command" => Ok(RotatorConfig::Command {
                path: String::new(),
                args: Vec::new(),
                timeout_secs: DEFAULT_STEP_TIMEOUT_SECS,
            }),
            "postgres" => Ok(RotatorConfig::Postgres {
                strategy: PgStrategy::SingleUser,
                admin_secret: None,
                timeout_secs: DEFAULT_STEP_TIMEOUT_SECS,
                password: PasswordOptions::default(),
                sslmode: PgSslMode::default(),
                ca_pem: None,
            }),
            other => Err(format!(
                "unknown rotator {other:?}: use generate, command or postgres"
            )),
        }
    }

    /// Checks what can be checked before any rotation runs.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            RotatorConfig::Command {
                path, timeout_secs, ..
            } => {
                if path.is_empty() {
                    return Err(
                        "the command rotator needs the executable to run (--command PATH)".into(),
                    );
                }
                check_executable(path)?;
                if !(1..=3600).contains(timeout_secs) {
                    return Err("the step timeout must be 1 to 3600 seconds".into());
                }
            }
            RotatorConfig::Postgres {
                strategy,
                admin_secret,
                timeout_secs,
                sslmode,
                ca_pem,
                ..
            } => {
                pg_tls::check(*sslmode, ca_pem.as_deref())?;
                if *strategy == PgStrategy::AlternatingUsers && admin_secret.is_none() {
                    return Err("the alternating-users strategy needs the admin credentials' secret (--admin-secret NAME)".into());
                }
                if !(1..=3600).contains(timeout_secs) {
                    return Err("the step timeout must be 1 to 3600 seconds".into());
                }
                if let Some(admin) = admin_secret {
                    crate::names::SecretName::parse(admin).map_err(|e| {
                        format!("the admin secret's name {admin:?} is not valid: {e}")
                    })?;
                }
            }
            RotatorConfig::Generate { field, .. } => {
                if field.as_deref() == Some("") {
                    return Err("the JSON field to rotate must not be empty".into());
                }
            }
        }
        if let RotatorConfig::Generate { password, .. } | RotatorConfig::Postgres { password, .. } =
            self
        {
            // The generator is the authority on its options; a throw-away password now
            // beats a rotation that fails months later on the first scheduled run.
            crate::password::generate_password(password)
                .map_err(|e| format!("the password options are not valid: {e}"))?;
        }
        Ok(())
    }
}

/// A command rotator runs without a shell or working directory of its own, so its path
/// must be absolute and name an executable file only the user or root can change, now,
/// not at the first scheduled run (and again before every step: see `executable`).
fn check_executable(path: &str) -> Result<(), String> {
    executable::check(path)
}

/// What a caller sets up with `configure_rotation` (and `coffer secret rotate --schedule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationSettings {
    /// `rate(…)` or `cron(…)`; `None` for rotation on demand only.
    pub schedule: Option<String>,
    /// `2h`, `90m`…: how long after the scheduled time a rotation may start.
    pub window: Option<String>,
    pub rotator: RotatorConfig,
}

/// Where a secret's rotation stands, for `describe`, `rotation list` and the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationState {
    /// The last attempt failed; it is retried with backoff.
    Failing,
    /// The next rotation's time has passed.
    Overdue,
    /// A rotation started and has not finished (it resumes where it stopped).
    InProgress,
    /// Rotation is on and nothing is pending.
    Scheduled,
    /// Rotation was turned off (`cancel-rotate`); a rotation can still be run by hand.
    Disabled,
}

impl RotationState {
    pub fn as_str(self) -> &'static str {
        match self {
            RotationState::Failing => "failing",
            RotationState::Overdue => "overdue",
            RotationState::InProgress => "in_progress",
            RotationState::Scheduled => "scheduled",
            RotationState::Disabled => "disabled",
        }
    }
}

/// A secret's rotation configuration and status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotationInfo {
    pub secret_name: String,
    pub enabled: bool,
    pub schedule: Option<String>,
    pub window: Option<String>,
    pub rotator: RotatorConfig,
    pub state: RotationState,
    pub last_rotated: Option<Timestamp>,
    pub next_rotation: Option<Timestamp>,
    /// The rotation in progress: its token (= the PENDING version's idempotency token)
    /// and the next step to run.
    pub token: Option<String>,
    pub step: Option<Step>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub next_retry: Option<Timestamp>,
}

/// One finished or failed rotation attempt, newest first in [`RotationInfo`] history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotationHistoryEntry {
    pub at: Timestamp,
    pub token: String,
    pub step: Step,
    pub result: String,
    pub version_id: Option<uuid::Uuid>,
    pub error: Option<String>,
}

/// What one `rotate_secret` call did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotationOutcome {
    pub secret_name: String,
    pub token: String,
    pub version_id: Option<uuid::Uuid>,
    /// The last step that completed.
    pub completed: Option<Step>,
    pub finished: bool,
}

/// Why a rotation step failed (the secret's CURRENT is untouched).
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("rotation of secret {name:?} failed at step {step}: {reason}; CURRENT is unchanged and the next attempt resumes with the same PENDING version")]
    StepFailed {
        name: String,
        step: Step,
        reason: String,
    },
    #[error("the {rotator} rotator did not finish step {step} of secret {name:?} within {secs} s and was stopped; CURRENT is unchanged (if the target is just slow, raise the rotator's step timeout)")]
    Timeout {
        name: String,
        rotator: &'static str,
        step: Step,
        secs: u64,
    },
    #[error("secret {name:?} has no rotation configured; set one with `coffer secret rotate {name} --rotator generate|command|postgres`")]
    NotConfigured { name: String },
    #[error("the rotation configuration is not valid: {reason}")]
    InvalidConfig { reason: String },
    #[error("the rotation configuration of secret {name:?} was changed outside Coffer (its MAC does not match), so it is not run; check it and set it again with `coffer secret rotate {name} --rotator …`")]
    ConfigTampered { name: String },
}

impl RotationError {
    pub fn code(&self) -> &'static str {
        match self {
            RotationError::StepFailed { .. } => "rotation_failed",
            RotationError::Timeout { .. } => "rotator_timeout",
            RotationError::NotConfigured { .. } => "rotation_not_configured",
            RotationError::InvalidConfig { .. } => "invalid_argument",
            RotationError::ConfigTampered { .. } => "tampered",
        }
    }
}

/// How long to wait before retrying after `attempts` failures: 1 minute, doubling, at
/// most a day.
pub fn backoff_ms(attempts: u32) -> i64 {
    let exp = attempts.saturating_sub(1).min(11);
    (60_000i64 << exp).min(86_400_000)
}

#[cfg(test)]
mod vault_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_rejects_unknown() {
        let config = RotatorConfig::Command {
            path: "/bin/true".into(),
            args: vec!["x".into()],
            timeout_secs: 5,
        };
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains("\"rotator\":\"command\""), "{json}");
        assert_eq!(
            serde_json::from_str::<RotatorConfig>(&json).unwrap(),
            config
        );
        assert!(serde_json::from_str::<RotatorConfig>(r#"{"rotator":"lambda"}"#).is_err());
        let err = RotatorConfig::named("lambda").unwrap_err();
        assert!(err.contains("generate, command or postgres"), "{err}");
    }

    #[test]
    fn backoff_doubles_up_to_a_day() {
        assert_eq!(backoff_ms(1), 60_000);
        assert_eq!(backoff_ms(2), 120_000);
        assert_eq!(backoff_ms(5), 960_000);
        assert_eq!(backoff_ms(40), 86_400_000);
    }
}
