//! How many KMS-style encryptions one key version may make.
//!
//! `encrypt`, `re-encrypt` and `generate-data-key` seal directly under the key version's KEK
//! with 96-bit random nonces. NIST SP 800-38D bounds that at 2^32 messages per key (the
//! chance of a repeated nonce, which breaks AES-GCM, then reaches 2^-32). Coffer stops far
//! below, at [`MAX_ENCRYPTIONS`], and asks for a key rotation, which starts a fresh version.
//!
//! The count lives in `vault_meta` (`kms_encryptions:<key id>:<version>`, a big-endian u64).
//! Writing it on every encryption would cost a transaction each, so a process reserves
//! blocks of [`BLOCK`] and counts down in memory: a crash can only waste part of a block,
//! never under-count. The count is not MACed: someone who can edit the file can lower it,
//! but can also do far worse to it.

use std::collections::HashMap;

use uuid::Uuid;

use super::error::{Error, Result};
use crate::store::{meta, Store, StoreError};

/// Encryptions allowed under one key version: 2^30, a quarter of a percent of the way
/// (in collision probability, 2^-4 of it) to the 2^32 bound.
pub const MAX_ENCRYPTIONS: u64 = 1 << 30;

/// Encryptions reserved per database write.
const BLOCK: u64 = 4096;

/// What this process reserved and has not used yet, per key version.
#[derive(Debug, Default)]
pub struct NonceBudget {
    left: HashMap<(Uuid, u32), u64>,
}

fn meta_name(key_id: Uuid, version: u32) -> String {
    format!("kms_encryptions:{key_id}:{version}")
}

/// The encryptions recorded for a key version.
pub fn recorded(conn: &rusqlite::Connection, key_id: Uuid, version: u32) -> Result<u64> {
    let Some(bytes) = meta::get(conn, &meta_name(key_id, version))? else {
        return Ok(0);
    };
    let bytes: [u8; 8] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Missing {
            what: "KMS encryption count",
        })?;
    Ok(u64::from_be_bytes(bytes))
}

/// Records encryptions as made (for tests and tools that need to set the count).
pub fn set_recorded(
    conn: &rusqlite::Connection,
    key_id: Uuid,
    version: u32,
    count: u64,
) -> Result<()> {
    meta::set(conn, &meta_name(key_id, version), &count.to_be_bytes())?;
    Ok(())
}

impl NonceBudget {
    /// Takes one encryption from the budget of a key version, reserving a new block in the
    /// vault file when this process has none left; refuses once the version is used up.
    pub fn take(&mut self, store: &mut Store, key_id: Uuid, version: u32) -> Result<()> {
        let left = self.left.entry((key_id, version)).or_insert(0);
        if *left == 0 {
            let tx = store.write()?;
            let used = recorded(&tx, key_id, version)?;
            if used >= MAX_ENCRYPTIONS {
                return Err(Error::KeyVersionExhausted { key_id, version });
            }
            let reserved = BLOCK.min(MAX_ENCRYPTIONS - used);
            set_recorded(&tx, key_id, version, used + reserved)?;
            tx.commit().map_err(StoreError::from)?;
            *left = reserved;
        }
        *left -= 1;
        Ok(())
    }
}
