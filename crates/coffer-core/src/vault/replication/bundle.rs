//! Air-gapped regions: the network path's signed, sealed entries carried in files.
//!
//! `export` writes what a region has not acknowledged as one bundle signed by this
//! vault; `import` on the region checks it (pairing, addressee, signature, position) and
//! applies it through the same transaction as a network batch, then writes an
//! acknowledgement signed by that vault; `import_ack` here moves the outbox on. The
//! acknowledgement also carries the region's signed hello (its vault id and the key data
//! keys are sealed to), which is how a primary that never connects learns them:
//! `acknowledge` writes one before any bundle.

use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::wire::NotApplied;
use crate::model::Timestamp;
use crate::region::identity::{fingerprint_of, verify};
use crate::region::sealed::b64;
use crate::region::{Fingerprint, Hello, RegionError, RegionName};
use crate::store::replication as rows;
use crate::vault::error::{Error, Result};
use crate::vault::{AuditEvent, Vault};
use coffer_sync::{SecretKey, WireEntry};

const BUNDLE_FORMAT: &str = "coffer-replica-bundle-v1";
const ACK_FORMAT: &str = "coffer-replica-ack-v1";
const BUNDLE_DOMAIN: &str = "coffer.replica-bundle.v1";
const ACK_DOMAIN: &str = "coffer.replica-ack.v1";
/// Payload bytes per bundle: it travels through the agent's 8 MiB frames as text.
const BUNDLE_PAYLOAD_BYTES: usize = 4 << 20;
/// A file longer than this is refused before it is parsed.
pub const MAX_FILE_BYTES: usize = 8 << 20;

/// A bundle or an acknowledgement: a signed body and the signer's certificate.
#[derive(Serialize, Deserialize)]
struct SignedFile {
    format: String,
    #[serde(with = "b64")]
    body: Vec<u8>,
    /// The signer's identity certificate, matched to the pinned fingerprint.
    #[serde(with = "b64")]
    signer: Vec<u8>,
    #[serde(with = "b64")]
    signature: Vec<u8>,
}

impl SignedFile {
    /// `body` signed under `domain` by this vault's identity, with the certificate that
    /// lets the other side match it to the fingerprint it pinned.
    fn sign(
        identity: &crate::region::identity::Identity,
        format: &str,
        domain: &str,
        body: Vec<u8>,
    ) -> Result<SignedFile> {
        Ok(SignedFile {
            format: format.into(),
            signature: identity.sign(domain, &body)?,
            signer: identity
                .chain()
                .last()
                .map(|c| c.to_vec())
                .unwrap_or_default(),
            body,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct BundleBody {
    primary_vault: Uuid,
    primary_region: String,
    replica_vault: Uuid,
    replica_region: String,
    created_at: i64,
    /// The region's acknowledged position the entries follow.
    after: u64,
    entries: Vec<BundleEntry>,
}

#[derive(Serialize, Deserialize)]
struct BundleEntry {
    seq: u64,
    prev_seq: u64,
    secret: Uuid,
    #[serde(with = "b64")]
    payload: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct AckBody {
    replica_vault: Uuid,
    replica_region: String,
    primary_region: String,
    /// Absent in the first acknowledgement, written before any bundle came.
    primary_vault: Option<Uuid>,
    applied_upto: u64,
    hello: Hello,
    not_applied: Vec<NotApplied>,
    created_at: i64,
}

/// A region's hello as a primary keeps it, with the certificate that signed it.
#[derive(Serialize, Deserialize)]
struct Card {
    hello: Hello,
    #[serde(with = "b64")]
    cert: Vec<u8>,
}

/// What `region export` wrote.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BundleExport {
    pub region: String,
    /// The bundle file's contents.
    pub bundle: String,
    pub entries: usize,
    /// The region's acknowledged position the bundle follows.
    pub after: u64,
    pub last_seq: u64,
    /// Changes left for the next bundle (after this one is acknowledged).
    pub remaining: u64,
}

/// What `region import` (or `region ack`) did, and the acknowledgement to carry back.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BundleImport {
    /// The primary region the bundle came from.
    pub region: String,
    pub applied: usize,
    /// Entries already applied here (an overlapping bundle), skipped.
    pub skipped: usize,
    pub applied_upto: u64,
    pub not_applied: Vec<NotApplied>,
    /// The acknowledgement file's contents.
    pub ack: String,
}

/// What `region import-ack` did.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AckImport {
    pub region: String,
    pub acked: u64,
    /// Changes the region still lacks: export again to send them.
    pub backlog: u64,
}

fn invalid_bundle(reason: String) -> Error {
    Error::invalid("bundle", reason)
}

fn invalid_ack(reason: String) -> Error {
    Error::invalid("acknowledgement", reason)
}

fn read_file(text: &str, format: &str, what: &'static str) -> Result<SignedFile> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Error::invalid(
            what,
            format!("the file is over {MAX_FILE_BYTES} bytes, larger than Coffer writes"),
        ));
    }
    let file: SignedFile = serde_json::from_str(text).map_err(|e| {
        Error::invalid(
            what,
            format!("the file is not a Coffer {what} (truncated or another file?): {e}"),
        )
    })?;
    if file.format != format {
        // Picking the acknowledgement for the bundle (or back) is the likely mistake.
        let is = match file.format.as_str() {
            BUNDLE_FORMAT => "a replica bundle".to_owned(),
            ACK_FORMAT => "an acknowledgement".to_owned(),
            other => format!("a {other:?} file"),
        };
        return Err(Error::invalid(
            what,
            format!("the file is {is}, not a {what} ({format}); pick the {what} file"),
        ));
    }
    Ok(file)
}

/// The pinned fingerprint of `region`, or the error naming it as unknown.
fn pinned_of(pinned: &[(String, Fingerprint)], region: &str) -> Result<Fingerprint> {
    pinned
        .iter()
        .find(|(name, _)| name == region)
        .map(|(_, fp)| *fp)
        .ok_or_else(|| {
            RegionError::UnknownPeer {
                name: region.to_owned(),
            }
            .into()
        })
}

/// Finds the pinned region whose identity signed `file` and checks the signature
/// before anything of the body is trusted: `Ok(None)` when no pinned region signed it,
/// an error when one did and the file was altered since.
fn signed_by(
    file: &SignedFile,
    domain: &str,
    pinned: &[(String, Fingerprint)],
    what: &str,
) -> Result<Option<(String, CertificateDer<'static>)>> {
    let ca = CertificateDer::from(file.signer.clone());
    let Some(fp) = fingerprint_of(&ca) else {
        return Ok(None);
    };
    let Some((region, _)) = pinned.iter().find(|(_, pin)| *pin == fp) else {
        return Ok(None);
    };
    if !verify(&ca, domain, &file.body, &file.signature) {
        return Err(Error::ReplicationRefused {
            region: region.clone(),
            reason: format!("the {what}'s signature does not verify: the file was altered"),
        });
    }
    Ok(Some((region.clone(), ca)))
}

/// Why a file no pinned region signed is refused: it names a region that is pinned
/// with another fingerprint, or one that is not paired at all.
fn unsigned(
    file: &SignedFile,
    pinned: &[(String, Fingerprint)],
    claimed: &str,
    what: &str,
) -> Error {
    let signer = fingerprint_of(&CertificateDer::from(file.signer.clone())).map_or_else(
        || "no valid certificate".to_owned(),
        |fp| format!("fingerprint {fp}"),
    );
    match pinned_of(pinned, claimed) {
        Ok(pin) => Error::ReplicationRefused {
            region: claimed.to_owned(),
            reason: format!(
                "the {what} is signed by {signer}, but region {claimed} is pinned as {pin}"
            ),
        },
        Err(error) => error,
    }
}

fn to_text(file: &SignedFile) -> Result<String> {
    serde_json::to_string(file).map_err(|e| Error::invalid("bundle", e.to_string()))
}

impl Vault {
    /// Whether a bundle for `region` can be made now (paired, and its acknowledgement
    /// with its keys imported), without making one: the app asks before it opens the file
    /// chooser, so that a region that cannot have one says so at once.
    pub fn check_bundle_export(&mut self, region: &str) -> Result<()> {
        let region = RegionName::parse(region)?;
        self.export_card(&region).map(drop)
    }

    /// The region's stored hello, checked against its pinned identity.
    fn export_card(&mut self, region: &RegionName) -> Result<Card> {
        self.require_unlocked()?;
        let pin = pinned_of(&self.pinned_peers()?, region.as_str())?;
        let (own_region, _) = self.identity()?;
        let card = rows::card(self.store.conn(), region.as_str())?.ok_or_else(|| {
            invalid_bundle(format!(
                "region {region} has not sent an acknowledgement yet, so its keys are unknown here: run `coffer region ack {own_region} --out FILE` on that vault, then `coffer region import-ack FILE` here"
            ))
        })?;
        let card: Card = serde_json::from_str(&card)
            .map_err(|_| invalid_bundle(format!("the stored hello of region {region} is unreadable; import an acknowledgement from it again")))?;
        let cert = CertificateDer::from(card.cert.clone());
        if fingerprint_of(&cert) != Some(pin)
            || !card.hello.is_signed_by(&cert)
            || card.hello.region != region.as_str()
        {
            return Err(Error::ReplicationRefused {
                region: region.to_string(),
                reason: "its stored hello is not signed by its pinned identity; import an acknowledgement from it again".into(),
            });
        }
        Ok(card)
    }

    /// Writes what `region` has not acknowledged as one signed bundle (at most 4 MiB of
    /// payload; `remaining` says what is left for the next one).
    pub fn export_bundle(&mut self, region: &str) -> Result<BundleExport> {
        let region = RegionName::parse(region)?;
        let card = self.export_card(&region)?;
        let (own_region, identity) = self.identity()?;
        let (acked, mut outgoing) = self.outgoing(region.as_str(), &card.hello)?;
        let mut bytes = 0;
        let keep = outgoing
            .iter()
            .take_while(|e| {
                bytes += e.payload.len();
                bytes <= BUNDLE_PAYLOAD_BYTES
            })
            .count()
            .max(outgoing.len().min(1));
        outgoing.truncate(keep);
        let mut prev = acked;
        let entries: Vec<BundleEntry> = outgoing
            .into_iter()
            .map(|e| {
                let entry = BundleEntry {
                    seq: e.seq,
                    prev_seq: prev,
                    secret: Uuid::from_bytes(e.secret.0),
                    payload: e.payload,
                };
                prev = e.seq;
                entry
            })
            .collect();
        let body = BundleBody {
            primary_vault: self.vault_id,
            primary_region: own_region.to_string(),
            replica_vault: card.hello.vault_id,
            replica_region: region.to_string(),
            created_at: Timestamp::now().millis(),
            after: acked,
            entries,
        };
        let count = body.entries.len();
        let body_bytes = serde_json::to_vec(&body).map_err(|e| invalid_bundle(e.to_string()))?;
        let file = SignedFile::sign(&identity, BUNDLE_FORMAT, BUNDLE_DOMAIN, body_bytes)?;
        let text = to_text(&file)?;
        let backlog = rows::backlog_len(self.store.conn(), region.as_str())?;
        let event = AuditEvent::new("replication_bundle_export").detail(format!(
            "region={region} entries={count} seq={}..{prev}",
            acked + 1
        ));
        self.write(event, |_, _, _| Ok(()))?;
        Ok(BundleExport {
            region: region.to_string(),
            bundle: text,
            entries: count,
            after: acked,
            last_seq: prev,
            remaining: backlog.saturating_sub(count as u64),
        })
    }

    /// Checks a bundle (for this vault, from a pinned region, signed by it, following
    /// what is applied here) and applies it in one transaction; returns the
    /// acknowledgement to carry back. A refused bundle changes nothing.
    pub fn import_bundle(&mut self, text: &str) -> Result<BundleImport> {
        self.require_unlocked()?;
        let file = read_file(text, BUNDLE_FORMAT, "bundle")?;
        let pinned = self.pinned_peers()?;
        let signed = signed_by(&file, BUNDLE_DOMAIN, &pinned, "bundle")?;
        let body: BundleBody = serde_json::from_slice(&file.body)
            .map_err(|_| invalid_bundle("its body is not readable".into()))?;
        let (own_region, _) = self.identity()?;
        if body.replica_vault != self.vault_id || body.replica_region != own_region.as_str() {
            return Err(invalid_bundle(format!(
                "it is for region {} (vault {}), and this is region {own_region} (vault {}); import it on that vault",
                body.replica_region, body.replica_vault, self.vault_id
            )));
        }
        let Some((region, ca)) = signed else {
            return Err(unsigned(&file, &pinned, &body.primary_region, "bundle"));
        };
        if body.primary_region != region {
            return Err(Error::ReplicationRefused {
                region,
                reason: format!(
                    "the bundle claims to come from region {}",
                    body.primary_region
                ),
            });
        }
        let mut prev = body.after;
        for entry in &body.entries {
            if entry.prev_seq != prev || entry.seq <= prev {
                return Err(invalid_bundle(format!(
                    "its entries are not in order at change {}",
                    entry.seq
                )));
            }
            prev = entry.seq;
        }
        // Anything a locked daemon kept goes first, so the position is what is applied.
        self.apply_inbox()?;
        let applied = rows::applied_upto(self.store.conn(), &region)? as u64;
        let last = prev;
        if body.after > applied {
            return Err(invalid_bundle(format!(
                "it follows change {} of region {region}, but this vault has applied only up to {applied}: import the bundle before it first, or export a new one there after importing this vault's latest acknowledgement",
                body.after
            )));
        }
        if !body.entries.is_empty() && last <= applied {
            return Err(invalid_bundle(format!(
                "it carries changes {}..{last} of region {region}, all already applied here (up to {applied}): a bundle imported before, or an older one; if the primary lacks this vault's acknowledgement, write one with `coffer region ack {region} --out FILE`",
                body.after + 1
            )));
        }
        let total = body.entries.len();
        let chain: Vec<WireEntry> = body
            .entries
            .into_iter()
            .filter(|e| e.seq > applied)
            .map(|e| WireEntry {
                seq: e.seq,
                prev_seq: e.prev_seq,
                secret: SecretKey(e.secret.into_bytes()),
                payload: e.payload,
            })
            .collect();
        let count = chain.len();
        let not_applied = if chain.is_empty() {
            Vec::new()
        } else {
            self.apply_chain(&region, &ca, chain, last, "bundle")?
        };
        let ack = self.acknowledgement(&region, Some(body.primary_vault), &not_applied)?;
        Ok(BundleImport {
            region,
            applied: count,
            skipped: total - count,
            applied_upto: last.max(applied),
            not_applied,
            ack,
        })
    }

    /// An acknowledgement of what is applied here from `region`, without a bundle: the
    /// first one tells a primary that never connects this vault's keys.
    pub fn acknowledge_region(&mut self, region: &str) -> Result<BundleImport> {
        let region = RegionName::parse(region)?;
        self.require_unlocked()?;
        pinned_of(&self.pinned_peers()?, region.as_str())?;
        self.apply_inbox()?;
        let ack = self.acknowledgement(region.as_str(), None, &[])?;
        Ok(BundleImport {
            region: region.to_string(),
            applied: 0,
            skipped: 0,
            applied_upto: rows::applied_upto(self.store.conn(), region.as_str())? as u64,
            not_applied: Vec::new(),
            ack,
        })
    }

    fn acknowledgement(
        &mut self,
        region: &str,
        primary_vault: Option<Uuid>,
        not_applied: &[NotApplied],
    ) -> Result<String> {
        let (own_region, identity) = self.identity()?;
        let body = AckBody {
            replica_vault: self.vault_id,
            replica_region: own_region.to_string(),
            primary_region: region.to_owned(),
            primary_vault,
            applied_upto: rows::applied_upto(self.store.conn(), region)? as u64,
            hello: identity.hello(&own_region, self.vault_id)?,
            not_applied: not_applied.to_vec(),
            created_at: Timestamp::now().millis(),
        };
        let body_bytes = serde_json::to_vec(&body).map_err(|e| invalid_ack(e.to_string()))?;
        to_text(&SignedFile::sign(
            &identity, ACK_FORMAT, ACK_DOMAIN, body_bytes,
        )?)
    }

    /// Takes a region's acknowledgement: checks it (for this vault, from the pinned
    /// region, not older than one taken before, naming a change that was sent) and moves
    /// the outbox on; remembers the region's hello for the next bundle.
    pub fn import_bundle_ack(&mut self, text: &str) -> Result<AckImport> {
        self.require_unlocked()?;
        let file = read_file(text, ACK_FORMAT, "acknowledgement")?;
        let pinned = self.pinned_peers()?;
        let signed = signed_by(&file, ACK_DOMAIN, &pinned, "acknowledgement")?;
        let body: AckBody = serde_json::from_slice(&file.body)
            .map_err(|_| invalid_ack("its body is not readable".into()))?;
        let (own_region, _) = self.identity()?;
        if body.primary_region != own_region.as_str()
            || body.primary_vault.is_some_and(|v| v != self.vault_id)
        {
            return Err(invalid_ack(format!(
                "it acknowledges region {}'s bundles, and this is region {own_region} (vault {}); import it on that vault",
                body.primary_region, self.vault_id
            )));
        }
        let Some((region, ca)) = signed else {
            return Err(unsigned(
                &file,
                &pinned,
                &body.replica_region,
                "acknowledgement",
            ));
        };
        if body.replica_region != region {
            return Err(Error::ReplicationRefused {
                region,
                reason: format!(
                    "the acknowledgement claims to come from region {}",
                    body.replica_region
                ),
            });
        }
        if body.hello.region != region
            || body.hello.vault_id != body.replica_vault
            || !body.hello.is_signed_by(&ca)
        {
            return Err(Error::ReplicationRefused {
                region,
                reason: "the acknowledgement's hello is not the region's own".into(),
            });
        }
        let conn = self.store.conn();
        let acked = rows::acked(conn, &region)? as u64;
        let upto = body.applied_upto;
        if upto < acked {
            return Err(invalid_ack(format!(
                "it acknowledges changes up to {upto}, but region {region} already acknowledged up to {acked}: an older acknowledgement"
            )));
        }
        if upto > acked && !rows::in_outbox(conn, &region, upto as i64)? {
            return Err(invalid_ack(format!(
                "it acknowledges change {upto}, which was never sent to region {region}"
            )));
        }
        let card = serde_json::to_string(&Card {
            hello: body.hello,
            cert: file.signer,
        })
        .map_err(|e| invalid_ack(e.to_string()))?;
        let event = AuditEvent::new("replication_ack_import")
            .detail(format!("region={region} acked={upto}"));
        self.write(event, |tx, _, _| {
            rows::set_card(tx, &region, &card)?;
            if upto > acked {
                rows::set_acked(tx, &region, upto as i64, Timestamp::now().millis())?;
            }
            for refused in &body.not_applied {
                rows::set_replica_error(tx, refused.secret_id, &region, &refused.reason)?;
            }
            Ok(())
        })?;
        Ok(AckImport {
            backlog: rows::backlog_len(self.store.conn(), &region)?,
            region,
            acked: upto,
        })
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn the_wrong_kind_of_file_is_named_as_what_it_is() {
        let ack = serde_json::json!({
            "format": ACK_FORMAT, "body": "", "signer": "", "signature": "",
        })
        .to_string();
        let Err(error) = read_file(&ack, BUNDLE_FORMAT, "bundle") else {
            panic!("an acknowledgement was read as a bundle");
        };
        let text = error.to_string();
        assert!(
            text.contains("the file is an acknowledgement, not a bundle"),
            "{text}"
        );
        let Err(error) = read_file("shopping: milk", ACK_FORMAT, "acknowledgement") else {
            panic!("a text file was read as an acknowledgement");
        };
        assert!(
            error.to_string().contains("not a Coffer acknowledgement"),
            "{error}"
        );
    }
}
