//! `coffer region …`: this vault's region identity and its paired peers.

use std::path::{Path, PathBuf};

use coffer_core::service::{Request, Response};
use coffer_core::vault::replication::bundle::MAX_FILE_BYTES;

use super::{say, unexpected, Env};
use crate::cli::RegionCommand;
use crate::failure::Failure;
use crate::output::{render, table};
use crate::private_file;

/// Reads a bundle or acknowledgement file, refusing one larger than Coffer writes.
fn read_text(path: &Path, what: &str) -> Result<String, Failure> {
    private_file::read_text(path, what, MAX_FILE_BYTES)
}

fn ack_path(bundle: &Path, ack_out: Option<PathBuf>) -> PathBuf {
    ack_out.unwrap_or_else(|| {
        let mut name = bundle.as_os_str().to_owned();
        name.push(".ack");
        PathBuf::from(name)
    })
}

pub fn run(env: &Env, command: RegionCommand) -> Result<(), Failure> {
    let mut backend = env.backend()?;
    match command {
        RegionCommand::Identity => match backend.call(Request::RegionIdentity)? {
            Response::Region(identity) => render(env.output, &identity, |i, out| {
                writeln!(out, "Region:      {}", i.region)?;
                writeln!(out, "Fingerprint: {}", i.fingerprint)?;
                writeln!(
                    out,
                    "Give both to the peer's owner, who pairs this vault with `coffer region add {} --url https://THIS-HOST:PORT --fingerprint {}`.",
                    i.region, i.fingerprint
                )
            }),
            other => Err(unexpected(other)),
        },
        RegionCommand::Rename { name } => match backend.call(Request::RegionRename { name })? {
            Response::Region(identity) => render(env.output, &identity, |i, out| {
                writeln!(out, "This vault's region is now {}.", i.region)
            }),
            other => Err(unexpected(other)),
        },
        RegionCommand::Add {
            name,
            url,
            fingerprint,
        } => match backend.call(Request::RegionAdd {
            name,
            url,
            fingerprint,
        })? {
            Response::Peer(peer) => render(env.output, &peer, |p, out| {
                writeln!(
                    out,
                    "Paired region {} at {} (fingerprint {}). Pair this vault there too, then check with `coffer region ping {}`.",
                    p.name, p.url, p.fingerprint, p.name
                )
            }),
            other => Err(unexpected(other)),
        },
        RegionCommand::Remove { name } => {
            let message = format!(
                "Region {name} is no longer paired: nothing more is sent to it. Copies that \
                 machine already holds stay there; to have one deleted, run `coffer secret \
                 remove-region NAME --region {name}` while it is still paired and reachable."
            );
            match backend.call(Request::RegionRemove { name })? {
                Response::Done => say(env, &message),
                other => Err(unexpected(other)),
            }
        }
        RegionCommand::List => match backend.call(Request::RegionList)? {
            Response::Peers(peers) => render(env.output, &peers, |peers, out| {
                if peers.is_empty() {
                    return writeln!(
                        out,
                        "No region is paired. Pair one with `coffer region add NAME --url https://HOST:PORT --fingerprint FP`."
                    );
                }
                let rows: Vec<Vec<String>> = peers
                    .iter()
                    .map(|p| {
                        let contact = match (&p.last_contact, &p.last_error) {
                            (_, Some(error)) => format!("failed: {error}"),
                            (Some(at), None) => at.rfc3339(),
                            (None, None) => "never".into(),
                        };
                        vec![
                            p.name.clone(),
                            p.url.clone(),
                            p.fingerprint.clone(),
                            p.key_exchange.clone().unwrap_or_else(|| "-".into()),
                            contact,
                            p.backlog.to_string(),
                        ]
                    })
                    .collect();
                table(
                    out,
                    &[
                        "REGION",
                        "URL",
                        "FINGERPRINT",
                        "KEY EXCHANGE",
                        "LAST CONTACT",
                        "BACKLOG",
                    ],
                    &rows,
                )
            }),
            other => Err(unexpected(other)),
        },
        RegionCommand::Export { name, out } => {
            match backend.call(Request::RegionExport { name })? {
                Response::BundleExported(export) => {
                    private_file::write(&out, export.bundle.as_bytes())?;
                    let shown = serde_json::json!({
                        "region": export.region,
                        "file": out.display().to_string(),
                        "entries": export.entries,
                        "after": export.after,
                        "last_seq": export.last_seq,
                        "remaining": export.remaining,
                    });
                    render(env.output, &shown, |_, o| {
                        writeln!(
                            o,
                            "Wrote {} changes for region {} to {}. Import it there with `coffer region import FILE`, then bring back the acknowledgement for `coffer region import-ack`.",
                            export.entries, export.region, out.display()
                        )?;
                        if export.remaining > 0 {
                            writeln!(
                                o,
                                "{} more changes follow in the next bundle.",
                                export.remaining
                            )?;
                        }
                        Ok(())
                    })
                }
                other => Err(unexpected(other)),
            }
        }
        RegionCommand::Import { file, ack_out } => {
            let bundle = read_text(&file, "bundle")?;
            let ack_file = ack_path(&file, ack_out);
            match backend.call(Request::RegionImport { bundle })? {
                Response::BundleImported(import) => {
                    private_file::write(&ack_file, import.ack.as_bytes())?;
                    let shown = serde_json::json!({
                        "region": import.region,
                        "applied": import.applied,
                        "skipped": import.skipped,
                        "applied_upto": import.applied_upto,
                        "not_applied": import.not_applied,
                        "ack": ack_file.display().to_string(),
                    });
                    render(env.output, &shown, |_, o| {
                        writeln!(
                            o,
                            "Applied {} changes from region {} (up to {}). Carry {} back and run `coffer region import-ack` there.",
                            import.applied, import.region, import.applied_upto, ack_file.display()
                        )?;
                        for skipped in &import.not_applied {
                            writeln!(o, "not applied: {}: {}", skipped.secret_id, skipped.reason)?;
                        }
                        Ok(())
                    })
                }
                other => Err(unexpected(other)),
            }
        }
        RegionCommand::Ack { name, out } => match backend.call(Request::RegionAck { name })? {
            Response::BundleImported(import) => {
                private_file::write(&out, import.ack.as_bytes())?;
                let shown = serde_json::json!({
                    "region": import.region,
                    "applied_upto": import.applied_upto,
                    "ack": out.display().to_string(),
                });
                render(env.output, &shown, |_, o| {
                    writeln!(
                        o,
                        "Wrote an acknowledgement for region {} (applied up to {}) to {}. Run `coffer region import-ack` with it there.",
                        import.region, import.applied_upto, out.display()
                    )
                })
            }
            other => Err(unexpected(other)),
        },
        RegionCommand::ImportAck { file } => {
            let ack = read_text(&file, "acknowledgement")?;
            match backend.call(Request::RegionImportAck { ack })? {
                Response::AckImported(done) => render(env.output, &done, |d, o| {
                    writeln!(
                        o,
                        "Region {} acknowledged changes up to {}; {} remain (`coffer region export {} --out FILE` sends them).",
                        d.region, d.acked, d.backlog, d.region
                    )
                }),
                other => Err(unexpected(other)),
            }
        }
        RegionCommand::Ping { name } => match backend.call(Request::RegionPing { name })? {
            Response::Contact(contact) => render(env.output, &contact, |c, out| {
                writeln!(
                    out,
                    "Region {} at {} answered: fingerprint {} verified both ways, {} with key exchange {}.",
                    c.name, c.url, c.fingerprint, c.protocol.replace('_', "."), c.key_exchange
                )
            }),
            other => Err(unexpected(other)),
        },
    }
}
