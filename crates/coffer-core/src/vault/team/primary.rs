//! Moving a folder's primary to another vault (`coffer team move-primary`), and keeping
//! each folder's copies where its members are.
//!
//! A move must lose no write and fork nothing, though the owner, the old primary and the
//! new one talk over separate links. So it is a handover, in three steps that each ride
//! on the replication streams' order:
//! 1. The owner names the new primary in the folder's state and the old one as
//!    `handover_from`. From then on members send their writes to the new primary, which
//!    refuses them until step 2.
//! 2. The old primary, on that state, turns its secrets of the folder into copies of the
//!    new primary and sends it a team entry: the handover. It follows every change the
//!    old primary applied, in the same stream, so the new primary has them all when it
//!    takes over. It then makes its copies its own and replicates them to every holder.
//! 3. The new primary tells the owner, after those copies, and the owner clears
//!    `handover_from`.
//!
//! A member may hear from the new primary before it has the owner's state that names it:
//! every entry carries the sender's team revision, and a member whose state is older
//! answers "not yet" (nothing applied, the sender tries again) instead of refusing it
//! for good.

use rusqlite::{Connection, Transaction};
use uuid::Uuid;

use super::error::TeamError;
use super::{queue_state, share_secret, state, unshare_secret, TeamState};
use crate::model::Timestamp;
use crate::region::{Fingerprint, PeerUrl};
use crate::store::replication::{self as replication_rows, ReplicaOf};
use crate::store::{peers as peer_rows, teams as team_rows};
use crate::vault::error::Result;
use crate::vault::integrity::Integrity;

/// The folders this vault has taken over as their new primary while the owner has not
/// yet recorded it (a MACed setting: an edit cannot make a vault take writes it should
/// not).
const TAKEN: &str = "team.taken";

fn taken(conn: &Connection, integrity: &Integrity) -> Result<Vec<String>> {
    Ok(integrity
        .setting(conn, TAKEN)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default())
}

fn set_taken(tx: &Transaction<'_>, integrity: &Integrity, prefixes: &[String]) -> Result<()> {
    let bytes = serde_json::to_vec(prefixes).unwrap_or_default();
    integrity.set_setting(tx, TAKEN, &bytes)
}

/// Whether this vault orders the writes of folder `prefix` now: it is the primary the
/// state names, and holds the folder (no handover pending, or it took it over).
pub(crate) fn holds(
    conn: &Connection,
    integrity: &Integrity,
    state: &TeamState,
    prefix: &str,
    own_region: &str,
) -> Result<bool> {
    let Some(folder) = state.folder(prefix) else {
        return Ok(false);
    };
    if folder.primary_region != own_region {
        return Ok(false);
    }
    Ok(folder.handover_from.is_none() || taken(conn, integrity)?.iter().any(|p| p == prefix))
}

/// Pairs `region` with the address and fingerprint the owner vouched for in the state,
/// unless it is paired already. `false`: it cannot be (no address known, or the name or
/// fingerprint is paired otherwise); the caller skips it.
fn pair_from_state(
    tx: &Transaction<'_>,
    integrity: &Integrity,
    state: &TeamState,
    region: &str,
) -> Result<bool> {
    if let Some(row) = peer_rows::by_name(tx, region)? {
        integrity.check_peer(&row)?;
        let vouched = state
            .member(region)
            .and_then(|m| m.fingerprint.as_deref())
            .and_then(|fp| Fingerprint::parse(fp).ok());
        return Ok(vouched.is_none_or(|fp| row.fingerprint == fp.as_bytes()));
    }
    let Some(member) = state.member(region) else {
        return Ok(false);
    };
    let (Some(url), Some(fingerprint)) = (&member.url, &member.fingerprint) else {
        return Ok(false);
    };
    let (Ok(url), Ok(fingerprint)) = (PeerUrl::parse(url), Fingerprint::parse(fingerprint)) else {
        return Ok(false);
    };
    if peer_rows::all(tx)?
        .iter()
        .any(|row| row.fingerprint == fingerprint.as_bytes())
    {
        return Ok(false);
    }
    crate::vault::regions::pin_peer(tx, integrity, region, &url, &fingerprint)?;
    Ok(true)
}

/// Brings the copies of every folder this vault holds as primary in line with `new`:
/// each holder gets every secret under the folder, and a region that held a copy under
/// `old` but no longer does gets its copies deleted. Run after every change of the
/// state, on whichever vault is the folder's primary.
pub(super) fn reconcile(
    tx: &Transaction<'_>,
    integrity: &Integrity,
    old: Option<&TeamState>,
    new: &TeamState,
    own_region: &str,
) -> Result<()> {
    let mut prefixes: Vec<String> = new.folders.iter().map(|f| f.prefix.clone()).collect();
    if let Some(old) = old {
        for folder in &old.folders {
            if !prefixes.contains(&folder.prefix) && folder.primary_region == own_region {
                prefixes.push(folder.prefix.clone());
            }
        }
    }
    for prefix in prefixes {
        let held = new.folder(&prefix).is_none() || holds(tx, integrity, new, &prefix, own_region)?;
        if !held {
            continue;
        }
        let holders = new.holders(&prefix);
        let gone: Vec<String> = old
            .map(|o| o.holders(&prefix))
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r != own_region && !holders.contains(r))
            .collect();
        let mut reachable = Vec::new();
        for holder in holders {
            if pair_from_state(tx, integrity, new, &holder)? {
                reachable.push(holder);
            }
        }
        for (secret_id, _) in team_rows::secrets_under(tx, &prefix)? {
            if replication_rows::replica_of(tx, secret_id)?.is_some() {
                continue;
            }
            for holder in &reachable {
                share_secret(tx, integrity, secret_id, holder)?;
            }
            for region in &gone {
                unshare_secret(tx, secret_id, region)?;
            }
        }
    }
    Ok(())
}

/// The old primary's half: the folder's secrets become copies of the new primary, the
/// other holders' pending changes are dropped (the new primary sends them whole), and the
/// handover entry follows everything still queued for the new primary.
pub(super) fn hand_over(
    tx: &Transaction<'_>,
    integrity: &Integrity,
    state: &TeamState,
    prefix: &str,
    own_region: &str,
) -> Result<String> {
    let to = state
        .folder(prefix)
        .map(|f| f.primary_region.clone())
        .unwrap_or_default();
    let holders = state.holders(prefix);
    let now = Timestamp::now().millis();
    for (secret_id, _) in team_rows::secrets_under(tx, prefix)? {
        if replication_rows::replica_of(tx, secret_id)?.is_some() {
            continue;
        }
        for replica in replication_rows::replicas_of(tx, secret_id)? {
            if replica.region == to {
                replication_rows::delete_replica(tx, secret_id, &replica.region)?;
            } else if holders.contains(&replica.region) {
                replication_rows::delete_replica(tx, secret_id, &replica.region)?;
                replication_rows::drop_pending(tx, &replica.region, secret_id)?;
            } else {
                // A region outside the team: only the primary may feed it, and this
                // vault no longer is; its copy goes.
                unshare_secret(tx, secret_id, &replica.region)?;
            }
        }
        replication_rows::set_replica_of(
            tx,
            secret_id,
            &ReplicaOf {
                primary_region: to.clone(),
                // Filled in by the new primary's first entry.
                primary_vault: Uuid::nil(),
                applied_at: now,
            },
        )?;
        integrity.seal_secret(tx, secret_id)?;
    }
    let note = format!("{own_region} handed {prefix} over to {to}");
    queue_state(tx, state, std::slice::from_ref(&to), &note)?;
    Ok(note)
}

/// The new primary's half, on the handover from `from`: the copies it followed become
/// its own secrets, it replicates them to every holder, and it tells the owner (which,
/// when it is the owner, clears the handover itself). Returns what it took over.
pub(super) fn take_over(
    tx: &Transaction<'_>,
    integrity: &Integrity,
    state: &mut TeamState,
    from: &str,
    own_region: &str,
) -> Result<Vec<String>> {
    let mut already = taken(tx, integrity)?;
    let prefixes: Vec<String> = state
        .folders
        .iter()
        .filter(|f| {
            f.primary_region == own_region
                && f.handover_from.as_deref() == Some(from)
                && !already.contains(&f.prefix)
        })
        .map(|f| f.prefix.clone())
        .collect();
    if prefixes.is_empty() {
        return Ok(prefixes);
    }
    for prefix in &prefixes {
        for (secret_id, _) in team_rows::secrets_under(tx, prefix)? {
            let follows = replication_rows::replica_of(tx, secret_id)?;
            if follows.is_some_and(|f| f.primary_region == from) {
                replication_rows::delete_replica_of(tx, secret_id)?;
                integrity.seal_secret(tx, secret_id)?;
            }
        }
    }
    let is_owner = state.owner_region == own_region;
    if is_owner {
        for folder in state.folders.iter_mut() {
            if prefixes.contains(&folder.prefix) {
                folder.handover_from = None;
            }
        }
        state.revision += 1;
        state::save(tx, integrity, state)?;
    } else {
        already.extend(prefixes.iter().cloned());
        set_taken(tx, integrity, &already)?;
    }
    reconcile(tx, integrity, None, state, own_region)?;
    let note = format!("{own_region} is now the primary of {}", prefixes.join(", "));
    if is_owner {
        let members: Vec<String> = state.members.iter().map(|m| m.region.clone()).collect();
        queue_state(tx, state, &members, &note)?;
    } else {
        // After the copies just queued for the owner: it records the move once it has them.
        queue_state(tx, state, std::slice::from_ref(&state.owner_region), &note)?;
    }
    Ok(prefixes)
}

/// On the owner: the new primary `from` says it has taken its folders over.
pub(super) fn record_taken_over(
    tx: &Transaction<'_>,
    integrity: &Integrity,
    state: &mut TeamState,
    from: &str,
) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for folder in state.folders.iter_mut() {
        if folder.primary_region == from && folder.handover_from.is_some() {
            folder.handover_from = None;
            done.push(folder.prefix.clone());
        }
    }
    if done.is_empty() {
        return Ok(done);
    }
    state.revision += 1;
    state::save(tx, integrity, state)?;
    let note = format!("{from} is now the primary of {}", done.join(", "));
    let members: Vec<String> = state.members.iter().map(|m| m.region.clone()).collect();
    queue_state(tx, state, &members, &note)?;
    Ok(done)
}

/// What a member does with a new state from the owner, after storing it: pairs the
/// primaries of its folders, hands over a folder that moves away from it, takes over one
/// the owner handed to it, and keeps the copies of the folders it holds in line.
/// Returns notes for the audit log.
pub(super) fn after_state(
    tx: &Transaction<'_>,
    integrity: &Integrity,
    old: &TeamState,
    new: &mut TeamState,
    from: &str,
    own_region: &str,
) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let own_folders: Vec<String> = new
        .member(own_region)
        .map(|m| m.roles.keys().cloned().collect())
        .unwrap_or_default();
    for prefix in &own_folders {
        if let Some(folder) = new.folder(prefix) {
            if folder.primary_region != own_region && folder.primary_region != new.owner_region {
                let primary = folder.primary_region.clone();
                pair_from_state(tx, integrity, new, &primary)?;
            }
        }
    }
    let leaving: Vec<String> = new
        .folders
        .iter()
        .filter(|f| {
            f.primary_region != own_region
                && f.handover_from.as_deref() == Some(own_region)
                && old
                    .folder(&f.prefix)
                    .is_some_and(|o| o.primary_region == own_region)
        })
        .map(|f| f.prefix.clone())
        .collect();
    for prefix in leaving {
        notes.push(hand_over(tx, integrity, new, &prefix, own_region)?);
    }
    let took = take_over(tx, integrity, new, from, own_region)?;
    if !took.is_empty() {
        notes.push(format!("{own_region} took over {}", took.join(", ")));
    }
    // Folders the owner has recorded as moved are no longer pending here.
    let pending = taken(tx, integrity)?;
    let still: Vec<String> = pending
        .iter()
        .filter(|p| {
            new.folder(p)
                .is_some_and(|f| f.primary_region == own_region && f.handover_from.is_some())
        })
        .cloned()
        .collect();
    if still != pending {
        set_taken(tx, integrity, &still)?;
    }
    reconcile(tx, integrity, Some(old), new, own_region)?;
    Ok(notes)
}

/// A team entry from a member rather than the owner: a handover (to this vault, the new
/// primary), or the new primary's word that it took over (to the owner). Anything else is
/// refused, or, when the sender's state is newer than this vault's, answered "not yet".
pub(super) fn from_member(
    tx: &Transaction<'_>,
    integrity: &Integrity,
    local: &mut TeamState,
    from: &str,
    own_region: &str,
    sent: Option<&TeamState>,
) -> Result<std::result::Result<String, String>> {
    let same_team = sent.is_some_and(|s| {
        s.owner_region == local.owner_region
            && s.name == local.name
            && (local.id.is_nil() || s.id == local.id)
    });
    if !same_team || local.member(from).is_none() {
        return Ok(Err(format!(
            "region {own_region} is in team {:?} owned by region {}, not {from}",
            local.name, local.owner_region
        )));
    }
    let claimed_revision = sent.map_or(0, |s| s.revision);
    if local.owner_region == own_region {
        let done = record_taken_over(tx, integrity, local, from)?;
        if !done.is_empty() {
            return Ok(Ok(format!("{from} took over {}", done.join(", "))));
        }
    }
    let took = take_over(tx, integrity, local, from, own_region)?;
    if !took.is_empty() {
        return Ok(Ok(format!(
            "{from} handed {} over to {own_region}",
            took.join(", ")
        )));
    }
    if claimed_revision > local.revision {
        return Err(TeamError::AwaitingState {
            from: from.to_owned(),
            revision: claimed_revision,
            held: local.revision,
        }
        .into());
    }
    Ok(Err(format!(
        "region {from} is not the owner of team {:?} ({}), and hands no folder over to region {own_region}",
        local.name, local.owner_region
    )))
}

/// What a change of a secret is, by where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TeamSender {
    /// The name is in no team folder: the replica rules alone apply.
    OutsideTeam,
    /// From the folder's primary (or the primary handing it over to this vault).
    FolderPrimary,
    /// From any other region, and why it is refused.
    Refused(String),
}

/// Where a change of secret `name` from region `from` stands. `Err` when the sender's
/// state is newer than this vault's: the owner's word has not arrived yet, so the batch
/// waits.
pub(crate) fn check_sender(
    conn: &Connection,
    integrity: &Integrity,
    name: &str,
    from: &str,
    own_region: &str,
    claimed_revision: Option<u64>,
) -> Result<TeamSender> {
    let Some(state) = state::load(conn, integrity)? else {
        return Ok(TeamSender::OutsideTeam);
    };
    let Some(folder) = state.folder_of(name) else {
        return Ok(TeamSender::OutsideTeam);
    };
    if folder.primary_region == from {
        return Ok(TeamSender::FolderPrimary);
    }
    if folder.primary_region == own_region
        && folder.handover_from.as_deref() == Some(from)
        && !holds(conn, integrity, &state, &folder.prefix, own_region)?
    {
        // What the old primary applied before its handover.
        return Ok(TeamSender::FolderPrimary);
    }
    // Only a member's word can make this vault wait: anyone else is refused outright.
    let in_team = from == state.owner_region || state.member(from).is_some();
    if in_team && claimed_revision.is_some_and(|r| r > state.revision) {
        return Err(TeamError::AwaitingState {
            from: from.to_owned(),
            revision: claimed_revision.unwrap_or_default(),
            held: state.revision,
        }
        .into());
    }
    Ok(TeamSender::Refused(format!(
        "{name:?} is in a team folder whose primary is region {}, not {from}",
        folder.primary_region
    )))
}
