//! Small teams (issue 12): three members' vaults — alice (the owner), bob and carol —
//! each with its own swtpm and its own `coffer daemon --listen` on loopback, made into a
//! team through the CLI exactly as people would: `team create`, `team invite`,
//! `team join`, `team share`.
//!
//! Nothing here waits a fixed time: every "it arrives" is polled up to a deadline, and
//! every "nothing changed" is checked after a later change has provably arrived (a
//! barrier), so that a change still on its way cannot pass unseen.

use std::time::Duration;

use coffer_system_tests::daemon::{eventually, fingerprint, Daemon};
use coffer_system_tests::{exit, Env, Run, PIN};
use serde_json::Value;

const TEAM: &str = "payments-team";
const FOLDER: &str = "team/payments/";

/// How long a change may take to reach a member whose daemon is up. The daemons poll
/// twenty times a second; a failed round backs off from 1 s up to 1 min, so a member that
/// was unreachable may need that long once it is back.
const ARRIVES: Duration = Duration::from_secs(30);
const RECONNECTS: Duration = Duration::from_secs(150);

/// One member: a vault of its own, its region name, its daemon and where it listens.
struct Member {
    env: Env,
    region: &'static str,
    port: u16,
    daemon: Option<Daemon>,
}

impl Member {
    /// A fresh vault. Every vault starts as region `local-1`, and a team cannot hold two
    /// members of one name, so each is renamed before anything is paired.
    fn new(region: &'static str) -> Member {
        let env = Env::new();
        env.init();
        let identity = env
            .coffer(&["region", "identity", "-o", "json"])
            .ok()
            .json();
        assert_eq!(identity["region"], "local-1", "{identity}");
        env.coffer(&["region", "rename", region]).ok();
        let identity = env
            .coffer(&["region", "identity", "-o", "json"])
            .ok()
            .json();
        assert_eq!(identity["region"], region, "{identity}");
        let (daemon, port) = Daemon::start(&env);
        Member {
            env,
            region,
            port,
            daemon: Some(daemon),
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn fingerprint(&self) -> String {
        fingerprint(&self.env)
    }

    /// Stops the daemon: the member is offline (its vault file stays).
    fn stop(&mut self) {
        self.daemon = None;
    }

    /// Starts the daemon again at the port the others know.
    fn restart(&mut self) {
        assert!(self.daemon.is_none(), "{} is running", self.region);
        self.daemon = Some(Daemon::start_on(&self.env, self.port));
    }

    fn log(&self) -> String {
        self.daemon.as_ref().map(Daemon::log).unwrap_or_default()
    }

    /// `team members -o json` (the whole team as this vault knows it).
    fn team(&self) -> Value {
        self.env
            .coffer(&["team", "members", "-o", "json"])
            .ok()
            .json()
    }

    /// `secret put NAME` with the value on stdin, not checked.
    fn try_put(&self, name: &str, value: &str) -> Run {
        self.env.coffer_stdin(
            &["secret", "put", name, "--value-file", "-", "-o", "json"],
            value.as_bytes(),
        )
    }

    /// `secret create NAME` with the value on stdin, not checked.
    fn try_create(&self, name: &str, value: &str) -> Run {
        self.env.coffer_stdin(
            &["secret", "create", name, "--value-file", "-", "-o", "json"],
            value.as_bytes(),
        )
    }

    fn share(&self, member: &str, role: &str) {
        self.share_prefix(FOLDER, member, role);
    }

    fn share_prefix(&self, prefix: &str, member: &str, role: &str) {
        self.env
            .coffer(&["team", "share", prefix, "--member", member, "--role", role])
            .ok();
    }
}

/// Three members in one team, made through the CLI: alice owns it, bob and carol join.
/// Nothing is shared yet.
struct Team {
    alice: Member,
    bob: Member,
    carol: Member,
}

impl Team {
    fn new() -> Team {
        let (alice, bob, carol) = (
            Member::new("alice"),
            Member::new("bob"),
            Member::new("carol"),
        );
        let created = alice
            .env
            .coffer(&["team", "create", TEAM, "-o", "json"])
            .ok();
        assert_eq!(created.json()["name"], TEAM, "{created}");
        assert_eq!(created.json()["is_owner"], true, "{created}");
        for member in [&bob, &carol] {
            alice
                .env
                .coffer(&[
                    "team",
                    "invite",
                    member.region,
                    "--url",
                    &member.url(),
                    "--fingerprint",
                    &member.fingerprint(),
                ])
                .ok();
        }
        let (alice_url, alice_fp) = (alice.url(), alice.fingerprint());
        for member in [&bob, &carol] {
            member
                .env
                .coffer(&[
                    "team",
                    "join",
                    TEAM,
                    "--owner",
                    "alice",
                    "--url",
                    &alice_url,
                    "--fingerprint",
                    &alice_fp,
                ])
                .ok();
        }
        let team = Team { alice, bob, carol };
        for member in [&team.alice, &team.bob, &team.carol] {
            let info = member.team();
            assert_eq!(info["name"], TEAM, "{}: {info:#}", member.region);
            assert_eq!(info["owner_region"], "alice", "{}: {info:#}", member.region);
            assert_eq!(info["own_region"], member.region, "{info:#}");
            assert_eq!(info["is_owner"], member.region == "alice", "{info:#}");
        }
        let members = member_regions(&team.alice.team());
        assert!(
            members.contains(&"bob".to_owned()) && members.contains(&"carol".to_owned()),
            "alice's team lacks a member: {members:?}"
        );
        team
    }

    fn all(&self) -> [&Member; 3] {
        [&self.alice, &self.bob, &self.carol]
    }

    /// Every daemon's log, for failure messages.
    fn logs(&self) -> String {
        self.all()
            .iter()
            .map(|m| format!("--- {} daemon:\n{}", m.region, m.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Shares the folder with `member` as `role`, and waits until that member's own copy
    /// of the team state shows it (it travels in the owner's replication stream).
    fn share(&self, member: &Member, role: &str) {
        self.alice.share(member.region, role);
        self.wait_role(member, role);
    }

    fn wait_role(&self, member: &Member, role: &str) {
        eventually(
            &format!("{} to see itself as {role} of {FOLDER}", member.region),
            ARRIVES,
            || {
                let seen = role_of(&member.team(), member.region, FOLDER);
                if seen.as_deref() == Some(role) {
                    Ok(())
                } else {
                    Err(format!("{seen:?}\n{}", self.logs()))
                }
            },
        );
    }

    /// Waits until `name` reads `value` on every member.
    fn wait_everywhere(&self, name: &str, value: &str) {
        for member in self.all() {
            wait_value(member, name, value, ARRIVES, self);
        }
    }
}

/// A write of `value` to `name` sent straight to `to`'s team write endpoint as `from`'s
/// vault: its own identity (unsealed with its PIN and TPM), the pinned TLS its daemon
/// uses, and a request built exactly as `coffer secret put` builds one (the value sealed
/// under a fresh data key bound to `from`'s vault, the data key HPKE-sealed to `to`) —
/// but with none of the checks `from`'s CLI and engine make before sending. What a member
/// running a modified `coffer` could send. Returns the answer's body, or the refusal
/// (status and body).
fn forge_write(from: &Member, to: &Member, name: &str, value: &str) -> Result<Vec<u8>, String> {
    use coffer_core::crypto::{Aad, DataKey};
    use coffer_core::region::sealed::{seal_data_key, ReplicaContext, SealPurpose};
    use coffer_core::region::transport::{self, Caller, Target};
    use coffer_core::region::{tls, Fingerprint, PeerUrl};
    use coffer_core::vault::team::forward::{ForwardedWrite, WRITE_PATH};
    use uuid::Uuid;

    let fail = |e: &dyn std::fmt::Display| format!("cannot forge the request: {e}");
    let secret_id: Uuid = from.env.describe(name)["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| format!("{name} has no id on {}", from.region))?;
    let mut vault = coffer_core::Vault::open(&from.env.vault).map_err(|e| fail(&e))?;
    vault.unlock(&from.env.tcti(), PIN).map_err(|e| fail(&e))?;
    let (region, identity) = vault.identity().map_err(|e| fail(&e))?;
    let own_vault = vault.id();
    let hello = identity.hello(&region, own_vault).map_err(|e| fail(&e))?;
    drop(vault);
    let pinned = Fingerprint::parse(&to.fingerprint()).map_err(|e| fail(&e))?;
    let url = PeerUrl::parse(&to.url()).map_err(|e| fail(&e))?;
    let (config, verifier) = tls::client_config(&identity, pinned).map_err(|e| fail(&e))?;
    let mut link = transport::connect(
        Caller {
            config,
            verifier,
            hello: &hello,
            fingerprint: identity.fingerprint().map_err(|e| fail(&e))?,
        },
        Target {
            name: to.region,
            url: &url,
            pinned,
        },
    )
    .map_err(|e| fail(&e))?;
    let primary_vault = link.contact.hello.vault_id;
    let primary_hpke = link
        .contact
        .hello
        .hpke_key()
        .ok_or_else(|| fail(&"the primary's hello has no X25519 key"))?;
    let version_id = Uuid::new_v4();
    let dek = DataKey::generate();
    // The associated data of a stored secret value (coffer_core's vault::context).
    let aad = Aad::new("coffer.secret-value.v1")
        .with(own_vault.as_bytes())
        .with(secret_id.as_bytes())
        .with(version_id.as_bytes());
    // A text value as the vault encrypts it: kind tag 0, then the bytes (SecretValue).
    let mut plain = vec![0u8];
    plain.extend_from_slice(value.as_bytes());
    let ciphertext = dek.seal(aad.as_bytes(), &plain);
    let sealed_key = seal_data_key(
        &dek,
        &primary_hpke,
        &ReplicaContext {
            purpose: SealPurpose::ForwardedWrite,
            primary_vault: own_vault,
            primary_region: from.region.to_owned(),
            replica_vault: primary_vault,
            replica_region: to.region.to_owned(),
            secret_id,
            version_id,
        },
    )
    .map_err(|e| fail(&e))?;
    let write = ForwardedWrite {
        author_vault: own_vault,
        primary_vault,
        name: name.to_owned(),
        secret_id,
        create: None,
        version_id,
        labels: vec!["CURRENT".to_owned()],
        ciphertext,
        sealed_key,
    };
    let body = serde_json::to_vec(&write).map_err(|e| fail(&e))?;
    link.post(WRITE_PATH, body).map_err(|e| e.to_string())
}

/// The member region names in a `team members` answer.
fn member_regions(info: &Value) -> Vec<String> {
    info["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members in {info:#}"))
        .iter()
        .filter_map(|m| m["region"].as_str().map(str::to_owned))
        .collect()
}

/// `member`'s role on `prefix` in a `team members` answer.
fn role_of(info: &Value, member: &str, prefix: &str) -> Option<String> {
    info["members"]
        .as_array()?
        .iter()
        .find(|m| m["region"] == member)?["roles"][prefix]
        .as_str()
        .map(str::to_owned)
}

/// `secret get NAME` on a member: the value, or the failed run.
fn value_on(member: &Member, name: &str) -> Result<String, Run> {
    let run = member.env.coffer(&["secret", "get", name]);
    if run.code() == exit::OK {
        Ok(String::from_utf8_lossy(&run.stdout).into_owned())
    } else {
        Err(run)
    }
}

#[track_caller]
fn wait_value(member: &Member, name: &str, expected: &str, limit: Duration, team: &Team) {
    eventually(
        &format!("{name} = {expected:?} on {}", member.region),
        limit,
        || match value_on(member, name) {
            Ok(value) if value == expected => Ok(()),
            Ok(value) => Err(format!("value {value:?}")),
            Err(run) => Err(format!("{run}\n{}", team.logs())),
        },
    );
}

/// Waits until `name` is gone on a member: `get` says not found.
#[track_caller]
fn wait_gone(member: &Member, name: &str, limit: Duration, team: &Team) {
    eventually(
        &format!("{name} deleted on {}", member.region),
        limit,
        || match value_on(member, name) {
            Err(run) if run.code() == exit::NOT_FOUND => Ok(()),
            Err(run) => Err(format!("{run}")),
            Ok(value) => Err(format!(
                "still readable ({} bytes)\n{}",
                value.len(),
                team.logs()
            )),
        },
    );
}

/// A refusal: a non-zero exit that is not a usage error (the command was understood),
/// with stderr naming every one of `needles`.
#[track_caller]
fn refused(run: Run, needles: &[&str]) -> Run {
    assert!(
        run.code() != exit::OK && run.code() != exit::USAGE,
        "expected a refusal\n{run}"
    );
    let stderr = run.stderr.to_lowercase();
    for needle in needles {
        assert!(
            stderr.contains(&needle.to_lowercase()),
            "expected the refusal to mention {needle:?}\n{run}"
        );
    }
    run
}

/// The version ids of a secret, newest first, with the version holding `label`.
fn versions_of(env: &Env, name: &str) -> (Vec<String>, Option<String>) {
    let versions = env.versions(name);
    let ids = versions
        .iter()
        .filter_map(|v| v["version_id"].as_str().map(str::to_owned))
        .collect();
    let current = versions
        .iter()
        .find(|v| {
            v["labels"]
                .as_array()
                .is_some_and(|labels| labels.iter().any(|l| l == "CURRENT"))
        })
        .and_then(|v| v["version_id"].as_str().map(str::to_owned));
    (ids, current)
}

/// What must be the same on every member: versions with their labels, tags, description
/// and deletion state, as `describe` shows them.
fn shape(describe: &Value) -> Value {
    let mut versions: Vec<Value> = describe["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("no versions in {describe:#}"))
        .iter()
        .map(|v| {
            let mut labels: Vec<String> = v["labels"]
                .as_array()
                .map(|ls| {
                    ls.iter()
                        .filter_map(|l| l.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            labels.sort();
            serde_json::json!([v["version_id"], labels])
        })
        .collect();
    versions.sort_by_key(|v| v.to_string());
    serde_json::json!({
        "versions": versions,
        "tags": describe["tags"],
        "description": describe["description"],
        "purge_at": describe["purge_at"],
    })
}

/// A barrier: alice writes a fresh marker under the folder and waits until every listed
/// member reads it. Anything alice's stream carried before it has then arrived too, so a
/// "nothing changed" checked afterwards is not a change still on its way.
fn barrier(team: &Team, members: &[&Member]) {
    let value = format!("marker-{}", coffer_system_tests::random_hex(12));
    let name = format!("{FOLDER}zz-marker");
    if value_on(&team.alice, &name).is_ok() {
        team.alice.env.put(&name, value.as_bytes());
    } else {
        team.alice.env.create(&name, value.as_bytes());
    }
    for member in members {
        wait_value(member, &name, &value, ARRIVES, team);
    }
}

/// A three-member team with the folder holding `team/payments/db`, shared with bob and
/// carol at the given roles, the secret on both.
fn team_with(bob_role: &str, carol_role: &str) -> Team {
    let team = Team::new();
    team.alice.env.sensitive("db-value-from-alice-1");
    team.alice
        .env
        .create("team/payments/db", b"db-value-from-alice-1");
    team.share(&team.bob, bob_role);
    team.share(&team.carol, carol_role);
    team.wait_everywhere("team/payments/db", "db-value-from-alice-1");
    team
}

#[test]
fn the_harness_makes_a_team_of_three_that_every_member_sees() {
    let team = team_with("reader", "writer");
    for member in team.all() {
        let info = member.team();
        assert_eq!(
            role_of(&info, "bob", FOLDER).as_deref(),
            Some("reader"),
            "{}: {info:#}",
            member.region
        );
        assert_eq!(
            role_of(&info, "carol", FOLDER).as_deref(),
            Some("writer"),
            "{}: {info:#}",
            member.region
        );
        let folders = info["folders"].to_string();
        assert!(folders.contains(FOLDER), "{}: {info:#}", member.region);
    }
    // The members' copies are the owner's secret, not copies of their own.
    let on_alice = team.alice.env.describe("team/payments/db");
    for member in [&team.bob, &team.carol] {
        let copy = member.env.describe("team/payments/db");
        assert_eq!(copy["id"], on_alice["id"], "{copy:#}");
        assert_eq!(shape(&copy), shape(&on_alice));
    }
}

#[test]
fn a_reader_cannot_write() {
    let team = team_with("reader", "writer");
    let (bob, alice) = (&team.bob, &team.alice);
    let before_alice = shape(&alice.env.describe("team/payments/db"));
    let before_bob = shape(&bob.env.describe("team/payments/db"));
    bob.env.sensitive("bob-tries-to-write-1");

    // Through the CLI: refused on bob, naming the role.
    refused(
        bob.try_put("team/payments/db", "bob-tries-to-write-1"),
        &["reader"],
    );
    refused(
        bob.try_create("team/payments/new-by-bob", "bob-tries-to-write-1"),
        &["reader"],
    );
    for args in [
        &["secret", "tag", "team/payments/db", "owner=bob"][..],
        &[
            "secret",
            "update",
            "team/payments/db",
            "--description",
            "bob was here",
        ],
        &["secret", "delete", "team/payments/db"],
    ] {
        let run = bob.env.coffer(args);
        assert_ne!(
            run.code(),
            exit::OK,
            "a reader changed a shared secret\n{run}"
        );
    }

    // Nothing changed anywhere, even after alice's later change has arrived on bob.
    barrier(&team, &[bob]);
    assert_eq!(shape(&alice.env.describe("team/payments/db")), before_alice);
    assert_eq!(shape(&bob.env.describe("team/payments/db")), before_bob);
    assert_eq!(
        value_on(bob, "team/payments/db").ok().as_deref(),
        Some("db-value-from-alice-1")
    );
    for member in [alice, bob] {
        let run = member
            .env
            .coffer(&["secret", "get", "team/payments/new-by-bob"]);
        assert_eq!(run.code(), exit::NOT_FOUND, "{}: {run}", member.region);
    }
    let names = alice.env.list_names(&[]);
    assert!(!names.iter().any(|n| n.contains("new-by-bob")), "{names:?}");

    // A forged request on the wire: bob's vault, sending alice a well-formed write with
    // no local check in front. Alice refuses it for bob's role, and nothing changes.
    let forged = forge_write(bob, alice, "team/payments/db", "bob-forged-value-001");
    let refusal = forged.expect_err("alice accepted a reader's forged write");
    eprintln!("alice refused bob's hand-built write: {refusal}");
    let lower = refusal.to_lowercase();
    assert!(
        lower.contains("403") && lower.contains("reader") && lower.contains("bob"),
        "the refusal does not name bob's role: {refusal}"
    );
    barrier(&team, &[bob, &team.carol]);
    assert_eq!(shape(&alice.env.describe("team/payments/db")), before_alice);
    for member in team.all() {
        assert_eq!(
            value_on(member, "team/payments/db").ok().as_deref(),
            Some("db-value-from-alice-1"),
            "{}",
            member.region
        );
    }

    // The same forged request from carol, a writer, is applied: the forgery is well
    // formed, so bob's refusal was his role's.
    let accepted = forge_write(
        &team.carol,
        alice,
        "team/payments/db",
        "carol-forged-ok-002",
    )
    .unwrap_or_else(|e| panic!("a writer's hand-built write was refused: {e}"));
    eprintln!(
        "alice answered carol's hand-built write: {}",
        String::from_utf8_lossy(&accepted)
    );
    team.wait_everywhere("team/payments/db", "carol-forged-ok-002");
    // And through the CLI, too.
    team.carol
        .try_put("team/payments/db", "carol-may-write-003")
        .ok();
    team.wait_everywhere("team/payments/db", "carol-may-write-003");
}

#[test]
fn a_writers_update_reaches_everyone_and_is_audited_with_its_author() {
    let team = team_with("reader", "writer");
    team.carol.env.sensitive("carol-new-value-0001");
    let put = team
        .carol
        .try_put("team/payments/db", "carol-new-value-0001")
        .ok();
    eprintln!("carol's put answered: {}", put.text());
    team.wait_everywhere("team/payments/db", "carol-new-value-0001");
    // The previous value is PREVIOUS everywhere, and every member has the same versions.
    let on_alice = team.alice.env.describe("team/payments/db");
    for member in [&team.bob, &team.carol] {
        eventually(
            &format!("{}'s copy to equal alice's", member.region),
            ARRIVES,
            || {
                let (a, b) = (
                    shape(&on_alice),
                    shape(&member.env.describe("team/payments/db")),
                );
                if a == b {
                    Ok(())
                } else {
                    Err(format!("{a} vs {b}"))
                }
            },
        );
        assert_eq!(
            member.env.get("team/payments/db", &["--label", "PREVIOUS"]),
            b"db-value-from-alice-1"
        );
    }

    // The write is in alice's audit with carol as its author, for that very version.
    let (_, current) = versions_of(&team.alice.env, "team/payments/db");
    let current = current.expect("a CURRENT version on alice");
    let by_carol = |env: &Env| {
        env.audit().into_iter().find(|entry| {
            entry["secret_name"] == "team/payments/db"
                && entry["version_id"] == current.as_str()
                && entry.to_string().contains("carol")
        })
    };
    let entry = by_carol(&team.alice.env).unwrap_or_else(|| {
        panic!(
            "no audit entry on alice for version {current} naming carol:\n{:#?}",
            team.alice.env.audit()
        )
    });
    eprintln!("alice's audit entry: {entry}");
    assert_eq!(entry["result"], "ok", "{entry}");
    // "Writes are logged in every member's vault with the author." A member logs the
    // change it applied (which names no version: it may carry several).
    for member in [&team.bob, &team.carol] {
        let applied = member.env.audit().into_iter().find(|entry| {
            entry["secret_name"] == "team/payments/db"
                && entry["operation"] != "get_secret_value"
                && entry.to_string().contains("carol")
        });
        assert!(
            applied.is_some(),
            "no audit entry on {} naming carol as the author of {current}:\n{:#?}",
            member.region,
            member.env.audit()
        );
    }
}

#[test]
fn role_changes_take_effect_on_the_next_request() {
    let team = team_with("reader", "writer");
    let (alice, carol) = (&team.alice, &team.carol);
    carol
        .try_put("team/payments/db", "carol-as-writer-0001")
        .ok();
    wait_value(
        alice,
        "team/payments/db",
        "carol-as-writer-0001",
        ARRIVES,
        &team,
    );

    // Down to reader: carol's very next write is refused (by alice, whatever carol's own
    // copy of the team says yet), and nothing is written.
    alice.share(carol.region, "reader");
    let (versions_before, _) = versions_of(&alice.env, "team/payments/db");
    refused(
        carol.try_put("team/payments/db", "carol-as-reader-0002"),
        &["reader"],
    );
    let (versions_after, _) = versions_of(&alice.env, "team/payments/db");
    assert_eq!(
        versions_after, versions_before,
        "a refused write added a version"
    );
    assert_eq!(
        value_on(alice, "team/payments/db").ok().as_deref(),
        Some("carol-as-writer-0001")
    );
    team.wait_role(carol, "reader");
    refused(
        carol.try_put("team/payments/db", "carol-as-reader-0003"),
        &["reader"],
    );

    // Back to writer: the next write is accepted.
    alice.share(carol.region, "writer");
    carol
        .try_put("team/payments/db", "carol-writer-again-4")
        .ok();
    team.wait_everywhere("team/payments/db", "carol-writer-again-4");
    let (versions_final, _) = versions_of(&alice.env, "team/payments/db");
    assert_eq!(versions_final.len(), versions_before.len() + 1);

    // And bob, a reader all along, still cannot.
    refused(
        team.bob.try_put("team/payments/db", "bob-reader-write-05"),
        &["reader"],
    );
}

/// The exposure states `team exposures -o json` lists for `member`, by secret, for the
/// secrets named `team/payments/api-token` and `team/payments/db` and any secret outside
/// the folder (which no member could read, so none may be listed).
fn exposures_of(alice: &Member, member: &str) -> Vec<(String, String)> {
    let run = alice.env.coffer(&["team", "exposures", "-o", "json"]).ok();
    let json = run.json();
    let list = json
        .as_array()
        .cloned()
        .or_else(|| json["exposures"].as_array().cloned())
        .unwrap_or_else(|| panic!("no exposure list in\n{run}"));
    let mut found: Vec<(String, String)> = list
        .iter()
        .filter(|e| e["member"] == member)
        .filter(|e| {
            let secret = e["secret"].as_str().unwrap_or_default();
            !secret.starts_with(FOLDER)
                || secret == "team/payments/api-token"
                || secret == "team/payments/db"
        })
        .map(|e| {
            (
                e["secret"].as_str().unwrap_or_default().to_owned(),
                e["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn removal_deletes_the_members_copies_and_rotates_what_can_rotate() {
    let team = Team::new();
    let (alice, bob, carol) = (&team.alice, &team.bob, &team.carol);
    alice.env.sensitive("db-value-from-alice-1");
    alice
        .env
        .create("team/payments/db", b"db-value-from-alice-1");
    alice
        .env
        .create("team/payments/api-token", b"api-token-initial-1");
    // A rotator that needs no outside service: a new random password.
    alice
        .env
        .coffer(&[
            "secret",
            "rotate",
            "team/payments/api-token",
            "--rotator",
            "generate",
            "--schedule",
            "rate(30 days)",
        ])
        .ok();
    let token_v1 = value_on(alice, "team/payments/api-token").expect("the token on alice");
    alice
        .env
        .create("private/alice-only", b"alice-private-val1");
    team.share(bob, "reader");
    team.share(carol, "writer");
    for member in [bob, carol] {
        wait_value(
            member,
            "team/payments/db",
            "db-value-from-alice-1",
            ARRIVES,
            &team,
        );
        wait_value(member, "team/payments/api-token", &token_v1, ARRIVES, &team);
    }

    // Remove bob without rotating: the list of what bob could read, in plain words.
    let removed = alice.env.coffer(&["team", "remove", "bob"]).ok();
    let shown = removed.text();
    for name in ["team/payments/db", "team/payments/api-token"] {
        assert!(
            shown.contains(name),
            "the removal does not list {name}\n{removed}"
        );
    }
    assert!(
        !shown.contains("private/alice-only"),
        "the removal lists a secret bob never had\n{removed}"
    );
    assert_eq!(
        exposures_of(alice, "bob"),
        [
            (
                "team/payments/api-token".to_owned(),
                "rotate_now".to_owned()
            ),
            ("team/payments/db".to_owned(), "exposed".to_owned()),
        ]
    );
    assert_eq!(
        value_on(alice, "team/payments/api-token").ok(),
        Some(token_v1.clone()),
        "removal without --rotate rotated"
    );
    assert!(
        !member_regions(&alice.team()).contains(&"bob".to_owned()),
        "bob is still a member"
    );
    // Bob's daemon is running, so it is reached: its copies go.
    wait_gone(bob, "team/payments/db", ARRIVES, &team);
    wait_gone(bob, "team/payments/api-token", ARRIVES, &team);
    // Carol keeps hers, and later changes reach her but not bob.
    barrier(&team, &[carol]);
    assert_eq!(
        value_on(carol, "team/payments/db").ok().as_deref(),
        Some("db-value-from-alice-1")
    );
    let run = bob
        .env
        .coffer(&["secret", "get", &format!("{FOLDER}zz-marker")]);
    assert_eq!(
        run.code(),
        exit::NOT_FOUND,
        "a removed member still receives\n{run}"
    );

    // Remove carol with --rotate: the token gets a new version at once.
    let (token_versions, _) = versions_of(&alice.env, "team/payments/api-token");
    let removed = alice
        .env
        .coffer(&["team", "remove", "carol", "--rotate", "-o", "json"])
        .ok();
    let json = removed.json();
    assert_eq!(json["member"], "carol", "{removed}");
    assert!(
        json["rotated"]
            .to_string()
            .contains("team/payments/api-token"),
        "{removed}"
    );
    assert_eq!(
        json["rotation_failures"],
        serde_json::json!([]),
        "{removed}"
    );
    let (after, _) = versions_of(&alice.env, "team/payments/api-token");
    assert_eq!(after.len(), token_versions.len() + 1, "no new version");
    let token_v2 = value_on(alice, "team/payments/api-token").expect("the token on alice");
    assert_ne!(token_v2, token_v1);
    assert_eq!(
        exposures_of(alice, "carol"),
        [
            ("team/payments/api-token".to_owned(), "rotated".to_owned()),
            ("team/payments/db".to_owned(), "exposed".to_owned()),
        ]
    );
    wait_gone(carol, "team/payments/db", ARRIVES, &team);
    wait_gone(carol, "team/payments/api-token", ARRIVES, &team);
    // A new version ends the exposure of a secret without a rotator.
    alice.env.put("team/payments/db", b"db-value-after-removal");
    for member in ["bob", "carol"] {
        let states = exposures_of(alice, member);
        assert!(
            states
                .iter()
                .any(|(s, state)| s == "team/payments/db" && state != "exposed"),
            "{member}: {states:?}"
        );
    }
}

#[test]
fn a_member_editing_its_own_copy_cannot_spread_the_edit() {
    let team = team_with("writer", "reader");
    let (alice, bob, carol) = (&team.alice, &team.bob, &team.carol);
    alice
        .env
        .create("team/payments/cert", b"cert-value-from-alice");
    for member in [bob, carol] {
        wait_value(
            member,
            "team/payments/cert",
            "cert-value-from-alice",
            ARRIVES,
            &team,
        );
    }
    let alice_db = shape(&alice.env.describe("team/payments/db"));
    let alice_cert = shape(&alice.env.describe("team/payments/cert"));

    // Bob edits his own file while his vault is open in his daemon.
    {
        let db = bob.env.db();
        let changed = db
            .execute(
                "UPDATE secrets SET description = 'bob says: send it to evil.example'
                 WHERE name = 'team/payments/db'",
                [],
            )
            .unwrap();
        assert_eq!(changed, 1);
        let (id, mut ciphertext): (Vec<u8>, Vec<u8>) = db
            .query_row(
                "SELECT v.id, v.ciphertext FROM secret_versions v
                   JOIN secrets s ON s.id = v.secret_id
                  WHERE s.name = 'team/payments/cert'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let middle = ciphertext.len() / 2;
        ciphertext[middle] ^= 0x01;
        db.execute(
            "UPDATE secret_versions SET ciphertext = ?2 WHERE id = ?1",
            rusqlite::params![id, ciphertext],
        )
        .unwrap();
    }
    // Bob's vault says so when read.
    bob.env
        .coffer(&["secret", "get", "team/payments/db"])
        .fails(exit::TAMPERED, "team/payments/db");
    bob.env
        .coffer(&["secret", "get", "team/payments/cert"])
        .fails(exit::TAMPERED, "team/payments/cert");

    // The others never see it: not now, and not after more changes went round.
    barrier(&team, &[carol]);
    for member in [alice, carol] {
        assert_eq!(
            shape(&member.env.describe("team/payments/db")),
            alice_db,
            "{}",
            member.region
        );
        assert_eq!(
            shape(&member.env.describe("team/payments/cert")),
            alice_cert,
            "{}",
            member.region
        );
        assert_eq!(
            value_on(member, "team/payments/cert").ok().as_deref(),
            Some("cert-value-from-alice")
        );
        assert_eq!(
            value_on(member, "team/payments/db").ok().as_deref(),
            Some("db-value-from-alice-1")
        );
        let description = member.env.describe("team/payments/db")["description"].clone();
        assert!(
            !description.to_string().contains("evil.example"),
            "{}: {description}",
            member.region
        );
    }
    // A write by bob (a writer) goes through the primary and carries none of his local
    // edit; or, his copy being damaged, his vault refuses it as tampered. Either is
    // right; spreading the edit is not.
    let write = bob.try_put("team/payments/db", "bob-legit-write-0001");
    if write.code() == exit::OK {
        wait_value(
            alice,
            "team/payments/db",
            "bob-legit-write-0001",
            ARRIVES,
            &team,
        );
        wait_value(
            carol,
            "team/payments/db",
            "bob-legit-write-0001",
            ARRIVES,
            &team,
        );
    } else {
        write.fails(exit::TAMPERED, "team/payments/db");
    }
    for member in [alice, carol] {
        let description = member.env.describe("team/payments/db")["description"].clone();
        assert!(
            !description.to_string().contains("evil.example"),
            "{}: {description}",
            member.region
        );
    }
}

#[test]
fn a_member_offline_for_a_while_converges_when_back() {
    let mut team = team_with("writer", "reader");
    team.alice
        .env
        .create("team/payments/old", b"old-value-to-delete");
    team.alice
        .env
        .create("team/payments/tagged", b"tagged-value-00001");
    wait_value(
        &team.carol,
        "team/payments/old",
        "old-value-to-delete",
        ARRIVES,
        &team,
    );
    wait_value(
        &team.carol,
        "team/payments/tagged",
        "tagged-value-00001",
        ARRIVES,
        &team,
    );

    team.carol.stop();
    let (alice, bob) = (&team.alice, &team.bob);
    // Many changes while carol is away: new versions (by alice and by bob, a writer), a
    // new secret, tags, a description, a deletion, and a second folder shared with her.
    for i in 0..5 {
        alice.env.put(
            "team/payments/db",
            format!("db-offline-value-{i:04}").as_bytes(),
        );
    }
    bob.try_put("team/payments/db", "db-by-bob-offline-1").ok();
    alice
        .env
        .create("team/payments/new", b"new-while-carol-away");
    alice
        .env
        .coffer(&["secret", "tag", "team/payments/tagged", "stage=offline"])
        .ok();
    alice
        .env
        .coffer(&[
            "secret",
            "update",
            "team/payments/tagged",
            "--description",
            "changed while carol was away",
        ])
        .ok();
    alice
        .env
        .coffer(&[
            "secret",
            "delete",
            "team/payments/old",
            "--force-delete-without-recovery",
        ])
        .ok();
    alice.env.create("team/ops/pager", b"ops-pager-value-001");
    alice.share_prefix("team/ops/", "carol", "reader");
    wait_value(
        alice,
        "team/payments/db",
        "db-by-bob-offline-1",
        ARRIVES,
        &team,
    );
    // Alice's daemon has tried carol by now and says it cannot reach her.
    eventually("alice to see carol unreachable", ARRIVES, || {
        let info = alice.team();
        let carol = info["members"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["region"] == "carol").cloned())
            .unwrap_or(Value::Null);
        if carol["last_error"].is_string() && carol["backlog"].as_u64() > Some(0) {
            Ok(())
        } else {
            Err(carol.to_string())
        }
    });
    // Carol still reads what she had, offline.
    assert_eq!(
        value_on(&team.carol, "team/payments/db").ok().as_deref(),
        Some("db-value-from-alice-1")
    );

    team.carol.restart();
    let carol = &team.carol;
    wait_value(
        carol,
        "team/payments/db",
        "db-by-bob-offline-1",
        RECONNECTS,
        &team,
    );
    wait_value(
        carol,
        "team/payments/new",
        "new-while-carol-away",
        ARRIVES,
        &team,
    );
    wait_value(
        carol,
        "team/ops/pager",
        "ops-pager-value-001",
        ARRIVES,
        &team,
    );
    wait_gone(carol, "team/payments/old", ARRIVES, &team);
    for name in [
        "team/payments/db",
        "team/payments/new",
        "team/payments/tagged",
    ] {
        eventually(
            &format!("{name} on carol equal to alice's"),
            ARRIVES,
            || {
                let (a, c) = (
                    shape(&team.alice.env.describe(name)),
                    shape(&carol.env.describe(name)),
                );
                if a == c {
                    Ok(())
                } else {
                    Err(format!("{a} vs {c}"))
                }
            },
        );
    }
    assert_eq!(
        role_of(&carol.team(), "carol", "team/ops/").as_deref(),
        Some("reader")
    );
    eventually("alice to see carol caught up", ARRIVES, || {
        let info = team.alice.team();
        let c = info["members"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["region"] == "carol").cloned())
            .unwrap_or(Value::Null);
        if c["backlog"] == 0 && c["last_contact"].is_string() {
            Ok(())
        } else {
            Err(c.to_string())
        }
    });
}

/// `team move-primary`: the owner hands the folder to bob, and with the owner's daemon
/// down, writes keep working through bob and reach every member; the owner catches up
/// when it is back.
#[test]
fn a_moved_primary_keeps_the_team_writing_while_the_owner_is_away() {
    let mut team = team_with("writer", "writer");
    team.carol.env.sensitive("written-through-bob-1");
    team.carol.env.sensitive("created-through-bob-1");
    refused(
        team.alice
            .env
            .coffer(&["team", "move-primary", FOLDER, "--to", "nobody"]),
        &["nobody", "not a member"],
    );
    team.alice
        .env
        .coffer(&["team", "move-primary", FOLDER, "--to", "bob"])
        .ok();
    // The move is done when every member's copy of the state names bob with no
    // handover pending (alice → bob handover, bob → alice "taken over", alice → all).
    for member in team.all() {
        eventually(
            &format!("{} to see bob as the settled primary", member.region),
            ARRIVES,
            || {
                let folders = member.team()["folders"].clone();
                let folder = &folders[0];
                if folder["primary_region"] == "bob" && folder["handover_from"].is_null() {
                    Ok(())
                } else {
                    Err(format!("{folders}\n{}", team.logs()))
                }
            },
        );
    }
    let on_alice = team.alice.env.describe("team/payments/db");
    assert_eq!(
        on_alice["replication"]["primary_region"], "bob",
        "{on_alice:#}"
    );

    // The owner goes away; carol's writes go to bob and reach everyone still up.
    team.alice.stop();
    team.carol
        .try_put("team/payments/db", "written-through-bob-1")
        .ok();
    team.carol
        .try_create("team/payments/new", "created-through-bob-1")
        .ok();
    for member in [&team.bob, &team.carol] {
        wait_value(
            member,
            "team/payments/db",
            "written-through-bob-1",
            ARRIVES,
            &team,
        );
        wait_value(
            member,
            "team/payments/new",
            "created-through-bob-1",
            ARRIVES,
            &team,
        );
    }
    let copy = team.carol.env.describe("team/payments/new");
    assert_eq!(copy["replication"]["primary_region"], "bob", "{copy:#}");
    // Bob's audit names carol as the author.
    assert!(
        team.bob
            .env
            .audit()
            .iter()
            .any(|e| e["secret_name"] == "team/payments/db"
                && e.to_string().contains("author=carol")),
        "{:#?}",
        team.bob.env.audit()
    );

    // Back, the owner catches up from bob.
    team.alice.restart();
    wait_value(
        &team.alice,
        "team/payments/db",
        "written-through-bob-1",
        RECONNECTS,
        &team,
    );
    wait_value(
        &team.alice,
        "team/payments/new",
        "created-through-bob-1",
        RECONNECTS,
        &team,
    );
    // The old primary's own writes now go to bob too.
    team.alice.env.sensitive("alice-writes-via-bob-1");
    team.alice
        .try_put("team/payments/db", "alice-writes-via-bob-1")
        .ok();
    team.wait_everywhere("team/payments/db", "alice-writes-via-bob-1");
}
