//! Creating, unlocking, recovering and re-PINning a vault.

use std::path::Path;

use uuid::Uuid;

use super::audit::{self, Actor, AuditEvent};
use super::context;
use super::error::{Error, Result};
use super::integrity::{Integrity, RowKey};
use super::keyring::{open_audit_key, AuditKey, Keyring};
use super::unlock_policy::{self, UnlockPolicy};
use super::Vault;
use super::{failed_unlocks, rollback};
use crate::crypto::recovery::{self, RecoveryCode, RecoveryError, RecoveryParams, RecoverySecret};
use crate::crypto::Kek;
use crate::model::{KeyState, Timestamp};
use crate::store::keys::{self as key_rows, KeyRow, KeyVersionRow};
use crate::store::{meta, record_change, secrets as secret_rows, Store, StoreError};
use crate::tpm::{PcrBinding, PinAuth, Tpm, TpmError};

/// Shortest and longest PIN accepted. The TPM's lockout, not PIN length, is what stops
/// guessing; the floor only keeps out the trivially observable.
pub const PIN_MIN: usize = 6;
pub const PIN_MAX: usize = 128;

/// Shortest PIN accepted when the TPM's lockout does not really stop guessing (see
/// [`crate::tpm::DaStatus::brake_weakness`]): the PIN itself must then resist an attacker who can try
/// as fast as the TPM answers (12 characters: even digits only take centuries at 100/s).
pub const PIN_MIN_WITHOUT_LOCKOUT: usize = 12;

/// Refuses a new PIN that is too short for this TPM's dictionary-attack protection.
fn check_pin_for_tpm(pin: &str, tpm: &mut Tpm) -> Result<()> {
    let da = tpm.dictionary_attack_status()?;
    match da.brake_weakness() {
        Some(weakness) if pin.chars().count() < PIN_MIN_WITHOUT_LOCKOUT => {
            Err(Error::PinTooShortForTpm {
                min: PIN_MIN_WITHOUT_LOCKOUT,
                weakness,
            })
        }
        _ => Ok(()),
    }
}

fn check_pin(pin: &str) -> Result<()> {
    let chars = pin.chars().count();
    if !(PIN_MIN..=PIN_MAX).contains(&chars) {
        return Err(Error::PinLength {
            min: PIN_MIN,
            max: PIN_MAX,
        });
    }
    Ok(())
}

/// What `init` hands back: the unlocked vault and the recovery code to show once.
pub struct Initialized {
    pub vault: Vault,
    pub recovery_code: RecoveryCode,
}

/// Which key version to create, and what it must be bound to.
pub(super) struct KeyVersionSpec<'a> {
    pub vault_id: Uuid,
    pub key_id: Uuid,
    pub version: u32,
    pub pcrs: &'a PcrBinding,
    pub recovery_public: &'a [u8; 32],
}

/// A newly generated key version, sealed and wrapped, ready to insert.
pub(super) fn new_key_version(
    tpm: &mut Tpm,
    pin: &PinAuth,
    audit_key: &AuditKey,
    spec: &KeyVersionSpec<'_>,
) -> Result<(KeyVersionRow, Kek)> {
    let kek = Kek::generate();
    let sealed = tpm.seal(&kek, pin, spec.pcrs)?;
    let row = KeyVersionRow {
        key_id: spec.key_id,
        version: spec.version,
        sealed: sealed.to_bytes(),
        recovery_wrapped: recovery::wrap_for_recovery(
            spec.recovery_public,
            &kek,
            context::recovery(spec.vault_id, spec.key_id, spec.version).as_bytes(),
        ),
        wrapped_audit_key: audit_key.wrap(spec.vault_id, spec.key_id, spec.version, &kek),
        created_at: Timestamp::now().millis(),
    };
    Ok((row, kek))
}

impl Vault {
    /// Creates a vault file with a default key sealed in the TPM at `tcti`, and returns
    /// it unlocked together with the recovery code (shown once, never stored).
    pub fn init(path: &Path, tcti: &str, pin: &str, pcrs: PcrBinding) -> Result<Initialized> {
        check_pin(pin)?;
        Self::create(path, tcti, UnlockPolicy::Pin, pin, pcrs)
    }

    /// Creates a vault whose keys the TPM at `tcti` releases with no PIN (see
    /// [`unlock_policy`]): for a headless member that nobody is there to unlock. Anyone
    /// with root on this machine can unlock it; the file elsewhere stays useless. `pcrs`
    /// also ties the keys to this machine's boot state.
    pub fn init_unattended(path: &Path, tcti: &str, pcrs: PcrBinding) -> Result<Initialized> {
        Self::create(path, tcti, UnlockPolicy::Unattended, "", pcrs)
    }

    fn create(
        path: &Path,
        tcti: &str,
        policy: UnlockPolicy,
        pin: &str,
        pcrs: PcrBinding,
    ) -> Result<Initialized> {
        // Reach the TPM before creating anything, so a wrong TCTI leaves no empty vault.
        let tpm = Tpm::connect(tcti)?;
        let store = Store::create(path)?;
        match Self::populate(store, tpm, tcti, policy, pin, pcrs) {
            Ok(done) => Ok(done),
            Err(error) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.as_os_str().to_owned();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
                Err(error)
            }
        }
    }

    fn populate(
        mut store: Store,
        mut tpm: Tpm,
        tcti: &str,
        policy: UnlockPolicy,
        pin: &str,
        pcrs: PcrBinding,
    ) -> Result<Initialized> {
        // An unattended vault has no PIN to be guessed: the TPM's lockout protects nothing.
        if policy == UnlockPolicy::Pin {
            check_pin_for_tpm(pin, &mut tpm)?;
        }
        let vault_id = Uuid::new_v4();
        let pin = policy.auth(vault_id, pin);
        let recovery_code = RecoveryCode::generate();
        let params = RecoveryParams::generate();
        let recovery_public = RecoverySecret::derive(&recovery_code, &params)?.public_key();
        let audit_key = AuditKey::generate();
        let key_id = Uuid::new_v4();
        let spec = KeyVersionSpec {
            vault_id,
            key_id,
            version: 1,
            pcrs: &pcrs,
            recovery_public: &recovery_public,
        };
        let (version_row, kek) = new_key_version(&mut tpm, &pin, &audit_key, &spec)?;
        let counter = rollback::establish(&mut tpm, &audit_key, vault_id)?;
        let attempts = failed_unlocks::establish(&mut tpm, &audit_key, vault_id);
        let primary_name = tpm.primary_name()?;
        let now = Timestamp::now().millis();
        let actor = Actor::current();
        {
            let tx = store.write()?;
            meta::set(&tx, meta::VAULT_ID, vault_id.as_bytes())?;
            meta::set(&tx, meta::RECOVERY_PUBLIC_KEY, &recovery_public)?;
            let params_json = serde_json::to_vec(&params)
                .map_err(|e| Error::invalid("recovery parameters", e.to_string()))?;
            meta::set(&tx, meta::RECOVERY_PARAMS, &params_json)?;
            meta::set(&tx, meta::PCR_BINDING, pcrs.to_string().as_bytes())?;
            rollback::write_stored(&tx, &audit_key, vault_id, counter)?;
            if let Some(attempts) = attempts {
                failed_unlocks::write_stored(&tx, &audit_key, vault_id, attempts)?;
            }
            meta::set(&tx, meta::PRIMARY_NAME, &primary_name)?;
            let seq = record_change(&tx, now, "key", key_id.as_bytes(), "create")?;
            key_rows::insert_key(
                &tx,
                &KeyRow {
                    id: key_id,
                    description: "Default key".to_owned(),
                    state: KeyState::Enabled.as_str().to_owned(),
                    is_default: true,
                    created_at: now,
                    deletion_at: None,
                    mac: Vec::new(),
                },
                seq,
            )?;
            key_rows::insert_key_version(&tx, &version_row)?;
            let integrity = Integrity::new(RowKey::derive(&audit_key.0), vault_id);
            integrity.seal_key(&tx, key_id)?;
            integrity.seal_settings(&tx)?;
            unlock_policy::write(&tx, &integrity, policy)?;
            let event = AuditEvent::new("init")
                .key(key_id)
                .detail(format!("pcrs={pcrs} unlock={}", policy.as_str()));
            audit::append(&tx, &audit_key, &actor, &[event])?;
            tx.commit().map_err(StoreError::from)?;
        }
        drop(tpm);
        let mut keyring = Keyring::with_keys(tcti, pin, vault_id, audit_key);
        keyring.set_primary_name(primary_name);
        keyring.insert(key_id, 1, kek);
        let wal_syncer = super::read_audit::WalSyncer::new(store.path());
        Ok(Initialized {
            vault: Vault {
                store,
                vault_id,
                keyring: Some(keyring),
                actor,
                pending_reads: Vec::new(),
                pending_since: None,
                locks: 0,
                wal_syncer,
            },
            recovery_code,
        })
    }

    /// Unlocks with the PIN: unseals the default key in the TPM (which checks the PIN
    /// and the PCR policy) and purges secrets whose recovery window has ended.
    ///
    /// An unattended vault refuses a PIN without trying it (see
    /// [`unlock_unattended`](Self::unlock_unattended)).
    pub fn unlock(&mut self, tcti: &str, pin: &str) -> Result<()> {
        if self.keyring.is_some() {
            return Ok(());
        }
        if unlock_policy::stored(self.store.conn())? == UnlockPolicy::Unattended {
            return Err(Error::PinGivenToUnattended);
        }
        self.unlock_as(tcti, UnlockPolicy::Pin, pin)
    }

    /// Unlocks a vault whose unlock policy is unattended: no PIN, the TPM alone (and its
    /// PCR policy, if any) decides. Refuses a PIN vault without touching the TPM.
    pub fn unlock_unattended(&mut self, tcti: &str) -> Result<()> {
        if self.keyring.is_some() {
            return Ok(());
        }
        if unlock_policy::stored(self.store.conn())? != UnlockPolicy::Unattended {
            return Err(Error::NotUnattended);
        }
        match self.unlock_as(tcti, UnlockPolicy::Unattended, "") {
            // The keys are not sealed without a PIN, so the row that says they are was
            // edited (the attempt was counted and audited like any wrong PIN).
            Err(Error::Tpm(TpmError::WrongPin { .. })) => Err(Error::UnlockPolicyTampered),
            other => other,
        }
    }

    /// How this vault unlocks. Checked against its MAC when the vault is unlocked; a
    /// locked vault can only report it as stored (the TPM refuses an unlock that does not
    /// match how the keys are sealed, and the unlock then checks the MAC).
    pub fn unlock_policy(&self) -> Result<UnlockPolicy> {
        match &self.keyring {
            Some(keyring) => unlock_policy::verified(self.store.conn(), &keyring.integrity()),
            None => unlock_policy::stored(self.store.conn()),
        }
    }

    fn unlock_as(&mut self, tcti: &str, policy: UnlockPolicy, pin: &str) -> Result<()> {
        let pin = policy.auth(self.vault_id, pin);
        let first = self.unlocking_version()?;
        let primary_name = meta::get(self.store.conn(), meta::PRIMARY_NAME)?;
        let recorded = primary_name.is_some();
        let unlocked = Keyring::unlock(tcti, pin, self.vault_id, &first, primary_name);
        match unlocked {
            Ok(keyring) => {
                // The policy must be Coffer's, and say how the keys really came out: a
                // keyring that fails this check is dropped and nothing unlocks.
                if unlock_policy::verified(self.store.conn(), &keyring.integrity())? != policy {
                    return Err(Error::UnlockPolicyTampered);
                }
                // A keyring that fails this check is dropped: nothing unlocks.
                let verdict = rollback::check(
                    &mut self.store,
                    &mut rollback::TpmAccess::Connect(tcti),
                    keyring.audit_key(),
                    self.vault_id,
                )?;
                self.keyring = Some(keyring);
                if verdict == rollback::Verdict::NoCounter {
                    self.adopt_rollback_counter(tcti)?;
                }
                if !recorded {
                    self.record_primary_name(tcti)?;
                }
                self.adopt_row_macs()?;
                self.purge_expired()?;
                // Failed unlocks recorded while locked are accounted for and chained now.
                self.account_failed_unlocks(tcti)?;
                // Entries a locked daemon kept sealed are applied now. A failure keeps
                // them for the next unlock and is audited; it does not refuse the unlock.
                if let Err(error) = self.apply_inbox() {
                    let event = AuditEvent::new("replication_inbox")
                        .failed(error.code())
                        .detail(error.to_string());
                    self.write(event, |_, _, _| Ok(()))?;
                }
                Ok(())
            }
            Err(error) => {
                if matches!(
                    error,
                    Error::Tpm(TpmError::WrongPin { .. })
                        | Error::Tpm(TpmError::Lockout { .. })
                        | Error::Tpm(TpmError::PcrMismatch { .. })
                ) {
                    // Recorded without a MAC (we have no key), and counted on the TPM so
                    // that the next unlock can tell if entries go missing or are made up.
                    // Both under the write lock, so the count and the entries move together.
                    if let Ok(tx) = self.store.write() {
                        let counted = failed_unlocks::count_attempt(&tx, tcti);
                        let event = AuditEvent::new("unlock")
                            .failed(error.code())
                            .detail(counted);
                        if audit::append_unchained(&tx, &self.actor, &event).is_ok() {
                            let _ = tx.commit();
                        }
                    }
                }
                Err(error)
            }
        }
    }

    /// Brings every key back with the recovery code, re-seals it in the TPM at `tcti`
    /// under a new PIN (and optionally a new PCR binding), and returns the vault unlocked.
    ///
    /// Refuses a vault file that the TPM's rollback counter shows to be an older copy;
    /// see [`recover_accepting_rollback`](Self::recover_accepting_rollback).
    pub fn recover(
        path: &Path,
        tcti: &str,
        code: &str,
        new_pin: &str,
        pcrs: Option<PcrBinding>,
    ) -> Result<Vault> {
        Self::recover_with(path, tcti, code, new_pin, pcrs, false)
    }

    /// Like [`recover`](Self::recover), and keeps this vault file even if the TPM's
    /// rollback counter shows it to be an older copy (or the counter is missing): the
    /// recovery code's owner decides that this copy is the one to keep, and the file is
    /// re-synced to the TPM's counter.
    pub fn recover_accepting_rollback(
        path: &Path,
        tcti: &str,
        code: &str,
        new_pin: &str,
        pcrs: Option<PcrBinding>,
    ) -> Result<Vault> {
        Self::recover_with(path, tcti, code, new_pin, pcrs, true)
    }

    fn recover_with(
        path: &Path,
        tcti: &str,
        code: &str,
        new_pin: &str,
        pcrs: Option<PcrBinding>,
        accept_rollback: bool,
    ) -> Result<Vault> {
        check_pin(new_pin)?;
        let mut vault = Vault::open(path)?;
        let code = RecoveryCode::parse(code)?;
        let conn = vault.store.conn();
        let params: RecoveryParams =
            serde_json::from_slice(&meta::require(conn, meta::RECOVERY_PARAMS)?)
                .map_err(|e| RecoveryError::Parameters(e.to_string()))?;
        let stored_public = meta::require(conn, meta::RECOVERY_PUBLIC_KEY)?;
        let secret = RecoverySecret::derive(&code, &params)?;
        if stored_public.as_slice() != secret.public_key() {
            return Err(RecoveryError::WrongCode.into());
        }
        let pcrs = match pcrs {
            Some(pcrs) => pcrs,
            None => stored_pcrs(conn)?,
        };
        let vault_id = vault.vault_id;
        let pin = PinAuth::derive(vault_id.as_bytes(), new_pin);
        let mut tpm = Tpm::connect(tcti)?;
        check_pin_for_tpm(new_pin, &mut tpm)?;
        // The recovery code re-establishes trust in this TPM: whatever primary it has now
        // is the one to expect from here on.
        let primary_name = tpm.primary_name()?;
        let rows = key_rows::all_key_versions(conn)?;
        let mut recovered = Vec::with_capacity(rows.len());
        let mut audit_key = None;
        for row in &rows {
            let aad = context::recovery(vault_id, row.key_id, row.version);
            let kek = secret
                .unwrap(aad.as_bytes(), &row.recovery_wrapped)
                .map_err(|_| Error::KeyTampered {
                    key_id: row.key_id,
                    version: row.version,
                })?;
            // Every version must wrap the same audit key: a row swapped in from elsewhere
            // (or altered) would otherwise be re-sealed and trusted from now on.
            let wrapped = open_audit_key(vault_id, row, &kek)?;
            match &audit_key {
                None => audit_key = Some(wrapped),
                Some(first) if first.same_as(&wrapped) => {}
                Some(_) => {
                    return Err(Error::KeyTampered {
                        key_id: row.key_id,
                        version: row.version,
                    })
                }
            }
            let sealed = tpm.seal(&kek, &pin, &pcrs)?;
            recovered.push((row.key_id, row.version, sealed.to_bytes(), kek));
        }
        let audit_key = audit_key.ok_or(StoreError::Missing {
            what: "key versions",
        })?;
        let counter = rollback::settle_for_recovery(
            &mut vault.store,
            &mut tpm,
            &audit_key,
            vault_id,
            accept_rollback,
        )?;
        // The recovery code's owner starts the failed-unlock count afresh on this TPM.
        let attempts = failed_unlocks::establish(&mut tpm, &audit_key, vault_id);
        {
            let tx = vault.store.write()?;
            for (key_id, version, sealed, _) in &recovered {
                key_rows::reseal_key_version(&tx, *key_id, *version, sealed)?;
            }
            let integrity = Integrity::new(RowKey::derive(&audit_key.0), vault_id);
            if audit::needs_row_macs(&tx, &audit_key).unwrap_or(false) {
                integrity.adopt_all(&tx)?;
            }
            meta::set(&tx, meta::PCR_BINDING, pcrs.to_string().as_bytes())?;
            rollback::write_stored(&tx, &audit_key, vault_id, counter)?;
            if let Some(attempts) = attempts {
                failed_unlocks::write_stored(&tx, &audit_key, vault_id, attempts)?;
            }
            meta::set(&tx, meta::PRIMARY_NAME, &primary_name)?;
            // The recovery code proved who owns the vault and matched the stored public
            // key, so the settings it leaves are the ones to trust from now on. The keys
            // are sealed under the new PIN, whatever the policy was (this is how an
            // unattended vault gets a PIN).
            integrity.seal_settings(&tx)?;
            unlock_policy::write(&tx, &integrity, UnlockPolicy::Pin)?;
            let event =
                AuditEvent::new("recover").detail(format!("keys={} pcrs={pcrs}", recovered.len()));
            audit::append(&tx, &audit_key, &vault.actor, &[event])?;
            tx.commit().map_err(StoreError::from)?;
        }
        // Whoever holds the recovery code may also clear the TPM's PIN lockout (it needs
        // only the lockout hierarchy's auth, empty on most machines): otherwise the new
        // PIN would be refused until the lockout expires. Best effort.
        let _ = tpm.reset_dictionary_attack_lockout();
        drop(tpm);
        let mut keyring = Keyring::with_keys(tcti, pin, vault_id, audit_key);
        keyring.set_primary_name(primary_name);
        for (key_id, version, _, kek) in recovered {
            keyring.insert(key_id, version, kek);
        }
        vault.keyring = Some(keyring);
        Ok(vault)
    }

    /// Re-seals every key version under a new PIN, in one transaction, after proving
    /// the current PIN with a TPM unseal in this process.
    ///
    /// An unlocked vault is not proof enough: the agent and the app hold one for any
    /// process of the same user, and a PIN change decides who can unlock from now on.
    /// A wrong current PIN counts against the TPM's dictionary-attack lockout, like any
    /// other wrong PIN, and is audited.
    ///
    /// An unattended vault has no PIN to prove: it gets one only through
    /// [`recover`](Self::recover), with the recovery code.
    pub fn change_pin(&mut self, current_pin: &str, new_pin: &str) -> Result<()> {
        self.require_unlocked()?;
        if self.unlock_policy()? == UnlockPolicy::Unattended {
            return Err(Error::NoPinToChange);
        }
        check_pin(new_pin)?;
        check_pin_for_tpm(
            new_pin,
            &mut self.keyring.as_ref().ok_or(Error::Locked)?.connect()?,
        )?;
        self.prove_pin("change_pin", current_pin)?;
        let new_pin = PinAuth::derive(self.vault_id.as_bytes(), new_pin);
        let settings = self.integrity()?.settings(self.store.conn())?;
        let pcrs = String::from_utf8_lossy(&settings.pcr_binding).parse::<PcrBinding>()?;
        let rows = key_rows::all_key_versions(self.store.conn())?;
        let event = AuditEvent::new("change_pin").detail(format!("keys={}", rows.len()));
        self.write(event, |tx, keyring, _| {
            for row in &rows {
                let sealed = keyring.reseal(tx, row.key_id, row.version, &new_pin, &pcrs)?;
                key_rows::reseal_key_version(tx, row.key_id, row.version, &sealed.to_bytes())?;
            }
            Ok(())
        })?;
        if let Some(keyring) = self.keyring.as_mut() {
            keyring.set_pin(new_pin);
        }
        Ok(())
    }

    /// Re-seals every key version with no PIN (unlock policy unattended), in one
    /// transaction with the policy row, after proving the current PIN with a TPM unseal in
    /// this process: like a PIN change, this decides who can unlock from now on.
    pub fn make_unattended(&mut self, current_pin: &str) -> Result<()> {
        self.require_unlocked()?;
        if self.unlock_policy()? == UnlockPolicy::Unattended {
            return Err(Error::AlreadyUnattended);
        }
        self.prove_pin("make_unattended", current_pin)?;
        let new_pin = UnlockPolicy::Unattended.auth(self.vault_id, "");
        let settings = self.integrity()?.settings(self.store.conn())?;
        let pcrs = String::from_utf8_lossy(&settings.pcr_binding).parse::<PcrBinding>()?;
        let rows = key_rows::all_key_versions(self.store.conn())?;
        let event = AuditEvent::new("make_unattended").detail(format!("keys={}", rows.len()));
        self.write(event, |tx, keyring, _| {
            for row in &rows {
                let sealed = keyring.reseal(tx, row.key_id, row.version, &new_pin, &pcrs)?;
                key_rows::reseal_key_version(tx, row.key_id, row.version, &sealed.to_bytes())?;
            }
            unlock_policy::write(tx, &keyring.integrity(), UnlockPolicy::Unattended)
        })?;
        if let Some(keyring) = self.keyring.as_mut() {
            keyring.set_pin(new_pin);
        }
        Ok(())
    }

    /// Proves the user's PIN again, for an operation that an unlocked vault alone must not
    /// allow (changing the PIN, pointing a rotation at a new program). The TPM checks it:
    /// a wrong PIN counts against its lockout, and the refusal is audited as `operation`.
    pub fn prove_pin(&mut self, operation: &'static str, pin: &str) -> Result<()> {
        self.require_unlocked()?;
        if let Err(error) = self.unseal_with(pin) {
            let event = AuditEvent::new(operation).failed(error.code());
            let _ = self.write(event, |_, _, _| Ok(()));
            return Err(error);
        }
        Ok(())
    }

    /// Unseals the default key's newest version with `pin`, and checks that what comes
    /// out opens this vault's audit key.
    fn unseal_with(&self, pin: &str) -> Result<()> {
        let keyring = self.keyring.as_ref().ok_or(Error::Locked)?;
        let pin = PinAuth::derive(self.vault_id.as_bytes(), pin);
        let first = self.unlocking_version()?;
        let primary_name = meta::get(self.store.conn(), meta::PRIMARY_NAME)?;
        Keyring::unlock(keyring.tcti(), pin, self.vault_id, &first, primary_name).map(drop)
    }

    /// The key version an unseal proves the PIN with: the default key's newest.
    fn unlocking_version(&self) -> Result<key_rows::KeyVersionRow> {
        let default = key_rows::default_key(self.store.conn())?;
        Ok(
            key_rows::newest_key_version(self.store.conn(), default.id)?.ok_or(
                StoreError::Missing {
                    what: "default key version",
                },
            )?,
        )
    }

    /// Computes the row MACs of a vault written before they existed, once: the audit
    /// head records that they are in force, so deleting them later cannot pass the
    /// vault off as an old one. A missing or forged head adopts nothing (reads of
    /// unMACed rows keep failing, and `audit verify` says why).
    fn adopt_row_macs(&mut self) -> Result<()> {
        let Some(keyring) = self.keyring.as_ref() else {
            return Err(Error::Locked);
        };
        if !audit::needs_row_macs(self.store.conn(), keyring.audit_key()).unwrap_or(false) {
            return Ok(());
        }
        self.write(
            AuditEvent::new("integrity_upgrade"),
            |tx, keyring, event| {
                let rows = keyring.integrity().adopt_all(tx)?;
                event.detail = format!("rows={rows}");
                Ok(())
            },
        )
    }

    /// Records the storage primary's Name for a vault created before it was recorded.
    fn record_primary_name(&mut self, tcti: &str) -> Result<()> {
        let name = Tpm::connect(tcti)?.primary_name()?;
        self.write(AuditEvent::new("record_tpm_primary"), |tx, keyring, _| {
            meta::set(tx, meta::PRIMARY_NAME, &name)?;
            keyring.set_primary_name(name.clone());
            Ok(())
        })
    }

    /// Accounts for the failed unlocks since the last unlock (see `failed_unlocks`) and
    /// chains their entries; writes nothing when there were none and nothing is amiss.
    fn account_failed_unlocks(&mut self, tcti: &str) -> Result<()> {
        let keyring = self.keyring.as_ref().ok_or(Error::Locked)?;
        let vault_id = self.vault_id;
        let has_unchained = audit::has_unchained(self.store.conn())?;
        let plan = failed_unlocks::plan(
            self.store.conn(),
            &mut Tpm::connect(tcti)?,
            keyring.audit_key(),
            vault_id,
            has_unchained,
        )?;
        match plan {
            failed_unlocks::Plan::Nothing => Ok(()),
            failed_unlocks::Plan::ChainOnly => {
                self.write(AuditEvent::new("unlock"), |_, _, _| Ok(()))
            }
            failed_unlocks::Plan::Adopt(fresh) => self.write(
                AuditEvent::new("failed_unlock_counter")
                    .detail(format!("index={:#010x}", fresh.index)),
                |tx, keyring, _| {
                    failed_unlocks::write_stored(tx, keyring.audit_key(), vault_id, fresh)
                },
            ),
            failed_unlocks::Plan::Check => self.write(
                AuditEvent::new(failed_unlocks::CHECK_OPERATION),
                |tx, keyring, event| {
                    // Under the vault's write lock, then the TPM's: the order every write keeps.
                    let mut tpm = Tpm::connect(tcti)?;
                    let found =
                        failed_unlocks::account(tx, &mut tpm, keyring.audit_key(), vault_id)?;
                    if let Some(found) = found {
                        event.detail = found.describe();
                        if !found.is_clean() {
                            event.result = "tampered".to_owned();
                        }
                    }
                    Ok(())
                },
            ),
        }
    }

    /// Gives a vault from before rollback detection its TPM counter.
    fn adopt_rollback_counter(&mut self, tcti: &str) -> Result<()> {
        let keyring = self.keyring.as_ref().ok_or(Error::Locked)?;
        let counter =
            rollback::establish(&mut Tpm::connect(tcti)?, keyring.audit_key(), self.vault_id)?;
        let vault_id = self.vault_id;
        self.write(
            AuditEvent::new("rollback_counter").detail(format!("index={:#010x}", counter.index)),
            |tx, keyring, _| rollback::write_stored(tx, keyring.audit_key(), vault_id, counter),
        )
    }

    /// The PCRs the vault's keys are bound to (empty: none).
    pub fn pcr_binding(&self) -> Result<PcrBinding> {
        stored_pcrs(self.store.conn())
    }

    /// Deletes secrets whose recovery window has ended, and keys whose deletion date
    /// has passed and that no secret version uses any more.
    pub(super) fn purge_expired(&mut self) -> Result<()> {
        let now = Timestamp::now().millis();
        let expired = secret_rows::expired(self.store.conn(), now)?;
        let due_keys = key_rows::keys_due_for_deletion(self.store.conn(), now)?;
        if expired.is_empty() && due_keys.is_empty() {
            return Ok(());
        }
        for (id, name) in expired {
            let event = AuditEvent::new("purge_secret").secret(Some(id), &name);
            self.write(event, |tx, _, _| {
                record_change(tx, now, "secret", id.as_bytes(), "purge")?;
                secret_rows::purge_secret(tx, id)?;
                Ok(())
            })?;
        }
        for key_id in due_keys {
            if secret_rows::versions_using_key(self.store.conn(), key_id)? > 0 {
                continue;
            }
            let event = AuditEvent::new("purge_key").key(key_id);
            self.write(event, |tx, _, _| {
                record_change(tx, now, "key", key_id.as_bytes(), "purge")?;
                key_rows::delete_key(tx, key_id)?;
                Ok(())
            })?;
        }
        // Purged wrapped keys must not live on in the write-ahead log.
        self.store.checkpoint();
        Ok(())
    }
}

fn stored_pcrs(conn: &rusqlite::Connection) -> Result<PcrBinding> {
    let text = meta::get(conn, meta::PCR_BINDING)?.unwrap_or_default();
    let text = String::from_utf8(text).map_err(|_| StoreError::Missing {
        what: "PCR binding",
    })?;
    Ok(text.parse::<PcrBinding>()?)
}
