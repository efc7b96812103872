//! `coffer audit …`: the tamper-evident log.

use coffer_core::service::{Request, Response};

use super::{unexpected, Env};
use crate::cli::{AuditCommand, Output};
use crate::failure::Failure;
use crate::output::{self, render, table};

pub fn run(env: &Env, command: AuditCommand) -> Result<(), Failure> {
    let mut backend = env.backend()?;
    match command {
        AuditCommand::List { secret, limit } => {
            let entries = match backend.call(Request::AuditList { secret, limit })? {
                Response::Audit(entries) => entries,
                other => return Err(unexpected(other)),
            };
            match env.output {
                Output::Json => {
                    let mut text = String::new();
                    for entry in &entries {
                        text.push_str(
                            &serde_json::to_string(entry)
                                .map_err(|e| Failure::usage(e.to_string()))?,
                        );
                        text.push('\n');
                    }
                    output::raw(text.as_bytes(), false)
                }
                Output::Table => render(env.output, &entries, |entries, out| {
                    let rows: Vec<Vec<String>> = entries
                        .iter()
                        .map(|e| {
                            let mut at = e.at.rfc3339();
                            at.truncate(19);
                            vec![
                                e.seq.to_string(),
                                at,
                                format!("{}:{}({})", e.uid, e.process, e.pid),
                                e.operation.clone(),
                                e.secret_name.clone().unwrap_or_default(),
                                e.result.clone() + if e.chained { "" } else { " (unchained)" },
                            ]
                        })
                        .collect();
                    table(
                        out,
                        &["SEQ", "AT", "WHO", "OPERATION", "SECRET", "RESULT"],
                        &rows,
                    )
                }),
            }
        }
        AuditCommand::Verify => match backend.call(Request::AuditVerify)? {
            Response::AuditVerified(report) => render(env.output, &report, |r, out| {
                writeln!(
                    out,
                    "Audit log intact: {} entries, every MAC and the chain head verified.",
                    r.chained
                )?;
                if r.pending > 0 {
                    writeln!(out, "{} newer entries (failed unlocks) are not chained yet; the next unlock chains them.", r.pending)?;
                }
                for finding in &r.findings {
                    writeln!(
                        out,
                        "WARNING: entry {} records that while the vault was locked its log was tampered with ({}): {}.",
                        finding.seq,
                        finding.at.rfc3339(),
                        finding.detail
                    )?;
                }
                Ok(())
            }),
            other => Err(unexpected(other)),
        },
    }
}
