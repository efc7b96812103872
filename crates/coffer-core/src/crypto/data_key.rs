//! Per-version data keys (DEKs): one fresh key for every secret version, so compromising
//! one version's key never exposes another, and purging a version destroys its only key.

use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::aead::{self, OpenError};
use super::{Kek, KEY_LEN};

/// A data key in plaintext; wiped on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; KEY_LEN]);

impl DataKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut bytes);
        DataKey(bytes)
    }

    /// A data key received in plaintext (opened from a peer's HPKE seal).
    pub(crate) fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        DataKey(bytes)
    }

    /// Wraps this key under a key-encryption key, bound to `aad`.
    pub fn wrap(&self, kek: &Kek, aad: &[u8]) -> Vec<u8> {
        aead::seal(kek.expose(), aad, &self.0)
    }

    /// Unwraps a key produced by [`DataKey::wrap`] with the same KEK and context.
    pub fn unwrap(kek: &Kek, aad: &[u8], wrapped: &[u8]) -> Result<Self, OpenError> {
        let plain = aead::open(kek.expose(), aad, wrapped)?;
        let bytes: [u8; KEY_LEN] = plain.as_slice().try_into().map_err(|_| OpenError)?;
        Ok(DataKey(bytes))
    }

    /// Encrypts data under this key, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        aead::seal(&self.0, aad, plaintext)
    }

    /// Decrypts data sealed by [`DataKey::seal`].
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        aead::open(&self.0, aad, sealed)
    }

    /// The raw key, for `generate-data-key` callers who asked for the plaintext.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trip_and_context_binding() {
        let kek = Kek::generate();
        let dek = DataKey::generate();
        let wrapped = dek.wrap(&kek, b"secret-a/version-1");
        let back = DataKey::unwrap(&kek, b"secret-a/version-1", &wrapped).unwrap();
        assert_eq!(back.expose(), dek.expose());
        assert!(DataKey::unwrap(&kek, b"secret-b/version-1", &wrapped).is_err());
    }

    #[test]
    fn every_generated_key_is_new() {
        assert_ne!(DataKey::generate().expose(), DataKey::generate().expose());
    }
}
