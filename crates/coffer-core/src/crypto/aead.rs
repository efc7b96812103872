//! AES-256-GCM with a fresh random nonce per message and mandatory associated data.
//!
//! The sealed form is `nonce (12 bytes) || ciphertext || tag (16 bytes)`, so a stored blob
//! carries everything needed to open it except the key and the context it was bound to.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use super::KEY_LEN;

/// Bytes of nonce prepended to every sealed message (96 bits, as GCM intends).
pub const NONCE_LEN: usize = 12;
/// Bytes of authentication tag appended by GCM.
pub const TAG_LEN: usize = 16;
/// Total overhead a sealed message adds to its plaintext.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Opening failed: wrong key, wrong context, or the bytes were altered.
///
/// Deliberately carries no detail: GCM cannot tell which of those happened, and callers
/// add the context (which secret, which version) that makes the error useful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("authenticated decryption failed")]
pub struct OpenError;

/// Encrypts `plaintext` under `key`, bound to `aad`.
pub fn seal(key: &[u8; KEY_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    // Encryption only fails for plaintexts beyond GCM's 64 GiB limit, which no caller
    // can reach: values are capped far below that before they get here.
    let ciphertext = match cipher.encrypt(
        Nonce::from_slice(&nonce),
        Payload {
            msg: plaintext,
            aad,
        },
    ) {
        Ok(ciphertext) => ciphertext,
        Err(_) => unreachable_gcm_limit(),
    };
    let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    sealed
}

#[cold]
fn unreachable_gcm_limit() -> ! {
    // Not reachable with inputs bounded by the vault's size limits; abort rather than
    // return something that could be mistaken for ciphertext.
    std::process::abort()
}

/// Decrypts a blob produced by [`seal`] with the same key and associated data.
pub fn open(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if sealed.len() < OVERHEAD {
        return Err(OpenError);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| OpenError)
}

/// Builds associated data from labelled parts so that no two different contexts can
/// serialise to the same bytes (each part is length-prefixed).
#[derive(Default)]
pub struct Aad(Vec<u8>);

impl Aad {
    /// Starts associated data with a domain label that names the kind of ciphertext.
    pub fn new(domain: &str) -> Self {
        let mut aad = Aad(Vec::with_capacity(128));
        aad.part(domain.as_bytes());
        aad
    }

    /// Appends one length-prefixed part.
    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0
            .extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    /// Appends one part and returns self, for building in one expression.
    pub fn with(mut self, bytes: &[u8]) -> Self {
        self.part(bytes);
        self
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(byte: u8) -> [u8; KEY_LEN] {
        [byte; KEY_LEN]
    }

    #[test]
    fn nonces_differ_between_seals() {
        let a = seal(&key(1), b"ctx", b"same");
        let b = seal(&key(1), b"ctx", b"same");
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
    }

    #[test]
    fn aad_parts_are_unambiguous() {
        let ab = Aad::new("d").with(b"ab").with(b"c");
        let a_bc = Aad::new("d").with(b"a").with(b"bc");
        assert_ne!(ab.as_bytes(), a_bc.as_bytes());
    }

    #[test]
    fn short_input_is_rejected() {
        assert_eq!(open(&key(1), b"", &[0u8; OVERHEAD - 1]), Err(OpenError));
    }

    proptest! {
        #[test]
        fn round_trip(k in any::<[u8; 32]>(), aad in proptest::collection::vec(any::<u8>(), 0..64),
                      msg in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let sealed = seal(&k, &aad, &msg);
            prop_assert_eq!(sealed.len(), msg.len() + OVERHEAD);
            let opened = open(&k, &aad, &sealed).unwrap();
            prop_assert_eq!(&opened[..], &msg[..]);
        }

        #[test]
        fn any_flipped_byte_is_rejected(k in any::<[u8; 32]>(),
                      msg in proptest::collection::vec(any::<u8>(), 0..256),
                      index in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut sealed = seal(&k, b"context", &msg);
            let at = index.index(sealed.len());
            sealed[at] ^= 1 << bit;
            prop_assert_eq!(open(&k, b"context", &sealed), Err(OpenError));
        }

        #[test]
        fn other_context_is_rejected(k in any::<[u8; 32]>(),
                      msg in proptest::collection::vec(any::<u8>(), 0..64),
                      aad in proptest::collection::vec(any::<u8>(), 1..32)) {
            let sealed = seal(&k, &aad, &msg);
            let mut other = aad.clone();
            other[0] ^= 0x80;
            prop_assert_eq!(open(&k, &other, &sealed), Err(OpenError));
        }

        #[test]
        fn other_key_is_rejected(k in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..64)) {
            let sealed = seal(&k, b"c", &msg);
            let mut k2 = k;
            k2[31] ^= 1;
            prop_assert_eq!(open(&k2, b"c", &sealed), Err(OpenError));
        }
    }
}
