//! Small teams across a week of clock time (issue 12): "a member offline for a week
//! converges on reconnect", with the clock of every `coffer` process really moved on by
//! a week, and the owner's replication woken by a member that joins.
//!
//! Every `coffer` process here (commands and daemons, never the swtpms) runs under
//! libfaketime, reading its clock offset from one file on each call
//! (`FAKETIME_TIMESTAMP_FILE`, `FAKETIME_NO_CACHE=1`): the test moves the whole team's
//! wall clock by rewriting that file. Debian's `faketime` package ships the library
//! (packaging/debian-deps.sh installs it for the tests).
//!
//! The monotonic clock is left real (`FAKETIME_DONT_FAKE_MONOTONIC=1`), as on a laptop
//! that slept through the week: everything dated (versions, audit entries, team state,
//! schedules) reads the wall clock, while a faked monotonic clock only breaks the
//! kernel's timed waits (every `Condvar::wait_timeout` then hangs under libfaketime).
//!
//! Nothing waits a fixed time: every "it arrives" is polled up to a deadline, and speed
//! is never asserted.

use std::path::PathBuf;
use std::time::Duration;

use coffer_system_tests::daemon::{eventually, fingerprint, Daemon};
use coffer_system_tests::{exit, Env, Run};
use serde_json::Value;

const TEAM: &str = "ops-team";
const FOLDER: &str = "team/ops/";

/// How long a change may take to reach a member whose daemon is up (polled; never a speed
/// assertion). A member that was away may wait out a backoff of up to a minute first.
const ARRIVES: Duration = Duration::from_secs(60);
const RECONNECTS: Duration = Duration::from_secs(180);

const DAY: u64 = 24 * 60 * 60;

/// The team's shared clock: libfaketime's offset file, read by every `coffer` process at
/// every clock call.
struct Clock {
    _dir: tempfile::TempDir,
    file: PathBuf,
    library: PathBuf,
}

impl Clock {
    fn new() -> Clock {
        let library = faketime_library();
        let dir = tempfile::Builder::new()
            .prefix("coffer-week-clock-")
            .tempdir()
            .expect("a temporary directory for the clock");
        let file = dir.path().join("faketime");
        let clock = Clock {
            _dir: dir,
            file,
            library,
        };
        clock.set(0);
        clock
    }

    /// Every `coffer` process `env` starts from now on runs on this clock.
    fn apply(&self, env: &Env) {
        env.set_var("LD_PRELOAD", &self.library);
        env.set_var("FAKETIME_TIMESTAMP_FILE", &self.file);
        env.set_var("FAKETIME_NO_CACHE", "1");
        env.set_var("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }

    /// Moves every process's clock to `seconds` after real time (never back).
    fn set(&self, seconds: u64) {
        // Written whole under another name, then renamed: a reader never sees half a line.
        let next = self.file.with_extension("next");
        std::fs::write(&next, format!("+{seconds}\n")).expect("write the clock file");
        std::fs::rename(&next, &self.file).expect("move the clock file in place");
    }
}

/// Debian's libfaketime for this machine's architecture; missing, the test says how to
/// install it rather than pass without it.
fn faketime_library() -> PathBuf {
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    let path = PathBuf::from(format!("/usr/lib/{multiarch}/faketime/libfaketime.so.1"));
    assert!(
        path.exists(),
        "{} is missing: install Debian's faketime package (packaging/debian-deps.sh does)",
        path.display()
    );
    path
}

/// One member: its vault (on the team's clock), region name, daemon and port.
struct Member {
    env: Env,
    region: &'static str,
    port: u16,
    daemon: Option<Daemon>,
}

impl Member {
    fn new(region: &'static str, clock: &Clock) -> Member {
        let env = Env::new();
        clock.apply(&env);
        env.init();
        env.coffer(&["region", "rename", region]).ok();
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

    fn team(&self) -> Value {
        self.env
            .coffer(&["team", "members", "-o", "json"])
            .ok()
            .json()
    }

    fn put(&self, name: &str, value: &str) -> Run {
        self.env.coffer_stdin(
            &["secret", "put", name, "--value-file", "-", "-o", "json"],
            value.as_bytes(),
        )
    }

    fn invite(&self, member: &Member) {
        self.env
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

    fn join(&self, owner: &Member) -> Run {
        self.env
            .coffer(&[
                "team",
                "join",
                TEAM,
                "--owner",
                owner.region,
                "--url",
                &owner.url(),
                "--fingerprint",
                &owner.fingerprint(),
            ])
            .ok()
    }

    fn share(&self, member: &str, role: &str) {
        self.env
            .coffer(&["team", "share", FOLDER, "--member", member, "--role", role])
            .ok();
    }
}

fn logs(members: &[&Member]) -> String {
    members
        .iter()
        .map(|m| format!("--- {} daemon:\n{}", m.region, m.log()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn value_on(member: &Member, name: &str) -> Result<String, Run> {
    let run = member.env.coffer(&["secret", "get", name]);
    if run.code() == exit::OK {
        Ok(String::from_utf8_lossy(&run.stdout).into_owned())
    } else {
        Err(run)
    }
}

#[track_caller]
fn wait_value(member: &Member, name: &str, expected: &str, limit: Duration, all: &[&Member]) {
    eventually(
        &format!("{name} = {expected:?} on {}", member.region),
        limit,
        || match value_on(member, name) {
            Ok(value) if value == expected => Ok(()),
            Ok(value) => Err(format!("value {value:?}\n{}", logs(all))),
            Err(run) => Err(format!("{run}\n{}", logs(all))),
        },
    );
}

fn member_of(info: &Value, region: &str) -> Value {
    info["members"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["region"] == region).cloned())
        .unwrap_or(Value::Null)
}

fn role_of(info: &Value, region: &str) -> Option<String> {
    member_of(info, region)["roles"][FOLDER]
        .as_str()
        .map(str::to_owned)
}

/// Versions (id, sorted labels) with tags and description, as `describe` shows them.
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
    })
}

/// Every version's value of `name` on `member`, by version id.
fn values_by_version(member: &Member, name: &str) -> Vec<(String, Vec<u8>)> {
    member
        .env
        .versions(name)
        .iter()
        .filter_map(|v| v["version_id"].as_str().map(str::to_owned))
        .map(|id| {
            let value = member.env.get(name, &["--version-id", &id]);
            (id, value)
        })
        .collect()
}

/// The day number (days since 1970-01-01) of an RFC 3339 time such as
/// `2026-12-13T05:42:20.123Z`.
fn day_of(at: &Value) -> i64 {
    let text = at.as_str().unwrap_or_else(|| panic!("not a time: {at}"));
    let field = |range: std::ops::Range<usize>| -> i64 {
        text.get(range)
            .and_then(|digits| digits.parse().ok())
            .unwrap_or_else(|| panic!("not an RFC 3339 time: {text}"))
    };
    let (year, month, day) = (field(0..4), field(5..7), field(8..10));
    // Days from the civil date (H. Hinnant's algorithm, proleptic Gregorian).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The replication log lines of `daemon_log` that concern `region`, in order.
fn lines_about<'a>(daemon_log: &'a str, region: &str) -> Vec<&'a str> {
    let needle = format!("region {region} ");
    daemon_log
        .lines()
        .filter(|line| line.contains(&needle))
        .collect()
}

/// Issue 12, "a member offline for a week converges on reconnect": alice (the owner) and
/// bob (a writer) keep changing the shared folder for a week of clock time while carol's
/// daemon is down; carol comes back a week later and ends up with the same versions,
/// values, labels, description, team state and authors as alice.
#[test]
fn a_member_offline_for_a_week_converges_on_reconnect() {
    let clock = Clock::new();
    let alice = Member::new("alice", &clock);
    let bob = Member::new("bob", &clock);
    let mut carol = Member::new("carol", &clock);
    alice.env.coffer(&["team", "create", TEAM]).ok();
    alice.invite(&bob);
    alice.invite(&carol);
    bob.join(&alice);
    carol.join(&alice);
    alice.env.create("team/ops/db", b"db-value-day-0000");
    alice.env.create("team/ops/api", b"api-value-day-0000");
    alice.share("bob", "writer");
    alice.share("carol", "reader");
    for member in [&bob, &carol] {
        wait_value(
            member,
            "team/ops/db",
            "db-value-day-0000",
            ARRIVES,
            &[&alice, &bob, &carol],
        );
        wait_value(
            member,
            "team/ops/api",
            "api-value-day-0000",
            ARRIVES,
            &[&alice, &bob, &carol],
        );
    }
    eventually("carol to see herself as a reader", ARRIVES, || {
        let seen = role_of(&carol.team(), "carol");
        (seen.as_deref() == Some("reader"))
            .then_some(())
            .ok_or(format!("{seen:?}"))
    });

    // Carol goes away for a week; alice's daemon keeps running all week.
    carol.stop();
    let mut bobs_values = Vec::new();
    for day in 1..=7u64 {
        clock.set(day * DAY);
        let value = format!("db-value-day-{day:04}");
        alice.put("team/ops/db", &value).ok();
        match day {
            2 => {
                alice
                    .env
                    .create("team/ops/created-day-2", b"made-on-day-two-0002");
            }
            3 => {
                // A role change while carol is away: she may write from now on.
                alice.share("carol", "writer");
            }
            4 => {
                alice
                    .env
                    .coffer(&[
                        "secret",
                        "update",
                        "team/ops/api",
                        "--description",
                        "edited on day four while carol was away",
                    ])
                    .ok();
            }
            _ => {}
        }
        if day % 2 == 1 {
            // Bob, a writer, writes through alice (the folder's primary).
            let by_bob = format!("api-by-bob-day-{day:04}");
            bob.put("team/ops/api", &by_bob).ok();
            bobs_values.push(by_bob);
        }
        // The day's changes reach bob before the clock moves on: alice's daemon really
        // replicates on every day of the week.
        wait_value(&bob, "team/ops/db", &value, ARRIVES, &[&alice, &bob]);
        if let Some(last) = bobs_values.last() {
            wait_value(&bob, "team/ops/api", last, ARRIVES, &[&alice, &bob]);
        }
    }
    // Alice has tried carol during the week and knows she is behind.
    let on_alice = member_of(&alice.team(), "carol");
    assert!(
        on_alice["backlog"].as_u64() > Some(0),
        "alice should have changes waiting for carol: {on_alice}"
    );
    // Carol, still offline, reads what she had.
    assert_eq!(
        value_on(&carol, "team/ops/db").ok().as_deref(),
        Some("db-value-day-0000")
    );

    // A week later, carol is back (her clock at +7 days like everyone's).
    carol.restart();
    let all = [&alice, &bob, &carol];
    wait_value(&carol, "team/ops/db", "db-value-day-0007", RECONNECTS, &all);
    wait_value(
        &carol,
        "team/ops/api",
        bobs_values.last().expect("bob wrote"),
        ARRIVES,
        &all,
    );
    wait_value(
        &carol,
        "team/ops/created-day-2",
        "made-on-day-two-0002",
        ARRIVES,
        &all,
    );
    for name in ["team/ops/db", "team/ops/api", "team/ops/created-day-2"] {
        eventually(
            &format!("{name} on carol equal to alice's"),
            ARRIVES,
            || {
                let (a, c) = (
                    shape(&alice.env.describe(name)),
                    shape(&carol.env.describe(name)),
                );
                (a == c).then_some(()).ok_or(format!("{a}\nvs\n{c}"))
            },
        );
        assert_eq!(
            values_by_version(&carol, name),
            values_by_version(&alice, name),
            "{name}: carol's versions do not hold alice's values"
        );
    }
    assert_eq!(
        carol.env.describe("team/ops/api")["description"],
        "edited on day four while carol was away"
    );
    // The team state: the same revision as alice's, with the role change of day 3.
    eventually("carol's team state to equal alice's", ARRIVES, || {
        let (a, c) = (alice.team(), carol.team());
        if a["revision"] == c["revision"] && role_of(&c, "carol").as_deref() == Some("writer") {
            Ok(())
        } else {
            Err(format!("alice {a}\ncarol {c}"))
        }
    });
    // Bob's writes are in carol's audit log with bob as their author.
    let by_bob = carol.env.audit().into_iter().find(|entry| {
        entry["secret_name"] == "team/ops/api"
            && entry["operation"] != "get_secret_value"
            && entry.to_string().contains("bob")
    });
    let by_bob = by_bob.unwrap_or_else(|| {
        panic!(
            "no audit entry on carol naming bob as an author:\n{:#?}",
            carol.env.audit()
        )
    });
    // Carol really lived through the week: she applied bob's write a week (by her clock)
    // after she joined, so nothing above passed on an unmoved clock.
    let joined = carol
        .env
        .audit()
        .into_iter()
        .find(|entry| entry["operation"] == "team_join")
        .unwrap_or_else(|| panic!("no team_join in carol's audit: {:#?}", carol.env.audit()));
    let away = day_of(&by_bob["at"]) - day_of(&joined["at"]);
    assert!(
        (7..=8).contains(&away),
        "carol applied bob's write {away} days after joining, not a week: {by_bob} / {joined}"
    );
    // Her daemon told alice it was back (no "could not tell" line).
    assert!(
        !carol.log().contains("could not tell region alice"),
        "{}",
        carol.log()
    );
    // And alice's daemon sees carol caught up.
    eventually("alice to see carol caught up", ARRIVES, || {
        let c = member_of(&alice.team(), "carol");
        if c["backlog"] == 0 && c["last_error"].is_null() {
            Ok(())
        } else {
            Err(c.to_string())
        }
    });
}

/// Issue 12: the owner's first copy to a member that has just joined does not wait out
/// the backoff the member's refusals caused. Alice's daemon reaches its longest backoff
/// (a minute) for bob, who refuses it until he joins (its log says so: state, polled);
/// after `team join` bob's copy arrives, and alice's log shows that the round that sent
/// it was started by bob's contact, with no failed round between (the backoff did not
/// run out first; no time is measured).
#[test]
fn a_member_that_joins_wakes_the_owner_from_its_longest_backoff() {
    let clock = Clock::new();
    let alice = Member::new("alice", &clock);
    let bob = Member::new("bob", &clock);
    alice.env.coffer(&["team", "create", TEAM]).ok();
    alice.env.create("team/ops/db", b"db-value-before-join");
    alice.invite(&bob);
    alice.share("bob", "reader");
    // Bob has not joined: he refuses alice, whose daemon backs off 1, 2, 4 … 32 s, then
    // a minute (about a minute of real time to get there).
    eventually(
        "alice to back off from bob for a minute",
        RECONNECTS,
        || {
            let log = alice.log();
            if log.contains("replication to region bob failed (retrying in 60 s)") {
                return Ok(());
            }
            Err(lines_about(&log, "bob").join("\n"))
        },
    );
    let before = alice.log().len();

    let joined = bob.join(&alice);
    assert!(
        joined.text().contains("Told the owner alice"),
        "team join did not contact the owner\n{joined}"
    );
    wait_value(
        &bob,
        "team/ops/db",
        "db-value-before-join",
        ARRIVES,
        &[&alice, &bob],
    );
    // Bob reads the copy as soon as he has applied it; alice logs the round once his
    // acknowledgement is back: her log is polled for it.
    eventually("alice to log her round to bob", ARRIVES, || {
        let log = alice.log();
        lines_about(&log[before..], "bob")
            .iter()
            .any(|line| line.contains("replicated") && line.contains("to region bob"))
            .then_some(())
            .ok_or(log)
    });
    let log = alice.log();
    let after = lines_about(&log[before..], "bob");
    let woken = after
        .iter()
        .position(|line| line.contains("region bob made contact; retrying it now"));
    let replicated = after
        .iter()
        .position(|line| line.contains("replicated") && line.contains("to region bob"));
    assert!(
        matches!((woken, replicated), (Some(w), Some(r)) if w < r),
        "alice's round to bob did not follow bob's contact:\n{}",
        after.join("\n")
    );
    // Nothing failed between the contact and the copy.
    let failed_between = after[woken.unwrap_or(0)..replicated.unwrap_or(0)]
        .iter()
        .any(|line| line.contains("replication to region bob failed"));
    assert!(!failed_between, "{}", after.join("\n"));
}

/// `team join` stands when the owner cannot be reached, and says so.
#[test]
fn joining_an_unreachable_owner_still_joins_and_says_so() {
    let clock = Clock::new();
    let mut alice = Member::new("alice", &clock);
    let bob = Member::new("bob", &clock);
    alice.env.coffer(&["team", "create", TEAM]).ok();
    alice.invite(&bob);
    let (url, fingerprint) = (alice.url(), alice.fingerprint());
    alice.stop();
    let joined = bob
        .env
        .coffer(&[
            "team",
            "join",
            TEAM,
            "--owner",
            "alice",
            "--url",
            &url,
            "--fingerprint",
            &fingerprint,
        ])
        .ok();
    let text = joined.text();
    assert!(
        text.contains("could not be reached now") && text.contains("alice"),
        "{joined}"
    );
    let info = bob.team();
    assert_eq!(info["name"], TEAM, "{info:#}");
    assert_eq!(info["owner_region"], "alice", "{info:#}");
}
