//! The daemon's listener for paired peers: the vault it holds unlocked decides, at every
//! handshake, which fingerprints may connect.

use std::sync::{Arc, Mutex, MutexGuard};

use coffer_core::region::tls::{server_config, PinnedSet};
use coffer_core::region::{Handler, PeerListener};
use coffer_core::vault::replication::{Inbound, Replicator};
use coffer_core::Vault;

use crate::failure::Failure;

/// The vault, even if a thread panicked while holding it (its state is the database's,
/// which a panic cannot leave half-written).
pub fn lock(vault: &Mutex<Vault>) -> MutexGuard<'_, Vault> {
    vault
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn listen(vault: &Arc<Mutex<Vault>>, address: &str) -> Result<PeerListener, Failure> {
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
        inbound.handle(&mut lock(&receiving), request)
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
pub fn replicate(vault: &Arc<Mutex<Vault>>) -> Option<Replicator> {
    let log = Box::new(|line| eprintln!("coffer: {line}"));
    match Replicator::start(Arc::clone(vault), log) {
        Ok(replicator) => Some(replicator),
        Err(error) => {
            eprintln!("coffer: replication is not running: {error}");
            None
        }
    }
}
