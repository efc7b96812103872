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
/// PostgreSQL): aws-lc-rs, whose key exchanges start with the hybrid post-quantum
/// X25519MLKEM768, so that a recording of today's replication traffic stays closed to a
/// future quantum computer. A peer (or a PostgreSQL server) that cannot do it gets X25519,
/// then the NIST curves; the negotiated group is shown per peer.
pub fn tls_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
