//! The auth value of a sealed key, derived from the user's PIN.

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Domain label that keeps this derivation apart from every other use of SHA-256 in Coffer.
const LABEL: &[u8] = b"coffer.pin-auth.v1";

/// Length of a [`PinAuth`]: the digest size of the sealed object's name algorithm (SHA-256),
/// the longest auth value the TPM accepts for it.
pub const PIN_AUTH_LEN: usize = 32;

/// The TPM auth value of a sealed key, derived from the PIN.
///
/// The TPM checks it and its dictionary-attack protection rate-limits wrong guesses, which is
/// what makes a short PIN acceptable. The value is wiped on drop, cannot be cloned, and its
/// `Debug` prints nothing of it.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct PinAuth([u8; PIN_AUTH_LEN]);

impl PinAuth {
    /// `SHA-256("coffer.pin-auth.v1" || 0x00 || len(vault_id) as u64 BE || vault_id || pin)`.
    ///
    /// The vault id makes the same PIN give different auth values for different vaults. The PIN
    /// is used byte for byte as UTF-8 (no Unicode normalisation).
    pub fn derive(vault_id: &[u8], pin: &str) -> PinAuth {
        let mut hasher = Sha256::new();
        hasher.update(LABEL);
        hasher.update([0u8]);
        hasher.update((vault_id.len() as u64).to_be_bytes());
        hasher.update(vault_id);
        hasher.update(pin.as_bytes());
        PinAuth(hasher.finalize().into())
    }

    /// The raw auth value, for handing to the TPM only.
    pub(crate) fn expose(&self) -> &[u8; PIN_AUTH_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for PinAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinAuth(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_separated() {
        let a = PinAuth::derive(b"vault-1", "1234");
        assert_eq!(a.expose(), PinAuth::derive(b"vault-1", "1234").expose());
        assert_ne!(a.expose(), PinAuth::derive(b"vault-2", "1234").expose());
        assert_ne!(a.expose(), PinAuth::derive(b"vault-1", "1235").expose());
        // The length prefix keeps (id, pin) pairs from colliding by shifting bytes across.
        assert_ne!(
            PinAuth::derive(b"ab", "c").expose(),
            PinAuth::derive(b"a", "bc").expose()
        );
        assert_eq!(format!("{a:?}"), "PinAuth(<redacted>)");
    }
}
