//! Key-encryption keys as they exist in memory once unsealed.

use rand_core::{OsRng, RngCore};
use zeroize::Zeroize;

use super::LockedKey;

/// Length in bytes of every symmetric key Coffer uses (AES-256).
pub const KEY_LEN: usize = 32;

/// One version of a key-encryption key, in plaintext.
///
/// It exists only between an unseal and the next lock, in a locked page of its own (see
/// [`LockedKey`]) that is wiped when dropped; it deliberately has no `Clone` or
/// serialisation, and its `Debug` prints nothing of the key.
pub struct Kek(LockedKey);

impl Kek {
    /// A fresh key from the operating system's RNG, generated in place.
    pub fn generate() -> Self {
        let mut key = LockedKey::zeroed();
        OsRng.fill_bytes(key.bytes_mut());
        Kek(key)
    }

    /// Takes key bytes coming out of the TPM or a recovery unwrap, and wipes the copy it
    /// was given.
    pub fn from_bytes(mut bytes: [u8; KEY_LEN]) -> Self {
        let key = LockedKey::from_slice(&bytes);
        bytes.zeroize();
        Kek(key)
    }

    /// Borrows the raw key for a cipher; callers must not copy it out.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}
