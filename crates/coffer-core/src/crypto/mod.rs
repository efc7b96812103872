//! Envelope cryptography: AES-256-GCM with associated data that binds every ciphertext
//! to where it belongs, per-version data keys, and the recovery-key wrapping.

pub mod aead;
pub mod data_key;
pub mod kek;
pub mod locked;
pub mod recovery;

pub use aead::{Aad, OpenError};
pub use data_key::DataKey;
pub use kek::{Kek, KEY_LEN};
pub use locked::LockedKey;

/// The rustls provider for every TLS connection the engine makes (to peers and to
/// PostgreSQL): ring, which the workspace already builds. Its key exchanges are X25519
/// (first) and the NIST curves; the hybrid X25519MLKEM768 needs the aws-lc-rs provider,
/// whose build these machines cannot do yet.
pub fn tls_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
