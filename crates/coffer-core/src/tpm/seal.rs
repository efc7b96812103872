//! Sealing a key-encryption key into a TPM data object, and unsealing it again.
//!
//! Every transient thing created here (sessions, the loaded sealed object) is flushed before
//! returning, on success and on failure, because a TPM used without a resource manager has
//! only a few slots for them.

use tss_esapi::attributes::SessionAttributesBuilder;
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{KeyHandle, ObjectHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{Auth, Digest, SensitiveData, SymmetricDefinition};
use tss_esapi::{Context, WrapperErrorKind};
use zeroize::Zeroize;

use super::blob::SealedKek;
use super::error::{generic, RcClass, TpmError};
use super::info;
use super::pcr::PcrBinding;
use super::pin::PinAuth;
use super::template;
use crate::crypto::{Kek, KEY_LEN};

/// Seals `kek` under `primary` with the PIN-derived auth value and, if `pcrs` is not empty, a
/// policy that also requires those PCRs to keep their current values.
pub(crate) fn seal(
    ctx: &mut Context,
    tcti: &str,
    primary: KeyHandle,
    kek: &Kek,
    pin: &PinAuth,
    pcrs: &PcrBinding,
) -> Result<SealedKek, TpmError> {
    const OP: &str = "seal the vault key";
    let policy = if pcrs.is_empty() {
        None
    } else {
        Some(pcr_policy(ctx, tcti, pcrs)?)
    };
    let public = template::sealed_object(policy).map_err(|e| generic(tcti, OP, e))?;
    let auth = Auth::try_from(pin.expose().to_vec()).map_err(|e| generic(tcti, OP, e))?;
    let data = SensitiveData::try_from(kek.expose().to_vec()).map_err(|e| generic(tcti, OP, e))?;

    // A session salted with the primary key, with parameter encryption both ways, so neither
    // the key nor the auth value crosses the TPM bus in the clear.
    let session = start_session(ctx, primary, SessionType::Hmac, true, true)
        .map_err(|e| generic(tcti, "start a TPM session", e))?;
    let created = ctx.execute_with_session(Some(session), |c| {
        c.create(primary, public, Some(auth), Some(data), None, None)
    });
    flush(ctx, session_object(session));
    let created = created.map_err(|e| generic(tcti, OP, e))?;
    SealedKek::from_tpm(created.out_public, &created.out_private, pcrs.clone())
        .map_err(|e| generic(tcti, OP, e))
}

/// Loads `sealed` under `primary` and unseals it with the PIN-derived auth value (and the PCR
/// policy if it has one).
pub(crate) fn unseal(
    ctx: &mut Context,
    tcti: &str,
    primary: KeyHandle,
    sealed: &SealedKek,
    pin: &PinAuth,
) -> Result<Kek, TpmError> {
    let public = sealed.decode_public()?;
    let private = sealed.decode_private()?;
    // The parent's auth is empty and the private blob is already encrypted to it, so a plain
    // password session is enough here.
    let object = ctx
        .execute_with_session(Some(AuthSession::Password), |c| {
            c.load(primary, private, public)
        })
        .map_err(|e| match RcClass::of_esapi(&e) {
            RcClass::Integrity => TpmError::ForeignKey,
            _ => generic(tcti, "load the sealed vault key", e),
        })?;
    let result = unseal_loaded(ctx, tcti, primary, object, sealed, pin);
    flush(ctx, object.into());
    result
}

fn unseal_loaded(
    ctx: &mut Context,
    tcti: &str,
    primary: KeyHandle,
    object: KeyHandle,
    sealed: &SealedKek,
    pin: &PinAuth,
) -> Result<Kek, TpmError> {
    const OP: &str = "unseal the vault key";
    let auth = Auth::try_from(pin.expose().to_vec()).map_err(|e| generic(tcti, OP, e))?;
    ctx.tr_set_auth(object.into(), auth)
        .map_err(|e| generic(tcti, OP, e))?;

    let bound = !sealed.pcrs.is_empty();
    let kind = if bound {
        SessionType::Policy
    } else {
        SessionType::Hmac
    };
    // Salted, and encrypting the response so the key does not cross the bus in the clear.
    // (Unseal has no command parameter to encrypt, so `decrypt` must stay clear.)
    let session = start_session(ctx, primary, kind, false, true)
        .map_err(|e| generic(tcti, "start a TPM session", e))?;
    let result = (|| {
        if bound {
            let selection = sealed.pcrs.selection()?;
            let policy = PolicySession::try_from(session)
                .map_err(|e| generic(tcti, "start a TPM policy session", e))?;
            ctx.execute_without_session(|c| {
                c.policy_pcr(policy, Digest::default(), selection)?;
                c.policy_auth_value(policy)
            })
            .map_err(|e| generic(tcti, "run the PCR policy", e))?;
        }
        ctx.execute_with_session(Some(session), |c| c.unseal(object.into()))
            .map_err(|e| unseal_error(ctx, tcti, sealed, e))
    })();
    flush(ctx, session_object(session));
    let data = result?;
    if data.len() != KEY_LEN {
        return Err(TpmError::Malformed {
            reason: format!(
                "the sealed object holds {} bytes instead of a {KEY_LEN}-byte key",
                data.len()
            ),
        });
    }
    let mut bytes = [0u8; KEY_LEN];
    bytes.copy_from_slice(data.value());
    let kek = Kek::from_bytes(bytes);
    bytes.zeroize();
    Ok(kek)
}

/// What a failed TPM2_Unseal means for the user.
fn unseal_error(
    ctx: &mut Context,
    tcti: &str,
    sealed: &SealedKek,
    error: tss_esapi::Error,
) -> TpmError {
    match RcClass::of_esapi(&error) {
        RcClass::AuthFail | RcClass::BadAuth => match info::da_status(ctx) {
            Ok(status) if status.in_lockout => TpmError::Lockout {
                retry_after_secs: status.retry_after_secs(),
            },
            Ok(status) => TpmError::WrongPin {
                attempts_left: Some(status.attempts_left()),
            },
            Err(_) => TpmError::WrongPin {
                attempts_left: None,
            },
        },
        RcClass::Lockout => TpmError::Lockout {
            retry_after_secs: info::da_status(ctx).ok().and_then(|s| s.retry_after_secs()),
        },
        RcClass::PolicyFail | RcClass::PcrChanged if !sealed.pcrs.is_empty() => {
            TpmError::PcrMismatch {
                pcrs: sealed.pcrs.clone(),
            }
        }
        _ => generic(tcti, "unseal the vault key", error),
    }
}

/// The authPolicy for PolicyPCR(current values of `pcrs`) followed by PolicyAuthValue,
/// computed by the TPM in a trial session.
fn pcr_policy(ctx: &mut Context, tcti: &str, pcrs: &PcrBinding) -> Result<Digest, TpmError> {
    const OP: &str = "compute the PCR policy";
    let selection = pcrs.selection()?;
    let trial = ctx
        .start_auth_session(
            None,
            None,
            None,
            SessionType::Trial,
            SymmetricDefinition::Null,
            HashingAlgorithm::Sha256,
        )
        .and_then(|s| {
            s.ok_or(tss_esapi::Error::WrapperError(
                WrapperErrorKind::WrongValueFromTpm,
            ))
        })
        .map_err(|e| generic(tcti, OP, e))?;
    let digest = PolicySession::try_from(trial).and_then(|policy| {
        ctx.execute_without_session(|c| {
            c.policy_pcr(policy, Digest::default(), selection)?;
            c.policy_auth_value(policy)?;
            c.policy_get_digest(policy)
        })
    });
    flush(ctx, session_object(trial));
    digest.map_err(|e| generic(tcti, OP, e))
}

/// Starts a session salted with `primary` (so its key is secret even to someone watching the
/// bus), with AES-128-CFB parameter encryption as requested.
fn start_session(
    ctx: &mut Context,
    primary: KeyHandle,
    kind: SessionType,
    decrypt: bool,
    encrypt: bool,
) -> Result<AuthSession, tss_esapi::Error> {
    let session = ctx
        .start_auth_session(
            Some(primary),
            None,
            None,
            kind,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )?
        .ok_or(tss_esapi::Error::WrapperError(
            WrapperErrorKind::WrongValueFromTpm,
        ))?;
    let (attributes, mask) = SessionAttributesBuilder::new()
        .with_continue_session(true)
        .with_decrypt(decrypt)
        .with_encrypt(encrypt)
        .build();
    if let Err(e) = ctx.tr_sess_set_attributes(session, attributes, mask) {
        flush(ctx, session_object(session));
        return Err(e);
    }
    Ok(session)
}

fn session_object(session: AuthSession) -> ObjectHandle {
    SessionHandle::from(session).into()
}

/// Flushes a transient handle, ignoring failure: there is nothing better to do if the TPM is
/// gone, and the error that got us here matters more.
pub(crate) fn flush(ctx: &mut Context, handle: ObjectHandle) {
    let _ = ctx.flush_context(handle);
}

/// Flushes every transient object and loaded session in the TPM: what a killed process
/// left behind. Only called while holding the client lock on a TPM without a resource
/// manager, where nothing loaded can belong to a live Coffer process.
pub(crate) fn flush_leftovers(ctx: &mut Context) -> tss_esapi::Result<()> {
    use tss_esapi::constants::CapabilityType;
    use tss_esapi::structures::CapabilityData;
    // TPM_HT_TRANSIENT, then TPM_HT_HMAC_SESSION / TPM_HT_POLICY_SESSION (loaded sessions).
    for first in [0x8000_0000u32, 0x0200_0000, 0x0300_0000] {
        let (data, _) = ctx.get_capability(CapabilityType::Handles, first, 64)?;
        let CapabilityData::Handles(handles) = data else {
            continue;
        };
        for handle in handles.iter() {
            if let Ok(object) = ctx.tr_from_tpm_public(*handle) {
                flush(ctx, object);
            }
        }
    }
    Ok(())
}
