//! Envelope operations for applications, as in KMS: data keys, small-payload encrypt and
//! decrypt with an encryption context, re-encrypt, and random bytes.
//!
//! Ciphertext blobs are self-describing so `decrypt` needs no key argument:
//! `"CFE1" || key id (16) || key version (u32 BE) || nonce || ciphertext || tag`.

use std::collections::BTreeMap;

use rand_core::{OsRng, RngCore};
use serde::Serialize;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::audit::AuditEvent;
use super::context;
use super::error::{Error, Result};
use super::secrets::{resolve_key, usable};
use super::Vault;
use crate::crypto::aead;
use crate::store::keys as key_rows;

const MAGIC: &[u8; 4] = b"CFE1";
const HEADER_LEN: usize = 4 + 16 + 4;

/// Largest plaintext `encrypt` takes (as in KMS); larger data belongs under a data key.
pub const MAX_ENCRYPT_LEN: usize = 4096;
/// Largest request to `generate_random` and `generate_data_key`.
pub const MAX_RANDOM_LEN: usize = 1024;

/// The encryption context: non-secret name/value pairs bound to a ciphertext as AAD.
pub type EncryptionContext = BTreeMap<String, String>;

/// A data key from `generate_data_key`: the plaintext (omitted by the "without
/// plaintext" variant) and the same key encrypted under a vault key.
pub struct GeneratedDataKey {
    pub key_id: Uuid,
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for GeneratedDataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedDataKey")
            .field("key_id", &self.key_id)
            .field("plaintext", &self.plaintext.as_ref().map(|_| "<redacted>"))
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// What `decrypt` returns besides the plaintext: which key opened it.
#[derive(Debug, Clone, Serialize)]
pub struct DecryptedWith {
    pub key_id: Uuid,
    pub key_version: u32,
}

fn check_context(context: &EncryptionContext) -> Result<()> {
    let total: usize = context.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > 8192 {
        return Err(Error::invalid(
            "encryption context",
            "keep its names and values under 8192 bytes in total",
        ));
    }
    Ok(())
}

/// The key a ciphertext blob says it was made under (unauthenticated until opened): for a
/// server that must authorize the caller for that key before decrypting.
pub fn ciphertext_key(blob: &[u8]) -> Option<Uuid> {
    parse_blob(blob).ok().map(|(key_id, _, _)| key_id)
}

fn parse_blob(blob: &[u8]) -> Result<(Uuid, u32, &[u8])> {
    if blob.len() < HEADER_LEN + aead::OVERHEAD || &blob[..4] != MAGIC {
        return Err(Error::CiphertextInvalid);
    }
    let key_id = Uuid::from_slice(&blob[4..20]).map_err(|_| Error::CiphertextInvalid)?;
    let mut version = [0u8; 4];
    version.copy_from_slice(&blob[20..24]);
    Ok((key_id, u32::from_be_bytes(version), &blob[HEADER_LEN..]))
}

impl Vault {
    /// Encrypts up to 4 KiB under a key's newest version, bound to `context`.
    pub fn encrypt(
        &mut self,
        key: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        if plaintext.is_empty() || plaintext.len() > MAX_ENCRYPT_LEN {
            return Err(Error::invalid(
                "plaintext",
                format!("{} bytes; encrypt takes 1 to {MAX_ENCRYPT_LEN} bytes (use a data key for more)", plaintext.len()),
            ));
        }
        check_context(context)?;
        self.seal_envelope("encrypt", key, plaintext, context)
    }

    /// Decrypts a blob from `encrypt` or `generate_data_key`, given the same context.
    pub fn decrypt(
        &mut self,
        blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<(Zeroizing<Vec<u8>>, DecryptedWith)> {
        let (key_id, key_version, sealed) = parse_blob(blob)?;
        let vault_id = self.vault_id;
        let keyring = self.keyring.as_mut().ok_or(Error::Locked)?;
        let conn = self.store.conn();
        let result = (|| {
            let key = key_rows::key_by_id(conn, key_id)?.ok_or(Error::CiphertextInvalid)?;
            usable(&key)?;
            if key_rows::key_version(conn, key_id, key_version)?.is_none() {
                return Err(Error::CiphertextInvalid);
            }
            let kek = keyring.kek(conn, key_id, key_version)?;
            let aad = context::envelope(vault_id, key_id, key_version, context);
            let plain = aead::open(kek.expose(), aad.as_bytes(), sealed)
                .map_err(|_| Error::CiphertextInvalid)?;
            Ok((
                plain,
                DecryptedWith {
                    key_id,
                    key_version,
                },
            ))
        })();
        self.queue_read(AuditEvent::new("decrypt").key(key_id).outcome(&result))?;
        result
    }

    /// Decrypts under one context and encrypts again under another key or context,
    /// without the plaintext leaving the engine.
    pub fn re_encrypt(
        &mut self,
        blob: &[u8],
        source_context: &EncryptionContext,
        destination_key: &str,
        destination_context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        check_context(destination_context)?;
        let (plain, _) = self.decrypt(blob, source_context)?;
        self.seal_envelope("re_encrypt", destination_key, &plain, destination_context)
    }

    /// A new random data key of `bytes` length (32 for AES-256), encrypted under `key`;
    /// the plaintext is returned only when `with_plaintext`.
    pub fn generate_data_key(
        &mut self,
        key: &str,
        bytes: usize,
        context: &EncryptionContext,
        with_plaintext: bool,
    ) -> Result<GeneratedDataKey> {
        let plaintext = generate_random(bytes)?;
        check_context(context)?;
        let operation = if with_plaintext {
            "generate_data_key"
        } else {
            "generate_data_key_without_plaintext"
        };
        let ciphertext = self.seal_envelope(operation, key, &plaintext, context)?;
        let (key_id, _, _) = parse_blob(&ciphertext)?;
        Ok(GeneratedDataKey {
            key_id,
            plaintext: with_plaintext.then_some(plaintext),
            ciphertext,
        })
    }

    fn seal_envelope(
        &mut self,
        operation: &'static str,
        key: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        let vault_id = self.vault_id;
        let keyring = self.keyring.as_mut().ok_or(Error::Locked)?;
        let store = &mut self.store;
        let mut event = AuditEvent::new(operation);
        let result = (|| {
            let conn = store.conn();
            let key = resolve_key(conn, &keyring.integrity(), key)?;
            event.key_id = Some(key.id);
            usable(&key)?;
            let version = key_rows::newest_key_version(conn, key.id)?
                .ok_or(crate::store::StoreError::Missing {
                    what: "key version",
                })?
                .version;
            // Random nonces: one key version may only make so many encryptions.
            keyring.nonce_budget.take(store, key.id, version)?;
            let conn = store.conn();
            let kek = keyring.kek(conn, key.id, version)?;
            let aad = context::envelope(vault_id, key.id, version, context);
            let sealed = aead::seal(kek.expose(), aad.as_bytes(), plaintext);
            let mut blob = Vec::with_capacity(HEADER_LEN + sealed.len());
            blob.extend_from_slice(MAGIC);
            blob.extend_from_slice(key.id.as_bytes());
            blob.extend_from_slice(&version.to_be_bytes());
            blob.extend_from_slice(&sealed);
            Ok(blob)
        })();
        let event = event.outcome(&result);
        self.queue_read(event)?;
        result
    }
}

/// Random bytes from the operating system's RNG (1 to 1024).
pub fn generate_random(bytes: usize) -> Result<Zeroizing<Vec<u8>>> {
    if !(1..=MAX_RANDOM_LEN).contains(&bytes) {
        return Err(Error::invalid(
            "byte count",
            format!("{bytes}; use 1 to {MAX_RANDOM_LEN}"),
        ));
    }
    let mut out = Zeroizing::new(vec![0u8; bytes]);
    OsRng.fill_bytes(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encryption_context_over_8_kib_is_refused_at_the_limit() {
        let at_limit: EncryptionContext = [("k".to_owned(), "v".repeat(8191))].into();
        check_context(&at_limit).unwrap();
        let over: EncryptionContext = [("k".to_owned(), "v".repeat(8192))].into();
        assert!(matches!(
            check_context(&over),
            Err(Error::InvalidArgument {
                what: "encryption context",
                ..
            })
        ));
        let many: EncryptionContext = (0..100)
            .map(|i| (format!("key{i:03}"), "v".repeat(80)))
            .collect();
        assert!(check_context(&many).is_err(), "the limit is on the total");
    }

    #[test]
    fn blobs_too_short_or_without_the_marker_are_refused_before_decryption() {
        let key_id = Uuid::new_v4();
        let mut blob = MAGIC.to_vec();
        blob.extend_from_slice(key_id.as_bytes());
        blob.extend_from_slice(&7u32.to_be_bytes());
        blob.extend_from_slice(&[0u8; aead::OVERHEAD]);
        let (id, version, sealed) = parse_blob(&blob).unwrap();
        assert_eq!((id, version, sealed.len()), (key_id, 7, aead::OVERHEAD));
        // One byte short of a header and an AEAD overhead.
        assert!(matches!(
            parse_blob(&blob[..blob.len() - 1]),
            Err(Error::CiphertextInvalid)
        ));
        assert!(matches!(parse_blob(&[]), Err(Error::CiphertextInvalid)));
        let mut wrong_marker = blob.clone();
        wrong_marker[0] ^= 0x20;
        assert!(matches!(
            parse_blob(&wrong_marker),
            Err(Error::CiphertextInvalid)
        ));
    }
}
