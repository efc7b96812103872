//! Who may unlock the vault: a person with the PIN, or this machine's TPM alone.
//!
//! A headless member (`coffer daemon` on an always-on server) has nobody to type a PIN at
//! boot. Its vault can be made *unattended*: every key is sealed in the TPM under the auth
//! value of a fixed empty PIN (still bound to the vault id, and to PCRs if asked). Anyone
//! with root on that machine can then unlock it, but the vault file copied elsewhere stays
//! useless, because the keys only come out of this TPM (and, with `--pcrs`, only in this
//! boot state) — the trade-off `systemd-creds` makes with `--with-key=tpm2`.
//!
//! The policy is a MACed `vault_meta` setting. A locked vault can only read it as stored
//! (the MAC needs the unlocked audit key), which is enough to choose how to unlock: the TPM
//! decides whether that works. Every unlock then checks the MAC and that the policy names
//! the way the keys really came out, so an edit of the row is refused, never adopted.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::integrity::Integrity;
use crate::store::meta;
use crate::tpm::PinAuth;

/// The PIN whose auth value seals an unattended vault's keys. Fixed and empty: nothing
/// about it is secret; the TPM (and its PCR policy, if any) is what guards the keys.
const UNATTENDED_PIN: &str = "";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnlockPolicy {
    /// The TPM releases the keys to whoever gives the PIN (the default).
    Pin,
    /// The TPM releases the keys with no PIN, to any process on this machine that can use
    /// it (root, or the owner of the TPM device).
    Unattended,
}

impl UnlockPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            UnlockPolicy::Pin => "pin",
            UnlockPolicy::Unattended => "unattended",
        }
    }

    /// How `status` shows the policy.
    pub fn describe(self) -> &'static str {
        match self {
            UnlockPolicy::Pin => "pin",
            UnlockPolicy::Unattended => "unattended (TPM only, no PIN)",
        }
    }

    fn parse(value: &[u8]) -> Result<Self> {
        match value {
            b"pin" => Ok(UnlockPolicy::Pin),
            b"unattended" => Ok(UnlockPolicy::Unattended),
            _ => Err(Error::UnlockPolicyTampered),
        }
    }

    /// The TPM auth value the keys are sealed under with this policy and `pin`.
    pub(super) fn auth(self, vault_id: uuid::Uuid, pin: &str) -> PinAuth {
        match self {
            UnlockPolicy::Pin => PinAuth::derive(vault_id.as_bytes(), pin),
            UnlockPolicy::Unattended => PinAuth::derive(vault_id.as_bytes(), UNATTENDED_PIN),
        }
    }
}

/// The policy as stored, unauthenticated: what a locked vault goes by to choose how to
/// unlock. A vault from before policies has no row, and unlocks with a PIN.
pub(super) fn stored(conn: &Connection) -> Result<UnlockPolicy> {
    match meta::get(conn, meta::UNLOCK_POLICY)? {
        None => Ok(UnlockPolicy::Pin),
        Some(value) => UnlockPolicy::parse(&value),
    }
}

/// The policy, refused if its row was edited outside Coffer.
pub(super) fn verified(conn: &Connection, integrity: &Integrity) -> Result<UnlockPolicy> {
    match integrity.setting(conn, meta::UNLOCK_POLICY) {
        Ok(None) => Ok(UnlockPolicy::Pin),
        Ok(Some(value)) => UnlockPolicy::parse(&value),
        Err(Error::SettingTampered { .. }) => Err(Error::UnlockPolicyTampered),
        Err(other) => Err(other),
    }
}

/// Records the policy with its MAC, in the transaction that seals the keys to match it.
pub(super) fn write(
    tx: &rusqlite::Transaction<'_>,
    integrity: &Integrity,
    policy: UnlockPolicy,
) -> Result<()> {
    integrity.set_setting(tx, meta::UNLOCK_POLICY, policy.as_str().as_bytes())
}

#[cfg(test)]
#[path = "unlock_policy_tests.rs"]
mod tests;
