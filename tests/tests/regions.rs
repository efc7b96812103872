//! Replica regions, first part: identities, pairing by pinned fingerprints, and the
//! daemon's TLS listener, between two vaults that each have their own swtpm.

use std::time::{Duration, Instant};

use coffer_system_tests::{exit, Env, Spawned};

fn identity(env: &Env) -> (String, String) {
    let json = env
        .coffer(&["region", "identity", "-o", "json"])
        .ok()
        .json();
    (
        json["region"].as_str().unwrap().to_owned(),
        json["fingerprint"].as_str().unwrap().to_owned(),
    )
}

/// A `coffer daemon --listen 127.0.0.1:0`, killed when dropped.
struct Daemon(Spawned);

impl Daemon {
    fn start(env: &Env) -> (Daemon, u16) {
        let daemon = Daemon(
            env.cmd(["daemon", "--listen", "127.0.0.1:0", "--max-sleep", "1h"])
                .spawn(),
        );
        let start = Instant::now();
        loop {
            let stderr = daemon.0.stderr();
            if let Some(rest) = stderr.split("listening for peers on 127.0.0.1:").nth(1) {
                let port = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                return (daemon, port);
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the daemon did not start listening: {stderr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_log(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let stderr = self.0.stderr();
            if let Some(line) = stderr.lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the daemon never logged {needle:?}: {stderr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.0.sigkill();
        self.0.wait();
    }
}

#[test]
fn two_vaults_pair_by_pinned_fingerprints_and_talk_over_tls13() {
    let (home, lab) = (Env::new(), Env::new());
    home.init();
    lab.init();
    // Every vault has a region name from the start, and a fingerprint it keeps.
    let (default_region, _) = identity(&home);
    assert_eq!(default_region, "local-1");
    home.coffer(&["region", "rename", "eu-home-1"]).ok();
    lab.coffer(&["region", "rename", "us-lab-1"]).ok();
    let (_, home_fp) = identity(&home);
    let (region, lab_fp) = identity(&lab);
    assert_eq!(region, "us-lab-1");
    assert_eq!(
        identity(&lab).1,
        lab_fp,
        "the fingerprint changed between calls"
    );
    assert_ne!(home_fp, lab_fp);
    let shown = lab.coffer(&["region", "identity"]).ok().text();
    assert!(
        shown.contains(&lab_fp) && shown.contains("us-lab-1"),
        "{shown}"
    );

    let (daemon, port) = Daemon::start(&lab);
    let url = format!("https://127.0.0.1:{port}");
    home.coffer(&[
        "region",
        "add",
        "us-lab-1",
        "--url",
        &url,
        "--fingerprint",
        &lab_fp,
    ])
    .ok();

    // Pinned on one side only: both sides refuse, and both name both fingerprints.
    let refused = home
        .coffer(&["region", "ping", "us-lab-1"])
        .fails_all(exit::TAMPERED, &[&home_fp, &lab_fp, "refused this vault"]);
    drop(refused);
    let line = daemon.wait_for_log("refused a peer");
    assert!(line.contains(&home_fp) && line.contains(&lab_fp), "{line}");

    // Once the lab pins the home vault too (no daemon restart), they talk.
    lab.coffer(&[
        "region",
        "add",
        "eu-home-1",
        "--url",
        "https://127.0.0.1:9",
        "--fingerprint",
        &home_fp,
    ])
    .ok();
    let pinged = home.coffer(&["region", "ping", "us-lab-1"]).ok().text();
    assert!(
        pinged.contains("TLSv1.3") && pinged.contains("X25519"),
        "{pinged}"
    );
    daemon.wait_for_log("hello from region eu-home-1");
    let peers = home.coffer(&["region", "list", "-o", "json"]).ok().json();
    assert_eq!(peers[0]["name"], "us-lab-1");
    assert_eq!(peers[0]["key_exchange"], "X25519MLKEM768");
    assert!(peers[0]["last_contact"].is_string(), "{peers}");
    assert!(peers[0]["last_error"].is_null(), "{peers}");

    // A renamed region is refused while peers know it by its name.
    home.coffer(&["region", "rename", "eu-home-2"])
        .fails(exit::CONFLICT, "cannot change while 1 peer");

    // Pinned to another fingerprint: the client refuses the server and shows both.
    let other = Env::new();
    other.init();
    let (_, other_fp) = identity(&other);
    home.coffer(&["region", "remove", "us-lab-1"]).ok();
    home.coffer(&[
        "region",
        "add",
        "us-lab-1",
        "--url",
        &url,
        "--fingerprint",
        &other_fp,
    ])
    .ok();
    home.coffer(&["region", "ping", "us-lab-1"]).fails_all(
        exit::TAMPERED,
        &[&other_fp, &lab_fp, "presented fingerprint"],
    );
    let peers = home.coffer(&["region", "list", "-o", "json"]).ok().json();
    assert!(
        peers[0]["last_error"].as_str().unwrap().contains(&lab_fp),
        "{peers}"
    );

    // Unreachable: the address and the cause.
    drop(daemon);
    home.coffer(&["region", "remove", "us-lab-1"]).ok();
    home.coffer(&[
        "region",
        "add",
        "us-lab-1",
        "--url",
        &url,
        "--fingerprint",
        &lab_fp,
    ])
    .ok();
    home.coffer(&["region", "ping", "us-lab-1"]).fails_all(
        exit::FAILURE,
        &[
            "cannot reach region \"us-lab-1\"",
            &format!("127.0.0.1:{port}"),
        ],
    );
}

#[test]
fn bad_region_input_says_what_is_wrong_and_changes_nothing() {
    let env = Env::new();
    env.init();
    let (_, own_fp) = identity(&env);
    let other = Env::new();
    other.init();
    let (_, fp) = identity(&other);
    let add = |name: &str, url: &str, fingerprint: &str| {
        env.coffer(&[
            "region",
            "add",
            name,
            "--url",
            url,
            "--fingerprint",
            fingerprint,
        ])
    };
    add("us-lab-1", "http://127.0.0.1:7443", &fp).fails(exit::USAGE, "must start with https://");
    add("us-lab-1", "https://127.0.0.1", &fp).fails(exit::USAGE, "needs a port");
    add("US LAB", "https://127.0.0.1:7443", &fp).fails(exit::USAGE, "lowercase letters");
    add("us-lab-1", "https://127.0.0.1:7443", "ABCD-1234").fails(exit::USAGE, "52 letters");
    add("us-lab-1", "https://127.0.0.1:7443", &own_fp).fails(exit::USAGE, "this vault's own");
    add("local-1", "https://127.0.0.1:7443", &fp).fails(exit::USAGE, "own region name");
    env.coffer(&["region", "rename", "Bad_Name"])
        .fails(exit::USAGE, "lowercase letters");
    env.coffer(&["region", "remove", "nowhere"])
        .fails(exit::NOT_FOUND, "no region named");
    env.coffer(&["region", "ping", "nowhere"])
        .fails(exit::NOT_FOUND, "no region named");
    let empty = env.coffer(&["region", "list", "-o", "json"]).ok().json();
    assert_eq!(empty, serde_json::json!([]));

    add("us-lab-1", "https://127.0.0.1:7443", &fp).ok();
    add("us-lab-1", "https://127.0.0.1:7444", &fp).fails(exit::CONFLICT, "already paired");
    add("us-lab-2", "https://127.0.0.1:7444", &fp)
        .fails(exit::CONFLICT, "already paired with fingerprint");
    let peers = env.coffer(&["region", "list", "-o", "json"]).ok().json();
    assert_eq!(peers.as_array().unwrap().len(), 1);
    assert_eq!(peers[0]["url"], "https://127.0.0.1:7443");
}

#[test]
fn an_edited_pairing_or_region_name_is_refused_not_followed() {
    let env = Env::new();
    env.init();
    let other = Env::new();
    other.init();
    let (_, fp) = identity(&other);
    env.coffer(&["region", "rename", "eu-home-1"]).ok();
    env.coffer(&[
        "region",
        "add",
        "us-lab-1",
        "--url",
        "https://127.0.0.1:7443",
        "--fingerprint",
        &fp,
    ])
    .ok();

    // Redirecting the peer to another address is detected.
    env.db()
        .execute("UPDATE peers SET url = 'https://203.0.113.9:7443'", [])
        .unwrap();
    env.coffer(&["region", "list"])
        .fails(exit::TAMPERED, "altered outside Coffer");
    env.coffer(&["region", "ping", "us-lab-1"])
        .fails(exit::TAMPERED, "altered outside Coffer");
    env.db()
        .execute("UPDATE peers SET url = 'https://127.0.0.1:7443'", [])
        .unwrap();
    env.coffer(&["region", "list"]).ok();

    // So is renaming the region in the file, and replacing the identity's public half.
    env.db()
        .execute(
            "UPDATE vault_meta SET value = CAST('us-east-1' AS BLOB) WHERE name = 'region_name'",
            [],
        )
        .unwrap();
    env.coffer(&["region", "identity"])
        .fails(exit::TAMPERED, "region name failed its integrity check");
    env.db()
        .execute(
            "UPDATE vault_meta SET value = CAST('eu-home-1' AS BLOB) WHERE name = 'region_name'",
            [],
        )
        .unwrap();
    let other_identity: Vec<u8> = other
        .db()
        .query_row(
            "SELECT value FROM vault_meta WHERE name = 'region_identity'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    env.db()
        .execute(
            "UPDATE vault_meta SET value = ?1 WHERE name = 'region_identity'",
            [other_identity],
        )
        .unwrap();
    env.coffer(&["region", "identity"])
        .fails(exit::TAMPERED, "identity failed its integrity check");
    // Nothing of the identity's private keys is in the file in the clear.
    let stored: Vec<u8> = env
        .db()
        .query_row(
            "SELECT value FROM vault_meta WHERE name = 'region_identity'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let text = String::from_utf8_lossy(&stored);
    assert!(!text.contains("PRIVATE"), "{text}");
}

#[test]
fn the_region_can_be_named_at_init_and_a_bad_name_creates_no_vault() {
    let env = Env::new();
    env.coffer(&["init", "--region", "Not_A_Region"])
        .fails(exit::USAGE, "lowercase letters");
    assert!(!env.vault.exists(), "a refused init left a vault file");
    env.init_with(&["--region", "eu-home-1"]);
    assert_eq!(identity(&env).0, "eu-home-1");
}
