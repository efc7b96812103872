//! The unattended unlock policy on a real swtpm and a real SQLite file.

use coffer_testkit::Swtpm;
use tempfile::TempDir;

use super::super::{CreateSecret, Error, Vault};
use super::UnlockPolicy;
use crate::model::{SecretValue, VersionSelector};
use crate::tpm::{PcrBinding, TpmError};

const PIN: &str = "test-pin-4321";

struct Fixture {
    swtpm: Swtpm,
    _dir: TempDir,
    path: std::path::PathBuf,
    recovery_code: String,
}

impl Fixture {
    fn tcti(&self) -> String {
        self.swtpm.tcti()
    }

    /// The vault as a new process finds it: opened from the file, locked.
    fn reopen(&self) -> Vault {
        Vault::open(&self.path).unwrap()
    }

    /// Changes the file as an attacker with write access would (plain SQLite).
    fn tamper(&self, edit: &str) {
        let raw = rusqlite::Connection::open(&self.path).unwrap();
        raw.execute_batch(edit).unwrap();
    }

    /// Wrong PINs the TPM has counted so far.
    fn failures(&self) -> u32 {
        Vault::tpm_info(&self.tcti())
            .unwrap()
            .dictionary_attack
            .lockout_counter
    }
}

fn fixture(policy: UnlockPolicy, pcrs: PcrBinding) -> Fixture {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    let mut created = match policy {
        UnlockPolicy::Pin => Vault::init(&path, &swtpm.tcti(), PIN, pcrs),
        UnlockPolicy::Unattended => Vault::init_unattended(&path, &swtpm.tcti(), pcrs),
    }
    .unwrap();
    created
        .vault
        .create_secret(CreateSecret {
            name: "db/password".into(),
            value: Some(SecretValue::text("hunter2")),
            ..Default::default()
        })
        .unwrap();
    let recovery_code = created.recovery_code.display().as_str().to_owned();
    drop(created.vault);
    Fixture {
        swtpm,
        _dir: dir,
        path,
        recovery_code,
    }
}

fn read(vault: &mut Vault) -> String {
    let value = vault
        .get_secret_value("db/password", &VersionSelector::default())
        .unwrap();
    String::from_utf8(value.value.as_bytes().to_vec()).unwrap()
}

#[test]
fn an_unattended_vault_unlocks_without_a_pin() {
    let f = fixture(UnlockPolicy::Unattended, PcrBinding::default());
    let mut vault = f.reopen();
    assert_eq!(vault.unlock_policy().unwrap(), UnlockPolicy::Unattended);
    vault.unlock_unattended(&f.tcti()).unwrap();
    assert!(vault.is_unlocked());
    assert_eq!(read(&mut vault), "hunter2");
    // Unlocked, the policy is the MAC-checked one.
    assert_eq!(vault.unlock_policy().unwrap(), UnlockPolicy::Unattended);
    assert_eq!(
        UnlockPolicy::Unattended.describe(),
        "unattended (TPM only, no PIN)"
    );
    // New key versions are sealed the same way: the next process unlocks them too.
    let key = vault.create_key("second", None).unwrap();
    vault.rotate_key(&key.id.to_string()).unwrap();
    drop(vault);
    let mut vault = f.reopen();
    vault.unlock_unattended(&f.tcti()).unwrap();
    vault
        .encrypt(&key.id.to_string(), b"check", &Default::default())
        .unwrap();
}

#[test]
fn an_unattended_vault_refuses_a_pin_without_trying_it() {
    let f = fixture(UnlockPolicy::Unattended, PcrBinding::default());
    let before = f.failures();
    let mut vault = f.reopen();
    let refused = vault.unlock(&f.tcti(), PIN);
    assert!(
        matches!(refused, Err(Error::PinGivenToUnattended)),
        "{refused:?}"
    );
    assert!(!vault.is_unlocked());
    assert_eq!(f.failures(), before, "the PIN never reached the TPM");
}

#[test]
fn a_pin_vault_is_unaffected() {
    let f = fixture(UnlockPolicy::Pin, PcrBinding::default());
    let before = f.failures();
    let mut vault = f.reopen();
    assert_eq!(vault.unlock_policy().unwrap(), UnlockPolicy::Pin);
    let refused = vault.unlock_unattended(&f.tcti());
    assert!(matches!(refused, Err(Error::NotUnattended)), "{refused:?}");
    assert_eq!(f.failures(), before, "nothing was tried on the TPM");
    vault.unlock(&f.tcti(), PIN).unwrap();
    assert_eq!(vault.unlock_policy().unwrap(), UnlockPolicy::Pin);
    assert_eq!(read(&mut vault), "hunter2");
}

#[test]
fn unattended_keys_stay_bound_to_pcrs() {
    let pcrs: PcrBinding = "16".parse().unwrap();
    let f = fixture(UnlockPolicy::Unattended, pcrs);
    let mut vault = f.reopen();
    assert_eq!(vault.pcr_binding().unwrap().to_string(), "16");
    vault.unlock_unattended(&f.tcti()).unwrap();
    drop(vault);
    f.swtpm.pcr_extend(16);
    let mut vault = f.reopen();
    let refused = vault.unlock_unattended(&f.tcti());
    assert!(
        matches!(refused, Err(Error::Tpm(TpmError::PcrMismatch { .. }))),
        "{refused:?}"
    );
    assert!(!vault.is_unlocked());
}

#[test]
fn an_edited_policy_row_is_refused() {
    // A PIN vault whose row claims "unattended": the TPM refuses the empty PIN, and the
    // refusal names the edit; a PIN is refused too rather than the row being ignored.
    let f = fixture(UnlockPolicy::Pin, PcrBinding::default());
    f.tamper(
        "UPDATE vault_meta SET value = CAST('unattended' AS BLOB) WHERE name = 'unlock_policy';",
    );
    let mut vault = f.reopen();
    let refused = vault.unlock_unattended(&f.tcti());
    assert!(
        matches!(refused, Err(Error::UnlockPolicyTampered)),
        "{refused:?}"
    );
    assert!(!vault.is_unlocked());
    assert!(matches!(
        vault.unlock(&f.tcti(), PIN),
        Err(Error::PinGivenToUnattended)
    ));

    // An unattended vault whose policy MAC was replaced: the keys come out of the TPM, but
    // the unlock is refused and nothing stays unlocked.
    let f = fixture(UnlockPolicy::Unattended, PcrBinding::default());
    f.tamper("UPDATE vault_meta SET value = zeroblob(32) WHERE name = 'unlock_policy.mac';");
    let mut vault = f.reopen();
    let refused = vault.unlock_unattended(&f.tcti());
    assert!(
        matches!(refused, Err(Error::UnlockPolicyTampered)),
        "{refused:?}"
    );
    assert!(!vault.is_unlocked());

    // A PIN vault whose "pin" row lost its MAC.
    let f = fixture(UnlockPolicy::Pin, PcrBinding::default());
    f.tamper("DELETE FROM vault_meta WHERE name = 'unlock_policy.mac';");
    let mut vault = f.reopen();
    let refused = vault.unlock(&f.tcti(), PIN);
    assert!(
        matches!(refused, Err(Error::UnlockPolicyTampered)),
        "{refused:?}"
    );
    assert!(!vault.is_unlocked());

    // A row edited while a process holds the vault unlocked is refused when it is read.
    let f = fixture(UnlockPolicy::Pin, PcrBinding::default());
    let mut vault = f.reopen();
    vault.unlock(&f.tcti(), PIN).unwrap();
    f.tamper(
        "UPDATE vault_meta SET value = CAST('unattended' AS BLOB) WHERE name = 'unlock_policy';",
    );
    assert!(matches!(
        vault.unlock_policy(),
        Err(Error::UnlockPolicyTampered)
    ));
    assert!(matches!(
        vault.change_pin(PIN, "another-pin-1"),
        Err(Error::UnlockPolicyTampered)
    ));
}

#[test]
fn giving_an_unattended_vault_a_pin_needs_the_recovery_code() {
    let f = fixture(UnlockPolicy::Unattended, PcrBinding::default());
    let mut vault = f.reopen();
    vault.unlock_unattended(&f.tcti()).unwrap();
    let refused = vault.change_pin("", "chosen-pin-1");
    assert!(matches!(refused, Err(Error::NoPinToChange)), "{refused:?}");
    drop(vault);

    // A wrong code changes nothing: the vault still unlocks unattended, and no PIN works.
    let wrong = crate::crypto::recovery::RecoveryCode::generate();
    let refused = Vault::recover(
        &f.path,
        &f.tcti(),
        wrong.display().as_str(),
        "chosen-pin-1",
        None,
    );
    assert!(
        matches!(
            refused,
            Err(Error::Recovery(
                crate::crypto::recovery::RecoveryError::WrongCode
            ))
        ),
        "{:?}",
        refused.err()
    );
    let mut vault = f.reopen();
    assert_eq!(vault.unlock_policy().unwrap(), UnlockPolicy::Unattended);
    vault.unlock_unattended(&f.tcti()).unwrap();
    assert_eq!(vault.unlock_policy().unwrap(), UnlockPolicy::Unattended);
    drop(vault);

    // The right code turns it into a PIN vault.
    let recovered =
        Vault::recover(&f.path, &f.tcti(), &f.recovery_code, "chosen-pin-1", None).unwrap();
    assert_eq!(recovered.unlock_policy().unwrap(), UnlockPolicy::Pin);
    drop(recovered);
    let mut vault = f.reopen();
    assert_eq!(vault.unlock_policy().unwrap(), UnlockPolicy::Pin);
    assert!(matches!(
        vault.unlock_unattended(&f.tcti()),
        Err(Error::NotUnattended)
    ));
    vault.unlock(&f.tcti(), "chosen-pin-1").unwrap();
    assert_eq!(vault.unlock_policy().unwrap(), UnlockPolicy::Pin);
    assert_eq!(read(&mut vault), "hunter2");
}

#[test]
fn making_a_pin_vault_unattended_needs_the_current_pin() {
    let f = fixture(UnlockPolicy::Pin, PcrBinding::default());
    let mut vault = f.reopen();
    vault.unlock(&f.tcti(), PIN).unwrap();
    let wrong = vault.make_unattended("not-the-pin-1");
    assert!(
        matches!(wrong, Err(Error::Tpm(TpmError::WrongPin { .. }))),
        "{wrong:?}"
    );
    drop(vault);
    // Nothing changed: still a PIN vault that the PIN unlocks.
    let mut vault = f.reopen();
    assert_eq!(vault.unlock_policy().unwrap(), UnlockPolicy::Pin);
    vault.unlock(&f.tcti(), PIN).unwrap();
    vault.make_unattended(PIN).unwrap();
    assert_eq!(vault.unlock_policy().unwrap(), UnlockPolicy::Unattended);
    assert!(matches!(
        vault.make_unattended(PIN),
        Err(Error::AlreadyUnattended)
    ));
    drop(vault);
    let mut vault = f.reopen();
    assert!(matches!(
        vault.unlock(&f.tcti(), PIN),
        Err(Error::PinGivenToUnattended)
    ));
    vault.unlock_unattended(&f.tcti()).unwrap();
    assert_eq!(read(&mut vault), "hunter2");
}
