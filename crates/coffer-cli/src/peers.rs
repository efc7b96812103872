//! The daemon's listener for paired peers: the vault it holds unlocked decides, at every
//! handshake, which fingerprints may connect.

use std::sync::{Arc, Mutex, MutexGuard};

use coffer_core::region::tls::{server_config, PinnedSet};
use coffer_core::region::PeerListener;
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
    let shared = Arc::clone(vault);
    // A vault that cannot list its peers (tampered rows) lets nobody in.
    let pinned: PinnedSet = Arc::new(move || lock(&shared).pinned_peers().unwrap_or_default());
    let config = server_config(&identity, pinned).map_err(coffer_core::Error::from)?;
    let hello = identity
        .hello(&region, vault_id)
        .map_err(coffer_core::Error::from)?;
    let listener = PeerListener::start(
        address,
        config,
        hello,
        Arc::new(|line| eprintln!("coffer: {line}")),
    )
    .map_err(coffer_core::Error::from)?;
    eprintln!(
        "coffer: region {region} listening for peers on {} (fingerprint {})",
        listener.local_addr(),
        identity.fingerprint().map_err(coffer_core::Error::from)?
    );
    Ok(listener)
}
