//! Replication benchmarks: two vaults, each on its own swtpm, the replica served by a real
//! `PeerListener` on loopback (pinned TLS 1.3, HTTP/2), the primary pushing with the
//! daemon's own `push` round.
//!
//! `cargo bench -p coffer-core --bench replication` (COFFER_BENCH_SECRETS changes the
//! number of secrets; default 10,000). Prints a Markdown table for docs/benchmarks.md.
//! COFFER_BENCH_DELAY_MS=50 puts a relay in front of the replica that holds every byte
//! from the primary for that long, as `tc netem delay` on the primary's egress would (this
//! kernel has no netem).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_core::region::tls::{server_config, PinnedSet};
use coffer_core::region::{Handler, PeerListener};
use coffer_core::tpm::PcrBinding;
use coffer_core::vault::replication::{push, Inbound};
use coffer_core::vault::{CreateSecret, PutValue};
use coffer_core::{SecretValue, Vault, VersionSelector};

const PIN: &str = "bench-pin-1234";

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

fn main() {
    std::env::set_var("TSS2_LOG", "all+NONE");
    let count: usize = std::env::var("COFFER_BENCH_SECRETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let (tpm_a, tpm_b) = (
        coffer_testkit::Swtpm::start(),
        coffer_testkit::Swtpm::start(),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let mut home = vault(&dir.path().join("a"), &tpm_a.tcti(), "eu-home-1");
    let lab = Arc::new(Mutex::new(vault(
        &dir.path().join("b"),
        &tpm_b.tcti(),
        "us-lab-1",
    )));

    let (lab_region, lab_identity) = lab.lock().unwrap().identity().expect("identity");
    let lab_id = lab.lock().unwrap().id();
    let shared = Arc::clone(&lab);
    let pinned: PinnedSet =
        Arc::new(move || shared.lock().unwrap().pinned_peers().unwrap_or_default());
    let receiving = Arc::clone(&lab);
    let inbound = Mutex::new(Inbound::new());
    let handler: Handler = Arc::new(move |request| {
        inbound
            .lock()
            .unwrap()
            .handle(&mut receiving.lock().unwrap(), request)
    });
    let listener = PeerListener::start_with(
        "127.0.0.1:0",
        server_config(&lab_identity, pinned).expect("server config"),
        lab_identity.hello(&lab_region, lab_id).expect("hello"),
        Arc::new(|_| {}),
        Some(handler),
    )
    .expect("listen");
    let delay_ms: u64 = std::env::var("COFFER_BENCH_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let wan = (delay_ms > 0).then(|| {
        coffer_testkit::DelayLink::start(
            "127.0.0.1:0".parse().expect("address"),
            listener.local_addr(),
            Duration::from_millis(delay_ms),
        )
    });
    let replica_addr = wan
        .as_ref()
        .map_or(listener.local_addr(), |link| link.local_addr());
    let home_identity = home.region_identity().expect("identity");
    let lab_fp = lab_identity.fingerprint().expect("fingerprint").to_string();
    home.add_peer("us-lab-1", &format!("https://{replica_addr}"), &lab_fp)
        .expect("pair");
    lab.lock()
        .unwrap()
        .add_peer(
            "eu-home-1",
            "https://127.0.0.1:9",
            &home_identity.fingerprint,
        )
        .expect("pair");

    for i in 0..count {
        let name = format!("team-{}/service-{i:06}/password", i % 50);
        home.create_secret(CreateSecret {
            name: name.clone(),
            value: Some(SecretValue::text(format!(
                "value-{i:06}-{}",
                "x".repeat(32)
            ))),
            ..Default::default()
        })
        .expect("create");
        home.replicate_secret(&name, "us-lab-1", None)
            .expect("replicate");
    }
    let home = Mutex::new(home);

    let start = Instant::now();
    let mut rounds = 0;
    while !home
        .lock()
        .unwrap()
        .replication_backlog()
        .unwrap()
        .is_empty()
    {
        push(&home, "us-lab-1").expect("push");
        rounds += 1;
    }
    let initial = start.elapsed();
    let name = "team-1/service-000001/password";
    let check = lab
        .lock()
        .unwrap()
        .get_secret_value(name, &VersionSelector::default())
        .expect("replicated");
    assert!(check.value.as_bytes().starts_with(b"value-000001"));

    // Change-to-visible latency of single updates: a put on the primary, a round, a read
    // on the replica. The daemon adds up to its poll interval (50 ms) before the round.
    let mut samples = Vec::new();
    for i in 0..200 {
        let value = format!("update-{i:04}");
        let begun = Instant::now();
        home.lock()
            .unwrap()
            .put_secret_value(name, PutValue::new(SecretValue::text(value.clone())))
            .expect("put");
        push(&home, "us-lab-1").expect("push");
        let read = lab
            .lock()
            .unwrap()
            .get_secret_value(name, &VersionSelector::default())
            .expect("read");
        assert_eq!(read.value.as_bytes(), value.as_bytes());
        samples.push(begun.elapsed());
    }
    let p50 = percentile(&mut samples, 0.5);
    let p99 = percentile(&mut samples, 0.99);

    println!(
        "| Replication (loopback, pinned TLS 1.3 + HTTP/2, {delay_ms} ms added one way, debug={}) | |",
        cfg!(debug_assertions)
    );
    println!("| --- | --- |");
    println!(
        "| initial replication of {count} secrets (one version each, {rounds} rounds) | {:.2} s |",
        initial.as_secs_f64()
    );
    println!(
        "| put on primary → visible on replica, p50 (one round, no poll wait) | {:.1} ms |",
        p50.as_secs_f64() * 1e3
    );
    println!("| same, p99 | {:.1} ms |", p99.as_secs_f64() * 1e3);
    drop(wan);
    drop(listener);
}
