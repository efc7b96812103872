//! Associated data for every kind of ciphertext the vault stores.
//!
//! Each builder starts with its own domain label, so a blob of one kind can never be
//! accepted as another, and includes every identifier of the row it belongs to, so that
//! moving a blob to another row (or another vault) makes it fail to open.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::crypto::Aad;

/// Binds a wrapped data key to its key version and its secret version.
pub fn data_key(vault: Uuid, key: Uuid, key_version: u32, secret: Uuid, version: Uuid) -> Aad {
    Aad::new("coffer.data-key.v1")
        .with(vault.as_bytes())
        .with(key.as_bytes())
        .with(&key_version.to_be_bytes())
        .with(secret.as_bytes())
        .with(version.as_bytes())
}

/// Binds a secret value's ciphertext to its secret version.
pub fn secret_value(vault: Uuid, secret: Uuid, version: Uuid) -> Aad {
    Aad::new("coffer.secret-value.v1")
        .with(vault.as_bytes())
        .with(secret.as_bytes())
        .with(version.as_bytes())
}

/// Binds a KEK's recovery wrapping to the key version it belongs to.
pub fn recovery(vault: Uuid, key: Uuid, key_version: u32) -> Aad {
    Aad::new("coffer.recovery.v1")
        .with(vault.as_bytes())
        .with(key.as_bytes())
        .with(&key_version.to_be_bytes())
}

/// Binds the audit key's wrapping to the key version that wraps it.
pub fn audit_key(vault: Uuid, key: Uuid, key_version: u32) -> Aad {
    Aad::new("coffer.audit-key.v1")
        .with(vault.as_bytes())
        .with(key.as_bytes())
        .with(&key_version.to_be_bytes())
}

/// Binds an application ciphertext (KMS-style `encrypt` / `generate-data-key`) to its
/// key version and the caller's encryption context, in canonical (sorted) order.
pub fn envelope(
    vault: Uuid,
    key: Uuid,
    key_version: u32,
    context: &BTreeMap<String, String>,
) -> Aad {
    let mut aad = Aad::new("coffer.envelope.v1")
        .with(vault.as_bytes())
        .with(key.as_bytes())
        .with(&key_version.to_be_bytes())
        .with(&(context.len() as u32).to_be_bytes());
    for (name, value) in context {
        aad.part(name.as_bytes());
        aad.part(value.as_bytes());
    }
    aad
}
