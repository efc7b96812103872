//! `coffer region …`: this vault's region identity and its paired peers.

use coffer_core::service::{Request, Response};

use super::{say, unexpected, Env};
use crate::cli::RegionCommand;
use crate::failure::Failure;
use crate::output::{render, table};

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
            let message = format!("Region {name} is no longer paired.");
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
