//! Secret rotation's state machine, and the scheduler's "run what is due".
//!
//! A rotation is `create` → `set` → `test` → `finish`. Its token, the next step to run,
//! the attempts and the last error live in the secret's `secret_rotation` row. Each step's
//! outcome is recorded in one transaction with its audit entry; the rotator itself runs
//! outside any transaction (it talks to other systems), so a crash at any point leaves
//! the row at the last recorded step and CURRENT untouched. `create` stores the new value
//! through the normal put path with the rotation token as idempotency token and the label
//! PENDING; a resumed rotation finds that version by its token instead of making another.
//! Only `finish` moves CURRENT (PREVIOUS follows) and drops PENDING, atomically.

mod run;

pub use run::{drive_rotation, RotationRun, StepJob, VaultAccess};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::audit::AuditEvent;
use super::error::{Error, Result};
use super::integrity::Integrity;
use super::keyring::AuditKey;
use super::replication::record_change;
use super::Vault;
use crate::crypto::Aad;
use crate::model::Timestamp;
use crate::names::{SecretName, StagingLabel};
use crate::rotation::{
    backoff_ms, format_duration, parse_duration, RotationError, RotationHistoryEntry, RotationInfo,
    RotationOutcome, RotationSettings, RotationState, RotatorConfig, Schedule, Step,
};
use crate::store::rotation::{self as rows, HistoryRow, KeyRotationRow, RotationRow};
use crate::store::secrets::{self as secret_rows, SecretRow};
use crate::store::{keys as key_rows, StoreError};

/// How much of what is due a scheduler pass does itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueWork {
    /// All of it, holding the vault throughout (`coffer daemon`, which shares it with
    /// nobody).
    All,
    /// Key rotations only. The caller shares its vault and takes it for each piece of
    /// the rest: secret rotations ([`Vault::due_rotations`], [`drive_rotation`]) and
    /// re-wraps ([`Vault::keys_to_rewrap`], `rewrap::drive_rewrap`).
    KeysOnly,
}

/// What one pass of the scheduler did.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct DueReport {
    pub rotated: Vec<String>,
    pub failed: Vec<DueFailure>,
    pub keys_rotated: Vec<Uuid>,
    pub data_keys_rewrapped: u64,
    /// When something is next due (a rotation, a retry or a key rotation).
    pub next_due: Option<Timestamp>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DueFailure {
    pub name: String,
    pub code: String,
    pub message: String,
}

/// A key's automatic rotation, as `key rotation-status` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KeyRotationInfo {
    pub key_id: Uuid,
    pub period_days: Option<u32>,
    pub next_rotation: Option<Timestamp>,
    pub newest_version: u32,
    /// Data keys per key version (versions wrapping none can be retired).
    pub data_keys_by_version: Vec<(u32, u64)>,
    /// Data keys not yet under the newest version.
    pub stale_data_keys: u64,
}

/// The MAC that binds a rotator configuration to its secret and vault: whoever can edit
/// the file but has no audit key cannot point a rotation at another executable.
fn rotator_mac(key: &AuditKey, vault_id: Uuid, secret_id: Uuid, rotator: &str) -> Vec<u8> {
    let aad = Aad::new("coffer.rotation-config.v1")
        .with(vault_id.as_bytes())
        .with(secret_id.as_bytes())
        .with(rotator.as_bytes());
    match <Hmac<Sha256> as Mac>::new_from_slice(key.0.as_ref()) {
        Ok(mut hmac) => {
            hmac.update(aad.as_bytes());
            hmac.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length; kept total without an unwrap.
        Err(_) => Vec::new(),
    }
}

fn check_rotator_mac(
    key: &AuditKey,
    vault_id: Uuid,
    row: &RotationRow,
    name: &SecretName,
) -> Result<()> {
    use subtle::ConstantTimeEq;
    let expected = rotator_mac(key, vault_id, row.secret_id, &row.rotator);
    if expected.is_empty() || !bool::from(expected.ct_eq(&row.rotator_mac)) {
        return Err(RotationError::ConfigTampered {
            name: name.to_string(),
        }
        .into());
    }
    Ok(())
}

fn corrupt(detail: String) -> Error {
    Error::Store(StoreError::Corrupt { detail })
}

fn parse_schedule(text: &str) -> Result<Schedule> {
    Schedule::parse(text).map_err(|e| Error::invalid("rotation schedule", e.to_string()))
}

/// A schedule and window as `configure_rotation` takes them, each error naming its field.
fn checked_timing(
    schedule: Option<&str>,
    window: Option<&str>,
    now: Timestamp,
) -> Result<(Option<Schedule>, Option<i64>)> {
    let schedule = schedule.map(parse_schedule).transpose()?;
    if let Some(schedule) = &schedule {
        schedule
            .check_fires(now)
            .map_err(|e| Error::invalid("rotation schedule", e.to_string()))?;
    }
    let window_ms = window
        .map(|w| parse_duration(w).map_err(|e| Error::invalid("rotation window", e.to_string())))
        .transpose()?;
    if let (Some(schedule), Some(window)) = (&schedule, window_ms) {
        schedule
            .check_window(window)
            .map_err(|e| Error::invalid("rotation window", e.to_string()))?;
    }
    Ok((schedule, window_ms))
}

/// What a schedule would do if it were saved now, so that a form can check an expression
/// as it is typed with exactly the rules and the reckoning `configure_rotation` and the
/// scheduler apply.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SchedulePreview {
    /// The schedule as Coffer writes it back.
    pub schedule: String,
    pub window: Option<String>,
    /// The next rotation times, soonest first (fewer if the schedule ends). When the first
    /// is already due it is `now`: the scheduler catches up once, not once per period.
    pub next: Vec<Timestamp>,
    /// Saving it makes a rotation due at once.
    pub due_now: bool,
}

/// Checks `schedule` (and `window`) and lists up to `count` (1 to 10) rotation times as
/// the scheduler would reckon them: from `last_rotated` if the secret has rotated before,
/// else from `now`. Needs no vault: nothing here is secret.
pub fn preview_schedule(
    schedule: &str,
    window: Option<&str>,
    last_rotated: Option<Timestamp>,
    now: Timestamp,
    count: usize,
) -> Result<SchedulePreview> {
    let (parsed, window_ms) = checked_timing(Some(schedule), window, now)?;
    let parsed = parsed.ok_or_else(|| Error::invalid("rotation schedule", "it is empty"))?;
    let mut next: Vec<Timestamp> = Vec::new();
    let mut after = last_rotated.unwrap_or(now);
    while next.len() < count.clamp(1, 10) {
        let Some(at) = parsed.next_after(after) else {
            break;
        };
        let at = if at.0 <= now.0 { now } else { at };
        next.push(at);
        after = at;
    }
    Ok(SchedulePreview {
        schedule: parsed.to_string(),
        window: window_ms.map(format_duration),
        due_now: next.first().is_some_and(|t| t.0 <= now.0),
        next,
    })
}

fn next_rotation(row: &RotationRow) -> Result<Option<i64>> {
    let Some(text) = &row.schedule else {
        return Ok(None);
    };
    let schedule = parse_schedule(text)?;
    let base = Timestamp(row.last_rotated_at.unwrap_or(row.configured_at));
    Ok(schedule.next_after(base).map(Timestamp::millis))
}

/// When the scheduled rotation may start: its next occurrence, moved on to a later one
/// when it has a window that closed with nothing run (see [`Schedule::window_start`]).
/// Computed, not stored, so reading the status writes nothing.
fn scheduled_start(row: &RotationRow, now: i64) -> Option<i64> {
    let at = row.next_rotation_at?;
    let (Some(window), Some(text)) = (row.window_ms, &row.schedule) else {
        return Some(at);
    };
    match Schedule::parse(text) {
        Ok(schedule) => schedule
            .window_start(Timestamp(at), window, Timestamp(now))
            .map(Timestamp::millis),
        // Checked when it was set; a schedule that no longer parses is reported by
        // `info`, and keeps its stored time here.
        Err(_) => Some(at),
    }
}

/// Whether the scheduler should work on this secret now. A rotation in progress always
/// is (a PENDING version left waiting is worse than finishing outside the window); its
/// retries wait for their backoff. A scheduled one waits for its window.
fn is_due(row: &RotationRow, now: i64) -> bool {
    if !row.enabled {
        return false;
    }
    if row.next_retry_at.is_some_and(|at| at > now) {
        return false;
    }
    row.token.is_some() || scheduled_start(row, now).is_some_and(|at| at <= now)
}

fn info(name: &str, row: &RotationRow, now: i64) -> Result<RotationInfo> {
    let rotator: RotatorConfig = serde_json::from_str(&row.rotator)
        .map_err(|e| corrupt(format!("rotation configuration of {name:?}: {e}")))?;
    let state = if !row.enabled {
        RotationState::Disabled
    } else if row.last_error.is_some() {
        RotationState::Failing
    } else if row.token.is_some() {
        RotationState::InProgress
    } else if scheduled_start(row, now).is_some_and(|at| at <= now) {
        RotationState::Overdue
    } else {
        RotationState::Scheduled
    };
    Ok(RotationInfo {
        secret_name: name.to_owned(),
        enabled: row.enabled,
        schedule: row.schedule.clone(),
        window: row.window_ms.map(format_duration),
        rotator,
        state,
        last_rotated: row.last_rotated_at.map(Timestamp),
        next_rotation: scheduled_start(row, now).map(Timestamp),
        token: row.token.clone(),
        step: row.step.as_deref().and_then(Step::parse),
        attempts: row.attempts,
        last_error: row.last_error.clone(),
        last_error_at: row.last_error_at.map(Timestamp),
        next_retry: row.next_retry_at.map(Timestamp),
    })
}

fn live_secret(
    conn: &rusqlite::Connection,
    integrity: &Integrity,
    name: &SecretName,
) -> Result<SecretRow> {
    let row =
        secret_rows::find_by_name(conn, name.as_str())?.ok_or_else(|| Error::SecretNotFound {
            name: name.to_string(),
        })?;
    integrity.check_secret(conn, &row)?;
    if let Some(purge_at) = row.purge_at {
        return Err(Error::SecretDeleted {
            name: row.name,
            purge_at: Timestamp(purge_at),
        });
    }
    Ok(row)
}

/// The rotation row of a secret, or "not configured".
fn configured(conn: &rusqlite::Connection, secret: &SecretRow) -> Result<RotationRow> {
    rows::get(conn, secret.id)?.ok_or_else(|| {
        RotationError::NotConfigured {
            name: secret.name.clone(),
        }
        .into()
    })
}

impl Vault {
    /// Sets (or replaces) a secret's rotation: schedule, window and rotator. Turns
    /// rotation on. A rotation in progress keeps its token and resumes.
    pub fn configure_rotation(
        &mut self,
        name: &str,
        settings: &RotationSettings,
    ) -> Result<RotationInfo> {
        let name = SecretName::parse(name)?;
        settings
            .rotator
            .validate()
            .map_err(|reason| RotationError::InvalidConfig { reason })?;
        let (schedule, window_ms) = checked_timing(
            settings.schedule.as_deref(),
            settings.window.as_deref(),
            Timestamp::now(),
        )?;
        let rotator = serde_json::to_string(&settings.rotator)
            .map_err(|e| Error::invalid("rotator configuration", e.to_string()))?;
        let event = AuditEvent::new("configure_rotation")
            .secret(None, name.as_str())
            .detail(format!(
                "rotator={} schedule={}",
                settings.rotator.kind(),
                schedule
                    .as_ref()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "none".into())
            ));
        let now = Timestamp::now().millis();
        let vault_id = self.vault_id;
        let row = self.write(event, |tx, keyring, event| {
            let secret = live_secret(tx, &keyring.integrity(), &name)?;
            event.secret_id = Some(secret.id);
            let existing = rows::get(tx, secret.id)?;
            let mut row = existing.unwrap_or(RotationRow {
                secret_id: secret.id,
                enabled: true,
                schedule: None,
                window_ms: None,
                rotator: String::new(),
                rotator_mac: Vec::new(),
                configured_at: now,
                last_rotated_at: None,
                next_rotation_at: None,
                token: None,
                step: None,
                started_at: None,
                attempts: 0,
                last_error: None,
                last_error_at: None,
                next_retry_at: None,
            });
            if row.schedule != schedule.as_ref().map(|s| s.to_string()) {
                row.configured_at = now;
            }
            row.enabled = true;
            row.schedule = schedule.as_ref().map(|s| s.to_string());
            row.window_ms = window_ms;
            row.rotator_mac = rotator_mac(keyring.audit_key(), vault_id, secret.id, &rotator);
            row.rotator = rotator;
            row.next_rotation_at = next_rotation(&row)?;
            let seq = record_change(tx, now, "secret", secret.id.as_bytes(), "rotation")?;
            rows::put(tx, &row, seq)?;
            Ok(row)
        })?;
        info(name.as_str(), &row, now)
    }

    /// Turns scheduled rotation off (as `CancelRotateSecret`). A rotation in progress
    /// keeps its state and PENDING version: if `set` already ran, the target uses the
    /// PENDING value, so it is not thrown away; `rotate_secret` resumes it.
    pub fn cancel_rotation(&mut self, name: &str) -> Result<RotationInfo> {
        let name = SecretName::parse(name)?;
        let now = Timestamp::now().millis();
        let event = AuditEvent::new("cancel_rotation").secret(None, name.as_str());
        let row = self.write(event, |tx, keyring, event| {
            let secret = live_secret(tx, &keyring.integrity(), &name)?;
            event.secret_id = Some(secret.id);
            let mut row = configured(tx, &secret)?;
            row.enabled = false;
            let seq = record_change(tx, now, "secret", secret.id.as_bytes(), "rotation")?;
            rows::put(tx, &row, seq)?;
            Ok(row)
        })?;
        info(name.as_str(), &row, now)
    }

    /// Whether `rotator` is exactly the rotator this secret already has, as Coffer saved
    /// it (its MAC checks). Saving the same rotator again runs no new program, so a shell
    /// can skip asking for the PIN; anything else that names an executable needs it.
    pub fn has_rotator(&mut self, name: &str, rotator: &RotatorConfig) -> Result<bool> {
        let name = SecretName::parse(name)?;
        let keyring = self.keyring.as_ref().ok_or(Error::Locked)?;
        let conn = self.store.conn();
        let secret = live_secret(conn, &keyring.integrity(), &name)?;
        let Some(row) = rows::get(conn, secret.id)? else {
            return Ok(false);
        };
        if check_rotator_mac(keyring.audit_key(), self.vault_id, &row, &name).is_err() {
            return Ok(false);
        }
        let stored: RotatorConfig = serde_json::from_str(&row.rotator)
            .map_err(|e| corrupt(format!("rotation configuration: {e}")))?;
        Ok(&stored == rotator)
    }

    /// A secret's rotation configuration and status.
    pub fn rotation_info(&mut self, name: &str) -> Result<RotationInfo> {
        let name = SecretName::parse(name)?;
        let integrity = self.integrity()?;
        let conn = self.store.conn();
        let secret = live_secret(conn, &integrity, &name)?;
        let row = configured(conn, &secret)?;
        info(name.as_str(), &row, Timestamp::now().millis())
    }

    /// The rotation status of a secret, if it has one (for `describe`).
    pub(super) fn rotation_of(
        conn: &rusqlite::Connection,
        secret_id: Uuid,
        name: &str,
    ) -> Result<Option<RotationInfo>> {
        rows::get(conn, secret_id)?
            .map(|row| info(name, &row, Timestamp::now().millis()))
            .transpose()
    }

    /// A secret's rotation attempts, newest first.
    pub fn rotation_history(
        &mut self,
        name: &str,
        limit: u32,
    ) -> Result<Vec<RotationHistoryEntry>> {
        let name = SecretName::parse(name)?;
        let integrity = self.integrity()?;
        let conn = self.store.conn();
        let secret = live_secret(conn, &integrity, &name)?;
        rows::history(conn, secret.id, limit.clamp(1, 100))?
            .into_iter()
            .map(|h| {
                Ok(RotationHistoryEntry {
                    at: Timestamp(h.at),
                    step: Step::parse(&h.step)
                        .ok_or_else(|| corrupt(format!("rotation history step {:?}", h.step)))?,
                    token: h.token,
                    result: h.result,
                    version_id: h.version_id,
                    error: h.error,
                })
            })
            .collect()
    }

    /// Every secret with rotation, failing and overdue ones first, then by next rotation.
    pub fn list_rotations(&mut self) -> Result<Vec<RotationInfo>> {
        self.require_unlocked()?;
        let now = Timestamp::now().millis();
        let mut all = rows::all(self.store.conn())?
            .iter()
            .map(|(name, row)| info(name, row, now))
            .collect::<Result<Vec<_>>>()?;
        all.sort_by(|a, b| {
            (
                a.state,
                a.next_rotation.map(|t| t.0).unwrap_or(i64::MAX),
                &a.secret_name,
            )
                .cmp(&(
                    b.state,
                    b.next_rotation.map(|t| t.0).unwrap_or(i64::MAX),
                    &b.secret_name,
                ))
        });
        Ok(all)
    }

    /// Rotates a secret now: starts a rotation, or resumes the one in progress.
    pub fn rotate_secret(&mut self, name: &str) -> Result<RotationOutcome> {
        self.rotate_secret_until(name, None)
    }

    /// Like [`rotate_secret`](Self::rotate_secret), but stops after `stop_after` as if the
    /// process had died there (for tests and `--stop-after`).
    pub fn rotate_secret_until(
        &mut self,
        name: &str,
        stop_after: Option<Step>,
    ) -> Result<RotationOutcome> {
        self.rotate_at(name, stop_after, Timestamp::now())
    }

    /// Runs a rotation as if the clock said `now` (the scheduler's clock, injectable for
    /// tests): the rotation date and retry times are reckoned from it.
    fn rotate_at(
        &mut self,
        name: &str,
        stop_after: Option<Step>,
        clock: Timestamp,
    ) -> Result<RotationOutcome> {
        drive_rotation(self, name, stop_after, clock)
    }

    /// Records a completed step; `finish` also moves the labels, in the same transaction.
    fn record_rotation_step(
        &mut self,
        name: &SecretName,
        secret_id: Uuid,
        token: &str,
        step: Step,
        version_id: Uuid,
        clock: Timestamp,
    ) -> Result<()> {
        let event = AuditEvent::new(if step == Step::Finish {
            "rotate_secret_finish"
        } else {
            "rotate_secret_step"
        })
        .secret(Some(secret_id), name.as_str())
        .version(version_id)
        .detail(format!("step={step}"));
        self.write(event, |tx, _, _| {
            let now = clock.millis();
            let mut row =
                rows::get(tx, secret_id)?.ok_or_else(|| RotationError::NotConfigured {
                    name: name.to_string(),
                })?;
            if row.token.as_deref() != Some(token) {
                return Err(Error::invalid(
                    "rotation",
                    "another process finished or restarted this rotation meanwhile",
                ));
            }
            let seq = record_change(tx, now, "secret", secret_id.as_bytes(), "rotation")?;
            match step.next() {
                Some(next) => {
                    row.step = Some(next.as_str().to_owned());
                    if step == Step::Create {
                        // The PENDING label may have been removed by hand since.
                        secret_rows::set_label(tx, secret_id, StagingLabel::PENDING, version_id)?;
                    }
                }
                None => {
                    let current =
                        secret_rows::version_by_label(tx, secret_id, StagingLabel::CURRENT)?;
                    if let Some(current) = current.filter(|c| c.id != version_id) {
                        secret_rows::set_label(tx, secret_id, StagingLabel::PREVIOUS, current.id)?;
                    }
                    secret_rows::set_label(tx, secret_id, StagingLabel::CURRENT, version_id)?;
                    secret_rows::remove_label(tx, secret_id, StagingLabel::PENDING)?;
                    let mut secret =
                        secret_rows::find_by_name(tx, name.as_str())?.ok_or_else(|| {
                            Error::SecretNotFound {
                                name: name.to_string(),
                            }
                        })?;
                    secret.changed_at = now;
                    secret_rows::update_secret(tx, &secret, seq)?;
                    row.token = None;
                    row.step = None;
                    row.started_at = None;
                    row.attempts = 0;
                    row.last_error = None;
                    row.last_error_at = None;
                    row.next_retry_at = None;
                    row.last_rotated_at = Some(now);
                    row.next_rotation_at = next_rotation(&row)?;
                    rows::add_history(
                        tx,
                        secret_id,
                        &HistoryRow {
                            at: now,
                            token: token.to_owned(),
                            step: step.as_str().to_owned(),
                            result: "ok".into(),
                            version_id: Some(version_id),
                            error: None,
                        },
                    )?;
                }
            }
            rows::put(tx, &row, seq)?;
            Ok(())
        })
    }

    #[allow(clippy::too_many_arguments)]
    /// Keeps a failure as the secret's rotation status and schedules the retry. Best
    /// effort: the caller reports the original error whatever happens here.
    fn record_rotation_failure(
        &mut self,
        name: &SecretName,
        secret_id: Uuid,
        config: &RotatorConfig,
        token: &str,
        step: Step,
        error: &Error,
        clock: Timestamp,
    ) {
        let mut event = AuditEvent::new("rotate_secret_step")
            .secret(Some(secret_id), name.as_str())
            .detail(format!("step={step} rotator={}", config.kind()));
        event.result = error.code().to_owned();
        // The status already names the secret, the step and that CURRENT is unchanged;
        // keep the rotator's own words.
        let reason = match error {
            Error::Rotation(RotationError::StepFailed { reason, .. }) => reason.clone(),
            other => other.to_string(),
        };
        let _ = self.write(event, |tx, _, _| {
            let now = clock.millis();
            let Some(mut row) = rows::get(tx, secret_id)? else {
                return Ok(());
            };
            if row.token.as_deref() != Some(token) {
                return Ok(());
            }
            row.attempts = row.attempts.saturating_add(1);
            row.last_error = Some(reason.clone());
            row.last_error_at = Some(now);
            row.next_retry_at = Some(now + backoff_ms(row.attempts));
            let seq = record_change(tx, now, "secret", secret_id.as_bytes(), "rotation")?;
            rows::put(tx, &row, seq)?;
            rows::add_history(
                tx,
                secret_id,
                &HistoryRow {
                    at: now,
                    token: token.to_owned(),
                    step: step.as_str().to_owned(),
                    result: error.code().to_owned(),
                    version_id: None,
                    error: Some(reason.clone()),
                },
            )?;
            Ok(())
        });
    }

    /// Turns on automatic rotation of a key every `period_days` (as KMS: 90 to 2560 days;
    /// shorter periods are allowed for testing down to 1 day).
    pub fn enable_key_rotation(&mut self, key: &str, period_days: u32) -> Result<KeyRotationInfo> {
        if !(1..=2560).contains(&period_days) {
            return Err(Error::invalid(
                "rotation period",
                format!("{period_days} days; use 1 to 2560 days (365 is the default)"),
            ));
        }
        let now = Timestamp::now();
        let event =
            AuditEvent::new("enable_key_rotation").detail(format!("period_days={period_days}"));
        let key_id = self.write(event, |tx, keyring, event| {
            let key = super::secrets::resolve_key(tx, &keyring.integrity(), key)?;
            super::secrets::usable(&key)?;
            event.key_id = Some(key.id);
            let seq = record_change(tx, now.millis(), "key", key.id.as_bytes(), "rotation")?;
            rows::put_key_rotation(
                tx,
                &KeyRotationRow {
                    key_id: key.id,
                    period_days,
                    enabled_at: now.millis(),
                    next_rotation_at: now.plus_days(period_days).millis(),
                },
                seq,
            )?;
            Ok(key.id)
        })?;
        self.key_rotation_status(&key_id.to_string())
    }

    pub fn disable_key_rotation(&mut self, key: &str) -> Result<()> {
        let event = AuditEvent::new("disable_key_rotation");
        self.write(event, |tx, keyring, event| {
            let key = super::secrets::resolve_key(tx, &keyring.integrity(), key)?;
            event.key_id = Some(key.id);
            record_change(
                tx,
                Timestamp::now().millis(),
                "key",
                key.id.as_bytes(),
                "rotation",
            )?;
            rows::delete_key_rotation(tx, key.id)?;
            Ok(())
        })
    }

    /// A key's rotation period, versions and how many data keys each still wraps.
    pub fn key_rotation_status(&mut self, key: &str) -> Result<KeyRotationInfo> {
        let integrity = self.integrity()?;
        let conn = self.store.conn();
        let key = super::secrets::resolve_key(conn, &integrity, key)?;
        let schedule = rows::key_rotation(conn, key.id)?;
        let versions = key_rows::key_versions(conn, key.id)?;
        let newest = versions.last().map(|v| v.version).unwrap_or(0);
        let mut by_version = Vec::with_capacity(versions.len());
        for v in &versions {
            by_version.push((
                v.version,
                rows::count_under_key_version(conn, key.id, v.version)?,
            ));
        }
        Ok(KeyRotationInfo {
            key_id: key.id,
            period_days: schedule.as_ref().map(|s| s.period_days),
            next_rotation: schedule.map(|s| Timestamp(s.next_rotation_at)),
            newest_version: newest,
            stale_data_keys: rows::count_stale_under_key(conn, key.id, newest)?,
            data_keys_by_version: by_version,
        })
    }

    /// Runs everything due at `now`: secret rotations (new ones and retries), automatic
    /// key rotations, and re-wrapping of data keys under older key versions. A period
    /// missed while nothing ran is caught up once, not once per missed period: the next
    /// date is computed from the rotation that just happened.
    pub fn run_due(&mut self, now: Timestamp) -> Result<DueReport> {
        self.run_due_with(now, DueWork::All)
    }

    /// [`run_due`](Self::run_due), leaving the long work to the caller if it asks: a
    /// rotator may take up to its step timeout and a re-wrap of many data keys seconds,
    /// and a caller that shares the vault (the app) must not hold it meanwhile.
    pub fn run_due_with(&mut self, now: Timestamp, work: DueWork) -> Result<DueReport> {
        self.require_unlocked()?;
        let mut report = DueReport::default();
        // Keys first, so secrets rotated below get data keys under the newest version.
        for row in rows::all_key_rotations(self.store.conn())? {
            if row.next_rotation_at > now.millis() {
                continue;
            }
            let key = row.key_id.to_string();
            match self.rotate_key(&key) {
                Ok(_) => {
                    report.keys_rotated.push(row.key_id);
                    let event = AuditEvent::new("schedule_key_rotation").key(row.key_id);
                    self.write(event, |tx, _, _| {
                        let seq = record_change(
                            tx,
                            now.millis(),
                            "key",
                            row.key_id.as_bytes(),
                            "rotation",
                        )?;
                        rows::put_key_rotation(
                            tx,
                            &KeyRotationRow {
                                next_rotation_at: now.plus_days(row.period_days).millis(),
                                ..row.clone()
                            },
                            seq,
                        )
                        .map_err(Error::from)
                    })?;
                }
                Err(error) => report.failed.push(DueFailure {
                    name: format!("key {key}"),
                    code: error.code().to_owned(),
                    message: error.to_string(),
                }),
            }
        }
        if work == DueWork::KeysOnly {
            report.next_due = self.next_due(now)?;
            return Ok(report);
        }
        for key_id in self.keys_to_rewrap()? {
            match self.rewrap_key(
                &key_id.to_string(),
                super::rewrap::REWRAP_BATCH,
                &mut |_| {},
            ) {
                Ok(progress) => report.data_keys_rewrapped += progress.done,
                Err(error) => report.failed.push(DueFailure {
                    name: format!("key {key_id}"),
                    code: error.code().to_owned(),
                    message: error.to_string(),
                }),
            }
        }
        for name in self.due_rotations(now)? {
            match self.rotate_at(&name, None, now) {
                Ok(_) => report.rotated.push(name),
                Err(error) => report.failed.push(DueFailure {
                    name,
                    code: error.code().to_owned(),
                    message: error.to_string(),
                }),
            }
        }
        report.next_due = self.next_due(now)?;
        Ok(report)
    }

    /// The secrets whose rotation (or its retry) is due at `now`.
    pub fn due_rotations(&mut self, now: Timestamp) -> Result<Vec<String>> {
        self.require_unlocked()?;
        Ok(rows::all(self.store.conn())?
            .into_iter()
            .filter(|(_, row)| is_due(row, now.millis()))
            .map(|(name, _)| name)
            .collect())
    }

    /// The enabled keys that still have data keys under an older version. Only those
    /// are re-wrapped, so an idle scheduler pass writes nothing.
    pub fn keys_to_rewrap(&mut self) -> Result<Vec<Uuid>> {
        self.require_unlocked()?;
        let conn = self.store.conn();
        let mut keys = Vec::new();
        for key in key_rows::all_keys(conn)? {
            if key.state != "enabled" {
                continue;
            }
            let Some(newest) = key_rows::newest_key_version(conn, key.id)? else {
                continue;
            };
            if rows::count_stale_under_key(conn, key.id, newest.version)? > 0 {
                keys.push(key.id);
            }
        }
        Ok(keys)
    }

    /// When the scheduler next has something to do, if ever.
    pub fn next_due(&mut self, now: Timestamp) -> Result<Option<Timestamp>> {
        let conn = self.store.conn();
        let secrets = rows::all(conn)?
            .into_iter()
            .filter(|(_, r)| r.enabled)
            .filter_map(
                |(_, r)| match (r.token.is_some(), r.next_retry_at, r.next_rotation_at) {
                    (_, Some(retry), _) => Some(retry),
                    (true, None, _) => Some(0),
                    (false, None, _) => scheduled_start(&r, now.millis()),
                },
            );
        let keys = rows::all_key_rotations(conn)?
            .into_iter()
            .map(|r| r.next_rotation_at);
        Ok(secrets.chain(keys).min().map(Timestamp))
    }
}
