//! Membership changes made on an admin's vault, carried out by the owner.
//!
//! The owner holds the team's state, so an admin's `team invite|share|unshare|remove` is
//! sent to it over the pinned link. The owner learns who asks from the TLS handshake and
//! checks that member's role at every request: `admin` of a folder to share it, change
//! roles in it or take them away; `admin` of some folder to invite; `admin` of every
//! folder the removed member has a role in to remove it. The change is then the owner's
//! own, recorded with the admin as author in the note every member logs.

use serde::{Deserialize, Serialize};

use super::error::TeamError;
use super::forward::{static_code, WriteRefusal};
use super::{TeamInfo, TeamRemoval, TeamRole};
use crate::region::RegionError;
use crate::vault::error::{Error, Result};
use crate::vault::Vault;

/// Where an admin sends membership changes (under the listener's replication prefix).
pub const ADMIN_PATH: &str = "/coffer/v1/sync/team/admin";

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TeamOp {
    Invite {
        member: String,
        url: String,
        fingerprint: String,
    },
    Share {
        prefix: String,
        member: String,
        role: TeamRole,
    },
    Unshare {
        prefix: String,
        member: String,
    },
    Remove {
        member: String,
        rotate: bool,
    },
    MovePrimary {
        prefix: String,
        to: String,
    },
}

impl TeamOp {
    fn describe(&self) -> String {
        match self {
            TeamOp::Invite { member, .. } => format!("invite {member}"),
            TeamOp::Share { prefix, member, .. } => format!("share {prefix} with {member}"),
            TeamOp::Unshare { prefix, member } => format!("unshare {prefix} from {member}"),
            TeamOp::Remove { member, .. } => format!("remove {member}"),
            TeamOp::MovePrimary { prefix, to } => format!("move the primary of {prefix} to {to}"),
        }
    }
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AdminAnswer {
    Team(Box<TeamInfo>),
    Removed(TeamRemoval),
}

impl Vault {
    fn send_admin(&mut self, owner: &str, op: &TeamOp) -> Result<AdminAnswer> {
        let unreachable = |cause: String| TeamError::OwnerUnreachable {
            owner: owner.to_owned(),
            what: op.describe(),
            cause,
        };
        let mut link = self
            .team_link(owner)?
            .map_err(|e| unreachable(e.to_string()))?;
        let body =
            serde_json::to_vec(op).map_err(|e| Error::invalid("team change", e.to_string()))?;
        let (status, answer) = link
            .exchange(ADMIN_PATH, body)
            .map_err(|e| unreachable(e.to_string()))?;
        if status != 200 {
            let refusal = WriteRefusal::read(status, &answer);
            return Err(TeamError::RefusedByOwner {
                owner: owner.to_owned(),
                what: op.describe(),
                code: static_code(&refusal.code),
                message: refusal.message,
            }
            .into());
        }
        serde_json::from_slice(&answer).map_err(|_| {
            RegionError::Protocol {
                name: owner.to_owned(),
                reason: "its answer to a team change is not readable".into(),
            }
            .into()
        })
    }

    /// Sends a membership change to the owner; the answer is the team as the owner now
    /// holds it (this vault's copy follows with the owner's next replication).
    pub(super) fn forward_admin(&mut self, owner: &str, op: TeamOp) -> Result<TeamInfo> {
        match self.send_admin(owner, &op)? {
            AdminAnswer::Team(team) => {
                let (own_region, _) = self.identity()?;
                let mut team = *team;
                team.is_owner = false;
                team.own_region = own_region.to_string();
                Ok(team)
            }
            AdminAnswer::Removed(_) => Err(RegionError::Protocol {
                name: owner.to_owned(),
                reason: "it answered a team change with a removal".into(),
            }
            .into()),
        }
    }

    pub(super) fn forward_admin_remove(
        &mut self,
        owner: &str,
        member: &str,
        rotate: bool,
    ) -> Result<TeamRemoval> {
        let op = TeamOp::Remove {
            member: member.to_owned(),
            rotate,
        };
        match self.send_admin(owner, &op)? {
            AdminAnswer::Removed(removal) => Ok(removal),
            AdminAnswer::Team(_) => Err(RegionError::Protocol {
                name: owner.to_owned(),
                reason: "it answered a removal with a team".into(),
            }
            .into()),
        }
    }

    /// Answers an admin's membership change (the listener's handler, for a caller whose
    /// pinned TLS identity is `caller`): status and JSON body.
    pub fn answer_team_admin(&mut self, caller: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let outcome = serde_json::from_slice::<TeamOp>(body)
            .map_err(|e| Error::invalid("team change", e.to_string()))
            .and_then(|op| self.apply_team_admin(caller, op));
        WriteRefusal::answer(outcome)
    }

    fn apply_team_admin(&mut self, caller: &str, op: TeamOp) -> Result<AdminAnswer> {
        let (state, _) = self.owned_team()?;
        let is_admin_of = |prefix: &str| state.role_of(caller, prefix) == Some(TeamRole::Admin);
        let admin_anywhere = state
            .member(caller)
            .is_some_and(|m| m.roles.values().any(|r| *r == TeamRole::Admin));
        let allowed = match &op {
            TeamOp::Invite { .. } => admin_anywhere,
            TeamOp::Share { prefix, .. }
            | TeamOp::Unshare { prefix, .. }
            | TeamOp::MovePrimary { prefix, .. } => is_admin_of(prefix),
            TeamOp::Remove { member, .. } => {
                admin_anywhere
                    && state
                        .member(member)
                        .is_none_or(|m| m.roles.keys().all(|prefix| is_admin_of(prefix)))
            }
        };
        if !allowed {
            return Err(TeamError::NotAdmin {
                member: caller.to_owned(),
                what: op.describe(),
            }
            .into());
        }
        Ok(match op {
            TeamOp::Invite {
                member,
                url,
                fingerprint,
            } => AdminAnswer::Team(Box::new(self.team_invite_by(
                &member,
                &url,
                &fingerprint,
                Some(caller),
            )?)),
            TeamOp::Share {
                prefix,
                member,
                role,
            } => AdminAnswer::Team(Box::new(self.team_share_by(
                &prefix,
                &member,
                role,
                Some(caller),
            )?)),
            TeamOp::Unshare { prefix, member } => AdminAnswer::Team(Box::new(
                self.team_unshare_by(&prefix, &member, Some(caller))?,
            )),
            TeamOp::Remove { member, rotate } => {
                AdminAnswer::Removed(self.team_remove_by(&member, rotate, Some(caller))?)
            }
            TeamOp::MovePrimary { prefix, to } => AdminAnswer::Team(Box::new(
                self.team_move_primary_by(&prefix, &to, Some(caller))?,
            )),
        })
    }
}
