//! Coffer's update key and the minisign signatures made with it, in the formats `tauri
//! signer generate` and `tauri signer sign` write (the minisign files, in base64).

use std::path::{Path, PathBuf};

use base64::Engine;
use minisign_verify::{PublicKey, Signature};

/// Why a signature does not vouch for a bundle.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureRefusal {
    #[error(
        "has a signature file that is not a signature (expected the .sig file of a Coffer release)"
    )]
    NotASignature,
    #[error("was signed by another key than Coffer's update key")]
    OtherKey,
    #[error("does not match its signature: it was changed after it was signed")]
    Tampered,
}

/// Why the update key itself could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read Coffer's update key {path} ({source}): this coffer was not installed from a package; update it the way it was installed")]
    Missing {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Coffer's update key {path} is damaged; reinstall Coffer from a package")]
    Damaged { path: PathBuf },
}

/// The public key every release is signed with.
pub struct UpdateKey {
    key: PublicKey,
    /// The base64 text it was read from, as the app's updater plugin takes it.
    text: String,
}

impl UpdateKey {
    /// A key as `tauri signer generate` writes it (and `plugins.updater.pubkey` holds it).
    pub fn decode(text: &str) -> Option<UpdateKey> {
        let inner = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?;
        let key = PublicKey::decode(std::str::from_utf8(&inner).ok()?).ok()?;
        Some(UpdateKey {
            key,
            text: text.trim().to_owned(),
        })
    }

    /// The key the package installed beside the program at `exe`, in
    /// `../share/coffer/update-key.pub`. Whoever can replace that file can replace the
    /// program itself, so it is trusted exactly as much.
    pub fn installed_beside(exe: &Path) -> Result<UpdateKey, KeyError> {
        let path = exe
            .parent()
            .map(|dir| dir.join("../share/coffer/update-key.pub"))
            .unwrap_or_default();
        Self::read(&path)
    }

    /// A key file as `tauri signer generate` writes it.
    pub fn read(path: &Path) -> Result<UpdateKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Missing {
            path: path.to_owned(),
            source,
        })?;
        Self::decode(&text).ok_or_else(|| KeyError::Damaged {
            path: path.to_owned(),
        })
    }

    /// The key as base64 text, the form the app's updater plugin takes.
    pub fn as_text(&self) -> &str {
        &self.text
    }

    /// Accepts `bytes` only if `signature_text` is a signature of exactly them by this key.
    pub fn verify(&self, bytes: &[u8], signature_text: &str) -> Result<(), SignatureRefusal> {
        let signature = decode_signature(signature_text).ok_or(SignatureRefusal::NotASignature)?;
        match self.key.verify(bytes, &signature, false) {
            Ok(()) => Ok(()),
            Err(minisign_verify::Error::UnexpectedKeyId) => Err(SignatureRefusal::OtherKey),
            Err(_) => Err(SignatureRefusal::Tampered),
        }
    }
}

/// A signature as `tauri signer sign` writes it (the minisign signature file, in base64),
/// or as minisign itself writes it.
fn decode_signature(text: &str) -> Option<Signature> {
    let text = text.trim();
    if text.starts_with("untrusted comment:") {
        return Signature::decode(text).ok();
    }
    let inner = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    Signature::decode(std::str::from_utf8(&inner).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn key_pair() -> (minisign::KeyPair, UpdateKey) {
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let public = b64(&pair.pk.to_box().unwrap().into_string());
        let key = UpdateKey::decode(&public).unwrap();
        (pair, key)
    }

    fn sign(pair: &minisign::KeyPair, data: &[u8]) -> String {
        let signature = minisign::sign(
            Some(&pair.pk),
            &pair.sk,
            data,
            Some("timestamp:0\tfile:bundle"),
            Some("signature from tauri secret key"),
        )
        .unwrap();
        b64(&signature.into_string())
    }

    #[test]
    fn a_signature_by_the_key_over_the_same_bytes_verifies() {
        let (pair, key) = key_pair();
        let signature = sign(&pair, b"bundle bytes");
        assert_eq!(key.verify(b"bundle bytes", &signature), Ok(()));
    }

    #[test]
    fn one_flipped_byte_another_key_or_garbage_is_refused() {
        let (pair, key) = key_pair();
        let signature = sign(&pair, b"bundle bytes");
        assert_eq!(
            key.verify(b"bundle bytez", &signature),
            Err(SignatureRefusal::Tampered)
        );
        let (other, _) = key_pair();
        assert_eq!(
            key.verify(b"bundle bytes", &sign(&other, b"bundle bytes")),
            Err(SignatureRefusal::OtherKey)
        );
        assert_eq!(
            key.verify(b"bundle bytes", "not a signature"),
            Err(SignatureRefusal::NotASignature)
        );
        assert_eq!(
            key.verify(b"bundle bytes", ""),
            Err(SignatureRefusal::NotASignature)
        );
    }

    #[test]
    fn keys_that_are_not_minisign_are_refused() {
        assert!(UpdateKey::decode("").is_none());
        assert!(UpdateKey::decode("not base64!").is_none());
        assert!(UpdateKey::decode(&b64("hello\nworld\n")).is_none());
        assert!(decode_signature("untrusted comment: x\nAAAA\n").is_none());
    }
}
