//! Re-wrapping 100,000 data keys under a new key version, and what it does to reads that
//! run at the same time, on a real swtpm and a real SQLite file.
//!
//! `cargo bench -p coffer-core --bench rewrap` (COFFER_BENCH_SECRETS changes the number of
//! secrets, default 100,000). Prints a Markdown table for docs/benchmarks-rotation.md.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_core::tpm::PcrBinding;
use coffer_core::vault::rewrap::drive_rewrap;
use coffer_core::vault::CreateSecret;
use coffer_core::{SecretValue, Vault, VersionSelector};
use rand::Rng;

const PIN: &str = "bench-pin-1234";

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_micros(1000) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

fn name(i: usize) -> String {
    format!("team-{}/service-{i:06}/password", i % 50)
}

struct Reads {
    count: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// Reads random secrets from a second vault handle (as another process would) until
/// `stop` is set, or for `duration` when given.
fn reader(
    path: &Path,
    tcti: &str,
    count: usize,
    stop: Arc<AtomicBool>,
    duration: Option<Duration>,
) -> Reads {
    let mut vault = Vault::open(path).expect("open");
    vault.unlock(tcti, PIN).expect("unlock");
    // Unseal both key versions before timing.
    vault
        .get_secret_value("warm/v2", &VersionSelector::default())
        .expect("warm v2");
    vault
        .get_secret_value(&name(0), &VersionSelector::default())
        .expect("warm");
    let mut rng = rand::thread_rng();
    let mut samples = Vec::new();
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && duration.is_none_or(|d| started.elapsed() < d) {
        let i = rng.gen_range(0..count);
        let t = Instant::now();
        vault
            .get_secret_value(&name(i), &VersionSelector::default())
            .expect("read during re-wrap");
        samples.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    vault.flush_audit().expect("flush");
    Reads {
        count: samples.len(),
        elapsed,
        p50: percentile(&mut samples, 0.5),
        p99: percentile(&mut samples, 0.99),
        max: samples.last().copied().unwrap_or_default(),
    }
}

/// Reads random secrets through the vault the re-wrap uses, as the app's screens do,
/// one every millisecond or so, timing each from asking for the vault to the value.
fn shared_reader(vault: &Mutex<Vault>, count: usize, stop: &AtomicBool) -> Reads {
    let mut rng = rand::thread_rng();
    let mut samples = Vec::new();
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let i = rng.gen_range(0..count);
        let t = Instant::now();
        vault
            .lock()
            .expect("vault")
            .get_secret_value(&name(i), &VersionSelector::default())
            .expect("read during re-wrap");
        samples.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(1));
    }
    Reads {
        count: samples.len(),
        elapsed: started.elapsed(),
        p50: percentile(&mut samples, 0.5),
        p99: percentile(&mut samples, 0.99),
        max: samples.last().copied().unwrap_or_default(),
    }
}

fn main() {
    std::env::set_var("TSS2_LOG", "all+NONE");
    let count: usize = std::env::var("COFFER_BENCH_SECRETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let swtpm = coffer_testkit::Swtpm::start();
    let tcti = swtpm.tcti();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("vault/vault.db");
    let mut vault = Vault::init(&path, &tcti, PIN, PcrBinding::default())
        .expect("init")
        .vault;
    let filled = Instant::now();
    for chunk in (0..count).collect::<Vec<_>>().chunks(5000) {
        let requests: Vec<CreateSecret> = chunk
            .iter()
            .map(|&i| CreateSecret {
                name: name(i),
                value: Some(SecretValue::text(format!(
                    "value-{i:06}-{}",
                    "x".repeat(24)
                ))),
                ..Default::default()
            })
            .collect();
        vault.import_secrets(&requests).expect("import");
    }
    eprintln!("filled {count} secrets in {:?}", filled.elapsed());
    let key = vault.list_keys().expect("keys")[0].id.to_string();

    let mut rows: Vec<(String, String)> = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    // Baseline reads, nothing else running (after a first rotation so both versions exist).
    vault.rotate_key(&key).expect("rotate");
    vault
        .create_secret(CreateSecret {
            name: "warm/v2".into(),
            value: Some(SecretValue::text("warm")),
            ..Default::default()
        })
        .expect("warm secret");
    vault
        .rewrap_key(&key, 1000, &mut |_| {})
        .expect("first rewrap");
    let base = reader(
        &path,
        &tcti,
        count,
        stop.clone(),
        Some(Duration::from_secs(3)),
    );
    rows.push((
        "Reads alone (CURRENT by name, random, second handle)".into(),
        format!(
            "{:.0}/s; p50 {}, p99 {}, max {}",
            base.count as f64 / base.elapsed.as_secs_f64(),
            fmt(base.p50),
            fmt(base.p99),
            fmt(base.max)
        ),
    ));

    for batch in [1000u32, 10_000, 100] {
        vault.rotate_key(&key).expect("rotate");
        let stale = vault
            .key_rotation_status(&key)
            .expect("status")
            .stale_data_keys;
        let mut batch_times = Vec::new();
        let started = Instant::now();
        let mut last = Instant::now();
        let done = vault
            .rewrap_key(&key, batch, &mut |_| {
                batch_times.push(last.elapsed());
                last = Instant::now();
            })
            .expect("rewrap");
        let took = started.elapsed();
        assert_eq!(done.done, stale);
        rows.push((
            format!("Re-wrap {stale} data keys, batches of {batch}, alone"),
            format!(
                "{:.2} s ({:.0} keys/s); per batch p50 {}, max {}",
                took.as_secs_f64(),
                stale as f64 / took.as_secs_f64(),
                fmt(percentile(&mut batch_times, 0.5)),
                fmt(batch_times.last().copied().unwrap_or_default())
            ),
        ));
    }

    for batch in [1000u32, 10_000] {
        vault.rotate_key(&key).expect("rotate");
        let stale = vault
            .key_rotation_status(&key)
            .expect("status")
            .stale_data_keys;
        let stop_reader = Arc::new(AtomicBool::new(false));
        let (p, t, s) = (path.clone(), tcti.clone(), stop_reader.clone());
        let handle = std::thread::spawn(move || reader(&p, &t, count, s, None));
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        vault.rewrap_key(&key, batch, &mut |_| {}).expect("rewrap");
        let took = started.elapsed();
        stop_reader.store(true, Ordering::Relaxed);
        let reads = handle.join().expect("reader");
        rows.push((
            format!("Re-wrap {stale} data keys, batches of {batch}, with a reader"),
            format!(
                "{:.2} s ({:.0} keys/s)",
                took.as_secs_f64(),
                stale as f64 / took.as_secs_f64()
            ),
        ));
        rows.push((
            format!("Reads during that re-wrap (batches of {batch})"),
            format!(
                "{:.0}/s; p50 {}, p99 {}, max {}",
                reads.count as f64 / reads.elapsed.as_secs_f64(),
                fmt(reads.p50),
                fmt(reads.p99),
                fmt(reads.max)
            ),
        ));
    }
    // Every value is still readable.
    for i in (0..count).step_by(997) {
        vault
            .get_secret_value(&name(i), &VersionSelector::default())
            .expect("readable after re-wraps");
    }
    let status = vault.key_rotation_status(&key).expect("status");
    for (version, n) in status.data_keys_by_version.clone() {
        if n == 0 && version != status.newest_version {
            vault.retire_key_version(&key, version).expect("retire");
        }
    }
    let _ = stop;

    // In the app, screens and the re-wrap share one vault behind a mutex. Holding it for
    // a whole re-wrap (as `run_due` does in the daemon) stalls every screen for seconds;
    // letting go between batches (as the app's scheduler and its re-wrap command do)
    // bounds the wait by one batch.
    let shared = Arc::new(Mutex::new(vault));
    for (how, per_batch) in [
        ("the vault held for the whole re-wrap", false),
        ("the vault let go between batches (the app)", true),
    ] {
        let stale = {
            let mut vault = shared.lock().expect("vault");
            vault.rotate_key(&key).expect("rotate");
            vault
                .key_rotation_status(&key)
                .expect("status")
                .stale_data_keys
        };
        let stop_reader = Arc::new(AtomicBool::new(false));
        let (v, s) = (shared.clone(), stop_reader.clone());
        let handle = std::thread::spawn(move || shared_reader(&v, count, &s));
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        if per_batch {
            drive_rewrap(
                || shared.lock().expect("vault").rewrap_key_batch(&key, 1000),
                &mut |_| {},
            )
            .expect("rewrap");
        } else {
            shared
                .lock()
                .expect("vault")
                .rewrap_key(&key, 1000, &mut |_| {})
                .expect("rewrap");
        }
        let took = started.elapsed();
        stop_reader.store(true, Ordering::Relaxed);
        let reads = handle.join().expect("reader");
        rows.push((
            format!("Re-wrap {stale} data keys in one process, {how}"),
            format!("{:.2} s", took.as_secs_f64()),
        ));
        rows.push((
            format!("Reads through the same vault meanwhile ({how})"),
            format!(
                "{} reads; p50 {}, p99 {}, max {}",
                reads.count,
                fmt(reads.p50),
                fmt(reads.p99),
                fmt(reads.max)
            ),
        ));
    }

    println!("\n| Measurement ({count} secrets, swtpm, SQLite WAL synchronous=FULL) | Result |");
    println!("|---|---|");
    for (what, figure) in rows {
        println!("| {what} | {figure} |");
    }
}
