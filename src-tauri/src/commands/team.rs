//! The team this vault is in (issue 12): its members, their roles per shared folder, and
//! removal with the secrets it exposed. Every rule (who may invite, share or remove, what a
//! role allows, what removal lists) is the engine's; these only trim what was typed.

use coffer_core::vault::rotation::drive_rotation;
use coffer_core::vault::team::{Exposure, ExposureState, TeamInfo, TeamRemoval, TeamRole};
use coffer_core::Timestamp;

use super::Session;
use crate::error::{AppError, AppResult};
use crate::session::{blocking, SessionVault};

/// The team, or `None` when this vault is in none.
#[tauri::command]
pub async fn team_show(session: Session<'_>) -> AppResult<Option<TeamInfo>> {
    blocking(&session, |s| s.with_unlocked(|v| Ok(v.team()?))).await
}

/// The team as it is now, for a screen that watches last contact and backlog move: not
/// counted as user activity, so watching does not keep an idle vault from locking itself.
#[tauri::command]
pub async fn watch_team(session: Session<'_>) -> AppResult<Option<TeamInfo>> {
    blocking(&session, |s| {
        s.in_background(|v| Ok(v.team()?))?
            .ok_or_else(AppError::locked)
    })
    .await
}

#[tauri::command]
pub async fn team_create(session: Session<'_>, name: String) -> AppResult<TeamInfo> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.team_create(name.trim())?))
    })
    .await
}

/// Pairs the member's vault, pinned by `fingerprint`, and adds it to the team.
#[tauri::command]
pub async fn team_invite(
    session: Session<'_>,
    member: String,
    url: String,
    fingerprint: String,
) -> AppResult<TeamInfo> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.team_invite(member.trim(), url.trim(), fingerprint.trim())?))
    })
    .await
}

/// Pairs this vault with the team's owner, pinned by `fingerprint`.
#[tauri::command]
pub async fn team_join(
    session: Session<'_>,
    team: String,
    owner: String,
    url: String,
    fingerprint: String,
) -> AppResult<TeamInfo> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| {
            Ok(v.team_join(team.trim(), owner.trim(), url.trim(), fingerprint.trim())?)
        })
    })
    .await
}

/// Shares a folder with a member, or changes the member's role there.
#[tauri::command]
pub async fn team_share(
    session: Session<'_>,
    prefix: String,
    member: String,
    role: TeamRole,
) -> AppResult<TeamInfo> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.team_share(prefix.trim(), member.trim(), role)?))
    })
    .await
}

#[tauri::command]
pub async fn team_unshare(
    session: Session<'_>,
    prefix: String,
    member: String,
) -> AppResult<TeamInfo> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.team_unshare(prefix.trim(), member.trim())?))
    })
    .await
}

/// Removes a member and lists every secret it could read; `rotate` rotates now those
/// that have a rotator (on an admin's vault the owner does both: it holds the secrets).
/// The engine's own `--rotate` runs each rotator while it holds the vault; here they run
/// as "Rotate now" runs them (`rotate_secret`), the vault taken only for each read and
/// record, so the app stays usable while a rotator talks to its system.
#[tauri::command]
pub async fn team_remove(
    session: Session<'_>,
    member: String,
    rotate: bool,
) -> AppResult<TeamRemoval> {
    blocking(&session, move |s| {
        // On an admin's vault the owner removes, and rotates what it holds if asked.
        let owner = s.with_unlocked(|v| Ok(v.team()?.is_none_or(|t| t.is_owner)))?;
        if !owner {
            return s.with_unlocked(|v| Ok(v.team_remove(member.trim(), rotate)?));
        }
        let mut removal = s.with_unlocked(|v| Ok(v.team_remove(member.trim(), false)?))?;
        if !rotate {
            return Ok(removal);
        }
        for exposure in &removal.exposures {
            if exposure.state != ExposureState::RotateNow {
                continue;
            }
            let name = exposure.secret.clone();
            match drive_rotation(
                &mut SessionVault::for_user(s),
                &name,
                None,
                Timestamp::now(),
            ) {
                Ok(_) => removal.rotated.push(name),
                Err(error) => removal.rotation_failures.push((name, error.message)),
            }
        }
        // The states as they are now (a rotated secret's value is newer than the removal).
        let now = s.with_unlocked(|v| Ok(v.team_exposures()?))?;
        for exposure in &mut removal.exposures {
            if let Some(current) = now
                .iter()
                .find(|e| e.member == exposure.member && e.secret == exposure.secret)
            {
                exposure.state = current.state;
            }
        }
        Ok(removal)
    })
    .await
}

#[tauri::command]
pub async fn team_exposures(session: Session<'_>) -> AppResult<Vec<Exposure>> {
    blocking(&session, |s| s.with_unlocked(|v| Ok(v.team_exposures()?))).await
}
