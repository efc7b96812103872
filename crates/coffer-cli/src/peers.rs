//! The daemon's listener for paired peers: the vault it holds unlocked decides, at every
//! handshake, which fingerprints may connect.

use std::sync::{Arc, Mutex, MutexGuard};

use coffer_core::region::tls::{server_config, PinnedSet};
use coffer_core::region::{Handler, PeerListener};
use coffer_core::vault::replication::{greet, Contacts, Inbound, Replicator};
use coffer_core::Vault;

use crate::failure::Failure;

/// The vault, even if a thread panicked while holding it (its state is the database's,
/// which a panic cannot leave half-written).
pub fn lock(vault: &Mutex<Vault>) -> MutexGuard<'_, Vault> {
    vault
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Listens for paired peers on `address`. Every replication request from a paired peer
/// is reported in `contacts`, so that the daemon's replication retries that peer at once
/// (it is up) instead of waiting out a backoff of up to a minute.
pub fn listen(
    vault: &Arc<Mutex<Vault>>,
    address: &str,
    contacts: Arc<Contacts>,
) -> Result<PeerListener, Failure> {
    let (region, identity, vault_id) = {
        let mut guard = lock(vault);
        let (region, identity) = guard.identity()?;
        (region, identity, guard.id())
    };
    // What the vault says while unlocked, remembered for when it is held locked.
    let inbound = Arc::new(Mutex::new(Inbound::new()));
    inbound
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remember(&mut lock(vault))?;
    let shared = Arc::clone(vault);
    let remembered = Arc::clone(&inbound);
    // A vault that cannot list its peers (tampered rows) lets nobody in. The two locks
    // are never held together (the handler takes the inbound's, then the vault's).
    let pinned: PinnedSet = Arc::new(move || {
        let live = {
            let mut vault = lock(&shared);
            vault
                .is_unlocked()
                .then(|| vault.pinned_peers().unwrap_or_default())
        };
        live.unwrap_or_else(|| {
            remembered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pinned()
                .to_vec()
        })
    });
    let config = server_config(&identity, pinned).map_err(coffer_core::Error::from)?;
    let hello = identity
        .hello(&region, vault_id)
        .map_err(coffer_core::Error::from)?;
    // Replication requests apply to the vault the daemon holds, one at a time.
    let receiving = Arc::clone(vault);
    let handler: Handler = Arc::new(move |request| {
        let mut inbound = inbound.lock().unwrap_or_else(|p| p.into_inner());
        let caller = request.fingerprint;
        let answer = inbound.handle(&mut lock(&receiving), request);
        // The pins as `handle` just read them: only a paired peer's request wakes
        // replication, whatever its answer was.
        if let Some((region, _)) = inbound.pinned().iter().find(|(_, fp)| *fp == caller) {
            contacts.contacted(region);
        }
        answer
    });
    let listener = PeerListener::start_with(
        address,
        config,
        hello,
        Arc::new(|line| eprintln!("coffer: {line}")),
        Some(handler),
    )
    .map_err(coffer_core::Error::from)?;
    eprintln!(
        "coffer: region {region} listening for peers on {} (fingerprint {})",
        listener.local_addr(),
        identity.fingerprint().map_err(coffer_core::Error::from)?
    );
    Ok(listener)
}

/// Sends every region its replication backlog for the daemon's life (the engine's
/// [`Replicator`], which the app runs too while unlocked).
/// `contacts` is what the listener reports: a paired peer that reached us is retried at
/// once.
pub fn replicate(vault: &Arc<Mutex<Vault>>, contacts: Arc<Contacts>) -> Option<Replicator> {
    let log = Box::new(|line| eprintln!("coffer: {line}"));
    match Replicator::start_with(Arc::clone(vault), log, contacts) {
        Ok(replicator) => Some(replicator),
        Err(error) => {
            eprintln!("coffer: replication is not running: {error}");
            None
        }
    }
}

/// Tells every paired peer, once, that this daemon is listening again: a peer that
/// backed off from us while we were away (up to a minute between tries) sends what we
/// missed at once. Best effort, on a thread of its own: a peer that is down now reaches
/// us when it is back.
pub fn announce(vault: &Arc<Mutex<Vault>>) {
    let vault = Arc::clone(vault);
    let started = std::thread::Builder::new()
        .name("coffer-announce".into())
        .spawn(move || {
            let peers = {
                let mut guard = lock(&vault);
                if !guard.is_unlocked() {
                    return;
                }
                guard.peers().unwrap_or_default()
            };
            for peer in peers {
                if let Err(error) = greet(&*vault, &peer.name) {
                    eprintln!(
                        "coffer: could not tell region {} that this vault is back (it sends what we missed once it reaches us): {error}",
                        peer.name
                    );
                }
            }
        });
    if let Err(error) = started {
        eprintln!("coffer: peers were not told this vault is back: {error}");
    }
}
