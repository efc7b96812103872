//! The primary's side: the daemon sends each region its outbox through a `coffer-sync`
//! sender over the pinned HTTP/2 link, and records what the region acknowledged.
//!
//! The vault's lock is held only to read and record, never across the network, so two
//! daemons replicating to each other cannot wait on each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use coffer_sync::{OutboxEntry, SecretKey, Sender, SenderAction, SenderConfig, SenderEvent};
use serde::{Deserialize, Serialize};

use super::payload::{self, LinkEnds};
use super::wire::{Answer, NotApplied, Open, Wire, BATCH_PATH, CONTACT_PATH, OPEN_PATH};
use crate::model::Timestamp;
use crate::region::transport::{self, Caller, Link, Target};
use crate::region::{Fingerprint, Hello, PeerUrl, RegionError};
use crate::store::replication as rows;
use crate::store::{peers as peer_rows, StoreError};
use crate::vault::error::{Error, Result};
use crate::vault::Vault;

/// How often a round resends its window without progress before it gives up (the next
/// round starts from what the region acknowledged).
const MAX_RESENDS: u32 = 3;

/// At most this many entries, and about this many payload bytes, are built for one round,
/// so a large backlog does not sit in memory (or hold the vault's lock) all at once.
const ROUND_ENTRIES: usize = 4096;
const ROUND_BYTES: usize = 32 << 20;

/// What one round with a region did.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    pub region: String,
    /// Entries the region had not acknowledged when the round began.
    pub backlog: usize,
    /// The highest change the region has acknowledged.
    pub acked: u64,
    /// Entries the region received but could not apply (see each secret's status).
    pub not_applied: usize,
}

/// Where a long-running process keeps its vault: the daemon's, open for its whole life,
/// or the app's, which is not open until the first screen needs it. Replication takes it
/// only to read and record, never across the network.
pub trait HeldVault: Send + Sync {
    /// Runs `op` on the vault; `None` when no vault is open.
    fn with_vault<T>(&self, op: impl FnOnce(&mut Vault) -> T) -> Option<T>;
}

/// A panic while the vault was held leaves nothing half-written (its state is the
/// database's), so a poisoned mutex is used as it is.
impl HeldVault for Mutex<Vault> {
    fn with_vault<T>(&self, op: impl FnOnce(&mut Vault) -> T) -> Option<T> {
        let mut guard = self.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(op(&mut guard))
    }
}

impl HeldVault for Mutex<Option<Vault>> {
    fn with_vault<T>(&self, op: impl FnOnce(&mut Vault) -> T) -> Option<T> {
        let mut guard = self.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.as_mut().map(op)
    }
}

/// `op` on the held vault; a vault closed meanwhile counts as locked.
fn on<V: HeldVault + ?Sized, T>(vault: &V, op: impl FnOnce(&mut Vault) -> T) -> Result<T> {
    vault.with_vault(op).ok_or(Error::Locked)
}

/// One round with `region`: connect, send everything it has not acknowledged, record
/// its acknowledgements. Changes committed meanwhile go in the next round.
pub fn push<V: HeldVault + ?Sized>(vault: &V, region: &str) -> Result<PushReport> {
    let parts = on(vault, |v| v.link_parts(region))??;
    let connected = transport::connect(
        Caller {
            config: parts.config,
            verifier: parts.verifier,
            hello: &parts.hello,
            fingerprint: parts.fingerprint,
        },
        Target {
            name: region,
            url: &parts.url,
            pinned: parts.pinned,
        },
    );
    let mut link = match connected {
        Ok(link) => link,
        Err(error) => {
            // A vault closed meanwhile: the connection error is the one to report.
            let _ = on(vault, |v| v.record_peer_contact(region, Err(&error)));
            return Err(error.into());
        }
    };
    let (acked, backlog) = on(vault, |v| {
        v.record_peer_contact(region, Ok(&link.contact.key_exchange));
        v.outgoing(region, &link.contact.hello)
    })??;
    let mut report = PushReport {
        region: region.to_owned(),
        backlog: backlog.len(),
        acked,
        not_applied: 0,
    };
    if backlog.is_empty() {
        return Ok(report);
    }
    let result = stream(vault, region, &mut link, acked, backlog, &mut report);
    if let Err(error) = &result {
        let _ = on(vault, |v| v.record_peer_error(region, &error.to_string()));
    }
    result.map(|()| report)
}

/// Tells paired peer `region` that this vault is up (for example a daemon that has just
/// started again after a week away), so that its replication tries this vault at once
/// instead of waiting out the backoff this vault's absence caused. Like [`push`], it
/// holds the vault only to read, never across the network.
pub fn greet<V: HeldVault + ?Sized>(vault: &V, region: &str) -> Result<()> {
    let parts = on(vault, |v| v.link_parts(region))??;
    let mut link = transport::connect(
        Caller {
            config: parts.config,
            verifier: parts.verifier,
            hello: &parts.hello,
            fingerprint: parts.fingerprint,
        },
        Target {
            name: region,
            url: &parts.url,
            pinned: parts.pinned,
        },
    )?;
    link.post(CONTACT_PATH, b"{}".to_vec())?;
    Ok(())
}

fn stream<V: HeldVault + ?Sized>(
    vault: &V,
    region: &str,
    link: &mut Link,
    acked: u64,
    backlog: Vec<OutboxEntry>,
    report: &mut PushReport,
) -> Result<()> {
    let protocol = |reason: String| {
        Error::from(RegionError::Protocol {
            name: region.to_owned(),
            reason,
        })
    };
    let session = rand::random::<u64>();
    // Each batch is one request and one transaction on the replica: few, large ones.
    let config = SenderConfig {
        window: 2048,
        max_batch_entries: 512,
        max_batch_bytes: coffer_sync::MAX_BATCH_BYTES,
    };
    let mut sender = Sender::new(config, acked, backlog)?;
    let open = serde_json::to_vec(&Open { session }).unwrap_or_default();
    let answer = exchange(link, OPEN_PATH, open, region)?;
    let mut events = vec![
        SenderEvent::Connected { session },
        SenderEvent::Received(answer.message.into_message()),
    ];
    let mut resends = 0;
    // What the region could not apply is recorded with the ack that covers it (an ack
    // alone marks a secret in sync).
    let mut refused: Vec<NotApplied> = Vec::new();
    loop {
        let mut actions = Vec::new();
        for event in events.drain(..) {
            let (next, more) = sender
                .handle(event)
                .map_err(|rejected| protocol(rejected.error.to_string()))?;
            sender = next;
            actions.extend(more);
        }
        let mut progressed = false;
        for action in actions {
            match action {
                SenderAction::PersistAcked(upto) => {
                    on(vault, |v| v.record_acked(region, upto, &refused))??;
                    refused.clear();
                    report.acked = upto;
                    progressed = true;
                }
                SenderAction::Send(message) => {
                    let body = serde_json::to_vec(&Wire::from_message(message))
                        .map_err(|e| protocol(e.to_string()))?;
                    let answer = exchange(link, BATCH_PATH, body, region)?;
                    report.not_applied += answer.not_applied.len();
                    refused.extend(answer.not_applied);
                    events.push(SenderEvent::Received(answer.message.into_message()));
                }
            }
        }
        if sender.pending() == 0 {
            if !refused.is_empty() {
                on(vault, |v| v.record_not_applied(region, &refused))??;
            }
            return Ok(());
        }
        if events.is_empty() {
            if !progressed {
                resends += 1;
                if resends > MAX_RESENDS {
                    return Err(protocol(format!(
                        "{} changes still unacknowledged after {MAX_RESENDS} resends",
                        sender.pending()
                    )));
                }
            }
            events.push(SenderEvent::Timeout);
        }
    }
}

fn exchange(link: &mut Link, path: &str, body: Vec<u8>, region: &str) -> Result<Answer> {
    let bytes = link.post(path, body)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        RegionError::Protocol {
            name: region.to_owned(),
            reason: format!("its answer is not valid: {e}"),
        }
        .into()
    })
}

/// Everything needed to open a link, read under the vault's lock.
pub struct LinkParts {
    config: rustls::ClientConfig,
    verifier: Arc<crate::region::tls::PinnedServer>,
    hello: Hello,
    fingerprint: Fingerprint,
    url: PeerUrl,
    pinned: Fingerprint,
}

impl Vault {
    fn link_parts(&mut self, region: &str) -> Result<LinkParts> {
        let peer = self
            .peers()?
            .into_iter()
            .find(|p| p.name == region)
            .ok_or_else(|| RegionError::UnknownPeer {
                name: region.to_owned(),
            })?;
        let (own_region, identity) = self.identity()?;
        let pinned = Fingerprint::parse(&peer.fingerprint)?;
        let (config, verifier) = crate::region::tls::client_config(&identity, pinned)?;
        Ok(LinkParts {
            config,
            verifier,
            hello: identity.hello(&own_region, self.vault_id)?,
            fingerprint: identity.fingerprint()?,
            url: PeerUrl::parse(&peer.url)?,
            pinned,
        })
    }

    fn record_peer_contact(
        &mut self,
        region: &str,
        outcome: std::result::Result<&str, &RegionError>,
    ) {
        let now = Timestamp::now().millis();
        let recorded = self.store.write().map_err(Error::from).and_then(|tx| {
            match outcome {
                Ok(group) => peer_rows::record_contact(&tx, region, Some(now), Some(group), None)?,
                Err(error) => {
                    peer_rows::record_contact(&tx, region, None, None, Some(&error.to_string()))?
                }
            }
            tx.commit().map_err(StoreError::from)?;
            Ok(())
        });
        // Contact status is informational; failing to record it must not stop a round.
        drop(recorded);
    }

    fn record_peer_error(&mut self, region: &str, error: &str) {
        let recorded = self.store.write().map_err(Error::from).and_then(|tx| {
            peer_rows::record_contact(&tx, region, None, None, Some(error))?;
            tx.commit().map_err(StoreError::from)?;
            Ok(())
        });
        drop(recorded);
    }

    /// The entries `region` has not acknowledged, each signed and with its data key
    /// sealed to the region's key as its hello announced it.
    pub(crate) fn outgoing(
        &mut self,
        region: &str,
        hello: &Hello,
    ) -> Result<(u64, Vec<OutboxEntry>)> {
        let (own_region, identity) = self.identity()?;
        let hpke: [u8; 32] = BASE64
            .decode(&hello.hpke_public)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| RegionError::Protocol {
                name: region.to_owned(),
                reason: "its hello carries no X25519 key".into(),
            })?;
        let vault_id = self.vault_id;
        let Vault { store, keyring, .. } = self;
        let keyring = keyring.as_mut().ok_or(Error::Locked)?;
        let conn = store.conn();
        let acked = rows::acked(conn, region)?;
        let team_revision = crate::vault::team::state::load(conn, &keyring.integrity())?
            .map(|state| state.revision);
        let ends = LinkEnds {
            identity: &identity,
            own_vault: vault_id,
            own_region: own_region.as_str(),
            peer_vault: hello.vault_id,
            peer_region: region,
            peer_hpke: hpke,
            team_revision,
        };
        let mut entries = Vec::new();
        let mut bytes = 0;
        for row in rows::backlog(conn, region, acked)? {
            // A round carries a bounded prefix of the backlog; the next round goes on.
            if entries.len() >= ROUND_ENTRIES || bytes >= ROUND_BYTES {
                break;
            }
            let payload = payload::build(conn, keyring, &ends, &row)?;
            bytes += payload.len();
            entries.push(OutboxEntry {
                seq: row.seq as u64,
                secret: SecretKey(row.secret_id.into_bytes()),
                payload,
            });
        }
        Ok((acked as u64, entries))
    }

    pub(crate) fn record_acked(
        &mut self,
        region: &str,
        upto: u64,
        not_applied: &[NotApplied],
    ) -> Result<()> {
        let tx = self.store.write()?;
        rows::set_acked(&tx, region, upto as i64, Timestamp::now().millis())?;
        for refused in not_applied {
            rows::set_replica_error(&tx, refused.secret_id, region, &refused.reason)?;
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }

    fn record_not_applied(&mut self, region: &str, not_applied: &[NotApplied]) -> Result<()> {
        let tx = self.store.write()?;
        for refused in not_applied {
            rows::set_replica_error(&tx, refused.secret_id, region, &refused.reason)?;
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// Regions with changes they have not acknowledged.
    pub fn replication_backlog(&self) -> Result<Vec<String>> {
        self.require_unlocked()?;
        Ok(rows::regions_with_backlog(self.store.conn())?)
    }
}

/// Peers that made contact with this vault's listener, for the replication thread: a
/// peer that reaches us is up, so the backoff kept from its last failure (which may be a
/// minute, for a member that refused us until it joined) is dropped and it is tried at
/// once.
///
/// The listener only calls [`Contacts::contacted`] for a caller whose pinned TLS identity
/// is a paired peer, so nobody else can make this vault push early.
#[derive(Default)]
pub struct Contacts {
    regions: Mutex<Vec<String>>,
    arrived: Condvar,
}

impl Contacts {
    pub fn new() -> Arc<Contacts> {
        Arc::new(Contacts::default())
    }

    /// Region `region` (a paired peer) has just made an authenticated request.
    pub fn contacted(&self, region: &str) {
        let mut regions = self.regions.lock().unwrap_or_else(|p| p.into_inner());
        if !regions.iter().any(|r| r == region) {
            regions.push(region.to_owned());
        }
        self.arrived.notify_all();
    }

    /// The regions that made contact since the last call, waiting up to `limit` for one.
    fn wait(&self, limit: Duration) -> Vec<String> {
        let regions = self.regions.lock().unwrap_or_else(|p| p.into_inner());
        let (mut regions, _) = self
            .arrived
            .wait_timeout_while(regions, limit, |regions| regions.is_empty())
            .unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *regions)
    }
}

/// The replication loop ([`Replicator`] runs it): each tick sends every region with a
/// backlog what it lacks, backing off (1 s doubling to a minute) from a region that fails
/// until that delay passes or the region contacts us ([`Pusher::contacted`]).
pub struct Pusher {
    retry: HashMap<String, (Instant, u32)>,
    log: Box<dyn Fn(String) + Send>,
}

impl Pusher {
    pub fn new(log: Box<dyn Fn(String) + Send>) -> Self {
        Pusher {
            retry: HashMap::new(),
            log,
        }
    }

    /// `region` reached our listener: it is up, so it is tried on the next tick whatever
    /// its backoff said.
    pub fn contacted(&mut self, region: &str) {
        if let Some((_, attempts)) = self.retry.remove(region) {
            (self.log)(format!(
                "region {region} made contact; retrying it now (after {attempts} failed rounds)"
            ));
        }
    }

    /// How many rounds in a row have failed for `region` (0: it is not backed off from).
    pub fn failed_rounds(&self, region: &str) -> u32 {
        self.retry.get(region).map_or(0, |(_, attempts)| *attempts)
    }

    pub fn tick<V: HeldVault + ?Sized>(&mut self, vault: &V) {
        let regions = vault.with_vault(|v| {
            if v.is_unlocked() {
                v.replication_backlog().unwrap_or_default()
            } else {
                Vec::new()
            }
        });
        let now = Instant::now();
        let regions: Vec<String> = regions
            .unwrap_or_default()
            .into_iter()
            .filter(|region| self.retry.get(region).is_none_or(|(at, _)| *at <= now))
            .collect();
        // Regions are pushed side by side, a few at a time: a team's change goes to every
        // member, and each round mostly waits on its own link. Each round holds the vault
        // only to read and record.
        let mut outcomes = Vec::with_capacity(regions.len());
        for batch in regions.chunks(PARALLEL_ROUNDS) {
            std::thread::scope(|scope| {
                let rounds: Vec<_> = batch
                    .iter()
                    .map(|region| scope.spawn(move || push(vault, region)))
                    .collect();
                for (region, round) in batch.iter().zip(rounds) {
                    let outcome = round.join().unwrap_or_else(|_| {
                        Err(Error::from(RegionError::Protocol {
                            name: region.clone(),
                            reason: "the replication round panicked".into(),
                        }))
                    });
                    outcomes.push((region.clone(), outcome));
                }
            });
        }
        for (region, outcome) in outcomes {
            match outcome {
                Ok(report) => {
                    if self.retry.remove(&region).is_some() || report.backlog > 0 {
                        (self.log)(format!(
                            "replicated {} changes to region {region} (acknowledged up to {})",
                            report.backlog, report.acked
                        ));
                    }
                }
                Err(error) => {
                    let attempts = self.retry.get(&region).map_or(0, |(_, n)| *n) + 1;
                    let delay = Duration::from_secs(1 << (attempts - 1).min(6))
                        .min(Duration::from_secs(60));
                    (self.log)(format!(
                        "replication to region {region} failed (retrying in {} s): {error}",
                        delay.as_secs()
                    ));
                    self.retry
                        .insert(region, (Instant::now() + delay, attempts));
                }
            }
        }
    }
}

/// How often the replication thread looks for a backlog: a change reaches a reachable
/// region within about this long.
const TICK: Duration = Duration::from_millis(50);

/// How many regions one tick pushes to at once.
const PARALLEL_ROUNDS: usize = 8;

/// Replication running on a thread of its own: what `coffer daemon` runs for its life and
/// the app runs while the user has it unlocked. Dropping it stops the thread after the
/// round in flight (a round only moves the outbox forward, so one cut short is resumed by
/// the next, from what the region acknowledged).
pub struct Replicator {
    stop: Arc<AtomicBool>,
}

impl Replicator {
    /// Starts sending every region its backlog from `vault` whenever it is unlocked.
    /// `log` receives one line per round that moved something or failed (never a value).
    pub fn start<V: HeldVault + ?Sized + 'static>(
        vault: Arc<V>,
        log: Box<dyn Fn(String) + Send>,
    ) -> std::io::Result<Replicator> {
        Self::start_with(vault, log, Contacts::new())
    }

    /// As [`Replicator::start`], woken at once (and its backoff for that region dropped)
    /// whenever the listener reports a paired peer's contact in `contacts`.
    pub fn start_with<V: HeldVault + ?Sized + 'static>(
        vault: Arc<V>,
        log: Box<dyn Fn(String) + Send>,
        contacts: Arc<Contacts>,
    ) -> std::io::Result<Replicator> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("coffer-replication".into())
            .spawn(move || {
                let mut pusher = Pusher::new(log);
                while !stopped.load(Ordering::Relaxed) {
                    pusher.tick(&*vault);
                    for region in contacts.wait(TICK) {
                        pusher.contacted(&region);
                    }
                }
            })?;
        Ok(Replicator { stop })
    }
}

impl Drop for Replicator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for LinkParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkParts")
            .field("url", &self.url.to_string())
            .finish()
    }
}

#[cfg(test)]
mod held_tests {
    use super::*;

    /// The app's vault before its first screen opens it: replication waits, and says
    /// nothing (a locked or closed vault is not a failure to log).
    #[test]
    fn a_vault_not_open_yet_is_locked_to_replication() {
        let closed: Mutex<Option<Vault>> = Mutex::new(None);
        assert!(matches!(push(&closed, "us-lab-1"), Err(Error::Locked)));
        let mut pusher = Pusher::new(Box::new(|line| panic!("logged {line}")));
        pusher.tick(&closed);
        assert!(pusher.retry.is_empty());
    }

    /// A region whose rounds failed is backed off from, up to a minute; its contact drops
    /// that at once, and only for that region.
    #[test]
    fn a_peers_contact_clears_its_backoff() {
        let mut pusher = Pusher::new(Box::new(|_| {}));
        let far = Instant::now() + Duration::from_secs(60);
        pusher.retry.insert("bob".into(), (far, 7));
        pusher.retry.insert("carol".into(), (far, 7));
        let contacts = Contacts::new();
        contacts.contacted("bob");
        contacts.contacted("bob");
        let woken = contacts.wait(Duration::from_secs(5));
        assert_eq!(woken, vec!["bob".to_owned()]);
        for region in woken {
            pusher.contacted(&region);
        }
        assert_eq!(pusher.failed_rounds("bob"), 0);
        assert_eq!(pusher.failed_rounds("carol"), 7);
        // Drained: the next wait finds nobody and times out.
        assert!(contacts.wait(Duration::from_millis(1)).is_empty());
        // A contact from a region never backed off from changes nothing.
        pusher.contacted("dave");
        assert_eq!(pusher.failed_rounds("carol"), 7);
    }

    /// A contact wakes a replication thread that is waiting out its tick.
    #[test]
    fn a_contact_wakes_a_waiting_thread() {
        let contacts = Contacts::new();
        let waiting = Arc::clone(&contacts);
        let thread = std::thread::spawn(move || waiting.wait(Duration::from_secs(600)));
        contacts.contacted("bob");
        assert_eq!(thread.join().unwrap(), vec!["bob".to_owned()]);
    }
}
