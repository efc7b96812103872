//! The app's managed state: the vault (locked or not), the TPM, settings, activity clock.
//! Every engine call goes through [`Session::blocking`], which runs it off the async runtime
//! (TPM and SQLite calls block) with the vault mutex held.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use coffer_core::clock::BootInstant;
use coffer_core::vault::replication::Replicator;
use coffer_core::vault::rotation::VaultAccess;
use coffer_core::Vault;

use crate::aws_api::AwsApi;
use crate::clipboard::Clipboard;
use crate::error::{AppError, AppResult};
use crate::locking::LockEpoch;
use crate::peer_listener::PeerService;
use crate::settings::Settings;
use crate::tpm_backend::TpmBackend;

pub struct Session {
    pub vault_path: PathBuf,
    pub settings_path: PathBuf,
    pub tpm: TpmBackend,
    pub clipboard: Clipboard,
    /// Shared with the agent socket, which serves the CLI while the app is unlocked.
    vault: Arc<Mutex<Option<Vault>>>,
    settings: Mutex<Settings>,
    /// On the boot clock, so that time suspended counts as idle time.
    last_activity: Mutex<BootInstant>,
    /// Moves whenever the app itself locks (see `locking`).
    pub lock_epoch: LockEpoch,
    /// The AWS-compatible API, running while unlocked if turned on.
    pub aws_api: AwsApi,
    /// Receiving from paired peers, while unlocked if turned on (see `peer_listener`).
    pub peers: PeerService,
    /// Replication to paired regions (the engine's, as `coffer daemon` runs it), running
    /// while unlocked.
    replicator: Mutex<Option<Replicator>>,
}

pub type SharedSession = Arc<Session>;

/// See [`Session::lock_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockState {
    pub unlocked: bool,
    pub vault_locks: u64,
    pub app_locks: u64,
}

fn poisoned<T>(_: T) -> AppError {
    AppError::internal("the app's state was damaged by an earlier failure; restart Coffer")
}

impl Session {
    pub fn new(vault_path: PathBuf, settings_path: PathBuf, tpm: TpmBackend) -> Session {
        let settings = Settings::load(&settings_path);
        Session {
            vault_path,
            settings_path,
            tpm,
            clipboard: Clipboard::default(),
            vault: Arc::new(Mutex::new(None)),
            settings: Mutex::new(settings),
            last_activity: Mutex::new(BootInstant::now()),
            lock_epoch: LockEpoch::default(),
            aws_api: AwsApi::default(),
            peers: PeerService::default(),
            replicator: Mutex::new(None),
        }
    }

    /// The TCTI to reach the TPM, or why there is none.
    pub fn tcti(&self) -> AppResult<&str> {
        if self.tpm.tcti.is_empty() {
            let message = self
                .tpm
                .problem
                .clone()
                .unwrap_or_else(|| "no TPM is available".to_owned());
            return Err(AppError::new("tpm_unreachable", message));
        }
        Ok(&self.tpm.tcti)
    }

    /// Serves the CLI over the agent socket for as long as the app runs: while the app is
    /// unlocked `coffer` commands use its keys (no PIN); while it is locked they are told so
    /// and unseal the keys themselves. Not started if another agent already serves this vault.
    pub fn serve_cli(&self) {
        let server = match coffer_core::agent::AgentServer::bind(
            &self.vault_path,
            Arc::clone(&self.vault),
        ) {
            Ok(server) => server,
            Err(error) => {
                eprintln!("coffer: not serving the CLI: {error}");
                return;
            }
        };
        std::thread::spawn(move || {
            let options = coffer_core::agent::ServeOptions {
                idle_lock: None,
                exit_when_locked: false,
            };
            if let Err(error) = server.serve(options) {
                eprintln!("coffer: the CLI socket stopped: {error}");
            }
        });
    }

    pub fn vault_guard(&self) -> AppResult<MutexGuard<'_, Option<Vault>>> {
        self.vault.lock().map_err(poisoned)
    }

    /// Runs `op` on the open (possibly locked) vault, opening the file first if needed.
    pub fn with_vault<T>(&self, op: impl FnOnce(&mut Vault) -> AppResult<T>) -> AppResult<T> {
        let mut guard = self.vault_guard()?;
        if guard.is_none() {
            *guard = Some(Vault::open(&self.vault_path)?);
        }
        match guard.as_mut() {
            Some(vault) => op(vault),
            None => Err(AppError::internal("the vault could not be opened")),
        }
    }

    /// Runs `op` on the vault only if it is unlocked, and counts as user activity.
    pub fn with_unlocked<T>(&self, op: impl FnOnce(&mut Vault) -> AppResult<T>) -> AppResult<T> {
        let mut guard = self.vault_guard()?;
        match guard.as_mut() {
            Some(vault) if vault.is_unlocked() => {
                self.touch();
                op(vault)
            }
            _ => Err(AppError::locked()),
        }
    }

    /// Runs `op` on the vault if it is unlocked, without counting as user activity (the
    /// scheduler must not keep an idle vault from locking itself). `None` when locked.
    pub fn in_background<T>(
        &self,
        op: impl FnOnce(&mut Vault) -> AppResult<T>,
    ) -> AppResult<Option<T>> {
        let mut guard = self.vault_guard()?;
        match guard.as_mut() {
            Some(vault) if vault.is_unlocked() => op(vault).map(Some),
            _ => Ok(None),
        }
    }

    /// Replaces the open vault (after init or recovery).
    pub fn install(&self, vault: Vault) -> AppResult<()> {
        *self.vault_guard()? = Some(vault);
        self.touch();
        self.sync_while_unlocked();
        Ok(())
    }

    pub fn is_unlocked(&self) -> bool {
        self.vault
            .lock()
            .map(|guard| guard.as_ref().is_some_and(Vault::is_unlocked))
            .unwrap_or(false)
    }

    /// Wipes the keys. Locking never fails from the user's point of view: even if writing
    /// pending audit entries fails, the keys are gone. The app's lock count moves with
    /// the vault's, under the same mutex (see `locking`).
    pub fn lock(&self) -> AppResult<()> {
        let locked = {
            let mut guard = self.vault_guard()?;
            match guard.as_mut() {
                Some(vault) => {
                    if vault.is_unlocked() {
                        self.lock_epoch.bump();
                    }
                    vault.lock().map_err(AppError::from)
                }
                None => Ok(()),
            }
        };
        // After the vault's mutex is let go: stopping waits for requests in flight.
        self.aws_api.stop();
        self.peers.stop();
        self.sync_replication(false);
        locked
    }

    /// Starts or stops what runs only while the vault is unlocked (the AWS-compatible API,
    /// the peer listener, replication) to match the lock state, which may have changed
    /// elsewhere (`coffer lock`, an unlock by a command).
    pub fn sync_while_unlocked(&self) {
        self.sync_aws_api();
        self.sync_peers();
        self.sync_replication(self.is_unlocked());
    }

    /// Starts or stops the peer listener to match the lock state and the settings.
    pub fn sync_peers(&self) {
        let unlocked = self.is_unlocked();
        self.peers
            .sync(&self.vault, &self.settings().peers, unlocked);
    }

    /// Turns listening for peers on or off, or moves it: the address is bound before the
    /// settings are saved, so a refused one changes nothing.
    pub fn configure_peers(
        &self,
        peers: crate::settings::PeerListenSettings,
    ) -> AppResult<Settings> {
        self.peers
            .try_apply(&self.vault, &peers, self.is_unlocked())?;
        let mut settings = self.settings();
        settings.peers = peers;
        let saved = self.save_settings_as_is(settings)?;
        self.sync_peers();
        Ok(saved)
    }

    /// Replicates while `unlocked`: started at unlock, stopped at lock. The replicator
    /// itself also skips a round while the vault is locked, so a lock it has not seen yet
    /// sends nothing.
    fn sync_replication(&self, unlocked: bool) {
        let mut running = self
            .replicator
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !unlocked {
            *running = None;
            return;
        }
        if running.is_none() {
            let log = Box::new(|line| eprintln!("coffer: {line}"));
            let contacts = Arc::clone(&self.peers.contacts);
            match Replicator::start_with(Arc::clone(&self.vault), log, contacts) {
                Ok(replicator) => *running = Some(replicator),
                Err(error) => eprintln!("coffer: replication is not running: {error}"),
            }
        }
    }

    /// Starts or stops the AWS-compatible API to match the lock state and the settings.
    pub fn sync_aws_api(&self) {
        let unlocked = self.is_unlocked();
        self.aws_api
            .sync(&self.vault, &self.settings().aws_api, unlocked);
    }

    /// Turns the AWS-compatible API on or off, or moves it: the address is bound before
    /// the settings are saved, so a refused one changes nothing.
    pub fn configure_aws_api(
        &self,
        aws_api: crate::settings::AwsApiSettings,
    ) -> AppResult<Settings> {
        self.aws_api
            .try_apply(&self.vault, &aws_api, self.is_unlocked())?;
        let mut settings = self.settings();
        settings.aws_api = aws_api;
        let saved = self.save_settings_as_is(settings)?;
        self.sync_aws_api();
        Ok(saved)
    }

    /// Whether the vault is unlocked, and how often it and the app have locked it, read
    /// together under the vault's mutex.
    pub fn lock_state(&self) -> LockState {
        let guard = self.vault.lock();
        let vault = guard.as_ref().ok().and_then(|guard| guard.as_ref());
        LockState {
            unlocked: vault.is_some_and(Vault::is_unlocked),
            vault_locks: vault.map_or(0, Vault::lock_count),
            app_locks: self.lock_epoch.get(),
        }
    }

    pub fn settings(&self) -> Settings {
        self.settings.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Saves the preferences; the AWS-compatible API's and the peer listener's parts are
    /// kept as they are (they change only through [`Session::configure_aws_api`] and
    /// [`Session::configure_peers`], which check the address first).
    pub fn save_settings(&self, mut new: Settings) -> AppResult<Settings> {
        let current = self.settings();
        new.aws_api = current.aws_api;
        new.peers = current.peers;
        self.save_settings_as_is(new)
    }

    fn save_settings_as_is(&self, new: Settings) -> AppResult<Settings> {
        new.save(&self.settings_path)?;
        *self.settings.lock().map_err(poisoned)? = new.clone();
        Ok(new)
    }

    pub fn touch(&self) {
        if let Ok(mut last) = self.last_activity.lock() {
            *last = BootInstant::now();
        }
    }

    /// When the user last did something in the app.
    pub fn last_activity(&self) -> BootInstant {
        self.last_activity
            .lock()
            .map(|last| *last)
            // Damaged state: count as idle since boot, so auto-lock fires.
            .unwrap_or(BootInstant::BOOT)
    }
}

/// The session's vault for work done in pieces (a rotation): taken for each piece and let
/// go between them, so that a rotator talking to a slow system does not hold up the
/// screens or the CLI. For the user's own request it counts as activity; for the
/// scheduler it does not, so that auto-lock still fires.
pub struct SessionVault<'a> {
    session: &'a Session,
    by_user: bool,
}

impl<'a> SessionVault<'a> {
    pub fn for_user(session: &'a Session) -> Self {
        SessionVault {
            session,
            by_user: true,
        }
    }

    pub fn for_scheduler(session: &'a Session) -> Self {
        SessionVault {
            session,
            by_user: false,
        }
    }
}

impl VaultAccess for SessionVault<'_> {
    type Error = AppError;

    fn with<T>(&mut self, op: impl FnOnce(&mut Vault) -> coffer_core::Result<T>) -> AppResult<T> {
        if self.by_user {
            self.session.with_unlocked(|vault| Ok(op(vault)?))
        } else {
            // Locked meanwhile: the pass ends here; a rotation resumes where it stopped.
            self.session
                .in_background(|vault| Ok(op(vault)?))?
                .ok_or_else(AppError::locked)
        }
    }
}

/// Runs `op` on a blocking thread with the session, and flattens join errors.
pub async fn blocking<T, F>(session: &SharedSession, op: F) -> AppResult<T>
where
    T: Send + 'static,
    F: FnOnce(&Session) -> AppResult<T> + Send + 'static,
{
    let session = Arc::clone(session);
    tauri::async_runtime::spawn_blocking(move || op(&session))
        .await
        .map_err(|e| AppError::internal(format!("a background task failed: {e}")))?
}
