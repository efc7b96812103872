//! The only module that talks to the TPM.
//!
//! Each key version of a vault is a 32-byte [`Kek`] sealed in the TPM: a keyed-hash data
//! object created (TPM2_Create) under a storage primary key that is derived from a fixed
//! template in the owner hierarchy. The primary is never persisted: the same template gives the
//! same key on the same TPM, so it is recreated lazily once per [`Tpm`] connection and flushed
//! when the connection is dropped.
//!
//! The sealed object's auth value is derived from the user's PIN ([`PinAuth`]), and the object
//! is protected by the TPM's dictionary-attack logic (no `noDA`), so the TPM rate-limits PIN
//! guessing. Optionally ([`PcrBinding`]) its policy also requires SHA-256 PCRs to keep the
//! values they had at seal time. Sessions are salted with the primary key and use parameter
//! encryption, so neither the key nor anything PIN-derived crosses the TPM bus in the clear.
//!
//! Without a resource manager (swtpm, `/dev/tpm0`) a TPM has only a few transient slots (3 on
//! swtpm), shared by every client, so every session and loaded object is flushed as soon as it
//! has served, and each open [`Tpm`] holds one slot for its primary key: hold a [`Tpm`] only as
//! long as needed. (`/dev/tpm0` even admits one process at a time; `/dev/tpmrm0` has none of
//! these limits.)
//!
//! The TSS libraries print their own errors to stderr; programs that don't want that can set
//! `TSS2_LOG=all+NONE` in their environment.

mod blob;
mod client_lock;
mod da;
mod error;
mod info;
mod nv;
mod pcr;
mod pin;
mod probe;
mod seal;
mod template;

#[cfg(test)]
mod tests;

use std::str::FromStr;

use tss_esapi::constants::{CapabilityType, StartupType};
use tss_esapi::handles::KeyHandle;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::{Context, TctiNameConf};

pub use blob::SealedKek;
pub use error::{TpmError, TssCause};
pub use info::{DaStatus, TpmInfo};
pub use nv::NvCounterAuth;
pub use pcr::{PcrBinding, MAX_PCR};
pub use pin::{PinAuth, PIN_AUTH_LEN};

use crate::crypto::Kek;
use error::{generic, RcClass};

/// The TCTI used when `COFFER_TCTI` is not set: the kernel's resource-managed TPM device.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

/// The environment variable that selects the TPM, as a TCTI string.
pub const TCTI_ENV: &str = "COFFER_TCTI";

/// The TCTI string from `COFFER_TCTI` if it is set and not empty, else [`DEFAULT_TCTI`].
pub fn tcti_from_env() -> String {
    std::env::var(TCTI_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TCTI.to_owned())
}

/// A connection to a TPM.
///
/// Not `Sync`; use one per thread (or behind a mutex). Dropping it flushes the primary key and
/// closes the connection.
pub struct Tpm {
    tcti: String,
    /// `None` after the connection was lost or handed over (see
    /// [`set_dictionary_attack_parameters`](Self::set_dictionary_attack_parameters)); the next
    /// operation reconnects.
    ctx: Option<Context>,
    /// The storage primary key, created on first use.
    primary: Option<KeyHandle>,
    /// The Name the storage primary must have (see
    /// [`expect_primary_name`](Self::expect_primary_name)).
    expected_primary: Option<Vec<u8>>,
    /// Keeps other Coffer processes off a TPM without a resource manager; declared last
    /// so it is released only after the primary is flushed and the connection closed.
    _lock: Option<client_lock::ClientLock>,
}

impl Tpm {
    /// Connects to the TPM at `tcti` (like `"device:/dev/tpmrm0"` or
    /// `"swtpm:host=127.0.0.1,port=2321"`) and checks that it answers.
    ///
    /// If the TPM has not been started (a bare simulator), this runs TPM2_Startup(CLEAR).
    pub fn connect(tcti: &str) -> Result<Tpm, TpmError> {
        let lock = client_lock::ClientLock::acquire(tcti)?;
        Ok(Tpm {
            tcti: tcti.to_owned(),
            ctx: Some(open(tcti)?),
            primary: None,
            expected_primary: None,
            _lock: lock,
        })
    }

    /// Connects to the TPM named by `COFFER_TCTI` (see [`tcti_from_env`]).
    pub fn from_env() -> Result<Tpm, TpmError> {
        Tpm::connect(&tcti_from_env())
    }

    /// The TCTI string this connection uses.
    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    /// Requires the storage primary key this connection creates to have `name` (the TPM
    /// Name recorded when the vault was created), before any session is salted with it.
    ///
    /// Sessions are salted by encrypting to the primary's public key as the TPM returns it;
    /// something between Coffer and the TPM could return its own key and read every salted
    /// session. The primary is derived from the TPM's seed and a fixed template, so its Name
    /// never changes on the same TPM: a different one is [`TpmError::PrimaryMismatch`].
    pub fn expect_primary_name(&mut self, name: &[u8]) {
        self.expected_primary = Some(name.to_vec());
    }

    /// The Name of the storage primary key (to record at `init` and `recover`).
    pub fn primary_name(&mut self) -> Result<Vec<u8>, TpmError> {
        self.with_primary(|ctx, tcti, primary| {
            ctx.tr_get_name(primary.into())
                .map(|name| name.value().to_vec())
                .map_err(|e| generic(tcti, "read the storage primary key's name", e))
        })
    }

    /// Seals `kek` so that only this TPM, given the PIN behind `pin` (and, if `pcrs` is not
    /// empty, the current values of those SHA-256 PCRs), can unseal it.
    pub fn seal(
        &mut self,
        kek: &Kek,
        pin: &PinAuth,
        pcrs: &PcrBinding,
    ) -> Result<SealedKek, TpmError> {
        self.with_free_slots(|tpm| {
            tpm.with_primary(|ctx, tcti, primary| seal::seal(ctx, tcti, primary, kek, pin, pcrs))
        })
    }

    /// Unseals a key sealed by [`seal`](Self::seal).
    ///
    /// Fails with [`TpmError::WrongPin`] (and how many attempts are left) on a wrong PIN,
    /// [`TpmError::Lockout`] when the TPM refuses PIN attempts for a while,
    /// [`TpmError::PcrMismatch`] when the bound PCRs changed, [`TpmError::ForeignKey`] when the
    /// blob belongs to another TPM (or this one was cleared), and [`TpmError::Malformed`] when
    /// the blob does not decode.
    pub fn unseal(&mut self, sealed: &SealedKek, pin: &PinAuth) -> Result<Kek, TpmError> {
        self.with_free_slots(|tpm| {
            tpm.with_primary(|ctx, tcti, primary| seal::unseal(ctx, tcti, primary, sealed, pin))
        })
    }

    /// Runs `op`; if the TPM is out of object slots, flushes what other processes left
    /// loaded and tries once more. On a TPM without a resource manager this process holds
    /// the client lock, so no other Coffer process owns anything loaded: leftovers come
    /// from a process that was killed between loading and flushing.
    fn with_free_slots<T>(
        &mut self,
        mut op: impl FnMut(&mut Self) -> Result<T, TpmError>,
    ) -> Result<T, TpmError> {
        match op(self) {
            Err(TpmError::OutOfMemory { .. }) if self._lock.is_some() => {
                self.disconnect();
                self.with_context(|ctx, tcti| {
                    seal::flush_leftovers(ctx)
                        .map_err(|e| generic(tcti, "flush objects left loaded", e))
                })?;
                op(self)
            }
            other => other,
        }
    }

    /// Maker, firmware version, whether it is a software TPM, and the dictionary-attack state.
    pub fn info(&mut self) -> Result<TpmInfo, TpmError> {
        self.with_context(|ctx, tcti| {
            info::read(ctx, tcti).map_err(|e| generic(tcti, "read the TPM's properties", e))
        })
    }

    /// The dictionary-attack (PIN lockout) state alone.
    pub fn dictionary_attack_status(&mut self) -> Result<DaStatus, TpmError> {
        self.with_context(|ctx, tcti| {
            info::da_status(ctx).map_err(|e| generic(tcti, "read the TPM's lockout state", e))
        })
    }

    /// Sets the TPM's dictionary-attack parameters (TPM2_DictionaryAttackParameters): after
    /// `max_tries` wrong PINs (or other DA-protected authorizations) the TPM is in lockout;
    /// one failure is forgiven every `recovery_secs` seconds of TPM run time (0 turns the
    /// protection off); after a failed lockout-hierarchy authorization that hierarchy waits
    /// `lockout_recovery_secs`.
    ///
    /// This is TPM-wide, not per vault: it is meant for tests and for administrators. It needs
    /// the lockout hierarchy's password to be empty (the default on a fresh TPM). The command
    /// runs on a connection of its own (tss-esapi 7 does not wrap it), so this connection is
    /// closed first and reopened by the next operation.
    pub fn set_dictionary_attack_parameters(
        &mut self,
        max_tries: u32,
        recovery_secs: u32,
        lockout_recovery_secs: u32,
    ) -> Result<(), TpmError> {
        self.disconnect();
        da::set_parameters(&self.tcti, max_tries, recovery_secs, lockout_recovery_secs)
    }

    /// Ends a dictionary-attack lockout and clears the failure counter
    /// (TPM2_DictionaryAttackLockReset). Like
    /// [`set_dictionary_attack_parameters`](Self::set_dictionary_attack_parameters) it needs an
    /// empty lockout password and reconnects afterwards.
    pub fn reset_dictionary_attack_lockout(&mut self) -> Result<(), TpmError> {
        self.disconnect();
        da::reset_lockout(&self.tcti)
    }

    /// Runs `op` with a live context, reconnecting if the last connection was lost. A lost
    /// connection drops the context so the next call starts afresh.
    fn with_context<T>(
        &mut self,
        op: impl FnOnce(&mut Context, &str) -> Result<T, TpmError>,
    ) -> Result<T, TpmError> {
        let ctx = match &mut self.ctx {
            Some(ctx) => ctx,
            None => {
                self.primary = None;
                self.ctx.insert(open(&self.tcti)?)
            }
        };
        let result = op(ctx, &self.tcti);
        if matches!(result, Err(TpmError::ConnectionLost { .. })) {
            self.primary = None;
            self.ctx = None;
        }
        result
    }

    /// Like [`with_context`](Self::with_context), with the storage primary key created first if
    /// this connection has none yet.
    fn with_primary<T>(
        &mut self,
        op: impl FnOnce(&mut Context, &str, KeyHandle) -> Result<T, TpmError>,
    ) -> Result<T, TpmError> {
        // A primary handle is only meaningful on the connection that created it.
        let mut cached = self.ctx.as_ref().and(self.primary);
        let expected = self.expected_primary.clone();
        let result = self.with_context(|ctx, tcti| {
            let primary = match cached {
                Some(primary) => primary,
                None => {
                    let primary = create_primary(ctx, tcti)?;
                    if let Some(expected) = &expected {
                        check_primary_name(ctx, tcti, primary, expected)?;
                    }
                    cached = Some(primary);
                    primary
                }
            };
            op(ctx, tcti, primary)
        });
        // `with_context` forgets the primary along with a lost connection.
        if self.ctx.is_some() {
            self.primary = cached;
        }
        result
    }

    /// Flushes the primary and closes the connection.
    fn disconnect(&mut self) {
        if let (Some(ctx), Some(primary)) = (&mut self.ctx, self.primary.take()) {
            seal::flush(ctx, primary.into());
        }
        self.ctx = None;
    }
}

impl Drop for Tpm {
    fn drop(&mut self) {
        self.disconnect();
    }
}

impl std::fmt::Debug for Tpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tpm")
            .field("tcti", &self.tcti)
            .field("connected", &self.ctx.is_some())
            .field("primary_loaded", &self.primary.is_some())
            .finish()
    }
}

/// Opens a context and checks the TPM answers, starting it up if nobody did.
fn open(tcti: &str) -> Result<Context, TpmError> {
    probe::check_answers(tcti)?;
    let unreachable = |reason: String| TpmError::Unreachable {
        tcti: tcti.to_owned(),
        reason,
    };
    let conf = TctiNameConf::from_str(tcti).map_err(|_| {
        unreachable(
            "not a TCTI string; expected device:PATH, swtpm:host=H,port=P, mssim:host=H,port=P \
             or tabrmd:"
                .to_owned(),
        )
    })?;
    let mut ctx = Context::new(conf).map_err(|e| unreachable(open_failure(tcti, e)))?;
    let probe = |ctx: &mut Context| {
        ctx.execute_without_session(|c| c.get_capability(CapabilityType::TpmProperties, 0x100, 1))
    };
    match probe(&mut ctx) {
        Ok(_) => Ok(ctx),
        Err(e) => match RcClass::of_esapi(&e) {
            RcClass::Initialize => {
                ctx.execute_without_session(|c| c.startup(StartupType::Clear))
                    .map_err(|e| generic(tcti, "start the TPM up", e))?;
                Ok(ctx)
            }
            RcClass::Connection => Err(unreachable(TssCause::from_esapi(e).to_string())),
            _ => Err(generic(tcti, "query the TPM", e)),
        },
    }
}

/// Why the TCTI did not open, in words: for a device, what opening it says; else the TSS code.
fn open_failure(tcti: &str, error: tss_esapi::Error) -> String {
    let code = TssCause::from_esapi(error).to_string();
    let Some(path) = tcti.strip_prefix("device:").filter(|p| !p.is_empty()) else {
        return format!("could not connect: {code}");
    };
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("{path} does not exist, so there is no TPM or its driver is not loaded")
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            format!("no permission to open {path}")
        }
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            format!("{path} is in use by another program")
        }
        Err(e) => format!("cannot open {path}: {e}"),
        Ok(_) => format!("could not open {path}: {code}"),
    }
}

/// Refuses (and flushes) a primary whose Name is not the recorded one.
fn check_primary_name(
    ctx: &mut Context,
    tcti: &str,
    primary: KeyHandle,
    expected: &[u8],
) -> Result<(), TpmError> {
    let name = ctx.tr_get_name(primary.into());
    let matches = matches!(&name, Ok(name) if name.value() == expected);
    if matches {
        return Ok(());
    }
    seal::flush(ctx, primary.into());
    match name {
        Err(e) => Err(generic(tcti, "read the storage primary key's name", e)),
        Ok(_) => Err(TpmError::PrimaryMismatch {
            tcti: tcti.to_owned(),
        }),
    }
}

/// Creates the storage primary key from the fixed template.
fn create_primary(ctx: &mut Context, tcti: &str) -> Result<KeyHandle, TpmError> {
    const OP: &str = "create the storage primary key";
    let template = template::storage_primary().map_err(|e| generic(tcti, OP, e))?;
    ctx.execute_with_session(Some(AuthSession::Password), |c| {
        c.create_primary(Hierarchy::Owner, template, None, None, None, None)
    })
    .map(|created| created.key_handle)
    .map_err(|e| match RcClass::of_esapi(&e) {
        RcClass::AuthFail | RcClass::BadAuth => TpmError::OwnerAuthRequired,
        _ => generic(tcti, OP, e),
    })
}
