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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every builder must depend on each identifier it is given and on its own domain:
    /// an emptied or shortened builder would still "work" (sealing and opening use the
    /// same one) while no longer binding a blob to its row.
    #[test]
    fn each_builder_binds_every_identifier_and_its_domain() {
        let (v, k, s, n) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let other = Uuid::new_v4();
        let distinct = |variants: Vec<Aad>| {
            let bytes: Vec<Vec<u8>> = variants.iter().map(|a| a.as_bytes().to_vec()).collect();
            for (i, a) in bytes.iter().enumerate() {
                assert!(!a.is_empty());
                for b in &bytes[i + 1..] {
                    assert_ne!(a, b);
                }
            }
        };
        distinct(vec![
            data_key(v, k, 1, s, n),
            data_key(other, k, 1, s, n),
            data_key(v, other, 1, s, n),
            data_key(v, k, 2, s, n),
            data_key(v, k, 1, other, n),
            data_key(v, k, 1, s, other),
        ]);
        distinct(vec![
            secret_value(v, s, n),
            secret_value(other, s, n),
            secret_value(v, other, n),
            secret_value(v, s, other),
        ]);
        distinct(vec![
            recovery(v, k, 1),
            recovery(other, k, 1),
            recovery(v, other, 1),
            recovery(v, k, 2),
        ]);
        distinct(vec![
            audit_key(v, k, 1),
            audit_key(other, k, 1),
            audit_key(v, other, 1),
            audit_key(v, k, 2),
        ]);
        let ctx: BTreeMap<String, String> = [("app".to_owned(), "billing".to_owned())].into();
        let ctx2: BTreeMap<String, String> = [("app".to_owned(), "orders".to_owned())].into();
        distinct(vec![
            envelope(v, k, 1, &ctx),
            envelope(other, k, 1, &ctx),
            envelope(v, other, 1, &ctx),
            envelope(v, k, 2, &ctx),
            envelope(v, k, 1, &ctx2),
            envelope(v, k, 1, &BTreeMap::new()),
        ]);
        // The same identifiers under different domains never collide.
        distinct(vec![
            recovery(v, k, 1),
            audit_key(v, k, 1),
            envelope(v, k, 1, &BTreeMap::new()),
        ]);
    }
}
