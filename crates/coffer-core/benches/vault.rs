//! Vault benchmarks on a real swtpm and a real SQLite file.
//!
//! `cargo bench -p coffer-core --bench vault` (set COFFER_BENCH_SECRETS to change the
//! vault size; default 100,000). Build `cargo build --release -p coffer-cli` first to
//! include the `coffer secret get` wall times (one process, and through the agent) and the
//! `coffer run` overhead. Prints a Markdown table for
//! docs/benchmarks.md.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use coffer_core::tpm::PcrBinding;
use coffer_core::vault::{CreateSecret, PutValue};
use coffer_core::{ListQuery, SecretValue, Vault, VersionSelector};
use rand::Rng;

const PIN: &str = "bench-pin-1234";

struct Row {
    what: String,
    figure: String,
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
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

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn name(i: usize) -> String {
    format!("team-{}/service-{i:06}/password", i % 50)
}

fn main() {
    // Criterion-style filters passed by `cargo bench` are accepted and ignored.
    std::env::set_var("TSS2_LOG", "all+NONE");
    let count: usize = std::env::var("COFFER_BENCH_SECRETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let swtpm = coffer_testkit::Swtpm::start();
    let tcti = swtpm.tcti();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("vault/vault.db");
    let mut rows = Vec::new();

    let (created, init_time) =
        timed(|| Vault::init(&path, &tcti, PIN, PcrBinding::default()).expect("init"));
    let mut vault = created.vault;
    rows.push(Row {
        what: "init (Argon2id recovery key + seal default key)".into(),
        figure: fmt(init_time),
    });

    // Fill the vault in large transactions (the import path); per-secret data keys and
    // audit entries are still created for every one.
    let batch = 5_000;
    let (_, fill_time) = timed(|| {
        let mut i = 0;
        while i < count {
            let requests: Vec<CreateSecret> = (i..(i + batch).min(count))
                .map(|j| CreateSecret {
                    name: name(j),
                    description: format!("Password of service {j}"),
                    tags: [("team".to_owned(), format!("t{}", j % 50))].into(),
                    value: Some(SecretValue::text(format!("value-{j}-{}", "x".repeat(24)))),
                    ..Default::default()
                })
                .collect();
            vault.import_secrets(&requests).expect("import");
            i += batch;
        }
    });
    rows.push(Row {
        what: format!("import {count} secrets (batches of {batch})"),
        figure: format!(
            "{:.1} s ({:.0} secrets/s)",
            fill_time.as_secs_f64(),
            count as f64 / fill_time.as_secs_f64()
        ),
    });
    vault.lock().expect("lock");
    drop(vault);
    let size: u64 = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum();
    rows.push(Row {
        what: "vault file size per secret (one version, with audit entry)".into(),
        figure: format!(
            "{:.0} bytes ({:.1} MiB total)",
            size as f64 / count as f64,
            size as f64 / 1048576.0
        ),
    });

    // Unlock: open the file, connect to the TPM, create the primary, unseal one key.
    let mut unlocks = Vec::new();
    for _ in 0..20 {
        let (_, t) = timed(|| {
            let mut v = Vault::open(&path).expect("open");
            v.unlock(&tcti, PIN).expect("unlock");
        });
        unlocks.push(t);
    }
    rows.push(Row {
        what: "open + unlock on swtpm (p50 / p99 of 20)".into(),
        figure: format!(
            "{} / {}",
            fmt(percentile(&mut unlocks, 0.5)),
            fmt(percentile(&mut unlocks, 0.99))
        ),
    });

    let mut vault = Vault::open(&path).expect("open");
    vault.unlock(&tcti, PIN).expect("unlock");
    let mut rng = rand::thread_rng();
    let selector = VersionSelector::default();
    for _ in 0..1_000 {
        vault
            .get_secret_value(&name(rng.gen_range(0..count)), &selector)
            .expect("warm-up get");
    }
    let mut gets = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let n = name(rng.gen_range(0..count));
        let (read, t) = timed(|| vault.get_secret_value(&n, &selector));
        read.expect("get");
        gets.push(t);
    }
    rows.push(Row {
        what: "get value in-process, random secret (p50 / p99 of 20,000; audit batched)".into(),
        figure: format!(
            "{} / {}",
            fmt(percentile(&mut gets, 0.5)),
            fmt(percentile(&mut gets, 0.99))
        ),
    });

    let puts = 300;
    let (_, put_time) = timed(|| {
        for k in 0..puts {
            let n = name(rng.gen_range(0..count));
            vault
                .put_secret_value(&n, PutValue::new(SecretValue::text(format!("rotated-{k}"))))
                .expect("put");
        }
    });
    rows.push(Row {
        what: format!("put value, one durable transaction each ({puts} puts)"),
        figure: format!(
            "{:.0} puts/s ({} each)",
            puts as f64 / put_time.as_secs_f64(),
            fmt(put_time / puts)
        ),
    });

    let queries: Vec<(&str, ListQuery)> = vec![
        ("list first page of 100, by name", ListQuery::default()),
        (
            "list by name prefix (team-7/…), page of 100",
            ListQuery {
                name_prefix: Some("team-7/".into()),
                ..Default::default()
            },
        ),
        (
            "filter by tag team=t7, page of 100",
            ListQuery {
                tag: Some(("team".into(), Some("t7".into()))),
                ..Default::default()
            },
        ),
        (
            "search as you type \"service-0999\" (name/description/tags)",
            ListQuery {
                text: Some("service-0999".into()),
                ..Default::default()
            },
        ),
        (
            "list sorted by last change, page of 100",
            ListQuery {
                sort: coffer_core::SortBy::ChangedDesc,
                ..Default::default()
            },
        ),
    ];
    for (what, query) in queries {
        let mut samples = Vec::new();
        for _ in 0..30 {
            let (page, t) = timed(|| vault.list_secrets(&query));
            assert!(!page.expect("list").items.is_empty());
            samples.push(t);
        }
        rows.push(Row {
            what: format!("{what} (p50 / p99 of 30)"),
            figure: format!(
                "{} / {}",
                fmt(percentile(&mut samples, 0.5)),
                fmt(percentile(&mut samples, 0.99))
            ),
        });
    }
    vault.lock().expect("lock");
    drop(vault);

    let cli = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/coffer");
    if cli.exists() {
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, PIN).expect("pin file");
        let mut samples = Vec::new();
        for _ in 0..50 {
            let n = name(rng.gen_range(0..count));
            let (out, t) = timed(|| {
                Command::new(&cli)
                    .args(["secret", "get", &n])
                    .env("COFFER_VAULT", &path)
                    .env("COFFER_TCTI", &tcti)
                    .env("COFFER_PIN_FILE", &pin_file)
                    .output()
                    .expect("run coffer")
            });
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            samples.push(t);
        }
        let mut starts = Vec::new();
        for _ in 0..50 {
            let (_, t) = timed(|| {
                Command::new(&cli)
                    .arg("--version")
                    .output()
                    .expect("run coffer")
            });
            starts.push(t);
        }
        rows.push(Row {
            what: "`coffer secret get NAME`, one process incl. unlock (p50 / p99 of 50)".into(),
            figure: format!(
                "{} / {}",
                fmt(percentile(&mut samples, 0.5)),
                fmt(percentile(&mut samples, 0.99))
            ),
        });
        rows.push(Row {
            what: "`coffer --version`, process start-up alone (p50 of 50)".into(),
            figure: fmt(percentile(&mut starts, 0.5)),
        });
        // Through the agent: unlock once, then one process per `coffer secret get`.
        let runtime = dir.path().join("run");
        std::fs::create_dir_all(&runtime).expect("runtime dir");
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("chmod");
        let coffer = |args: &[&str]| {
            let mut command = Command::new(&cli);
            command
                .args(args)
                .env("COFFER_VAULT", &path)
                .env("COFFER_TCTI", &tcti)
                .env("COFFER_PIN_FILE", &pin_file)
                .env("XDG_RUNTIME_DIR", &runtime);
            command
        };
        let unlocked = coffer(&["unlock", "--timeout", "10m"])
            .output()
            .expect("unlock");
        assert!(
            unlocked.status.success(),
            "{}",
            String::from_utf8_lossy(&unlocked.stderr)
        );
        let mut via_agent = Vec::new();
        for _ in 0..200 {
            let n = name(rng.gen_range(0..count));
            let (out, t) = timed(|| coffer(&["secret", "get", &n]).output().expect("run coffer"));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            via_agent.push(t);
        }
        rows.push(Row {
            what: "`coffer secret get NAME` through the agent, one process (p50 / p99 of 200)"
                .into(),
            figure: format!(
                "{} / {}",
                fmt(percentile(&mut via_agent, 0.5)),
                fmt(percentile(&mut via_agent, 0.99))
            ),
        });
        let reference = format!("coffer://{}", name(7));
        let mut direct = Vec::new();
        let mut wrapped = Vec::new();
        for _ in 0..100 {
            let (_, t) = timed(|| Command::new("/bin/true").output().expect("true"));
            direct.push(t);
            let (out, t) = timed(|| {
                coffer(&["run", "--", "/bin/true"])
                    .env("BENCH_SECRET", &reference)
                    .output()
                    .expect("run")
            });
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            wrapped.push(t);
        }
        rows.push(Row {
            what: "`/bin/true` directly vs `coffer run -- /bin/true` with one reference, via the agent (p50 of 100)".into(),
            figure: format!("{} vs {}", fmt(percentile(&mut direct, 0.5)), fmt(percentile(&mut wrapped, 0.5))),
        });
        let _ = coffer(&["lock"]).output();
    } else {
        eprintln!(
            "(skipping the CLI wall time: build it with `cargo build --release -p coffer-cli`)"
        );
    }

    println!("| measurement | figure |\n|---|---|");
    for row in rows {
        println!("| {} | {} |", row.what, row.figure);
    }
}
