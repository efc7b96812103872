//! Benchmark setup: creates a vault with N secrets (default 100,000) in the place the app
//! looks for it ($XDG_DATA_HOME/coffer), on the same software TPM state the app uses, so the
//! app then opens it with the given PIN. Values are left empty: listing and filtering never
//! read them. Usage: cargo run -p coffer-app --example seed_vault -- PIN [COUNT]

use std::collections::BTreeMap;

use coffer_app::tpm_backend::{data_dir, TpmBackend};
use coffer_core::tpm::PcrBinding;
use coffer_core::{CreateSecret, Vault};

const BATCH: usize = 5_000;
const ENVS: [&str; 3] = ["prod", "staging", "dev"];
const KINDS: [&str; 5] = [
    "db-password",
    "api-token",
    "tls-key",
    "oauth-client",
    "ssh-key",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pin = args.next().ok_or("usage: seed_vault PIN [COUNT]")?;
    let count: usize = args
        .next()
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(100_000);
    let tpm = TpmBackend::select(&data_dir());
    if tpm.tcti.is_empty() {
        return Err(tpm.problem.clone().unwrap_or_default().into());
    }
    let path = coffer_core::default_vault_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut vault = Vault::init(&path, &tpm.tcti, &pin, PcrBinding::none())?.vault;
    let started = std::time::Instant::now();
    for start in (0..count).step_by(BATCH) {
        let batch: Vec<CreateSecret> = (start..(start + BATCH).min(count))
            .map(|i| {
                let env = ENVS[i % ENVS.len()];
                let kind = KINDS[i % KINDS.len()];
                CreateSecret {
                    name: format!("svc-{i:06}/{env}/{kind}"),
                    description: format!("{kind} of service {i} in {env}"),
                    tags: BTreeMap::from([("env".to_owned(), env.to_owned())]),
                    ..CreateSecret::default()
                }
            })
            .collect();
        vault.import_secrets(&batch)?;
    }
    vault.lock()?;
    drop(vault);
    tpm.shutdown();
    println!(
        "seeded {count} secrets in {:.1} s at {}",
        started.elapsed().as_secs_f64(),
        path.display()
    );
    Ok(())
}
