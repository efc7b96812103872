//! Vault-wide settings stored as named values: the vault id, the recovery public key and
//! its Argon2id parameters, the PCR binding, and the audit chain's head.

use rusqlite::{Connection, OptionalExtension};

use super::StoreError;

pub const VAULT_ID: &str = "vault_id";
pub const RECOVERY_PUBLIC_KEY: &str = "recovery_public_key";
pub const RECOVERY_PARAMS: &str = "recovery_params";
pub const PCR_BINDING: &str = "pcr_binding";
pub const AUDIT_HEAD: &str = "audit_head";
/// MAC of the recovery key, its parameters and the PCR binding (see `vault::integrity`).
pub const SETTINGS_MAC: &str = "settings_mac";
/// The vault's TPM rollback counter: NV index, last value, MAC (see `vault::rollback`).
/// The TPM Name of the storage primary key, checked before salting sessions with it.
pub const PRIMARY_NAME: &str = "tpm_primary_name";
pub const ROLLBACK_COUNTER: &str = "rollback_counter";
pub const FAILED_UNLOCK_COUNTER: &str = "failed_unlock_counter";
/// This vault's region name and its MAC (see `vault::regions`).
pub const REGION_NAME: &str = "region_name";
pub const REGION_MAC: &str = "region_mac";
/// This vault's peer identity: public certificates and keys, private halves sealed under
/// a key derived from the audit key (see `region::identity`).
pub const IDENTITY: &str = "region_identity";

pub fn get(conn: &Connection, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM vault_meta WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()?)
}

/// Like [`get`], for values every vault must have.
pub fn require(conn: &Connection, name: &'static str) -> Result<Vec<u8>, StoreError> {
    get(conn, name)?.ok_or(StoreError::Missing { what: name })
}

pub fn set(conn: &Connection, name: &str, value: &[u8]) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO vault_meta (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )?
    .execute(rusqlite::params![name, value])?;
    Ok(())
}

pub fn delete(conn: &Connection, name: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM vault_meta WHERE name = ?1")?
        .execute([name])?;
    Ok(())
}
