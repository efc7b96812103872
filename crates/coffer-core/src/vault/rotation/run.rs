//! Running a rotation without holding the vault while the rotator works.
//!
//! A rotator talks to another system and may take up to its step timeout. A caller that
//! shares its vault (the app: screens, the CLI socket and the scheduler) must not hold it
//! meanwhile, so each step is three pieces: read what the step needs from the vault
//! ([`Vault::prepare_rotation_step`]), run the rotator on its own ([`StepJob::run`]), and
//! record the outcome ([`Vault::finish_rotation_step`]). [`drive_rotation`] strings them
//! together through a [`VaultAccess`], which takes the vault for each piece. Between two
//! pieces another actor may finish or restart the same rotation; recording checks the
//! token, as it always has for two processes, and says so.

use uuid::Uuid;

use super::{check_rotator_mac, configured, corrupt, live_secret};
use crate::model::{SecretValue, Timestamp, VersionSelector};
use crate::names::{SecretName, StagingLabel};
use crate::rotation::{
    run_step, RotationError, RotationOutcome, RotatorConfig, RotatorFailure, Step, StepInput,
};
use crate::store::record_change;
use crate::store::rotation as rows;
use crate::store::secrets as secret_rows;
use crate::vault::audit::AuditEvent;
use crate::vault::error::{Error, Result};
use crate::vault::{PutValue, Vault};

/// Where a rotation's vault work runs. A caller that owns its vault passes the vault; one
/// that shares it takes it for each piece of work, and its own error type says why it
/// could not (the app's vault was locked meanwhile, say).
pub trait VaultAccess {
    type Error: From<Error>;

    fn with<T>(
        &mut self,
        op: impl FnOnce(&mut Vault) -> Result<T>,
    ) -> std::result::Result<T, Self::Error>;
}

impl VaultAccess for Vault {
    type Error = Error;

    fn with<T>(&mut self, op: impl FnOnce(&mut Vault) -> Result<T>) -> Result<T> {
        op(self)
    }
}

/// Rotates `name` now, or resumes its rotation in progress, as if the clock said `clock`,
/// stopping after `stop_after` as if the process had died there. The vault is taken
/// through `access` for each read and each record, never while a rotator runs.
pub fn drive_rotation<A: VaultAccess>(
    access: &mut A,
    name: &str,
    stop_after: Option<Step>,
    clock: Timestamp,
) -> std::result::Result<RotationOutcome, A::Error> {
    let mut run = access.with(|vault| vault.begin_rotation(name, clock))?;
    loop {
        let job = access.with(|vault| vault.prepare_rotation_step(&run))?;
        let result = job.run(&run);
        let step = run.step;
        let more = access.with(|vault| vault.finish_rotation_step(&mut run, job, result))?;
        if !more || stop_after == Some(step) {
            return Ok(run.outcome);
        }
    }
}

/// A rotation under way: what every step needs, fixed when it starts or resumes.
pub struct RotationRun {
    name: SecretName,
    secret_id: Uuid,
    config: RotatorConfig,
    token: String,
    /// The next step to run.
    step: Step,
    clock: Timestamp,
    outcome: RotationOutcome,
}

/// What one step needs from the vault, read before the rotator runs. Values are wiped
/// when it is dropped.
pub struct StepJob {
    current: Option<SecretValue>,
    /// The PENDING version (from `set` on).
    pending: Option<(Uuid, SecretValue)>,
    admin: Option<SecretValue>,
    /// A `create` an earlier attempt did but did not record: nothing to run again.
    created: Option<Uuid>,
}

impl StepJob {
    /// Runs the rotator for this step; needs no vault. `create` returns the new value
    /// (its absence is a failure that [`Vault::finish_rotation_step`] records).
    pub fn run(&self, run: &RotationRun) -> Result<Option<SecretValue>> {
        if self.created.is_some() {
            return Ok(None);
        }
        let input = StepInput {
            step: run.step,
            secret_name: run.name.as_str(),
            token: &run.token,
            current: self.current.as_ref(),
            pending: self.pending.as_ref().map(|(_, value)| value),
            admin: self.admin.as_ref(),
        };
        run_step(&run.config, &input).map_err(|f| failed(run, f))
    }
}

/// A rotator's failure as the rotation error it is.
fn failed(run: &RotationRun, failure: RotatorFailure) -> Error {
    if failure.timed_out {
        let secs = match &run.config {
            RotatorConfig::Command { timeout_secs, .. }
            | RotatorConfig::Postgres { timeout_secs, .. } => *timeout_secs,
            RotatorConfig::Generate { .. } => 0,
        };
        RotationError::Timeout {
            name: run.name.to_string(),
            rotator: run.config.kind(),
            step: run.step,
            secs,
        }
        .into()
    } else {
        RotationError::StepFailed {
            name: run.name.to_string(),
            step: run.step,
            reason: failure.reason,
        }
        .into()
    }
}

impl Vault {
    /// Starts a rotation (new token, step `create`) or picks up the one in progress.
    pub fn begin_rotation(&mut self, name: &str, clock: Timestamp) -> Result<RotationRun> {
        let name = SecretName::parse(name)?;
        let now = clock.millis();
        let event = AuditEvent::new("rotate_secret").secret(None, name.as_str());
        let vault_id = self.vault_id;
        let (secret_id, config, token, step) = self.write(event, |tx, keyring, event| {
            let secret = live_secret(tx, &keyring.integrity(), &name)?;
            event.secret_id = Some(secret.id);
            let mut row = configured(tx, &secret)?;
            check_rotator_mac(keyring.audit_key(), vault_id, &row, &name)?;
            let config: RotatorConfig = serde_json::from_str(&row.rotator)
                .map_err(|e| corrupt(format!("rotation configuration: {e}")))?;
            let step = match (&row.token, row.step.as_deref().and_then(Step::parse)) {
                (Some(token), Some(step)) => {
                    event.detail = format!("resume at {step}, token {token}");
                    step
                }
                _ => {
                    row.token = Some(Uuid::new_v4().to_string());
                    row.step = Some(Step::Create.as_str().to_owned());
                    row.started_at = Some(now);
                    row.attempts = 0;
                    row.last_error = None;
                    row.last_error_at = None;
                    row.next_retry_at = None;
                    event.detail = format!("start, token {}", row.token.as_deref().unwrap_or(""));
                    Step::Create
                }
            };
            let seq = record_change(tx, now, "secret", secret.id.as_bytes(), "rotation")?;
            rows::put(tx, &row, seq)?;
            Ok((secret.id, config, row.token.unwrap_or_default(), step))
        })?;
        Ok(RotationRun {
            outcome: RotationOutcome {
                secret_name: name.to_string(),
                token: token.clone(),
                version_id: None,
                completed: None,
                finished: false,
            },
            name,
            secret_id,
            config,
            token,
            step,
            clock,
        })
    }

    /// Reads what the next step of `run` needs. A failure is kept as the rotation's
    /// status, as a rotator's is.
    pub fn prepare_rotation_step(&mut self, run: &RotationRun) -> Result<StepJob> {
        let job = self.read_step_inputs(run);
        if let Err(error) = &job {
            self.record_failure_of(run, error);
        }
        job
    }

    fn read_step_inputs(&mut self, run: &RotationRun) -> Result<StepJob> {
        let name = run.name.as_str();
        let pending_row =
            secret_rows::version_by_token(self.store.conn(), run.secret_id, &run.token)?;
        let current = match self.get_secret_value(name, &VersionSelector::default()) {
            Ok(read) => Some(read.value),
            Err(Error::LabelNotFound { .. }) => None,
            Err(error) => return Err(error),
        };
        let mut job = StepJob {
            current,
            pending: None,
            admin: None,
            created: None,
        };
        if run.step == Step::Create {
            // Created by an attempt that stopped before recording it.
            job.created = pending_row.map(|row| row.id);
            return Ok(job);
        }
        let pending_row = pending_row.ok_or_else(|| RotationError::StepFailed {
            name: name.to_owned(),
            step: run.step,
            reason: "the PENDING version of this rotation is gone (was it deleted?); cancel the rotation and start again".into(),
        })?;
        let pending = self
            .get_secret_value(name, &VersionSelector::Id(pending_row.id))?
            .value;
        job.pending = Some((pending_row.id, pending));
        if let RotatorConfig::Postgres {
            admin_secret: Some(admin),
            ..
        } = &run.config
        {
            if run.step == Step::Set {
                let read = self
                    .get_secret_value(admin, &VersionSelector::default())
                    .map_err(|e| RotationError::StepFailed {
                        name: name.to_owned(),
                        step: run.step,
                        reason: format!("cannot read the admin secret {admin:?}: {e}"),
                    })?;
                job.admin = Some(read.value);
            }
        }
        Ok(job)
    }

    /// Records what the rotator did at `run`'s step: `create` stores the new value as the
    /// PENDING version, `finish` moves the labels. Returns whether steps remain; a failure
    /// is kept as the rotation's status and returned.
    pub fn finish_rotation_step(
        &mut self,
        run: &mut RotationRun,
        job: StepJob,
        result: Result<Option<SecretValue>>,
    ) -> Result<bool> {
        let version_id = match self.pending_version_of(run, &job, result) {
            Ok(id) => id,
            Err(error) => {
                self.record_failure_of(run, &error);
                return Err(error);
            }
        };
        self.record_rotation_step(
            &run.name,
            run.secret_id,
            &run.token,
            run.step,
            version_id,
            run.clock,
        )?;
        run.outcome.version_id = Some(version_id);
        run.outcome.completed = Some(run.step);
        match run.step.next() {
            Some(next) => {
                run.step = next;
                Ok(true)
            }
            None => {
                run.outcome.finished = true;
                Ok(false)
            }
        }
    }

    /// The PENDING version the step worked on; `create` writes it first.
    fn pending_version_of(
        &mut self,
        run: &RotationRun,
        job: &StepJob,
        result: Result<Option<SecretValue>>,
    ) -> Result<Uuid> {
        let value = result?;
        if let Some(created) = job.created {
            return Ok(created);
        }
        if let Some((id, _)) = &job.pending {
            return Ok(*id);
        }
        let value =
            value.ok_or_else(|| failed(run, RotatorFailure::new("create returned no value")))?;
        let written = self.put_secret_value(
            run.name.as_str(),
            PutValue {
                value,
                labels: vec![StagingLabel::pending()],
                client_token: Some(run.token.clone()),
            },
        )?;
        Ok(written.version_id)
    }

    fn record_failure_of(&mut self, run: &RotationRun, error: &Error) {
        self.record_rotation_failure(
            &run.name,
            run.secret_id,
            &run.config,
            &run.token,
            run.step,
            error,
            run.clock,
        );
    }
}
