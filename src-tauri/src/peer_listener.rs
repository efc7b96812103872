//! Receiving from paired peers in the app: while the vault is unlocked and the user has
//! turned it on (Regions → Receive from peers), the app answers what `coffer daemon
//! --listen` answers — a region's replicas, a team owner's state and copies — with the
//! engine's own handler, on the vault the app holds.
//!
//! Why the app and not a daemon beside it: a daemon on the same vault unlocks it a second
//! time with the PIN (a PIN file, or a prompt nobody sees), keeps the keys out after the
//! app locked them (auto-lock, suspend, screen lock), and runs a second replicator over the
//! same outbox. Listening here keeps one holder of the keys: when the app locks, the
//! listener stops, and what peers send meanwhile waits in their outbox until it is next
//! unlocked. Like the AWS-compatible API (`aws_api`), it is started and stopped by
//! [`Session`](crate::session::Session), never with the vault's mutex held: stopping
//! waits for a request in flight, which takes that mutex.

use std::sync::{Arc, Mutex, MutexGuard};

use coffer_core::region::tls::{server_config, PinnedSet};
use coffer_core::region::{Handler, PeerListener};
use coffer_core::vault::replication::{Contacts, Inbound};
use coffer_core::Vault;

use crate::error::{AppError, AppResult};
use crate::settings::PeerListenSettings;

/// The vault as the session shares it (`None` until the file is opened).
pub type SharedVault = Arc<Mutex<Option<Vault>>>;

#[derive(Default)]
pub struct PeerService {
    state: Mutex<Running>,
    /// Peers that made contact, for the app's replicator: a member coming back (or a
    /// team member that just joined) is sent its backlog at once instead of after the
    /// replicator's backoff.
    pub contacts: Arc<Contacts>,
}

#[derive(Default)]
struct Running {
    listener: Option<PeerListener>,
    /// The address it was asked to listen on, to notice a changed setting.
    address: String,
    /// Why it could not start the last time it tried (a taken port).
    problem: Option<String>,
}

fn vault_of(vault: &SharedVault) -> MutexGuard<'_, Option<Vault>> {
    // The vault's state is the database's, which a panic cannot leave half-written.
    vault.lock().unwrap_or_else(|p| p.into_inner())
}

impl PeerService {
    fn state(&self) -> MutexGuard<'_, Running> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts or stops the listener so that it runs exactly while the vault is unlocked
    /// and listening is on.
    pub fn sync(&self, vault: &SharedVault, settings: &PeerListenSettings, unlocked: bool) {
        let want = unlocked && settings.enabled;
        let mut state = self.state();
        if want && state.listener.is_some() && state.address == settings.address {
            return;
        }
        let stopped = state.listener.take();
        if !want {
            state.problem = None;
            drop(state);
            drop(stopped);
            return;
        }
        drop(stopped);
        match start(&settings.address, vault, &self.contacts) {
            Ok(listener) => {
                state.listener = Some(listener);
                state.problem = None;
            }
            Err(error) => state.problem = Some(error.message),
        }
        state.address = settings.address.clone();
    }

    /// Binds `settings` now, before they are saved: a refused address (not an `IP:port`,
    /// taken) is an error at the field and nothing changes. The running listener is kept
    /// when the address is the same.
    pub fn try_apply(
        &self,
        vault: &SharedVault,
        settings: &PeerListenSettings,
        unlocked: bool,
    ) -> AppResult<()> {
        if !settings.enabled || !unlocked {
            return Ok(());
        }
        let mut state = self.state();
        if state.listener.is_some() && state.address == settings.address {
            return Ok(());
        }
        let listener = start(&settings.address, vault, &self.contacts)?;
        let old = state.listener.replace(listener);
        state.address = settings.address.clone();
        state.problem = None;
        drop(state);
        drop(old);
        Ok(())
    }

    /// Where it listens now, as `IP:port`.
    pub fn listening(&self) -> Option<String> {
        let state = self.state();
        state.listener.as_ref().map(|l| l.local_addr().to_string())
    }

    pub fn problem(&self) -> Option<String> {
        self.state().problem.clone()
    }

    pub fn stop(&self) {
        let stopped = self.state().listener.take();
        drop(stopped);
    }
}

fn start(address: &str, vault: &SharedVault, contacts: &Arc<Contacts>) -> AppResult<PeerListener> {
    let address = address.trim();
    let mut inbound = Inbound::new();
    let (region, identity, vault_id) = {
        let mut guard = vault_of(vault);
        let open = guard
            .as_mut()
            .filter(|v| v.is_unlocked())
            .ok_or_else(AppError::locked)?;
        let (region, identity) = open.identity()?;
        inbound.remember(open)?;
        (region, identity, open.id())
    };
    // Who may connect is read from the vault at every handshake (a peer paired or removed
    // meanwhile counts at once); a locked or unreadable vault lets nobody in.
    let shared = Arc::clone(vault);
    let pinned: PinnedSet = Arc::new(move || {
        let mut guard = vault_of(&shared);
        guard
            .as_mut()
            .filter(|v| v.is_unlocked())
            .and_then(|v| v.pinned_peers().ok())
            .unwrap_or_default()
    });
    let config = server_config(&identity, pinned).map_err(coffer_core::Error::from)?;
    let hello = identity
        .hello(&region, vault_id)
        .map_err(coffer_core::Error::from)?;
    // Requests apply to the app's vault one at a time, as in the daemon (the inbound's
    // lock first, then the vault's).
    let inbound = Arc::new(Mutex::new(inbound));
    let receiving = Arc::clone(vault);
    let contacts = Arc::clone(contacts);
    let handler: Handler = Arc::new(move |request| {
        let mut inbound = inbound.lock().unwrap_or_else(|p| p.into_inner());
        let caller = request.fingerprint;
        let answer = match vault_of(&receiving).as_mut() {
            Some(vault) => inbound.handle(vault, request),
            None => (
                503,
                b"this vault is not open in the app; try again later".to_vec(),
            ),
        };
        // Only a paired peer's request wakes replication, as in the daemon.
        if let Some((region, _)) = inbound.pinned().iter().find(|(_, fp)| *fp == caller) {
            contacts.contacted(region);
        }
        answer
    });
    // What a peer got refused (an unpinned fingerprint) goes where the user looks for
    // such lines, as the daemon's do; never a value or a key.
    let log = Arc::new(|line: String| eprintln!("coffer: peers: {line}"));
    let listener = PeerListener::start_with(address, config, hello, log, Some(handler))
        .map_err(|error| AppError::invalid("address", error.to_string()))?;
    eprintln!(
        "coffer: region {region} listening for peers on {}",
        listener.local_addr()
    );
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use coffer_core::tpm::PcrBinding;

    use super::*;

    fn settings(enabled: bool, address: &str) -> PeerListenSettings {
        PeerListenSettings {
            enabled,
            address: address.to_owned(),
        }
    }

    #[test]
    fn it_runs_only_while_unlocked_and_turned_on_and_refuses_a_bad_address() {
        let swtpm = coffer_testkit::Swtpm::start();
        let dir = tempfile::tempdir().unwrap();
        let created = Vault::init(
            &dir.path().join("v/vault.db"),
            &swtpm.tcti(),
            "app-pin-4711",
            PcrBinding::default(),
        )
        .unwrap();
        let vault: SharedVault = Arc::new(Mutex::new(Some(created.vault)));
        let peers = PeerService::default();

        peers.sync(&vault, &settings(true, "127.0.0.1:0"), false);
        assert_eq!(peers.listening(), None);
        peers.sync(&vault, &settings(false, "127.0.0.1:0"), true);
        assert_eq!(peers.listening(), None);
        peers.sync(&vault, &settings(true, "127.0.0.1:0"), true);
        let address = peers.listening().expect("listening while unlocked and on");
        assert!(std::net::TcpStream::connect(&address).is_ok());

        // Not an address: refused at the field; the running listener is kept.
        let error = peers
            .try_apply(&vault, &settings(true, "here please"), true)
            .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("address"));
        assert_eq!(peers.listening().as_deref(), Some(address.as_str()));

        // Locked: it stops.
        vault_of(&vault).as_mut().unwrap().lock().unwrap();
        peers.sync(&vault, &settings(true, "127.0.0.1:0"), false);
        assert_eq!(peers.listening(), None);
        assert_eq!(peers.problem(), None);
        // Asked to start while the vault is in fact locked (a lock it has not been told
        // of yet): it does not, and says why.
        peers.sync(&vault, &settings(true, "127.0.0.1:0"), true);
        assert_eq!(peers.listening(), None);
        let problem = peers.problem().unwrap();
        assert!(problem.contains("locked"), "{problem}");
    }
}
