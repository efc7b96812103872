//! The audit log: who did what to which secret, when, and whether it worked; never a value.
//!
//! Entries form a chain: each MAC covers the entry and the previous MAC, keyed by the
//! vault's audit key, and the chain's head is MACed into the vault metadata. Editing,
//! reordering or deleting entries (including the newest ones) breaks the chain, and
//! forging a replacement needs the audit key, which only an unlocked vault has.
//! Rolling the whole file back to an older copy is not detectable from the file alone.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use super::error::{Error, Result};
use super::keyring::AuditKey;
use crate::crypto::Aad;
use crate::model::Timestamp;
use crate::store::audit::{self as rows, AuditRow};
use crate::store::{meta, StoreError};

type HmacSha256 = Hmac<Sha256>;

/// Who is acting: recorded with every entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub uid: u32,
    pub pid: u32,
    pub process: String,
}

impl Actor {
    /// The current process.
    pub fn current() -> Self {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let process = std::fs::read_to_string("/proc/self/comm")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        Actor {
            uid,
            pid: std::process::id(),
            process,
        }
    }
}

/// One thing that happened, before it is chained.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub at: Timestamp,
    pub operation: &'static str,
    pub secret_id: Option<Uuid>,
    pub secret_name: Option<String>,
    pub version_id: Option<Uuid>,
    pub key_id: Option<Uuid>,
    /// "ok", or the error's code.
    pub result: String,
    pub detail: String,
    /// Who the event is for, when that is fixed before it is written: a read queued for
    /// a batch is recorded under the client that made it, not whoever's request happens
    /// to flush the batch (the agent serves many clients). `None`: the writer's actor.
    pub actor: Option<Actor>,
}

impl AuditEvent {
    pub fn new(operation: &'static str) -> Self {
        AuditEvent {
            at: Timestamp::now(),
            operation,
            secret_id: None,
            secret_name: None,
            version_id: None,
            key_id: None,
            result: "ok".to_owned(),
            detail: String::new(),
            actor: None,
        }
    }

    pub fn secret(mut self, id: Option<Uuid>, name: &str) -> Self {
        self.secret_id = id;
        self.secret_name = Some(name.to_owned());
        self
    }

    pub fn version(mut self, id: Uuid) -> Self {
        self.version_id = Some(id);
        self
    }

    pub fn key(mut self, id: Uuid) -> Self {
        self.key_id = Some(id);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    pub fn failed(mut self, code: &str) -> Self {
        self.result = code.to_owned();
        self
    }

    pub fn outcome<T>(mut self, result: &Result<T>) -> Self {
        if let Err(error) = result {
            self.result = error.code().to_owned();
        }
        self
    }
}

/// An entry as `coffer audit list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: Timestamp,
    pub uid: u32,
    pub pid: u32,
    pub process: String,
    pub operation: String,
    pub secret_id: Option<Uuid>,
    pub secret_name: Option<String>,
    pub version_id: Option<Uuid>,
    pub key_id: Option<Uuid>,
    pub result: String,
    pub detail: String,
    /// False for entries recorded while the vault was locked and not yet chained.
    pub chained: bool,
}

impl From<AuditRow> for AuditEntry {
    fn from(row: AuditRow) -> Self {
        AuditEntry {
            seq: row.seq,
            at: Timestamp(row.at),
            uid: row.uid,
            pid: row.pid,
            process: row.process,
            operation: row.operation,
            secret_id: row.secret_id,
            secret_name: row.secret_name,
            version_id: row.version_id,
            key_id: row.key_id,
            result: row.result,
            detail: row.detail,
            chained: row.mac.is_some(),
        }
    }
}

/// The outcome of `audit verify`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditVerification {
    pub entries: u64,
    pub chained: u64,
    /// Entries written while locked (failed unlocks) that the next unlock will chain.
    pub pending: u64,
    /// Chained entries in which an unlock recorded that failed-unlock entries had been
    /// deleted or forged while the vault was locked (see `failed_unlocks`). The chain is
    /// intact; these say what happened to it before it was chained.
    #[serde(default)]
    pub findings: Vec<AuditFinding>,
}

/// Tampering an unlock found and recorded in the chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditFinding {
    pub seq: i64,
    pub at: Timestamp,
    pub detail: String,
}

fn row_for(event: &AuditEvent, writer: &Actor, seq: i64) -> AuditRow {
    let actor = event.actor.as_ref().unwrap_or(writer);
    AuditRow {
        seq,
        at: event.at.millis(),
        uid: actor.uid,
        pid: actor.pid,
        process: actor.process.clone(),
        operation: event.operation.to_owned(),
        secret_id: event.secret_id,
        secret_name: event.secret_name.clone(),
        version_id: event.version_id,
        key_id: event.key_id,
        result: event.result.clone(),
        detail: event.detail.clone(),
        mac: None,
    }
}

fn entry_mac(key: &AuditKey, previous: Option<&[u8]>, row: &AuditRow) -> Vec<u8> {
    let uuid = |id: Option<Uuid>| id.map(|u| u.as_bytes().to_vec()).unwrap_or_default();
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    let aad = Aad::new("coffer.audit-entry.v1")
        .with(previous.unwrap_or(&[]))
        .with(&row.seq.to_be_bytes())
        .with(&row.at.to_be_bytes())
        .with(&row.uid.to_be_bytes())
        .with(&row.pid.to_be_bytes())
        .with(row.process.as_bytes())
        .with(row.operation.as_bytes())
        .with(&uuid(row.secret_id))
        .with(text(&row.secret_name).as_bytes())
        .with(&uuid(row.version_id))
        .with(&uuid(row.key_id))
        .with(row.result.as_bytes())
        .with(row.detail.as_bytes());
    mac(key, aad.as_bytes())
}

/// The audit chain's head, as stored in the vault metadata.
///
/// Version 2 also records the newest change number (so the log cannot be rolled back
/// on its own while the data stays: their ends must meet) and whether row MACs are in
/// force (so deleting row MACs cannot pass the vault off as one from before them). A
/// version 1 head (72 bytes) is what vaults written before both carry; the first unlock
/// after the upgrade computes the row MACs and writes a version 2 head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    pub seq: i64,
    pub entry_mac: Vec<u8>,
    /// None in a version 1 head.
    pub change_seq: Option<i64>,
    pub row_macs: bool,
    tag: Vec<u8>,
}

const HEAD_V1_LEN: usize = 8 + 32 + 32;
const HEAD_V2_LEN: usize = 1 + 8 + 32 + 8 + 1 + 32;
const HEAD_V2: u8 = 2;
const FLAG_ROW_MACS: u8 = 1;

impl Head {
    fn new(key: &AuditKey, seq: i64, entry_mac: &[u8], change_seq: i64) -> Head {
        let mut head = Head {
            seq,
            entry_mac: entry_mac.to_vec(),
            change_seq: Some(change_seq),
            row_macs: true,
            tag: Vec::new(),
        };
        head.tag = head.expected_tag(key);
        head
    }

    fn expected_tag(&self, key: &AuditKey) -> Vec<u8> {
        match self.change_seq {
            None => mac(
                key,
                Aad::new("coffer.audit-head.v1")
                    .with(&self.seq.to_be_bytes())
                    .with(&self.entry_mac)
                    .as_bytes(),
            ),
            Some(change_seq) => mac(
                key,
                Aad::new("coffer.audit-head.v2")
                    .with(&self.seq.to_be_bytes())
                    .with(&self.entry_mac)
                    .with(&change_seq.to_be_bytes())
                    .with(&[self.flags()])
                    .as_bytes(),
            ),
        }
    }

    fn flags(&self) -> u8 {
        if self.row_macs {
            FLAG_ROW_MACS
        } else {
            0
        }
    }

    fn is_authentic(&self, key: &AuditKey) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            self.expected_tag(key).as_slice(),
            self.tag.as_slice(),
        ))
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD_V2_LEN);
        out.push(HEAD_V2);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.entry_mac);
        out.extend_from_slice(&self.change_seq.unwrap_or(0).to_be_bytes());
        out.push(self.flags());
        out.extend_from_slice(&self.tag);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Head> {
        let be = |b: &[u8]| -> Option<i64> { Some(i64::from_be_bytes(b.try_into().ok()?)) };
        match bytes.len() {
            HEAD_V1_LEN => Some(Head {
                seq: be(&bytes[..8])?,
                entry_mac: bytes[8..40].to_vec(),
                change_seq: None,
                row_macs: false,
                tag: bytes[40..].to_vec(),
            }),
            HEAD_V2_LEN if bytes[0] == HEAD_V2 => Some(Head {
                seq: be(&bytes[1..9])?,
                entry_mac: bytes[9..41].to_vec(),
                change_seq: Some(be(&bytes[41..49])?),
                row_macs: bytes[49] & FLAG_ROW_MACS != 0,
                tag: bytes[50..].to_vec(),
            }),
            _ => None,
        }
    }
}

/// The stored head, or None for a vault without one. A head that is not in either
/// format is reported as tampering.
pub(super) fn read_head(conn: &rusqlite::Connection) -> Result<Option<Head>> {
    match meta::get(conn, meta::AUDIT_HEAD)? {
        None => Ok(None),
        Some(bytes) => Head::decode(&bytes).map(Some).ok_or(Error::AuditTampered {
            seq: 0,
            reason: "the chain's head record is malformed".to_owned(),
        }),
    }
}

/// Whether the vault still needs its row MACs computed: true only for a vault whose
/// authentic head predates them. A missing or forged head is tampering, not an upgrade.
pub(super) fn needs_row_macs(conn: &rusqlite::Connection, key: &AuditKey) -> Result<bool> {
    let Some(head) = read_head(conn)? else {
        return Err(Error::AuditTampered {
            seq: 0,
            reason: "the chain's head record is missing; every vault writes one when it is created"
                .to_owned(),
        });
    };
    if !head.is_authentic(key) {
        return Err(Error::AuditTampered {
            seq: head.seq,
            reason: "the chain's head record was altered".to_owned(),
        });
    }
    Ok(!head.row_macs)
}

/// A version 1 head for the current end of the chain, as Coffer wrote before row MACs:
/// lets tests build a vault file as an older release left it.
#[cfg(test)]
pub(super) fn legacy_head_for_tests(conn: &rusqlite::Connection, key: &AuditKey) -> Vec<u8> {
    let head = read_head(conn).unwrap().unwrap();
    let mut legacy = Head {
        change_seq: None,
        row_macs: false,
        ..head
    };
    legacy.tag = legacy.expected_tag(key);
    let mut out = legacy.seq.to_be_bytes().to_vec();
    out.extend_from_slice(&legacy.entry_mac);
    out.extend_from_slice(&legacy.tag);
    out
}

fn mac(key: &AuditKey, data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
    let Ok(mut hmac) = <HmacSha256 as Mac>::new_from_slice(key.0.as_ref()) else {
        std::process::abort()
    };
    hmac.update(data);
    hmac.finalize().into_bytes().to_vec()
}

fn write_head(
    tx: &rusqlite::Transaction<'_>,
    key: &AuditKey,
    seq: i64,
    entry: &[u8],
) -> Result<()> {
    let change_seq = crate::store::last_change_seq(tx)?;
    let head = Head::new(key, seq, entry, change_seq);
    meta::set(tx, meta::AUDIT_HEAD, &head.encode())?;
    Ok(())
}

/// Appends chained entries inside the caller's write transaction, first chaining any
/// entries that were recorded while the vault was locked.
pub fn append(
    tx: &rusqlite::Transaction<'_>,
    key: &AuditKey,
    actor: &Actor,
    events: &[AuditEvent],
) -> Result<()> {
    let rows::ChainTail {
        last_chained: mut last,
        mut next_seq,
    } = rows::tail(tx)?;
    let after = last.as_ref().map(|(seq, _)| *seq).unwrap_or(0);
    for row in rows::unchained_after(tx, after)? {
        // Only what a locked vault can write is chained: a failed unlock. Anything else
        // without a MAC was put there by someone editing the file; it stays unchained,
        // and `verify` reports it as tampering instead of it being laundered here.
        if !is_locked_vault_entry(&row) {
            break;
        }
        let mac = entry_mac(key, last.as_ref().map(|(_, m)| m.as_slice()), &row);
        rows::set_mac(tx, row.seq, &mac)?;
        last = Some((row.seq, mac));
    }
    for event in events {
        let mut row = row_for(event, actor, next_seq);
        let mac = entry_mac(key, last.as_ref().map(|(_, m)| m.as_slice()), &row);
        row.mac = Some(mac.clone());
        rows::insert(tx, &row)?;
        last = Some((row.seq, mac));
        next_seq += 1;
    }
    if let Some((seq, mac)) = &last {
        write_head(tx, key, *seq, mac)?;
    }
    Ok(())
}

/// The only kind of entry written without a MAC: a failed unlock, which names nothing
/// but the value it brought the failed-unlock counter to.
fn is_locked_vault_entry(row: &AuditRow) -> bool {
    row.operation == "unlock"
        && row.result != "ok"
        && row.secret_id.is_none()
        && row.secret_name.is_none()
        && row.version_id.is_none()
        && row.key_id.is_none()
        && super::failed_unlocks::is_attempt_detail(&row.detail)
}

/// Whether entries are waiting to be chained.
pub fn has_unchained(conn: &rusqlite::Connection) -> Result<bool> {
    let tail = rows::tail(conn)?;
    let after = tail.last_chained.map(|(seq, _)| seq).unwrap_or(0);
    Ok(tail.next_seq > after + 1)
}

/// Records an event while the vault is locked (a failed unlock). It carries no MAC
/// until the next successful unlock chains it.
pub fn append_unchained(
    tx: &rusqlite::Transaction<'_>,
    actor: &Actor,
    event: &AuditEvent,
) -> Result<()> {
    let next_seq = rows::tail(tx)?.next_seq;
    rows::insert(tx, &row_for(event, actor, next_seq))?;
    Ok(())
}

/// Walks the whole chain and checks every MAC and the head.
pub fn verify(conn: &rusqlite::Connection, key: &AuditKey) -> Result<AuditVerification> {
    let mut previous: Option<Vec<u8>> = None;
    let mut last_seq = 0i64;
    let mut report = AuditVerification {
        entries: 0,
        chained: 0,
        pending: 0,
        findings: Vec::new(),
    };
    let mut failure: Option<Error> = None;
    rows::for_each(conn, |row| {
        if failure.is_some() {
            return Ok(());
        }
        report.entries += 1;
        if row.seq != last_seq + 1 {
            failure = Some(Error::AuditTampered {
                seq: last_seq + 1,
                reason: format!("entries {} to {} are missing", last_seq + 1, row.seq - 1),
            });
            return Ok(());
        }
        last_seq = row.seq;
        match &row.mac {
            Some(stored) => {
                if report.pending > 0 {
                    failure = Some(Error::AuditTampered {
                        seq: row.seq,
                        reason: "a chained entry follows unchained ones".to_owned(),
                    });
                    return Ok(());
                }
                let expected = entry_mac(key, previous.as_deref(), &row);
                if !bool::from(subtle::ConstantTimeEq::ct_eq(
                    expected.as_slice(),
                    stored.as_slice(),
                )) {
                    failure = Some(Error::AuditTampered {
                        seq: row.seq,
                        reason: "its contents or its place in the chain do not match its MAC"
                            .to_owned(),
                    });
                    return Ok(());
                }
                report.chained += 1;
                previous = Some(expected);
                if super::failed_unlocks::is_tampered_check(&row) {
                    report.findings.push(AuditFinding {
                        seq: row.seq,
                        at: Timestamp(row.at),
                        detail: row.detail.clone(),
                    });
                }
            }
            None => {
                if !is_locked_vault_entry(&row) {
                    failure = Some(Error::AuditTampered {
                        seq: row.seq,
                        reason: "an entry without a MAC is not a failed unlock, the only kind a locked vault writes".to_owned(),
                    });
                    return Ok(());
                }
                report.pending += 1
            }
        }
        Ok::<(), StoreError>(())
    })?;
    if let Some(error) = failure {
        return Err(error);
    }
    let head = read_head(conn)?;
    let Some(last_mac) = previous else {
        // Every vault's log starts with its `init` entry, so an empty chain means
        // entries were deleted, whether or not the head went with them.
        return Err(Error::AuditTampered {
            seq: 1,
            reason: if head.is_some() {
                "the chain's head names entries that are not in the log: entries were deleted"
                    .to_owned()
            } else {
                "the log is empty, but every vault records its creation: entries and the head were deleted".to_owned()
            },
        });
    };
    let Some(head) = head else {
        return Err(Error::AuditTampered {
            seq: last_seq,
            reason: "the chain's head record is missing".to_owned(),
        });
    };
    if !head.is_authentic(key) {
        return Err(Error::AuditTampered {
            seq: head.seq,
            reason: "the chain's head record was altered".to_owned(),
        });
    }
    let chained_last = report.chained as i64;
    if head.seq != chained_last || head.entry_mac != last_mac {
        return Err(Error::AuditTampered {
            seq: head.seq,
            reason: format!("the log ends at entry {chained_last} but entry {} was the last one written: entries were deleted", head.seq),
        });
    }
    if let Some(change_seq) = head.change_seq {
        let newest = crate::store::last_change_seq(conn)?;
        if newest != change_seq {
            return Err(Error::AuditTampered {
                seq: head.seq,
                reason: format!(
                    "the log's last entry was written with change {change_seq}, but the vault's newest change is {newest}: the log or the data was rolled back on its own"
                ),
            });
        }
    }
    Ok(report)
}

pub fn list(
    conn: &rusqlite::Connection,
    secret_name: Option<&str>,
    before_seq: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    Ok(rows::list(conn, secret_name, before_seq, limit)?
        .into_iter()
        .map(AuditEntry::from)
        .collect())
}
