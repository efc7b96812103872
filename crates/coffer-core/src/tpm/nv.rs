//! Monotonic NV counters (TPM_NT_COUNTER): the TPM-side anchor of vault rollback detection.
//!
//! A counter index can only go up, survives reboots, and a newly defined counter starts at
//! the highest value any counter on this TPM ever had, so neither deleting and re-creating
//! it nor restoring an old vault file can bring back a lower value.
//!
//! Coffer defines its counters in the owner hierarchy with:
//! - `AUTHWRITE | AUTHREAD`: reading and incrementing need the index's own auth value. For
//!   the rollback counter that is a 32-byte value the vault derives from its audit key (so
//!   only an unlocked vault knows it); for the failed-unlock counter it is empty, because
//!   a process that just failed to unlock must be able to count itself;
//! - `NO_DA`: a wrong auth value must not count towards the PIN lockout;
//! - an `authPolicy` that is a vault-specific HMAC no policy session can reproduce: it is
//!   never used to authorise anything, but it makes the index's public area (and Name)
//!   recognisably this vault's.
//!
//! Whoever has the owner authorization (empty on most Linux machines) can still delete the
//! index; Coffer then reports the counter as missing rather than trusting the file.

use tss_esapi::attributes::NvIndexAttributesBuilder;
use tss_esapi::constants::NvIndexType;
use tss_esapi::handles::{NvIndexHandle, NvIndexTpmHandle, ObjectHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::{NvAuth, Provision};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{Auth, Digest, NvPublicBuilder};
use tss_esapi::Context;

use super::error::{generic, raw_response_code, RcClass, TpmError};
use super::Tpm;

/// What identifies and authorises one vault's counter. Holds no key material beyond the
/// index auth value, which is wiped with the `Auth` buffer.
pub struct NvCounterAuth {
    /// The index's auth value (empty: anyone may read and increment it).
    pub auth: Vec<u8>,
    /// The index's (never satisfiable) policy digest, which marks it as this vault's.
    pub policy: [u8; 32],
}

impl Drop for NvCounterAuth {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.auth);
    }
}

/// TPM_RC_HANDLE (format one, any handle number): the index does not exist.
const RC_HANDLE: u32 = 0x0b;
/// TPM_RC_NV_DEFINED: the index is already taken.
const RC_NV_DEFINED: u32 = 0x14c;

fn tpm_rc(error: &tss_esapi::Error) -> Option<u32> {
    raw_response_code(error).filter(|rc| (rc >> 16) & 0xff == 0)
}

fn is_missing_handle(error: &tss_esapi::Error) -> bool {
    matches!(tpm_rc(error), Some(rc) if rc & 0x080 != 0 && rc & 0x3f == RC_HANDLE)
}

impl Tpm {
    /// Defines a counter at the first free index of `candidates`, increments it once (a
    /// counter has no value until then) and returns the index and its value.
    pub fn define_counter(
        &mut self,
        candidates: &[u32],
        id: &NvCounterAuth,
    ) -> Result<(u32, u64), TpmError> {
        for &index in candidates {
            let defined = self.with_context(|ctx, tcti| define(ctx, tcti, index, id))?;
            if defined {
                let value = self.increment_counter(index, id)?;
                return Ok((index, value));
            }
        }
        Err(TpmError::NvIndexesTaken)
    }

    /// The counter's value, or `None` when no index exists at `index`. An index that exists
    /// but is not this vault's counter is [`TpmError::NvCounterForeign`].
    pub fn read_counter(
        &mut self,
        index: u32,
        id: &NvCounterAuth,
    ) -> Result<Option<u64>, TpmError> {
        self.with_context(|ctx, tcti| {
            let Some(handle) = open_index(ctx, tcti, index, id)? else {
                return Ok(None);
            };
            let read = ctx
                .execute_with_session(Some(AuthSession::Password), |c| {
                    c.nv_read(NvAuth::NvIndex(handle), handle, 8, 0)
                })
                .map_err(|e| nv_error(tcti, index, "read the rollback counter", e));
            close(ctx, handle);
            counter_value(&read?, index).map(Some)
        })
    }

    /// Increments the counter and returns its new value.
    pub fn increment_counter(&mut self, index: u32, id: &NvCounterAuth) -> Result<u64, TpmError> {
        self.with_context(|ctx, tcti| {
            let handle =
                open_index(ctx, tcti, index, id)?.ok_or(TpmError::NvCounterMissing { index })?;
            let done = ctx
                .execute_with_session(Some(AuthSession::Password), |c| {
                    c.nv_increment(NvAuth::NvIndex(handle), handle)
                })
                .map_err(|e| nv_error(tcti, index, "increment the rollback counter", e));
            close(ctx, handle);
            done
        })?;
        self.read_counter(index, id)?
            .ok_or(TpmError::NvCounterMissing { index })
    }
}

impl Tpm {
    /// Increments a counter whose auth value is empty, knowing only its index: what a
    /// process that failed to unlock can do (it has no key to recognise the index by).
    /// Returns the new value.
    pub fn increment_open_counter(&mut self, index: u32) -> Result<u64, TpmError> {
        const OP: &str = "count a failed unlock";
        self.with_context(|ctx, tcti| {
            let tpm_handle = NvIndexTpmHandle::new(index).map_err(|e| generic(tcti, OP, e))?;
            let object = ctx
                .execute_without_session(|c| c.tr_from_tpm_public(TpmHandle::NvIndex(tpm_handle)))
                .map_err(|e| {
                    if is_missing_handle(&e) {
                        TpmError::NvCounterMissing { index }
                    } else {
                        generic(tcti, OP, e)
                    }
                })?;
            let handle = NvIndexHandle::from(object);
            let done = ctx
                .execute_with_session(Some(AuthSession::Password), |c| {
                    c.nv_increment(NvAuth::NvIndex(handle), handle)?;
                    c.nv_read(NvAuth::NvIndex(handle), handle, 8, 0)
                })
                .map_err(|e| generic(tcti, OP, e));
            close(ctx, handle);
            counter_value(&done?, index)
        })
    }
}

/// A counter's eight big-endian bytes; anything else is not a counter of ours.
fn counter_value(data: &tss_esapi::structures::MaxNvBuffer, index: u32) -> Result<u64, TpmError> {
    let bytes: [u8; 8] = data
        .value()
        .try_into()
        .map_err(|_| TpmError::NvCounterForeign { index })?;
    Ok(u64::from_be_bytes(bytes))
}

/// Defines the index; false if it is already taken.
fn define(ctx: &mut Context, tcti: &str, index: u32, id: &NvCounterAuth) -> Result<bool, TpmError> {
    const OP: &str = "define the rollback counter";
    let attributes = NvIndexAttributesBuilder::new()
        .with_nv_index_type(NvIndexType::Counter)
        .with_auth_write(true)
        .with_auth_read(true)
        .with_no_da(true)
        .build()
        .map_err(|e| generic(tcti, OP, e))?;
    let handle = NvIndexTpmHandle::new(index).map_err(|e| generic(tcti, OP, e))?;
    let policy = Digest::try_from(id.policy.to_vec()).map_err(|e| generic(tcti, OP, e))?;
    let public = NvPublicBuilder::new()
        .with_nv_index(handle)
        .with_index_name_algorithm(HashingAlgorithm::Sha256)
        .with_index_attributes(attributes)
        .with_index_auth_policy(policy)
        .with_data_area_size(8)
        .build()
        .map_err(|e| generic(tcti, OP, e))?;
    let auth = Auth::try_from(id.auth.clone()).map_err(|e| generic(tcti, OP, e))?;
    match ctx.execute_with_session(Some(AuthSession::Password), |c| {
        c.nv_define_space(Provision::Owner, Some(auth), public)
    }) {
        Ok(handle) => {
            close(ctx, handle);
            Ok(true)
        }
        Err(e) if tpm_rc(&e) == Some(RC_NV_DEFINED) => Ok(false),
        Err(e) => Err(match RcClass::of_esapi(&e) {
            RcClass::AuthFail | RcClass::BadAuth => TpmError::OwnerAuthRequired,
            _ => generic(tcti, OP, e),
        }),
    }
}

/// An ESYS handle for the index with its auth set, or `None` if it does not exist. Checks
/// that it is a counter carrying this vault's policy.
fn open_index(
    ctx: &mut Context,
    tcti: &str,
    index: u32,
    id: &NvCounterAuth,
) -> Result<Option<NvIndexHandle>, TpmError> {
    const OP: &str = "open the rollback counter";
    let tpm_handle = NvIndexTpmHandle::new(index).map_err(|e| generic(tcti, OP, e))?;
    let object = match ctx
        .execute_without_session(|c| c.tr_from_tpm_public(TpmHandle::NvIndex(tpm_handle)))
    {
        Ok(object) => object,
        Err(e) if is_missing_handle(&e) => return Ok(None),
        Err(e) => return Err(generic(tcti, OP, e)),
    };
    let handle = NvIndexHandle::from(object);
    let public = ctx.execute_without_session(|c| c.nv_read_public(handle));
    let ours = match &public {
        Ok((public, _)) => {
            public.attributes().index_type().ok() == Some(NvIndexType::Counter)
                && public.authorization_policy().value() == id.policy
        }
        Err(_) => false,
    };
    if !ours {
        close(ctx, handle);
        return match public {
            Err(e) => Err(generic(tcti, OP, e)),
            Ok(_) => Err(TpmError::NvCounterForeign { index }),
        };
    }
    let auth = Auth::try_from(id.auth.clone()).map_err(|e| generic(tcti, OP, e));
    match auth.and_then(|auth| {
        ctx.tr_set_auth(handle.into(), auth)
            .map_err(|e| generic(tcti, OP, e))
    }) {
        Ok(()) => Ok(Some(handle)),
        Err(e) => {
            close(ctx, handle);
            Err(e)
        }
    }
}

fn nv_error(tcti: &str, index: u32, op: &'static str, e: tss_esapi::Error) -> TpmError {
    match RcClass::of_esapi(&e) {
        // The index is ours (its policy matched) but refuses our auth value: not this vault's.
        RcClass::AuthFail | RcClass::BadAuth => TpmError::NvCounterForeign { index },
        _ => generic(tcti, op, e),
    }
}

fn close(ctx: &mut Context, handle: NvIndexHandle) {
    let mut object: ObjectHandle = handle.into();
    let _ = ctx.tr_close(&mut object);
}
