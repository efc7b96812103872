//! `coffer team …`: a small team's members, folders and roles.

use coffer_core::service::{Request, Response};
use coffer_core::vault::team::{Exposure, ExposureState, TeamInfo, TeamRole};

use std::io::Write as _;

use super::{unexpected, Backend, Env};
use crate::cli::{Output, RoleArg, TeamCommand};
use crate::failure::Failure;
use crate::output::{finish, render, table};

fn role(arg: RoleArg) -> TeamRole {
    match arg {
        RoleArg::Reader => TeamRole::Reader,
        RoleArg::Writer => TeamRole::Writer,
        RoleArg::Admin => TeamRole::Admin,
    }
}

fn show_team(out: &mut dyn std::io::Write, team: &TeamInfo) -> std::io::Result<()> {
    let owner = if team.is_owner {
        format!("{} (this vault)", team.owner_region)
    } else {
        team.owner_region.clone()
    };
    writeln!(out, "Team:    {}", team.name)?;
    writeln!(out, "Owner:   {owner}")?;
    writeln!(out, "Region:  {}", team.own_region)?;
    if !team.is_owner && team.revision == 0 {
        writeln!(
            out,
            "Nothing has arrived from {} yet: its daemon sends the team's folders once it has paired this vault (`coffer team invite`) and reaches it.",
            team.owner_region
        )?;
    }
    if !team.folders.is_empty() {
        writeln!(out)?;
        let rows: Vec<Vec<String>> = team
            .folders
            .iter()
            .map(|f| {
                let primary = match &f.handover_from {
                    Some(from) => format!("{} (moving from {from})", f.primary_region),
                    None => f.primary_region.clone(),
                };
                vec![f.prefix.clone(), primary]
            })
            .collect();
        table(out, &["FOLDER", "PRIMARY"], &rows)?;
    }
    writeln!(out)?;
    if team.members.is_empty() {
        if !team.is_owner {
            return Ok(());
        }
        return writeln!(
            out,
            "No members yet. Add one with `coffer team invite REGION --url https://HOST:PORT --fingerprint FP`."
        );
    }
    let rows: Vec<Vec<String>> = team
        .members
        .iter()
        .map(|m| {
            let roles = if m.roles.is_empty() {
                "-".to_owned()
            } else {
                m.roles
                    .iter()
                    .map(|(prefix, role)| format!("{prefix}={}", role.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let contact = match (&m.last_contact, &m.last_error) {
                (_, Some(error)) => format!("failed: {error}"),
                (Some(at), None) => at.rfc3339(),
                (None, None) if team.is_owner => "never".into(),
                (None, None) => "-".into(),
            };
            vec![m.region.clone(), roles, contact, m.backlog.to_string()]
        })
        .collect();
    table(out, &["MEMBER", "ROLES", "LAST CONTACT", "BACKLOG"], &rows)
}

fn show_exposures(out: &mut dyn std::io::Write, exposures: &[Exposure]) -> std::io::Result<()> {
    if exposures.is_empty() {
        return writeln!(out, "No secret is exposed to a removed member.");
    }
    let rows: Vec<Vec<String>> = exposures
        .iter()
        .map(|e| {
            let state = match e.state {
                ExposureState::RotateNow => {
                    format!("rotate now: `coffer secret rotate {}`", e.secret)
                }
                ExposureState::Exposed => {
                    format!(
                        "exposed until a new value: `coffer secret put {}`",
                        e.secret
                    )
                }
                ExposureState::Rotated => "new value since: done".to_owned(),
            };
            vec![e.secret.clone(), e.member.clone(), e.since.rfc3339(), state]
        })
        .collect();
    table(out, &["SECRET", "READ BY", "REMOVED", "TO DO"], &rows)
}

/// After `team join`: tells the owner this vault is up, over the link just pinned, so
/// that its daemon sends the team's folders now rather than after the backoff that this
/// vault's refusals (before it joined) caused. The join stands either way: an owner that
/// cannot be reached now is said so, and sends once it next reaches this vault.
fn greet_owner(env: &Env, backend: &mut Backend, owner: &str) -> Result<(), Failure> {
    let note = match backend.call(Request::RegionPing {
        name: owner.to_owned(),
    }) {
        Ok(_) => format!(
            "Told the owner {owner} that this vault has joined: its daemon sends the team's folders now."
        ),
        Err(failure) => format!(
            "Joined, but the owner {owner} could not be reached now ({}). Its daemon sends the team's folders once it reaches this vault; `coffer region ping {owner}` tries again.",
            failure.message
        ),
    };
    // JSON output stays one document on stdout; the note goes beside it.
    let written = match env.output {
        Output::Json => writeln!(std::io::stderr(), "coffer: {note}"),
        Output::Table => writeln!(std::io::stdout(), "{note}"),
    };
    finish(written)
}

pub fn run(env: &Env, command: TeamCommand) -> Result<(), Failure> {
    let mut backend = env.backend()?;
    let joining = match &command {
        TeamCommand::Join { owner, .. } => Some(owner.clone()),
        _ => None,
    };
    let request = match command {
        TeamCommand::Create { name } => Request::TeamCreate { name },
        TeamCommand::Invite {
            member,
            url,
            fingerprint,
        } => Request::TeamInvite {
            member,
            url,
            fingerprint,
        },
        TeamCommand::Join {
            team,
            owner,
            url,
            fingerprint,
        } => Request::TeamJoin {
            team,
            owner,
            url,
            fingerprint,
        },
        TeamCommand::Share {
            prefix,
            member,
            role: arg,
        } => Request::TeamShare {
            prefix,
            member,
            role: role(arg),
        },
        TeamCommand::Unshare { prefix, member } => Request::TeamUnshare { prefix, member },
        TeamCommand::Members => Request::TeamShow,
        TeamCommand::Remove { member, rotate } => Request::TeamRemove { member, rotate },
        TeamCommand::Exposures => Request::TeamExposures,
        TeamCommand::MovePrimary { prefix, to } => Request::TeamMovePrimary { prefix, to },
    };
    let response = backend.call(request)?;
    if let (Some(owner), Response::Team(team)) = (&joining, &response) {
        render(env.output, team, |team, out| match team {
            Some(team) => show_team(out, team),
            None => Ok(()),
        })?;
        return greet_owner(env, &mut backend, owner);
    }
    match response {
        Response::Team(team) => render(env.output, &team, |team, out| {
            match team {
            Some(team) => show_team(out, team),
            None => writeln!(
                out,
                "This vault is in no team. Create one with `coffer team create NAME`, or join one with `coffer team join TEAM --owner REGION --url URL --fingerprint FP`."
            ),
        }
        }),
        Response::TeamRemoved(removal) => render(env.output, &removal, |r, out| {
            writeln!(
                out,
                "{} is no longer a member: nothing more is sent to it, and its copies are deleted when its vault is next reached. It may have read these secrets:",
                r.member
            )?;
            show_exposures(out, &r.exposures)?;
            for name in &r.rotated {
                writeln!(out, "Rotated {name}.")?;
            }
            for (name, error) in &r.rotation_failures {
                writeln!(out, "Rotating {name} failed: {error}")?;
            }
            Ok(())
        }),
        Response::Exposures(exposures) => {
            render(env.output, &exposures, |e, out| show_exposures(out, e))
        }
        other => Err(unexpected(other)),
    }
}
