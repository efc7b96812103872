//! Key-encryption keys as they exist in memory once unsealed.

use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length in bytes of every symmetric key Coffer uses (AES-256).
pub const KEY_LEN: usize = 32;

/// One version of a key-encryption key, in plaintext.
///
/// It exists only between an unseal and the next lock; it is wiped when dropped and
/// deliberately has no `Clone` or serialisation, and its `Debug` prints nothing of the key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Kek([u8; KEY_LEN]);

impl Kek {
    /// A fresh key from the operating system's RNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut bytes);
        Kek(bytes)
    }

    /// Takes ownership of key bytes coming out of the TPM or a recovery unwrap.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Kek(bytes)
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
