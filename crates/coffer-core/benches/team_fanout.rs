//! Team fan-out: one owner and N members (default 20), each vault on its own swtpm,
//! each member served by a real `PeerListener` on loopback (pinned TLS 1.3, HTTP/2). A
//! folder is shared with every member; then one put on the owner is timed until every
//! member reads the new value, the owner's replication running one `Pusher` tick (the
//! daemon's loop, without its 50 ms poll wait).
//!
//! `cargo bench -p coffer-core --bench team_fanout` (COFFER_BENCH_MEMBERS changes N).
//! Prints a Markdown table for docs/benchmarks.md.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_core::region::tls::{server_config, PinnedSet};
use coffer_core::region::{Handler, PeerListener};
use coffer_core::tpm::PcrBinding;
use coffer_core::vault::replication::{Inbound, Pusher};
use coffer_core::vault::team::TeamRole;
use coffer_core::vault::{CreateSecret, PutValue};
use coffer_core::{SecretValue, Vault, VersionSelector};

const PIN: &str = "bench-pin-1234";
const NAME: &str = "team/payments/db";

fn vault(dir: &std::path::Path, tcti: &str, region: &str) -> Vault {
    let mut vault = Vault::init(&dir.join("vault.db"), tcti, PIN, PcrBinding::default())
        .expect("init")
        .vault;
    vault.set_region_name(region).expect("region");
    vault
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

struct Member {
    _tpm: coffer_testkit::Swtpm,
    vault: Arc<Mutex<Vault>>,
    _listener: PeerListener,
}

fn reads(member: &Member, expected: &str) -> bool {
    member
        .vault
        .lock()
        .unwrap()
        .get_secret_value(NAME, &VersionSelector::default())
        .is_ok_and(|read| read.value.as_bytes() == expected.as_bytes())
}

fn main() {
    std::env::set_var("TSS2_LOG", "all+NONE");
    let count: usize = std::env::var("COFFER_BENCH_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("temp dir");
    let owner_tpm = coffer_testkit::Swtpm::start();
    let mut owner = vault(&dir.path().join("owner"), &owner_tpm.tcti(), "owner");
    let owner_fp = owner.region_identity().expect("identity").fingerprint;
    owner.team_create("bench").expect("team");
    owner
        .create_secret(CreateSecret {
            name: NAME.into(),
            value: Some(SecretValue::text("initial")),
            ..Default::default()
        })
        .expect("create");

    let mut members = Vec::new();
    for i in 0..count {
        let region = format!("member-{i:02}");
        let tpm = coffer_testkit::Swtpm::start();
        let shared = Arc::new(Mutex::new(vault(
            &dir.path().join(&region),
            &tpm.tcti(),
            &region,
        )));
        let (member_region, identity) = shared.lock().unwrap().identity().expect("identity");
        let member_id = shared.lock().unwrap().id();
        let pins = Arc::clone(&shared);
        let pinned: PinnedSet =
            Arc::new(move || pins.lock().unwrap().pinned_peers().unwrap_or_default());
        let receiving = Arc::clone(&shared);
        let inbound = Mutex::new(Inbound::new());
        let handler: Handler = Arc::new(move |request| {
            inbound
                .lock()
                .unwrap()
                .handle(&mut receiving.lock().unwrap(), request)
        });
        let listener = PeerListener::start_with(
            "127.0.0.1:0",
            server_config(&identity, pinned).expect("server config"),
            identity.hello(&member_region, member_id).expect("hello"),
            Arc::new(|_| {}),
            Some(handler),
        )
        .expect("listen");
        let fingerprint = identity.fingerprint().expect("fingerprint").to_string();
        owner
            .team_invite(
                &region,
                &format!("https://{}", listener.local_addr()),
                &fingerprint,
            )
            .expect("invite");
        shared
            .lock()
            .unwrap()
            .team_join("bench", "owner", "https://127.0.0.1:9", &owner_fp)
            .expect("join");
        owner
            .team_share("team/payments/", &region, TeamRole::Reader)
            .expect("share");
        members.push(Member {
            _tpm: tpm,
            vault: shared,
            _listener: listener,
        });
    }
    let owner = Mutex::new(owner);
    let mut pusher = Pusher::new(Box::new(|_| {}));
    let start = Instant::now();
    while !owner
        .lock()
        .unwrap()
        .replication_backlog()
        .unwrap()
        .is_empty()
    {
        pusher.tick(&owner);
    }
    let initial = start.elapsed();
    assert!(members.iter().all(|m| reads(m, "initial")));

    let mut all = Vec::new();
    for i in 0..40 {
        let value = format!("update-{i:04}");
        let begun = Instant::now();
        owner
            .lock()
            .unwrap()
            .put_secret_value(NAME, PutValue::new(SecretValue::text(value.clone())))
            .expect("put");
        pusher.tick(&owner);
        // Every member must have it once the tick is over: one that missed it fails
        // here rather than being waited for.
        for member in &members {
            assert!(reads(member, &value), "a member missed the change");
        }
        all.push(begun.elapsed());
    }
    let p50 = percentile(&mut all, 0.5);
    let p99 = percentile(&mut all, 0.99);

    println!(
        "| Team fan-out to {count} members (loopback, pinned TLS 1.3 + HTTP/2, debug={}) | |",
        cfg!(debug_assertions)
    );
    println!("| --- | --- |");
    println!(
        "| first copy of the folder (1 secret + team state) to all members | {:.2} s |",
        initial.as_secs_f64()
    );
    println!(
        "| put on the owner → visible on every member, p50 (one tick, no poll wait) | {:.1} ms |",
        p50.as_secs_f64() * 1e3
    );
    println!("| same, p99 | {:.1} ms |", p99.as_secs_f64() * 1e3);
}
