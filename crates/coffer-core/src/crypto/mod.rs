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
