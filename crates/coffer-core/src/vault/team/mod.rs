//! Small teams: folders (name prefixes) shared between members' vaults, a role per
//! member per folder, writes ordered by each folder's primary, and removal that says
//! what the removed member could read.
//!
//! A member's copy of a folder is the replica-region mechanism: the folder's primary
//! replicates every secret under the prefix to each member with a role there, so members
//! read locally and offline, and every change a member accepts is signed by the
//! primary. What a team adds:
//! - its state (members, roles, folders), kept by the owner and sent to every member
//!   through the same stream ([`state`]);
//! - writes by members, sealed on the writer's vault and applied by the primary after it
//!   checked the writer's role ([`forward`]);
//! - removal, which lists what the member could read and marks it for rotation.

pub mod admin;
mod error;
pub mod forward;
mod primary;
pub mod state;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use rusqlite::Transaction;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use error::TeamError;
pub(crate) use primary::{check_sender, TeamSender};
pub use state::{FolderState, MemberState, TeamRole, TeamState};

use super::error::{Error, Result};
use super::integrity::Integrity;
use super::{AuditEvent, Vault};
use crate::model::Timestamp;
use crate::region::{Fingerprint, RegionName};
use crate::store::replication::{self as replication_rows, OutboxKind, OutboxRow};
use crate::store::secrets::SecretRow;
use crate::store::{peers as peer_rows, record_local_change, teams as team_rows};

/// A team as `coffer team members` and the app show it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TeamInfo {
    pub name: String,
    pub owner_region: String,
    pub own_region: String,
    pub is_owner: bool,
    /// The owner's change count this copy reflects (0: nothing received from it yet).
    pub revision: u64,
    pub members: Vec<TeamMember>,
    pub folders: Vec<TeamFolder>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TeamMember {
    pub region: String,
    pub added_at: Timestamp,
    /// Role per folder prefix.
    pub roles: BTreeMap<String, TeamRole>,
    /// Known on the owner only: the last successful contact, changes not yet
    /// acknowledged, and why the last attempt failed.
    pub last_contact: Option<Timestamp>,
    pub backlog: u64,
    pub last_error: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TeamFolder {
    pub prefix: String,
    pub primary_region: String,
    /// While the folder moves: the primary it moves from (writes wait until it has
    /// handed the folder over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover_from: Option<String>,
}

/// What a removed member's access means for a secret.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExposureState {
    /// It has a rotator: rotate it now (`coffer secret rotate`, or `team remove --rotate`).
    RotateNow,
    /// No rotator: exposed until someone puts a new value.
    Exposed,
    /// Its current value is newer than the removal: nothing to do.
    Rotated,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    pub secret: String,
    pub member: String,
    pub since: Timestamp,
    pub state: ExposureState,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TeamRemoval {
    pub member: String,
    /// Every secret the member could read.
    pub exposures: Vec<Exposure>,
    /// Secrets rotated because `--rotate` was given.
    pub rotated: Vec<String>,
    /// Secrets whose rotation failed, and why (they stay "rotate now").
    pub rotation_failures: Vec<(String, String)>,
}

impl Error {
    /// A batch that waits for the owner's newer team state: kept, not discarded.
    pub(crate) fn awaits_team_state(&self) -> bool {
        matches!(self, Error::Team(error) if matches!(**error, TeamError::AwaitingState { .. }))
    }
}

impl From<TeamError> for Error {
    fn from(error: TeamError) -> Self {
        Error::Team(Box::new(error))
    }
}

fn exposure(row: team_rows::ExposureRow) -> Exposure {
    let state = match row.current_created_at {
        Some(created) if created > row.since => ExposureState::Rotated,
        _ if row.rotate => ExposureState::RotateNow,
        _ => ExposureState::Exposed,
    };
    Exposure {
        secret: row.secret_name,
        member: row.member,
        since: Timestamp(row.since),
        state,
    }
}

/// Queues the team's state for `regions` (each member, and a removed one for its last
/// word), in the transaction of the change it describes.
fn queue_state(
    tx: &Transaction<'_>,
    state: &TeamState,
    regions: &[String],
    note: &str,
) -> Result<()> {
    let now = Timestamp::now().millis();
    for region in regions {
        let seq = record_local_change(tx, now, "team", state.id.as_bytes(), "team_state")?;
        replication_rows::push_outbox(
            tx,
            region,
            &OutboxRow {
                seq,
                secret_id: state.id,
                kind: OutboxKind::Team,
                note: Some(note.to_owned()),
                ..OutboxRow::default()
            },
        )?;
    }
    Ok(())
}

/// A folder's primary (or one handing a folder over) cannot lose its role there: the
/// folder would have nobody to order its writes. (`prefix`: only that folder.)
fn refuse_if_primary(state: &TeamState, member: &str, prefix: Option<&str>) -> Result<()> {
    for folder in &state.folders {
        if prefix.is_some_and(|p| p != folder.prefix) {
            continue;
        }
        if folder.primary_region == member || folder.handover_from.as_deref() == Some(member) {
            return Err(TeamError::IsPrimary {
                prefix: folder.prefix.clone(),
                region: member.to_owned(),
            }
            .into());
        }
    }
    Ok(())
}

fn member_regions(state: &TeamState) -> Vec<String> {
    state.members.iter().map(|m| m.region.clone()).collect()
}

/// Starts replicating a secret to a member (a whole copy), unless it already is.
fn share_secret(
    tx: &Transaction<'_>,
    integrity: &Integrity,
    secret_id: Uuid,
    member: &str,
) -> Result<()> {
    if replication_rows::replica(tx, secret_id, member)?.is_some() {
        return Ok(());
    }
    replication_rows::insert_replica(
        tx,
        &replication_rows::ReplicaRow {
            secret_id,
            region: member.to_owned(),
            replica_key: None,
            added_at: Timestamp::now().millis(),
            synced_at: None,
            last_error: None,
            mac: integrity.replica_tag(secret_id, member, None).to_vec(),
        },
    )?;
    super::replication::queue_full_copy(tx, member, secret_id, Timestamp::now().millis())
}

/// Stops replicating a secret to a member; its copy there is deleted when it is reached.
fn unshare_secret(tx: &Transaction<'_>, secret_id: Uuid, member: &str) -> Result<()> {
    if !replication_rows::delete_replica(tx, secret_id, member)? {
        return Ok(());
    }
    replication_rows::drop_pending(tx, member, secret_id)?;
    let now = Timestamp::now().millis();
    let seq = record_local_change(tx, now, "secret", secret_id.as_bytes(), "team_unshare")?;
    replication_rows::push_outbox(
        tx,
        member,
        &OutboxRow {
            seq,
            secret_id,
            kind: OutboxKind::Remove,
            ..OutboxRow::default()
        },
    )?;
    Ok(())
}

/// Called in the transaction that creates a secret (change `seq`): a secret created in a
/// shared folder on its primary goes to every member with a role there, from its first
/// version on (the version inserted with `seq` fills in the entries' version).
pub(super) fn secret_created(
    tx: &Transaction<'_>,
    integrity: &Integrity,
    secret: &SecretRow,
    seq: i64,
) -> Result<()> {
    let Some(state) = state::load(tx, integrity)? else {
        return Ok(());
    };
    let Some(folder) = state.folder_of(&secret.name) else {
        return Ok(());
    };
    let Some(own_region) = integrity.region_name(tx)? else {
        return Ok(());
    };
    if !primary::holds(tx, integrity, &state, &folder.prefix, &own_region)? {
        return Ok(());
    }
    for holder in state.holders(&folder.prefix) {
        if peer_rows::by_name(tx, &holder)?.is_none() {
            continue;
        }
        replication_rows::insert_replica(
            tx,
            &replication_rows::ReplicaRow {
                secret_id: secret.id,
                region: holder.clone(),
                replica_key: None,
                added_at: Timestamp::now().millis(),
                synced_at: None,
                last_error: None,
                mac: integrity.replica_tag(secret.id, &holder, None).to_vec(),
            },
        )?;
        replication_rows::push_outbox(
            tx,
            &holder,
            &OutboxRow {
                seq,
                secret_id: secret.id,
                kind: OutboxKind::State,
                ..OutboxRow::default()
            },
        )?;
    }
    Ok(())
}

impl Vault {
    /// The team state, checked against its MAC (`None`: in no team).
    fn team_state(&mut self) -> Result<Option<TeamState>> {
        self.require_unlocked()?;
        let integrity = self.integrity()?;
        state::load(self.store.conn(), &integrity)
    }

    /// The state, for an operation only the owner may run.
    fn owned_team(&mut self) -> Result<(TeamState, String)> {
        let state = self.team_state()?.ok_or(TeamError::NoTeam)?;
        let (own_region, _) = self.identity()?;
        if state.owner_region != own_region.as_str() {
            return Err(TeamError::NotOwner {
                team: state.name,
                owner: state.owner_region,
            }
            .into());
        }
        Ok((state, own_region.to_string()))
    }

    /// The owner's region when this vault is in a team it does not own: membership
    /// changes made here are sent there.
    fn team_owner_elsewhere(&mut self) -> Result<Option<String>> {
        let Some(state) = self.team_state()? else {
            return Ok(None);
        };
        let (own_region, _) = self.identity()?;
        Ok((state.owner_region != own_region.as_str()).then_some(state.owner_region))
    }

    /// The team this vault is in, with each member's link status (on the owner).
    pub fn team(&mut self) -> Result<Option<TeamInfo>> {
        let Some(state) = self.team_state()? else {
            return Ok(None);
        };
        let (own_region, _) = self.identity()?;
        let peers = self.peers()?;
        let members = state
            .members
            .iter()
            .map(|m| {
                let peer = peers.iter().find(|p| p.name == m.region);
                TeamMember {
                    region: m.region.clone(),
                    added_at: Timestamp(m.added_at),
                    roles: m.roles.clone(),
                    last_contact: peer.and_then(|p| p.last_contact),
                    backlog: peer.map_or(0, |p| p.backlog),
                    last_error: peer.and_then(|p| p.last_error.clone()),
                }
            })
            .collect();
        Ok(Some(TeamInfo {
            is_owner: state.owner_region == own_region.as_str(),
            own_region: own_region.to_string(),
            name: state.name,
            owner_region: state.owner_region,
            revision: state.revision,
            members,
            folders: state
                .folders
                .into_iter()
                .map(|f| TeamFolder {
                    prefix: f.prefix,
                    primary_region: f.primary_region,
                    handover_from: f.handover_from,
                })
                .collect(),
        }))
    }

    fn team_info(&mut self) -> Result<TeamInfo> {
        self.team()?.ok_or_else(|| TeamError::NoTeam.into())
    }

    /// Creates a team owned by this vault.
    pub fn team_create(&mut self, name: &str) -> Result<TeamInfo> {
        state::check_team_name(name)?;
        if let Some(existing) = self.team_state()? {
            return Err(TeamError::AlreadyInTeam {
                name: existing.name,
                owner: existing.owner_region,
            }
            .into());
        }
        let (own_region, _) = self.identity()?;
        let state = TeamState {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            owner_region: own_region.to_string(),
            revision: 1,
            members: Vec::new(),
            folders: Vec::new(),
        };
        self.write(
            AuditEvent::new("team_create").detail(format!("team={name}")),
            |tx, keyring, _| state::save(tx, &keyring.integrity(), &state),
        )?;
        self.team_info()
    }

    /// Pairs `region` if it is not yet (as `coffer region add` does), checking a pairing
    /// that exists against the fingerprint given.
    fn ensure_paired(&mut self, region: &str, url: &str, fingerprint: &str) -> Result<()> {
        let name = RegionName::parse(region)?;
        let pinned = Fingerprint::parse(fingerprint)?;
        crate::region::PeerUrl::parse(url)?;
        let existing = peer_rows::by_name(self.store.conn(), name.as_str())?;
        match existing {
            Some(row) => {
                self.integrity()?.check_peer(&row)?;
                if row.fingerprint != pinned.as_bytes() {
                    return Err(crate::region::RegionError::PeerExists {
                        name: name.to_string(),
                    }
                    .into());
                }
                Ok(())
            }
            None => self.add_peer(name.as_str(), url, fingerprint).map(|_| ()),
        }
    }

    /// Adds a member (its vault's region name, address and fingerprint), pairing it.
    /// On an admin's vault, the owner does it.
    pub fn team_invite(&mut self, member: &str, url: &str, fingerprint: &str) -> Result<TeamInfo> {
        if let Some(owner) = self.team_owner_elsewhere()? {
            return self.forward_admin(
                &owner,
                admin::TeamOp::Invite {
                    member: member.to_owned(),
                    url: url.to_owned(),
                    fingerprint: fingerprint.to_owned(),
                },
            );
        }
        self.team_invite_by(member, url, fingerprint, None)
    }

    pub(crate) fn team_invite_by(
        &mut self,
        member: &str,
        url: &str,
        fingerprint: &str,
        by: Option<&str>,
    ) -> Result<TeamInfo> {
        let (mut state, own_region) = self.owned_team()?;
        let by = by.unwrap_or(&own_region).to_owned();
        let member = RegionName::parse(member)?.to_string();
        if member == own_region {
            return Err(TeamError::OwnRegion { member }.into());
        }
        if state.member(&member).is_some() {
            return Err(TeamError::AlreadyMember {
                team: state.name,
                member,
            }
            .into());
        }
        Fingerprint::parse(fingerprint)?;
        crate::region::PeerUrl::parse(url)?;
        self.ensure_paired(&member, url, fingerprint)?;
        state.members.push(MemberState {
            region: member.clone(),
            added_at: Timestamp::now().millis(),
            roles: BTreeMap::new(),
            url: Some(url.to_owned()),
            fingerprint: Some(fingerprint.to_owned()),
        });
        state.revision += 1;
        let note = format!("{member} joined team {} (invited by {by})", state.name);
        self.write(
            AuditEvent::new("team_invite")
                .detail(format!("team={} member={member} author={by}", state.name)),
            |tx, keyring, _| {
                state::save(tx, &keyring.integrity(), &state)?;
                queue_state(tx, &state, &member_regions(&state), &note)
            },
        )?;
        self.team_info()
    }

    /// Joins a team on a member's vault: pairs its owner, whose state then arrives
    /// through replication.
    pub fn team_join(
        &mut self,
        team: &str,
        owner: &str,
        url: &str,
        fingerprint: &str,
    ) -> Result<TeamInfo> {
        state::check_team_name(team)?;
        let owner = RegionName::parse(owner)?.to_string();
        if let Some(existing) = self.team_state()? {
            return Err(TeamError::AlreadyInTeam {
                name: existing.name,
                owner: existing.owner_region,
            }
            .into());
        }
        let (own_region, _) = self.identity()?;
        if owner == own_region.as_str() {
            return Err(TeamError::OwnRegion { member: owner }.into());
        }
        Fingerprint::parse(fingerprint)?;
        crate::region::PeerUrl::parse(url)?;
        self.ensure_paired(&owner, url, fingerprint)?;
        let state = TeamState {
            id: Uuid::nil(),
            name: team.to_owned(),
            owner_region: owner.clone(),
            revision: 0,
            members: Vec::new(),
            folders: Vec::new(),
        };
        self.write(
            AuditEvent::new("team_join").detail(format!("team={team} owner={owner}")),
            |tx, keyring, _| state::save(tx, &keyring.integrity(), &state),
        )?;
        self.team_info()
    }

    /// Gives a member a role in a folder (or changes it), and replicates every secret
    /// under the folder to it.
    pub fn team_share(&mut self, prefix: &str, member: &str, role: TeamRole) -> Result<TeamInfo> {
        if let Some(owner) = self.team_owner_elsewhere()? {
            return self.forward_admin(
                &owner,
                admin::TeamOp::Share {
                    prefix: prefix.to_owned(),
                    member: member.to_owned(),
                    role,
                },
            );
        }
        self.team_share_by(prefix, member, role, None)
    }

    pub(crate) fn team_share_by(
        &mut self,
        prefix: &str,
        member: &str,
        role: TeamRole,
        by: Option<&str>,
    ) -> Result<TeamInfo> {
        state::check_prefix(prefix)?;
        let (mut state, own_region) = self.owned_team()?;
        let by = by.unwrap_or(&own_region).to_owned();
        if state.member(member).is_none() {
            return Err(TeamError::UnknownMember {
                team: state.name,
                member: member.to_owned(),
            }
            .into());
        }
        if let Some(other) = state.folders.iter().find(|f| {
            f.prefix != prefix && (f.prefix.starts_with(prefix) || prefix.starts_with(&f.prefix))
        }) {
            return Err(TeamError::OverlappingFolder {
                prefix: prefix.to_owned(),
                other: other.prefix.clone(),
            }
            .into());
        }
        if !state.folders.iter().any(|f| f.prefix == prefix) {
            state.folders.push(FolderState {
                prefix: prefix.to_owned(),
                primary_region: own_region.clone(),
                handover_from: None,
            });
        }
        let old = state.clone();
        let moving_to_reader = state.folder(prefix).is_some_and(|f| {
            f.primary_region == member || f.handover_from.as_deref() == Some(member)
        });
        if moving_to_reader && !role.may_write() {
            return Err(TeamError::PrimaryNeedsWriter {
                prefix: prefix.to_owned(),
                region: member.to_owned(),
                role: Some(role),
            }
            .into());
        }
        let before = state.role_of(member, prefix);
        if let Some(entry) = state.member_mut(member) {
            entry.roles.insert(prefix.to_owned(), role);
        }
        state.revision += 1;
        let note = match before {
            Some(old) => format!(
                "{member}'s role in {prefix} changed from {} to {} by {by}",
                old.as_str(),
                role.as_str()
            ),
            None => format!("{prefix} shared with {member} as {} by {by}", role.as_str()),
        };
        let member = member.to_owned();
        self.write(
            AuditEvent::new("team_share").detail(format!(
                "folder={prefix} member={member} role={} author={by}",
                role.as_str()
            )),
            |tx, keyring, _| {
                let integrity = keyring.integrity();
                state::save(tx, &integrity, &state)?;
                queue_state(tx, &state, &member_regions(&state), &note)?;
                primary::reconcile(tx, &integrity, Some(&old), &state, &own_region)
            },
        )?;
        self.team_info()
    }

    /// Takes a member's role in a folder away; its copies there are deleted when it is
    /// next reached.
    pub fn team_unshare(&mut self, prefix: &str, member: &str) -> Result<TeamInfo> {
        if let Some(owner) = self.team_owner_elsewhere()? {
            return self.forward_admin(
                &owner,
                admin::TeamOp::Unshare {
                    prefix: prefix.to_owned(),
                    member: member.to_owned(),
                },
            );
        }
        self.team_unshare_by(prefix, member, None)
    }

    pub(crate) fn team_unshare_by(
        &mut self,
        prefix: &str,
        member: &str,
        by: Option<&str>,
    ) -> Result<TeamInfo> {
        state::check_prefix(prefix)?;
        let (mut state, own_region) = self.owned_team()?;
        let by = by.unwrap_or(&own_region).to_owned();
        refuse_if_primary(&state, member, Some(prefix))?;
        let old = state.clone();
        let removed = state
            .member_mut(member)
            .and_then(|m| m.roles.remove(prefix));
        if removed.is_none() {
            return Err(TeamError::NotShared {
                prefix: prefix.to_owned(),
                member: member.to_owned(),
            }
            .into());
        }
        state.drop_unshared_folders();
        state.revision += 1;
        let note = format!("{prefix} no longer shared with {member} (by {by})");
        let member = member.to_owned();
        self.write(
            AuditEvent::new("team_unshare")
                .detail(format!("folder={prefix} member={member} author={by}")),
            |tx, keyring, _| {
                let integrity = keyring.integrity();
                state::save(tx, &integrity, &state)?;
                queue_state(tx, &state, &member_regions(&state), &note)?;
                primary::reconcile(tx, &integrity, Some(&old), &state, &own_region)
            },
        )?;
        self.team_info()
    }

    /// Removes a member: nothing more goes to it, its copies are deleted when its vault
    /// is next reached, and every secret it could read is listed, those with a rotator
    /// as "rotate now" (rotated here when `rotate`), the others as exposed until a new
    /// value is put.
    pub fn team_remove(&mut self, member: &str, rotate: bool) -> Result<TeamRemoval> {
        if let Some(owner) = self.team_owner_elsewhere()? {
            return self.forward_admin_remove(&owner, member, rotate);
        }
        self.team_remove_by(member, rotate, None)
    }

    pub(crate) fn team_remove_by(
        &mut self,
        member: &str,
        rotate: bool,
        by: Option<&str>,
    ) -> Result<TeamRemoval> {
        let (mut state, own_region) = self.owned_team()?;
        let by = by.unwrap_or(&own_region).to_owned();
        refuse_if_primary(&state, member, None)?;
        let old = state.clone();
        let Some(position) = state.members.iter().position(|m| m.region == member) else {
            return Err(TeamError::UnknownMember {
                team: state.name,
                member: member.to_owned(),
            }
            .into());
        };
        let removed = state.members.remove(position);
        state.drop_unshared_folders();
        state.revision += 1;
        let note = format!("{member} removed from team {} by {by}", state.name);
        let member = member.to_owned();
        let now = Timestamp::now().millis();
        let mut exposed = Vec::new();
        self.write(
            AuditEvent::new("team_remove")
                .detail(format!("team={} member={member} author={by}", state.name)),
            |tx, keyring, _| {
                let integrity = keyring.integrity();
                state::save(tx, &integrity, &state)?;
                let mut told = member_regions(&state);
                // Its last word: the state without it, so it forgets the team.
                told.push(member.clone());
                queue_state(tx, &state, &told, &note)?;
                primary::reconcile(tx, &integrity, Some(&old), &state, &own_region)?;
                for prefix in removed.roles.keys() {
                    for (secret_id, name) in team_rows::secrets_under(tx, prefix)? {
                        let rotates = crate::store::rotation::get(tx, secret_id)?.is_some();
                        team_rows::record_exposure(tx, secret_id, &member, now, rotates)?;
                        exposed.push((name, rotates));
                    }
                }
                Ok(())
            },
        )?;
        let mut rotated = Vec::new();
        let mut rotation_failures = Vec::new();
        if rotate {
            for (name, _) in exposed.iter().filter(|(_, rotates)| *rotates) {
                match self.rotate_secret(name) {
                    Ok(_) => rotated.push(name.clone()),
                    Err(error) => rotation_failures.push((name.clone(), error.to_string())),
                }
            }
        }
        let exposures = self
            .team_exposures()?
            .into_iter()
            .filter(|e| e.member == member && exposed.iter().any(|(n, _)| *n == e.secret))
            .collect();
        Ok(TeamRemoval {
            member,
            exposures,
            rotated,
            rotation_failures,
        })
    }

    /// Moves a folder's primary to `to` (a member that may write there, or the owner).
    /// The old primary hands the folder over when the new state reaches it; writes wait
    /// until then (see [`primary`]). On an admin's vault, the owner does it.
    pub fn team_move_primary(&mut self, prefix: &str, to: &str) -> Result<TeamInfo> {
        if let Some(owner) = self.team_owner_elsewhere()? {
            return self.forward_admin(
                &owner,
                admin::TeamOp::MovePrimary {
                    prefix: prefix.to_owned(),
                    to: to.to_owned(),
                },
            );
        }
        self.team_move_primary_by(prefix, to, None)
    }

    pub(crate) fn team_move_primary_by(
        &mut self,
        prefix: &str,
        to: &str,
        by: Option<&str>,
    ) -> Result<TeamInfo> {
        state::check_prefix(prefix)?;
        let to = RegionName::parse(to)?.to_string();
        let (mut state, own_region) = self.owned_team()?;
        let by = by.unwrap_or(&own_region).to_owned();
        let Some(folder) = state.folder(prefix).cloned() else {
            return Err(TeamError::NoSuchFolder {
                prefix: prefix.to_owned(),
            }
            .into());
        };
        if let Some(from) = folder.handover_from {
            return Err(TeamError::Moving {
                prefix: prefix.to_owned(),
                from,
                to: folder.primary_region,
            }
            .into());
        }
        if folder.primary_region == to {
            return Err(TeamError::AlreadyPrimary {
                prefix: prefix.to_owned(),
                region: to,
            }
            .into());
        }
        if to != own_region {
            if state.member(&to).is_none() {
                return Err(TeamError::UnknownMember {
                    team: state.name,
                    member: to,
                }
                .into());
            }
            let role = state.role_of(&to, prefix);
            if !role.is_some_and(TeamRole::may_write) {
                return Err(TeamError::PrimaryNeedsWriter {
                    prefix: prefix.to_owned(),
                    region: to,
                    role,
                }
                .into());
            }
        }
        // The new primary pairs the folder's members with what the owner checked at
        // their invites; states from before the invite recorded it get it from the pairing.
        for member in state.members.iter_mut() {
            if member.url.is_none() || member.fingerprint.is_none() {
                if let Some(row) = peer_rows::by_name(self.store.conn(), &member.region)? {
                    if let Some(fp) = Fingerprint::from_bytes(&row.fingerprint) {
                        member.url = Some(row.url);
                        member.fingerprint = Some(fp.to_string());
                    }
                }
            }
        }
        let from = folder.primary_region;
        if let Some(entry) = state.folders.iter_mut().find(|f| f.prefix == prefix) {
            entry.primary_region = to.clone();
            entry.handover_from = Some(from.clone());
        }
        state.revision += 1;
        let note = format!("{prefix} moves from primary {from} to {to} (by {by})");
        self.write(
            AuditEvent::new("team_move_primary")
                .detail(format!("folder={prefix} from={from} to={to} author={by}")),
            |tx, keyring, _| {
                let integrity = keyring.integrity();
                state::save(tx, &integrity, &state)?;
                queue_state(tx, &state, &member_regions(&state), &note)?;
                if from == own_region {
                    primary::hand_over(tx, &integrity, &state, prefix, &own_region)?;
                }
                Ok(())
            },
        )?;
        self.team_info()
    }

    /// Every secret a removed member could read, and what is left to do about it.
    pub fn team_exposures(&mut self) -> Result<Vec<Exposure>> {
        self.require_unlocked()?;
        Ok(team_rows::exposures(self.store.conn())?
            .into_iter()
            .map(exposure)
            .collect())
    }

    /// The team folder a secret name lies in and this vault's role there (`None` for
    /// the folder's primary, which may do anything, and for names outside any folder).
    pub fn team_folder_of(&mut self, name: &str) -> Result<Option<(TeamFolder, Option<TeamRole>)>> {
        let Some(state) = self.team_state()? else {
            return Ok(None);
        };
        let (own_region, _) = self.identity()?;
        Ok(state.folder_of(name).map(|folder| {
            let role = (folder.primary_region != own_region.as_str())
                .then(|| state.role_of(own_region.as_str(), &folder.prefix))
                .flatten();
            (
                TeamFolder {
                    prefix: folder.prefix.clone(),
                    primary_region: folder.primary_region.clone(),
                    handover_from: folder.handover_from.clone(),
                },
                role,
            )
        }))
    }
}

/// Takes the team state the owner sent (in the replica's apply transaction): only from
/// the owner this vault joined, only for that team; a state that no longer lists this
/// vault means it was removed, and it forgets the team.
pub(crate) fn apply_state(
    tx: &Transaction<'_>,
    integrity: &Integrity,
    from: &str,
    own_region: &str,
    change: super::replication::payload::TeamChange,
) -> Result<super::replication::payload::Applied> {
    use super::replication::payload::Applied;
    let team_id = change.state.as_ref().map_or(Uuid::nil(), |s| s.id);
    let refused = |reason: String| {
        Ok(Applied::Refused {
            secret_id: team_id,
            reason,
        })
    };
    let Some(mut local) = state::load(tx, integrity)? else {
        return refused(format!(
            "region {own_region} is in no team; join it there with `coffer team join`"
        ));
    };
    if local.owner_region != from {
        let sent = change.state.as_ref();
        return match primary::from_member(tx, integrity, &mut local, from, own_region, sent)? {
            Ok(note) => Ok(Applied::Team { note }),
            Err(reason) => refused(reason),
        };
    }
    let Some(new) = change.state else {
        state::clear(tx)?;
        return Ok(Applied::Team { note: change.note });
    };
    if new.name != local.name
        || new.owner_region != from
        || !(local.id.is_nil() || local.id == new.id)
    {
        return refused(format!(
            "the state is for team {:?} ({}) owned by {}, but region {own_region} joined team {:?} owned by {}",
            new.name, new.id, new.owner_region, local.name, local.owner_region
        ));
    }
    if new.revision < local.revision {
        return refused(format!(
            "the state is revision {}, older than the {} held here",
            new.revision, local.revision
        ));
    }
    let mut note = change.note;
    if new.member(own_region).is_none() {
        state::clear(tx)?;
    } else {
        let mut new = new;
        state::save(tx, integrity, &new)?;
        for more in primary::after_state(tx, integrity, &local, &mut new, from, own_region)? {
            note.push_str("; ");
            note.push_str(&more);
        }
    }
    Ok(Applied::Team { note })
}
