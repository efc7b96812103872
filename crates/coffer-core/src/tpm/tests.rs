//! Tests against a real software TPM: each starts its own `swtpm`.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use coffer_testkit::{Swtpm, WireTap};

use super::*;

const VAULT: &[u8] = b"test-vault-id";

fn pin(pin: &str) -> PinAuth {
    PinAuth::derive(VAULT, pin)
}

fn connect(swtpm: &Swtpm) -> Tpm {
    Tpm::connect(&swtpm.tcti()).expect("connect to swtpm")
}

fn pcrs(s: &str) -> PcrBinding {
    s.parse().expect("valid PCR list")
}

#[test]
fn seal_unseal_round_trip_through_stored_bytes() {
    let swtpm = Swtpm::start();
    let mut tpm = connect(&swtpm);
    let kek = Kek::generate();
    let sealed = tpm.seal(&kek, &pin("1234"), &PcrBinding::none()).unwrap();
    assert!(sealed.pcrs.is_empty());

    let stored = sealed.to_bytes();
    let restored = SealedKek::from_bytes(&stored).unwrap();
    assert_eq!(restored, sealed);

    let unsealed = tpm.unseal(&restored, &pin("1234")).unwrap();
    assert_eq!(unsealed.expose(), kek.expose());

    // A new connection (new primary from the same template) unseals it too.
    drop(tpm);
    let mut tpm = connect(&swtpm);
    assert_eq!(
        tpm.unseal(&restored, &pin("1234")).unwrap().expose(),
        kek.expose()
    );
}

#[test]
fn wrong_pin_counts_down_then_locks_out() {
    let swtpm = Swtpm::start();
    let mut tpm = connect(&swtpm);
    // swtpm's defaults: 3 tries, one forgiven every 1000 s.
    let da = tpm.dictionary_attack_status().unwrap();
    assert_eq!(da.max_auth_fail, 3);
    assert_eq!(da.lockout_counter, 0);

    let kek = Kek::generate();
    let sealed = tpm.seal(&kek, &pin("1234"), &PcrBinding::none()).unwrap();

    let first = tpm.unseal(&sealed, &pin("0000")).unwrap_err();
    assert!(
        matches!(
            first,
            TpmError::WrongPin {
                attempts_left: Some(2)
            }
        ),
        "{first:?}"
    );
    // Neither message nor Debug output carries the PIN.
    assert!(!first.to_string().contains("0000"));
    assert!(!format!("{first:?}").contains("0000"));
    let second = tpm.unseal(&sealed, &pin("1111")).unwrap_err();
    assert!(
        matches!(
            second,
            TpmError::WrongPin {
                attempts_left: Some(1)
            }
        ),
        "{second:?}"
    );
    // The third wrong PIN uses up the last attempt: the TPM is now in lockout.
    let third = tpm.unseal(&sealed, &pin("2222")).unwrap_err();
    assert!(
        matches!(
            third,
            TpmError::Lockout {
                retry_after_secs: Some(1000)
            }
        ),
        "{third:?}"
    );
    // In lockout even the right PIN is refused, without counting.
    let locked = tpm.unseal(&sealed, &pin("1234")).unwrap_err();
    assert!(matches!(locked, TpmError::Lockout { .. }), "{locked:?}");
    assert!(locked.to_string().contains("about 17 minutes"), "{locked}");
    assert!(tpm.info().unwrap().dictionary_attack.in_lockout);

    // Sealing still works during lockout (the primary is not DA-protected).
    tpm.seal(&kek, &pin("1234"), &PcrBinding::none()).unwrap();

    tpm.reset_dictionary_attack_lockout().unwrap();
    assert_eq!(
        tpm.unseal(&sealed, &pin("1234")).unwrap().expose(),
        kek.expose()
    );
    assert_eq!(tpm.dictionary_attack_status().unwrap().lockout_counter, 0);
}

#[test]
fn lockout_ends_after_the_recovery_interval() {
    // One failure forgiven every 4 s: long enough that a loaded machine does not forgive one
    // between the steps below, short enough to wait for.
    const INTERVAL: u32 = 4;
    let swtpm = Swtpm::start();
    let mut tpm = connect(&swtpm);
    tpm.set_dictionary_attack_parameters(2, INTERVAL, INTERVAL)
        .unwrap();
    let da = tpm.dictionary_attack_status().unwrap();
    assert_eq!((da.max_auth_fail, da.lockout_interval_secs), (2, INTERVAL));

    let kek = Kek::generate();
    let sealed = tpm.seal(&kek, &pin("1234"), &PcrBinding::none()).unwrap();
    let first = tpm.unseal(&sealed, &pin("9")).unwrap_err();
    assert!(
        matches!(
            first,
            TpmError::WrongPin {
                attempts_left: Some(1)
            }
        ),
        "{first:?}"
    );
    let second = tpm.unseal(&sealed, &pin("9")).unwrap_err();
    assert!(
        matches!(
            second,
            TpmError::Lockout {
                retry_after_secs: Some(INTERVAL)
            }
        ),
        "{second:?}"
    );
    // Refused (without counting) until the interval has passed, then accepted.
    let deadline = Instant::now() + Duration::from_secs(u64::from(INTERVAL) * 5);
    let unsealed = loop {
        match tpm.unseal(&sealed, &pin("1234")) {
            Ok(kek) => break kek,
            Err(TpmError::Lockout { .. }) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(250));
            }
            Err(e) => panic!("lockout did not end: {e:?}"),
        }
    };
    assert_eq!(unsealed.expose(), kek.expose());
}

#[test]
fn pcr_bound_key_needs_both_pin_and_unchanged_pcrs() {
    let mut swtpm = Swtpm::start();
    let mut tpm = connect(&swtpm);
    let kek = Kek::generate();
    let sealed = tpm.seal(&kek, &pin("1234"), &pcrs("0,7")).unwrap();
    assert_eq!(sealed.pcrs, pcrs("0,7"));
    let sealed = SealedKek::from_bytes(&sealed.to_bytes()).unwrap();
    assert_eq!(sealed.pcrs, pcrs("0,7"));

    assert_eq!(
        tpm.unseal(&sealed, &pin("1234")).unwrap().expose(),
        kek.expose()
    );
    let wrong = tpm.unseal(&sealed, &pin("4321")).unwrap_err();
    assert!(
        matches!(
            wrong,
            TpmError::WrongPin {
                attempts_left: Some(2)
            }
        ),
        "{wrong:?}"
    );
    // A PCR outside the binding does not matter.
    swtpm.pcr_extend(16);
    assert_eq!(
        tpm.unseal(&sealed, &pin("1234")).unwrap().expose(),
        kek.expose()
    );

    // Change PCR 7; a fresh connection (as from a new process) sees the mismatch.
    drop(tpm);
    swtpm.pcr_extend(7);
    let mut tpm = connect(&swtpm);
    let err = tpm.unseal(&sealed, &pin("1234")).unwrap_err();
    assert!(matches!(err, TpmError::PcrMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("coffer recover"), "{err}");
    assert!(err.to_string().contains("0,7"), "{err}");
    // A PCR mismatch is not a PIN failure: it does not count towards lockout.
    let err = tpm.unseal(&sealed, &pin("wrong")).unwrap_err();
    assert!(matches!(err, TpmError::PcrMismatch { .. }), "{err:?}");
    assert_eq!(tpm.dictionary_attack_status().unwrap().lockout_counter, 1);

    // A reboot resets the PCRs to the values the key was sealed against.
    drop(tpm);
    swtpm.restart();
    let mut tpm = connect(&swtpm);
    assert_eq!(
        tpm.unseal(&sealed, &pin("1234")).unwrap().expose(),
        kek.expose()
    );
}

#[test]
fn a_cleared_tpm_reports_a_foreign_key() {
    let mut swtpm = Swtpm::start();
    let kek = Kek::generate();
    let sealed = {
        let mut tpm = connect(&swtpm);
        tpm.seal(&kek, &pin("1234"), &PcrBinding::none()).unwrap()
    };
    let bound = {
        let mut tpm = connect(&swtpm);
        tpm.seal(&kek, &pin("1234"), &pcrs("7")).unwrap()
    };
    swtpm.wipe_and_restart();
    let mut tpm = connect(&swtpm);
    for s in [&sealed, &bound] {
        let err = tpm.unseal(s, &pin("1234")).unwrap_err();
        assert!(matches!(err, TpmError::ForeignKey), "{err:?}");
        assert!(err.to_string().contains("coffer recover"), "{err}");
    }
    // A blob whose private part was tampered with is refused the same way.
    let mut tampered = sealed.clone();
    let last = tampered.private.len() - 1;
    tampered.private[last] ^= 1;
    let err = tpm.unseal(&tampered, &pin("1234")).unwrap_err();
    assert!(matches!(err, TpmError::ForeignKey), "{err:?}");
}

#[test]
fn a_killed_tpm_gives_an_error_not_a_hang() {
    let mut swtpm = Swtpm::start();
    let mut tpm = connect(&swtpm);
    let kek = Kek::generate();
    let sealed = tpm.seal(&kek, &pin("1234"), &PcrBinding::none()).unwrap();
    swtpm.kill();

    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let unseal = tpm.unseal(&sealed, &pin("1234")).map(|_| ());
        let seal = tpm
            .seal(&Kek::generate(), &pin("1"), &PcrBinding::none())
            .map(|_| ());
        let info = tpm.info().map(|_| ());
        drop(tpm);
        let _ = tx.send((unseal, seal, info));
    });
    let (unseal, seal, info) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("operations on a dead TPM must fail, not hang");
    worker.join().unwrap();
    let err = unseal.unwrap_err();
    assert!(matches!(err, TpmError::ConnectionLost { .. }), "{err:?}");
    // Later calls try to reconnect and report the TPM as unreachable.
    assert!(
        matches!(seal, Err(TpmError::Unreachable { .. })),
        "{seal:?}"
    );
    assert!(
        matches!(info, Err(TpmError::Unreachable { .. })),
        "{info:?}"
    );
}

#[test]
fn unreachable_tpms_are_reported_as_such() {
    let port = coffer_testkit::free_port();
    for tcti in [
        format!("swtpm:host=127.0.0.1,port={port}"),
        "device:/nonexistent/tpmrm0".to_owned(),
        "not a tcti".to_owned(),
    ] {
        let err = Tpm::connect(&tcti).unwrap_err();
        assert!(
            matches!(err, TpmError::Unreachable { .. }),
            "{tcti}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("COFFER_TCTI") && text.contains("tss"),
            "{text}"
        );
    }
    let err = Tpm::connect("device:/nonexistent/tpmrm0").unwrap_err();
    assert!(
        err.to_string()
            .contains("/nonexistent/tpmrm0 does not exist"),
        "{err}"
    );
}

#[test]
fn stored_blobs_that_are_cut_or_garbled_are_rejected() {
    let swtpm = Swtpm::start();
    let mut tpm = connect(&swtpm);
    let sealed = tpm
        .seal(&Kek::generate(), &pin("1234"), &pcrs("7"))
        .unwrap();
    let bytes = sealed.to_bytes();
    for len in 0..bytes.len() {
        let err = SealedKek::from_bytes(&bytes[..len]).unwrap_err();
        assert!(matches!(err, TpmError::Malformed { .. }), "{len}: {err:?}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(SealedKek::from_bytes(&longer).is_err());
    // Flipping any single byte never panics; it either fails to decode or decodes to
    // something else.
    for i in 0..bytes.len() {
        let mut garbled = bytes.clone();
        garbled[i] ^= 0x5a;
        if let Ok(decoded) = SealedKek::from_bytes(&garbled) {
            assert_ne!(decoded, sealed);
        }
    }
    // A public area that is not a sealed data object.
    let mut not_sealed = sealed.clone();
    not_sealed.public = vec![0, 0];
    assert!(matches!(
        tpm.unseal(&not_sealed, &pin("1234")),
        Err(TpmError::Malformed { .. })
    ));
}

#[test]
fn many_cycles_do_not_exhaust_tpm_slots() {
    let swtpm = Swtpm::start();
    let mut tpm = connect(&swtpm);
    // Make failures free, so the error paths can be exercised as often as the good ones.
    tpm.set_dictionary_attack_parameters(1000, 1, 1).unwrap();
    let bound = pcrs("7");
    for i in 0..50 {
        let kek = Kek::generate();
        let binding = if i % 2 == 0 {
            &bound
        } else {
            &PcrBinding::none()
        };
        let sealed = tpm.seal(&kek, &pin("1234"), binding).unwrap();
        assert_eq!(
            tpm.unseal(&sealed, &pin("1234")).unwrap().expose(),
            kek.expose(),
            "cycle {i}"
        );
        if i % 5 == 0 {
            let err = tpm.unseal(&sealed, &pin("bad")).unwrap_err();
            assert!(
                matches!(err, TpmError::WrongPin { .. }),
                "cycle {i}: {err:?}"
            );
        }
    }
    // Nothing is left loaded but the primary key.
    drop(tpm);
    let out = swtpm.tpm2_tool("tpm2_getcap", &["handles-transient"]);
    assert!(out.trim().is_empty(), "transient objects left: {out}");
}

#[test]
fn pins_whose_auth_value_ends_in_zero_work() {
    // The TPM strips trailing zero bytes from auth values; the TSS must agree.
    let zero_pin = (0..100_000)
        .map(|i| format!("{i}"))
        .find(|p| pin(p).expose()[PIN_AUTH_LEN - 1] == 0)
        .unwrap();
    let swtpm = Swtpm::start();
    let mut tpm = connect(&swtpm);
    let kek = Kek::generate();
    for binding in [PcrBinding::none(), pcrs("7")] {
        let sealed = tpm.seal(&kek, &pin(&zero_pin), &binding).unwrap();
        assert_eq!(
            tpm.unseal(&sealed, &pin(&zero_pin)).unwrap().expose(),
            kek.expose()
        );
    }
}

#[test]
fn info_describes_swtpm() {
    let swtpm = Swtpm::start();
    let mut tpm = connect(&swtpm);
    let info = tpm.info().unwrap();
    assert_eq!(info.manufacturer, "IBM ");
    assert_eq!(info.vendor, "SW   TPM");
    assert!(info.is_software);
    assert_eq!(info.firmware_version.split('.').count(), 4);
    let da = info.dictionary_attack;
    assert_eq!(da.max_auth_fail, 3);
    assert_eq!(da.lockout_counter, 0);
    assert_eq!(da.lockout_interval_secs, 1000);
    assert_eq!(da.lockout_recovery_secs, 1000);
    assert!(!da.in_lockout);
    assert_eq!(da.attempts_left(), 3);
    assert!(format!("{tpm:?}").contains("swtpm:host=127.0.0.1"));
}

#[test]
fn tcti_comes_from_the_environment_or_defaults() {
    // Only reads the variable: setting it would race with other tests.
    let tcti = tcti_from_env();
    match std::env::var(TCTI_ENV) {
        Ok(v) if !v.trim().is_empty() => assert_eq!(tcti, v),
        _ => assert_eq!(tcti, DEFAULT_TCTI),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn neither_key_nor_pin_auth_crosses_the_wire_in_the_clear() {
    let swtpm = Swtpm::start();
    let tap = WireTap::for_swtpm(&swtpm);
    let mut tpm = Tpm::connect(&tap.tcti()).unwrap();
    let kek = Kek::generate();
    let auth = pin("1234");
    let mut publics = Vec::new();
    for binding in [PcrBinding::none(), pcrs("7")] {
        let sealed = tpm.seal(&kek, &auth, &binding).unwrap();
        assert_eq!(tpm.unseal(&sealed, &auth).unwrap().expose(), kek.expose());
        publics.push(sealed.public);
    }
    drop(tpm);
    let wire = tap.captured();
    // The tap saw the traffic: the public areas travel in the clear.
    for public in &publics {
        assert!(contains(&wire, &public[2..]));
    }
    for secret in [&kek.expose()[..], &auth.expose()[..]] {
        for window in secret.windows(8) {
            assert!(!contains(&wire, window), "secret bytes seen on the wire");
        }
    }
}
