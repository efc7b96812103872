//! The recovery key: a code a person writes down once, which can bring every key of the
//! vault back when the TPM that sealed them is gone (new motherboard, cleared TPM, changed
//! PCRs).
//!
//! The code is stretched with Argon2id into an X25519 secret. Only the matching public key
//! is stored, so keys created later are wrapped to it without asking for the code again;
//! the code itself is needed only to recover.

use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use super::aead;
use super::{Kek, KEY_LEN};

/// Random bytes in a recovery code (160 bits).
const CODE_ENTROPY: usize = 20;
/// Checksum bytes appended so that a mistyped code is reported as a typo, not as "wrong".
const CODE_CHECKSUM: usize = 2;
/// Characters per dash-separated group when the code is shown.
const GROUP: usize = 6;

const WRAP_INFO: &[u8] = b"coffer.recovery-wrap.v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecoveryError {
    #[error("the recovery code is not valid: expected 36 letters and digits (A-Z, 2-7) in groups of six; check for a typo")]
    Malformed,
    #[error("the recovery code has a typo: its checksum does not match; compare it with the written copy")]
    Checksum,
    #[error("the recovery code does not open this vault's keys; make sure it is the code shown when this vault was created")]
    WrongCode,
    #[error("stored recovery parameters are invalid: {0}")]
    Parameters(String),
}

/// A recovery code in memory; wiped on drop and never printed by `Debug`.
pub struct RecoveryCode(Zeroizing<[u8; CODE_ENTROPY]>);

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

impl RecoveryCode {
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; CODE_ENTROPY]);
        OsRng.fill_bytes(bytes.as_mut());
        RecoveryCode(bytes)
    }

    /// The code as a person writes it down: `XXXXXX-XXXXXX-…` (six groups of six).
    pub fn display(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(Vec::with_capacity(CODE_ENTROPY + CODE_CHECKSUM));
        raw.extend_from_slice(self.0.as_ref());
        raw.extend_from_slice(&checksum(self.0.as_ref()));
        let encoded = Zeroizing::new(base32::encode(
            base32::Alphabet::Rfc4648 { padding: false },
            &raw,
        ));
        let mut out = Zeroizing::new(String::with_capacity(encoded.len() + encoded.len() / GROUP));
        for (i, ch) in encoded.chars().enumerate() {
            if i > 0 && i % GROUP == 0 {
                out.push('-');
            }
            out.push(ch);
        }
        out
    }

    /// Parses a typed code, tolerating case, spaces and dashes.
    pub fn parse(text: &str) -> Result<Self, RecoveryError> {
        let cleaned: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let raw = Zeroizing::new(
            base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &cleaned)
                .ok_or(RecoveryError::Malformed)?,
        );
        if raw.len() != CODE_ENTROPY + CODE_CHECKSUM {
            return Err(RecoveryError::Malformed);
        }
        let (entropy, sum) = raw.split_at(CODE_ENTROPY);
        if checksum(entropy) != sum {
            return Err(RecoveryError::Checksum);
        }
        let mut bytes = Zeroizing::new([0u8; CODE_ENTROPY]);
        bytes.copy_from_slice(entropy);
        Ok(RecoveryCode(bytes))
    }
}

fn checksum(entropy: &[u8]) -> [u8; CODE_CHECKSUM] {
    let digest = Sha256::new_with_prefix(b"coffer.recovery-checksum.v1")
        .chain_update(entropy)
        .finalize();
    [digest[0], digest[1]]
}

/// Argon2id cost and salt, stored in the vault so the same code derives the same key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecoveryParams {
    pub salt: Vec<u8>,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl RecoveryParams {
    /// Fresh parameters for a new vault: a random salt and a cost that takes a fraction
    /// of a second, paid only at creation and at recovery.
    pub fn generate() -> Self {
        let mut salt = vec![0u8; 16];
        OsRng.fill_bytes(&mut salt);
        RecoveryParams {
            salt,
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

/// The X25519 secret derived from a recovery code; exists only during `recover`.
pub struct RecoverySecret(StaticSecret);

/// The most memory, passes and lanes a stored parameter set may ask for. The parameters
/// are read from the vault file before anything can authenticate them, so an edited
/// file must not be able to make `recover` allocate gigabytes or run for hours.
pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
pub const MAX_ITERATIONS: u32 = 16;
pub const MAX_PARALLELISM: u32 = 8;
/// Weaker than this is as suspect as stronger than the limits: it would make the
/// recovery code cheap to guess from a stolen file.
pub const MIN_MEMORY_KIB: u32 = 19 * 1024;

impl RecoveryParams {
    /// Refuses parameters outside what Coffer ever writes, give or take room to grow.
    pub fn check_bounds(&self) -> Result<(), RecoveryError> {
        let out_of_range = |what: &str, value: u32, min: u32, max: u32| {
            RecoveryError::Parameters(format!(
                "{what} is {value}, outside {min}..={max}; the vault file was altered or is damaged"
            ))
        };
        if !(MIN_MEMORY_KIB..=MAX_MEMORY_KIB).contains(&self.memory_kib) {
            return Err(out_of_range(
                "Argon2 memory (KiB)",
                self.memory_kib,
                MIN_MEMORY_KIB,
                MAX_MEMORY_KIB,
            ));
        }
        if !(1..=MAX_ITERATIONS).contains(&self.iterations) {
            return Err(out_of_range(
                "Argon2 passes",
                self.iterations,
                1,
                MAX_ITERATIONS,
            ));
        }
        if !(1..=MAX_PARALLELISM).contains(&self.parallelism) {
            return Err(out_of_range(
                "Argon2 lanes",
                self.parallelism,
                1,
                MAX_PARALLELISM,
            ));
        }
        if !(8..=64).contains(&self.salt.len()) {
            return Err(RecoveryError::Parameters(format!(
                "the salt is {} bytes, outside 8..=64; the vault file was altered or is damaged",
                self.salt.len()
            )));
        }
        Ok(())
    }
}

impl RecoverySecret {
    pub fn derive(code: &RecoveryCode, params: &RecoveryParams) -> Result<Self, RecoveryError> {
        params.check_bounds()?;
        let argon_params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(KEY_LEN),
        )
        .map_err(|e| RecoveryError::Parameters(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
        let mut seed = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(code.0.as_ref(), &params.salt, seed.as_mut())
            .map_err(|e| RecoveryError::Parameters(e.to_string()))?;
        Ok(RecoverySecret(StaticSecret::from(*seed)))
    }

    pub fn public_key(&self) -> [u8; 32] {
        PublicKey::from(&self.0).to_bytes()
    }

    /// Opens a KEK wrapped by [`wrap_for_recovery`].
    pub fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Kek, RecoveryError> {
        if wrapped.len() < 32 {
            return Err(RecoveryError::WrongCode);
        }
        let (ephemeral, sealed) = wrapped.split_at(32);
        let mut ephemeral_bytes = [0u8; 32];
        ephemeral_bytes.copy_from_slice(ephemeral);
        let ephemeral = PublicKey::from(ephemeral_bytes);
        let shared = self.0.diffie_hellman(&ephemeral);
        let key = wrapping_key(shared.as_bytes(), &ephemeral_bytes, &self.public_key());
        let plain = aead::open(&key, aad, sealed).map_err(|_| RecoveryError::WrongCode)?;
        let mut bytes: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| RecoveryError::WrongCode)?;
        let kek = Kek::from_bytes(bytes);
        bytes.zeroize();
        Ok(kek)
    }
}

/// Wraps a KEK to the recovery public key (ephemeral X25519 + HKDF-SHA256 + AES-256-GCM).
pub fn wrap_for_recovery(recipient: &[u8; 32], kek: &Kek, aad: &[u8]) -> Vec<u8> {
    let ephemeral = StaticSecret::random_from_rng(OsRng);
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&PublicKey::from(*recipient));
    let key = wrapping_key(shared.as_bytes(), &ephemeral_public, recipient);
    let mut out = Vec::with_capacity(32 + aead::OVERHEAD + KEY_LEN);
    out.extend_from_slice(&ephemeral_public);
    out.extend_from_slice(&aead::seal(&key, aad, kek.expose()));
    out
}

fn wrapping_key(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
) -> Zeroizing<[u8; KEY_LEN]> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient);
    let hkdf = Hkdf::<Sha256>::new(Some(&salt), shared);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
    if hkdf.expand(WRAP_INFO, key.as_mut()).is_err() {
        std::process::abort();
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap_params() -> RecoveryParams {
        RecoveryParams {
            salt: vec![7; 16],
            memory_kib: MIN_MEMORY_KIB,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn parameters_outside_the_bounds_are_refused_before_any_work() {
        let code = RecoveryCode::generate();
        let huge_memory = RecoveryParams {
            memory_kib: u32::MAX,
            ..cheap_params()
        };
        let many_passes = RecoveryParams {
            iterations: 1_000_000,
            ..cheap_params()
        };
        let weak = RecoveryParams {
            memory_kib: 8,
            ..cheap_params()
        };
        let no_salt = RecoveryParams {
            salt: Vec::new(),
            ..cheap_params()
        };
        for params in [huge_memory, many_passes, weak, no_salt] {
            let error = RecoverySecret::derive(&code, &params).err().unwrap();
            assert!(
                matches!(&error, RecoveryError::Parameters(reason) if reason.contains("outside")),
                "{error:?}"
            );
        }
        assert!(RecoverySecret::derive(&code, &cheap_params()).is_ok());
        assert!(RecoveryParams::generate().check_bounds().is_ok());
    }

    #[test]
    fn code_round_trips_through_its_display_form() {
        let code = RecoveryCode::generate();
        let shown = code.display();
        assert_eq!(shown.len(), 41, "{}", shown.len());
        let parsed = RecoveryCode::parse(&shown.to_lowercase().replace('-', " ")).unwrap();
        assert_eq!(*parsed.0, *code.0);
    }

    #[test]
    fn typo_is_reported_as_checksum_error() {
        let code = RecoveryCode::generate();
        let mut shown: Vec<char> = code.display().chars().collect();
        shown[3] = if shown[3] == 'A' { 'B' } else { 'A' };
        let typed: String = shown.into_iter().collect();
        assert!(matches!(
            RecoveryCode::parse(&typed),
            Err(RecoveryError::Checksum) | Err(RecoveryError::Malformed)
        ));
        assert_eq!(
            RecoveryCode::parse("not a code").err(),
            Some(RecoveryError::Malformed)
        );
    }

    #[test]
    fn wrapped_kek_opens_only_with_the_right_code_and_context() {
        let params = cheap_params();
        let code = RecoveryCode::generate();
        let secret = RecoverySecret::derive(&code, &params).unwrap();
        let kek = Kek::generate();
        let wrapped = wrap_for_recovery(&secret.public_key(), &kek, b"key-1/v1");
        let back = secret.unwrap(b"key-1/v1", &wrapped).unwrap();
        assert_eq!(back.expose(), kek.expose());
        assert_eq!(
            secret.unwrap(b"key-1/v2", &wrapped).err(),
            Some(RecoveryError::WrongCode)
        );
        let other = RecoverySecret::derive(&RecoveryCode::generate(), &params).unwrap();
        assert_eq!(
            other.unwrap(b"key-1/v1", &wrapped).err(),
            Some(RecoveryError::WrongCode)
        );
    }
}
