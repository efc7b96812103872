//! Secret access keys and the SigV4 signing-key derivation.
//!
//! The secret and every intermediate key derived from it are held in
//! zeroizing buffers: a verifier runs for every request, so key material must
//! not linger in freed heap or stack memory, and must never reach a log via
//! `Debug`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

type HmacSha256 = Hmac<Sha256>;

/// A secret access key, wiped from memory on drop and redacted in `Debug`.
#[derive(Clone)]
pub struct SecretKeyMaterial(Zeroizing<Vec<u8>>);

impl SecretKeyMaterial {
    /// Wraps the secret access key bytes (as the SDK user configured them,
    /// e.g. the 40-character AWS-style secret).
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// Wraps a secret given as a string, wiping the string's buffer.
    pub fn from_string(mut secret: String) -> Self {
        let out = Self::new(secret.as_bytes().to_vec());
        secret.zeroize();
        out
    }

    fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretKeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKeyMaterial(<redacted>)")
    }
}

/// HMAC-SHA256 of `msg` under `key`, in a zeroizing buffer.
pub(crate) fn hmac(key: &[u8], msg: &[u8]) -> Zeroizing<[u8; 32]> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; an
    // all-zero result on the impossible error path can only cause a
    // signature mismatch, never an acceptance.
    let mut out = Zeroizing::new([0u8; 32]);
    if let Ok(mut mac) = HmacSha256::new_from_slice(key) {
        mac.update(msg);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// Derives the SigV4 signing key: HMAC chain over `"AWS4" + secret`, the
/// scope date (`YYYYMMDD`), region, service and `aws4_request`.
pub(crate) fn signing_key(
    secret: &SecretKeyMaterial,
    date: &str,
    region: &str,
    service: &str,
) -> Zeroizing<[u8; 32]> {
    let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret.expose().len()));
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.expose());
    let k_date = hmac(&k_secret, date.as_bytes());
    let k_region = hmac(&*k_date, region.as_bytes());
    let k_service = hmac(&*k_region, service.as_bytes());
    hmac(&*k_service, b"aws4_request")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let k = SecretKeyMaterial::new(b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec());
        let s = format!("{k:?}");
        assert!(!s.contains("wJalr"), "{s}");
        assert!(s.contains("redacted"));
    }

    /// The signing key from the AWS documentation's worked example
    /// (secret `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY`, 20120215,
    /// us-east-1, iam).
    #[test]
    fn signing_key_matches_aws_documented_example() {
        let k = SecretKeyMaterial::from_string("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into());
        let sk = signing_key(&k, "20120215", "us-east-1", "iam");
        let hex: String = sk.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }
}
