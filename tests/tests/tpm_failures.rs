//! What the binary does when the TPM says no: wrong PINs, dictionary-attack lockout, changed
//! PCRs, a cleared TPM, no TPM at all, and a TPM that dies mid-stream. Every failure must be
//! one sentence with the right exit code, and the recovery code must bring the vault back.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use coffer_system_tests::{exit, free_port, Env, PIN};

const WRONG_PIN: &str = "wrong-pin-Zr8q";

/// Messages that mean "the TPM is in dictionary-attack lockout".
const LOCKOUT: &[&str] = &["refusing pin attempts", "locked out", "lockout"];

/// The sealed key rows and vault settings, to prove that a failed operation changed nothing.
fn key_material(env: &Env) -> Vec<Vec<u8>> {
    let db = env.db();
    let mut rows: Vec<Vec<u8>> = Vec::new();
    let mut stmt = db
        .prepare("SELECT sealed FROM key_versions ORDER BY key_id, version")
        .unwrap();
    rows.extend(
        stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(Result::unwrap),
    );
    let mut stmt = db
        .prepare("SELECT name || '=' || hex(value) FROM vault_meta ORDER BY name")
        .unwrap();
    rows.extend(
        stmt.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|r| r.unwrap().into_bytes()),
    );
    rows
}

#[test]
fn wrong_pin_says_how_many_attempts_are_left() {
    let env = Env::new();
    env.init();
    env.create("guarded", b"guarded-value");
    env.sensitive(WRONG_PIN);

    env.coffer_with_pin(WRONG_PIN, &["secret", "get", "guarded"])
        .fails_all(exit::AUTH, &["wrong PIN", "2"]);
    // The status shows the failure counted.
    let status = env.coffer(&["status", "-o", "json"]).ok().json();
    assert_eq!(status["tpm"]["lockout_counter"], 1, "{status:#}");
    assert_eq!(status["tpm"]["in_lockout"], false, "{status:#}");

    // The right PIN still works, and the failure is on record.
    assert_eq!(env.get("guarded", &[]), b"guarded-value");
    let audit = env.audit();
    let unlock = audit
        .iter()
        .find(|e| e["operation"] == "unlock" && e["result"] != "ok")
        .unwrap_or_else(|| panic!("no failed unlock in the audit log: {audit:#?}"));
    assert_ne!(unlock["result"], "ok", "{unlock:#}");
    env.coffer(&["audit", "verify"]).ok();

    // A PIN of the wrong length never reaches the TPM: bad input.
    env.coffer_with_pin("12", &["secret", "get", "guarded"])
        .fails_any(exit::AUTH, &["wrong PIN", "6 to 128"]);
}

#[test]
fn repeated_wrong_pins_lock_out_even_the_right_pin() {
    let env = Env::new();
    // Make the DA policy explicit: 3 tries, one forgiven per 1000 s.
    env.swtpm.tpm2_tool(
        "tpm2_dictionarylockout",
        &["-s", "-n", "3", "-t", "1000", "-l", "1000"],
    );
    env.init();
    env.create("locked", b"locked-value");
    env.sensitive(WRONG_PIN);

    env.coffer_with_pin(WRONG_PIN, &["secret", "get", "locked"])
        .fails_all(exit::AUTH, &["wrong PIN", "2"]);
    env.coffer_with_pin(WRONG_PIN, &["secret", "get", "locked"])
        .fails_all(exit::AUTH, &["wrong PIN", "one more"]);
    env.coffer_with_pin(WRONG_PIN, &["secret", "get", "locked"])
        .fails_any(exit::AUTH, LOCKOUT)
        .stderr_has("coffer recover");
    // Now the right PIN is refused too, with the same explanation and a time to wait.
    env.coffer(&["secret", "get", "locked"])
        .fails_any(exit::AUTH, LOCKOUT)
        .stderr_has("minutes");
    env.coffer_stdin(&["secret", "put", "locked"], b"locked-value-2")
        .fails_any(exit::AUTH, LOCKOUT);
    let status = env.coffer(&["status"]).ok().text();
    assert!(status.contains("in lockout"), "{status}");
}

#[test]
fn lockout_ends_after_the_recovery_interval() {
    let env = Env::new();
    // Two tries, one forgiven every 3 seconds.
    env.swtpm.tpm2_tool(
        "tpm2_dictionarylockout",
        &["-s", "-n", "2", "-t", "3", "-l", "3"],
    );
    env.init();
    env.create("patient", b"patient-value");
    env.sensitive(WRONG_PIN);
    env.coffer_with_pin(WRONG_PIN, &["secret", "get", "patient"])
        .fails(exit::AUTH, "wrong PIN");
    env.coffer_with_pin(WRONG_PIN, &["secret", "get", "patient"])
        .fails_any(exit::AUTH, LOCKOUT);
    env.coffer(&["secret", "get", "patient"])
        .fails_any(exit::AUTH, LOCKOUT)
        .stderr_has("seconds");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        thread::sleep(Duration::from_millis(1000));
        let run = env.coffer(&["secret", "get", "patient"]);
        if run.code() == exit::OK {
            assert_eq!(run.stdout, b"patient-value");
            break;
        }
        run.fails_any(exit::AUTH, LOCKOUT);
        assert!(Instant::now() < deadline, "the TPM never forgave a failure");
    }
}

/// The lockout message says "unlock with `coffer recover` and your recovery key". Following
/// that advice must actually let the user back in.
#[test]
fn recovering_during_lockout_lets_the_user_back_in() {
    let env = Env::new();
    let code = env.init();
    env.create("after-lockout", b"after-lockout-value");
    env.sensitive(WRONG_PIN);
    for _ in 0..3 {
        env.coffer_with_pin(WRONG_PIN, &["secret", "get", "after-lockout"]);
    }
    env.coffer(&["secret", "get", "after-lockout"])
        .fails_any(exit::AUTH, LOCKOUT)
        .stderr_has("coffer recover");

    let new_pin = "new-pin-after-lockout";
    env.set_new_pin(new_pin);
    env.cmd(["recover", "--recovery-code-file"])
        .arg(env.code_file(&code))
        .run()
        .ok();
    env.set_pin(new_pin);
    assert_eq!(
        env.get("after-lockout", &[]),
        b"after-lockout-value",
        "the lockout message promised that `coffer recover` unlocks the vault"
    );
}

#[test]
fn changed_pcr_requires_the_recovery_code() {
    let env = Env::new();
    let code = env.init_with(&["--pcrs", "7"]);
    env.create("measured", b"measured-value");
    let status = env.coffer(&["status", "-o", "json"]).ok().json();
    assert_eq!(status["pcr_binding"], "7", "{status:#}");

    // A PCR outside the binding does not matter.
    env.swtpm.pcr_extend(16);
    assert_eq!(env.get("measured", &[]), b"measured-value");

    // PCR 7 changes (a Secure Boot update): the key no longer unseals.
    env.swtpm.pcr_extend(7);
    env.coffer(&["secret", "get", "measured"])
        .fails_all(exit::AUTH, &["coffer recover", "7"]);
    env.coffer_stdin(&["secret", "put", "measured"], b"measured-value-2")
        .fails(exit::AUTH, "coffer recover");

    // Recovery re-seals to the current PCR values under a new PIN.
    let new_pin = "new-pin-Ht5w-after-pcr";
    env.set_new_pin(new_pin);
    env.cmd(["recover", "--recovery-code-file"])
        .arg(env.code_file(&code))
        .run()
        .ok();
    // The old PIN is refused now, the new one works.
    env.coffer(&["secret", "get", "measured"])
        .fails(exit::AUTH, "wrong PIN");
    env.set_pin(new_pin);
    assert_eq!(env.get("measured", &[]), b"measured-value");
    env.put("measured", b"measured-value-2");
    assert_eq!(env.get("measured", &[]), b"measured-value-2");
    let status = env.coffer(&["status", "-o", "json"]).ok().json();
    assert_eq!(status["pcr_binding"], "7", "{status:#}");

    // Recovering with --pcrs none drops the binding: PCR changes no longer matter.
    env.swtpm.pcr_extend(7);
    env.coffer(&["secret", "get", "measured"])
        .fails(exit::AUTH, "coffer recover");
    env.set_new_pin(PIN);
    env.cmd(["recover", "--pcrs", "none", "--recovery-code-file"])
        .arg(env.code_file(&code))
        .run()
        .ok();
    env.set_pin(PIN);
    env.swtpm.pcr_extend(7);
    assert_eq!(env.get("measured", &[]), b"measured-value-2");
    env.coffer(&["audit", "verify"]).ok();
}

#[test]
fn cleared_tpm_requires_the_recovery_code_and_only_the_right_one() {
    let mut env = Env::new();
    let code = env.init();
    // A second vault on the same TPM gives a well-formed code that is not this vault's.
    let other_vault = env.dir.path().join("other").join("vault.db");
    let other = env
        .cmd(["init", "-o", "json"])
        .var("COFFER_VAULT", &other_vault)
        .run()
        .ok()
        .json();
    let foreign_code = other["recovery_code"].as_str().unwrap().to_owned();
    env.sensitive(&foreign_code);

    env.create("precious", b"precious-value");
    let key = env
        .coffer(&["key", "create", "--alias", "alias/extra", "-o", "json"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.coffer(&["key", "rotate", &key]).ok();
    env.cmd(["secret", "create", "extra", "--key", "alias/extra"])
        .stdin("extra-value")
        .run()
        .ok();

    env.swtpm.wipe_and_restart();
    env.coffer(&["secret", "get", "precious"])
        .fails(exit::AUTH, "coffer recover");
    let before = key_material(&env);

    // A wrong code, a mistyped code and garbage are refused and change nothing.
    let new_pin = "new-pin-Kd2p-after-wipe";
    env.set_new_pin(new_pin);
    env.cmd(["recover", "--recovery-code-file"])
        .arg(env.code_file(&foreign_code))
        .run()
        .fails(exit::AUTH, "recovery code");
    let mut typo: Vec<char> = code.chars().collect();
    typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    env.cmd(["recover", "--recovery-code-file"])
        .arg(env.code_file(&typo))
        .run()
        .fails_any(exit::AUTH, &["typo", "recovery code"]);
    env.cmd(["recover", "--recovery-code-file"])
        .arg(env.code_file("not a code"))
        .run()
        .fails(exit::AUTH, "recovery code");
    assert_eq!(
        key_material(&env),
        before,
        "a failed recovery changed the vault"
    );
    env.coffer(&["secret", "get", "precious"])
        .fails(exit::AUTH, "coffer recover");

    // The right code brings every key version back.
    let recovered = env
        .cmd(["recover", "--recovery-code-file"])
        .arg(env.code_file(&code))
        .run()
        .ok();
    assert!(recovered.stderr.contains("Recovered"), "{recovered}");
    assert_ne!(key_material(&env), before);
    env.set_pin(new_pin);
    assert_eq!(env.get("precious", &[]), b"precious-value");
    assert_eq!(env.get("extra", &[]), b"extra-value");
    env.put("extra", b"extra-value-2");
    assert_eq!(env.get("extra", &[]), b"extra-value-2");
    env.coffer(&["audit", "verify"]).ok();
    let audit = env.audit();
    assert!(
        audit.iter().any(|e| e["operation"] == "recover"),
        "{audit:#?}"
    );
}

#[test]
fn unreachable_tpm_is_exit_7_naming_coffer_tcti() {
    let env = Env::new();
    env.init();
    env.create("remote", b"remote-value");
    env.set_tcti(Some(format!("swtpm:host=127.0.0.1,port={}", free_port())));
    env.coffer(&["secret", "get", "remote"])
        .fails_all(exit::TPM_UNAVAILABLE, &["COFFER_TCTI", "cannot reach"]);
    env.coffer_stdin(&["secret", "put", "remote"], b"remote-value-2")
        .fails(exit::TPM_UNAVAILABLE, "COFFER_TCTI");
    env.coffer(&["audit", "verify"])
        .fails(exit::TPM_UNAVAILABLE, "COFFER_TCTI");
    // A TCTI that is not even a TCTI string.
    env.set_tcti(Some("bogus:thing".to_owned()));
    env.coffer(&["secret", "get", "remote"])
        .fails(exit::TPM_UNAVAILABLE, "COFFER_TCTI");
    // Status still answers, and says what is wrong.
    env.set_tcti(Some(format!("swtpm:host=127.0.0.1,port={}", free_port())));
    let status = env.coffer(&["status", "-o", "json"]).ok().json();
    assert!(status["tpm_error"].is_string(), "{status:#}");
    env.set_tcti(None);
    assert_eq!(env.get("remote", &[]), b"remote-value");
}

#[test]
fn init_without_a_tpm_leaves_no_vault_behind() {
    let env = Env::new();
    env.set_tcti(Some(format!("swtpm:host=127.0.0.1,port={}", free_port())));
    env.coffer(&["init"])
        .fails(exit::TPM_UNAVAILABLE, "COFFER_TCTI");
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut path = env.vault.as_os_str().to_owned();
        path.push(suffix);
        assert!(
            !std::path::Path::new(&path).exists(),
            "init left {path:?} behind"
        );
    }
    // Bad input leaves nothing either.
    env.set_tcti(None);
    env.cmd(["init"])
        .var("COFFER_PIN_FILE", env.file("short", b"12"))
        .run()
        .fails(exit::USAGE, "6 to 128");
    // And then init works, and refuses to overwrite.
    env.init();
    env.create("first", b"first-value");
    env.coffer(&["init"])
        .fails(exit::CONFLICT, "already exists");
    assert_eq!(env.get("first", &[]), b"first-value");
}

/// A PCR selection that cannot exist is malformed input, like every other bad argument: exit 2.
#[test]
fn invalid_pcr_selection_is_bad_input() {
    let env = Env::new();
    env.coffer(&["init", "--pcrs", "99"])
        .fails(exit::USAGE, "PCR");
    assert!(!env.vault.exists());
    let code = env.init();
    env.set_new_pin("another-pin-Xy7");
    env.cmd(["recover", "--pcrs", "7,x", "--recovery-code-file"])
        .arg(env.code_file(&code))
        .run()
        .fails(exit::USAGE, "PCR");
}

#[test]
fn tpm_killed_during_a_stream_of_operations_fails_fast() {
    let mut env = Env::new();
    env.init();
    env.create("stream", b"stream-000");
    let pid = env.swtpm.pid().expect("swtpm runs") as libc::pid_t;
    let port = env.swtpm.port();
    let started = Instant::now();
    let dead = Arc::new(AtomicBool::new(false));
    let killer = {
        let dead = Arc::clone(&dead);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(700));
            // Our own swtpm child, by its pid; the testkit reaps it later.
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // Dead means: nothing accepts connections on its port any more.
            let give_up = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(("127.0.0.1", port)).is_ok() && Instant::now() < give_up {
                thread::sleep(Duration::from_millis(5));
            }
            dead.store(true, Ordering::SeqCst);
        })
    };
    let mut in_flight = Vec::new();
    let mut last_acknowledged = b"stream-000".to_vec();
    let mut failures_after_kill = 0;
    for i in 1.. {
        let value = format!("stream-{i:03}");
        let after_kill = dead.load(Ordering::SeqCst);
        let run = if i % 2 == 0 {
            env.coffer_stdin(&["secret", "put", "stream"], value.as_bytes())
        } else {
            env.coffer(&["secret", "get", "stream"])
        };
        if run.code() == exit::OK && i % 2 == 0 {
            last_acknowledged = value.into_bytes();
        } else if run.code() == exit::OK {
            assert_eq!(run.stdout, last_acknowledged, "{run}");
        }
        if after_kill {
            failures_after_kill += 1;
            run.fails_all(exit::TPM_UNAVAILABLE, &["TPM", "COFFER_TCTI"]);
        } else {
            // Before or while the TPM died: success or a clean "TPM unavailable", nothing
            // else (no other exit code, no hang, no panic).
            assert!(
                run.code() == exit::OK || run.code() == exit::TPM_UNAVAILABLE,
                "an operation in flight when the TPM died ended unexpectedly\n{run}"
            );
            in_flight.push(run.code());
        }
        if failures_after_kill >= 4 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "too slow");
    }
    killer.join().unwrap();
    assert!(
        in_flight.contains(&exit::OK),
        "nothing succeeded before the kill: {in_flight:?}"
    );

    // After a reboot of the TPM, every acknowledged write is there.
    env.swtpm.restart();
    assert_eq!(env.get("stream", &[]), last_acknowledged);
    let check: String = env
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    env.coffer(&["audit", "verify"]).ok();
}

#[test]
fn change_pin_reseals_every_key() {
    let env = Env::new();
    env.init();
    env.create("repinned", b"repinned-value");
    env.coffer(&["key", "create", "--alias", "alias/second"])
        .ok();
    env.cmd(["secret", "create", "second", "--key", "alias/second"])
        .stdin("second-value")
        .run()
        .ok();
    let new_pin = "changed-pin-Lq4z";
    env.set_new_pin(new_pin);
    env.coffer(&["change-pin"]).ok();
    env.coffer(&["secret", "get", "repinned"])
        .fails(exit::AUTH, "wrong PIN");
    env.set_pin(new_pin);
    assert_eq!(env.get("repinned", &[]), b"repinned-value");
    assert_eq!(env.get("second", &[]), b"second-value");
    // Too short a new PIN is bad input and changes nothing.
    env.set_new_pin("123");
    env.coffer(&["change-pin"]).fails(exit::USAGE, "6 to 128");
    assert_eq!(env.get("repinned", &[]), b"repinned-value");
}

/// A `coffer` process killed (SIGKILL, OOM killer, a crash) while it has objects loaded in a
/// TPM without a resource manager (swtpm, /dev/tpm0) must not leave that TPM unusable for
/// every later `coffer` process.
#[test]
fn killed_process_leaves_the_tpm_usable() {
    use coffer_system_tests::{TpmProxy, TPM2_CC_LOAD};
    let env = Env::new();
    env.init();
    env.create("survivor", b"survivor-value");
    for round in 0..2 {
        // Hold the process right after the TPM loaded its sealed key, then kill it.
        let proxy = TpmProxy::start(env.swtpm.port());
        proxy.stall_after(TPM2_CC_LOAD);
        let mut spawned = env
            .cmd(["secret", "get", "survivor"])
            .var("COFFER_TCTI", proxy.tcti())
            .spawn();
        assert!(
            proxy.wait_until_stalled(Duration::from_secs(20)),
            "round {round}: the process never reached TPM2_Load: {}",
            spawned.stderr()
        );
        spawned.sigkill();
        let status = spawned.wait();
        assert!(status.code().is_none(), "round {round}: {status}");
        drop(proxy);
        // The next process, straight to the TPM, must work.
        let run = env.coffer(&["secret", "get", "survivor"]);
        assert_eq!(
            run.code(),
            exit::OK,
            "round {round}: after a killed process the TPM is unusable\n{run}"
        );
        assert_eq!(run.stdout, b"survivor-value");
    }
}

/// Another TPM answering at the vault's TCTI (as an interposer would) presents a storage
/// primary with a different Name: refused before any session is salted with it.
#[test]
fn a_tpm_with_another_storage_key_is_refused_before_it_sees_anything() {
    let env = Env::new();
    env.init();
    env.create("guarded", b"guarded-value");
    let impostor = coffer_testkit::Swtpm::start();
    env.set_tcti(Some(impostor.tcti()));
    env.coffer(&["secret", "get", "guarded"])
        .fails_all(exit::AUTH, &["different storage key", "coffer recover"]);
    env.set_tcti(None);
    assert_eq!(env.get("guarded", &[]), b"guarded-value");
}

/// A vault written before the primary's Name was recorded records it at its next unlock.
#[test]
fn the_primary_name_is_recorded_at_the_next_unlock() {
    let env = Env::new();
    env.init();
    env.create("guarded", b"guarded-value");
    let name = |env: &Env| -> Option<Vec<u8>> {
        env.db()
            .query_row(
                "SELECT value FROM vault_meta WHERE name = 'tpm_primary_name'",
                [],
                |r| r.get(0),
            )
            .ok()
    };
    let recorded = name(&env).expect("init records the primary's name");
    env.db()
        .execute("DELETE FROM vault_meta WHERE name = 'tpm_primary_name'", [])
        .unwrap();
    assert_eq!(env.get("guarded", &[]), b"guarded-value");
    assert_eq!(name(&env), Some(recorded));
    env.coffer(&["audit", "verify"]).ok();
}

/// Recovery re-seals every key version, so every one must wrap the vault's audit key:
/// a later version altered in the file must not be trusted from then on.
#[test]
fn recover_checks_every_key_version() {
    let mut env = Env::new();
    let code = env.init();
    env.create("precious", b"precious-value");
    let key = env.coffer(&["key", "list", "-o", "json"]).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.coffer(&["key", "rotate", &key]).ok();
    env.swtpm.wipe_and_restart();
    let tampered = env
        .db()
        .execute(
            "UPDATE key_versions SET wrapped_audit_key = randomblob(60) WHERE version = 2",
            [],
        )
        .unwrap();
    assert_eq!(tampered, 1);
    env.set_new_pin("new-pin-Kd2p-after-wipe");
    env.cmd(["recover", "--recovery-code-file"])
        .arg(env.code_file(&code))
        .run()
        .fails(exit::TAMPERED, "version 2");
}

/// swtpm starts with an empty lockout authorization, like most Linux machines: anyone can
/// reset the count of wrong PINs, so a short PIN is refused and the status says why.
#[test]
fn a_tpm_whose_lockout_can_be_reset_needs_a_long_pin() {
    let env = Env::new();
    std::fs::write(&env.pin_file, "8char-pin").unwrap();
    env.coffer(&["init"])
        .fails_all(exit::USAGE, &["lockout authorization is empty", "12"]);
    assert!(!env.vault.exists(), "a refused init leaves no vault");
    std::fs::write(&env.pin_file, "five5").unwrap();
    env.coffer(&["init"]).fails(exit::USAGE, "6 to 128");

    env.set_pin(coffer_system_tests::PIN);
    env.init();
    let status = env.coffer(&["status", "-o", "json"]).ok().json();
    assert_eq!(status["tpm"]["lockout_auth_set"], false, "{status:#}");
    let weakness = status["pin_lockout_weakness"].as_str().unwrap_or_default();
    assert!(
        weakness.contains("lockout authorization is empty"),
        "{status:#}"
    );
    let table = env.coffer(&["status"]).ok().text();
    assert!(table.contains("NOT EFFECTIVE"), "{table}");
}

/// With a lockout password the TPM's brake holds, so a 6-character PIN is enough; with the
/// lockout interval at 0 it is off again.
#[test]
fn a_tpm_with_a_lockout_password_accepts_a_short_pin() {
    let env = Env::new();
    env.swtpm
        .tpm2_tool("tpm2_changeauth", &["-c", "lockout", "lockout-pass-Xy7"]);
    std::fs::write(&env.pin_file, "8char-pin").unwrap();
    env.init();
    let status = env.coffer(&["status", "-o", "json"]).ok().json();
    assert_eq!(status["tpm"]["lockout_auth_set"], true, "{status:#}");
    assert!(status["pin_lockout_weakness"].is_null(), "{status:#}");
    env.create("short-pin", b"short-pin-value");
    assert_eq!(env.get("short-pin", &[]), b"short-pin-value");

    // A lockout interval of 0 switches the brake off: a new short PIN is refused again.
    env.swtpm.tpm2_tool(
        "tpm2_dictionarylockout",
        &[
            "-s",
            "-n",
            "3",
            "-t",
            "0",
            "-l",
            "1000",
            "-p",
            "lockout-pass-Xy7",
        ],
    );
    let status = env.coffer(&["status", "-o", "json"]).ok().json();
    let weakness = status["pin_lockout_weakness"].as_str().unwrap_or_default();
    assert!(weakness.contains("switched off"), "{status:#}");
    std::fs::write(&env.new_pin_file, "other-8ch").unwrap();
    env.coffer(&["change-pin"])
        .fails_all(exit::USAGE, &["switched off", "12"]);
}

/// Something that accepts the TPM connection but never answers must not hang Coffer: the
/// command fails within the deadline, naming the TCTI.
#[test]
fn a_tpm_that_never_answers_fails_within_the_deadline() {
    let env = Env::new();
    env.init();
    // The swtpm TCTI uses a command port and, next to it, a control port: both accept and
    // never answer.
    let (listeners, port) = loop {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if let Ok(second) = std::net::TcpListener::bind(("127.0.0.1", port.wrapping_add(1))) {
            break (vec![first, second], port);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let holder = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut held = Vec::new();
            for listener in &listeners {
                listener.set_nonblocking(true).unwrap();
            }
            while !stop.load(Ordering::Relaxed) {
                for listener in &listeners {
                    if let Ok((conn, _)) = listener.accept() {
                        held.push(conn);
                    }
                }
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let tcti = format!("swtpm:host=127.0.0.1,port={port}");
    env.set_tcti(Some(tcti.clone()));
    let started = Instant::now();
    env.cmd(["secret", "list"])
        .var("COFFER_TPM_TIMEOUT_MS", "1000")
        .timeout(Duration::from_secs(20))
        .run()
        .fails_all(exit::TPM_UNAVAILABLE, &["did not answer", &tcti]);
    assert!(started.elapsed() < Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    holder.join().unwrap();
}

/// PCRs 16 and 23 can be reset by any process, so binding to them proves nothing: the
/// binding is made (it is the user's choice) but with a warning; PCR 7 gets none.
#[test]
fn binding_to_a_resettable_pcr_warns() {
    let env = Env::new();
    let run = env.coffer(&["init", "--pcrs", "7,16,23"]).ok();
    assert!(
        run.stderr
            .contains("PCR 16, 23 can be reset by any program"),
        "{run}"
    );
    let other = env.dir.path().join("other").join("vault.db");
    let run = env
        .cmd(["init", "--pcrs", "7"])
        .var("COFFER_VAULT", &other)
        .run()
        .ok();
    assert!(!run.stderr.contains("can be reset"), "{run}");
}

/// With XDG_RUNTIME_DIR naming a directory that does not exist, `secret get` said the
/// TPM was busy ("No such file or directory"). Now the missing directory is created when
/// it sits in a directory of the user's own, and named when it cannot be.
#[test]
fn a_missing_runtime_directory_is_created_or_named_not_called_a_busy_tpm() {
    let env = Env::new();
    env.init();
    env.create("app/token", b"token-value-123");
    let own = env.file("marker", b"").with_file_name("new-runtime");
    let run = env
        .cmd(["--no-agent", "secret", "get", "app/token"])
        .var("XDG_RUNTIME_DIR", &own)
        .run()
        .ok();
    assert_eq!(run.stdout, b"token-value-123");
    let mode = std::fs::metadata(&own).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let foreign = std::path::Path::new("/nonexistent-coffer-parent/run");
    let run = env
        .cmd(["--no-agent", "secret", "get", "app/token"])
        .var("XDG_RUNTIME_DIR", foreign)
        .run();
    assert_ne!(run.code(), exit::BUSY, "{run}");
    assert!(
        run.stderr.contains("/nonexistent-coffer-parent/run"),
        "{run}"
    );
    assert!(run.stderr.contains("does not exist"), "{run}");
    assert!(!run.stderr.contains("busy"), "{run}");
}
