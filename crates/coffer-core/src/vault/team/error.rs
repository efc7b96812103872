//! What can go wrong with a team, each as one sentence that says how to go on.

use super::TeamRole;

#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("this vault is in no team; create one with `coffer team create NAME`, or join one with `coffer team join TEAM --owner REGION --url URL --fingerprint FP`")]
    NoTeam,
    #[error("this vault is already in team {name:?} (owned by region {owner}); a vault belongs to one team")]
    AlreadyInTeam { name: String, owner: String },
    #[error("only the team's owner, region {owner}, can change who is in team {team:?} and what they may do; run this on that vault")]
    NotOwner { team: String, owner: String },
    #[error("team name {name:?} is not valid: use 1 to 64 letters, digits, '.', '_' or '-'")]
    InvalidTeamName { name: String },
    #[error("folder {prefix:?} is not valid: {reason}")]
    InvalidFolder { prefix: String, reason: String },
    #[error("folder {prefix:?} overlaps folder {other:?}, which is already shared; share one of them, not both, so that every secret has one role per member")]
    OverlappingFolder { prefix: String, other: String },
    #[error("region {member} is not a member of team {team:?}; `coffer team members` lists them, `coffer team invite` adds one")]
    UnknownMember { team: String, member: String },
    #[error("region {member} is already a member of team {team:?}")]
    AlreadyMember { team: String, member: String },
    #[error("region {member} is this vault's own region; a vault is in its own team already")]
    OwnRegion { member: String },
    #[error("folder {prefix:?} is not shared with {member}; `coffer team members` shows what is")]
    NotShared { prefix: String, member: String },
    #[error(
        "{member} is {} of folder {prefix:?}, so it may not write {name:?}; {fix}",
        role_phrase(role)
    )]
    RoleRefused {
        member: String,
        role: Option<TeamRole>,
        prefix: String,
        name: String,
        fix: String,
    },
    #[error("secret {name:?} is in team folder {prefix:?}, whose writes go to its primary, region {primary}, which cannot be reached: {cause}; nothing was written anywhere. Reads keep working here; try again when {primary} is back")]
    PrimaryUnreachable {
        name: String,
        prefix: String,
        primary: String,
        cause: String,
    },
    #[error("region {primary}, the primary of team folder {prefix:?}, refused the write of {name:?}: {message}")]
    RefusedByPrimary {
        name: String,
        prefix: String,
        primary: String,
        code: &'static str,
        message: String,
    },
    #[error("{member} may not {what}: only an admin of the folders concerned may (an admin of any folder may invite); the owner can make it one with `coffer team share PREFIX --member {member} --role admin`")]
    NotAdmin { member: String, what: String },
    #[error("cannot {what}: the change goes to the team's owner, region {owner}, which cannot be reached: {cause}; nothing changed. Try again when {owner} is back")]
    OwnerUnreachable {
        owner: String,
        what: String,
        cause: String,
    },
    #[error("region {owner}, the team's owner, refused to {what}: {message}")]
    RefusedByOwner {
        owner: String,
        what: String,
        code: &'static str,
        message: String,
    },
    #[error("secret {name:?} is a copy of team folder {prefix:?} from region {primary}; only new values can be written here (`coffer secret put`), and they go to {primary}; change the rest there")]
    MemberCopy {
        name: String,
        prefix: String,
        primary: String,
    },
    #[error("folder {prefix:?} is not shared with anyone, so it has no primary to move; share it first with `coffer team share`")]
    NoSuchFolder { prefix: String },
    #[error("folder {prefix:?} is moving from region {from} to region {to}: writes resume once {from} has handed it over to {to} (both must be reachable); `coffer team members` shows when it is done")]
    Moving {
        prefix: String,
        from: String,
        to: String,
    },
    #[error("region {region} is already the primary of folder {prefix:?}")]
    AlreadyPrimary { prefix: String, region: String },
    #[error("region {region} cannot be the primary of folder {prefix:?}: it is {} there, and a primary writes; make it a writer first with `coffer team share {prefix} --member {region} --role writer`", role_phrase(role))]
    PrimaryNeedsWriter {
        prefix: String,
        region: String,
        role: Option<TeamRole>,
    },
    #[error("region {region} is the primary of folder {prefix:?} (or hands it over); move the folder first with `coffer team move-primary {prefix} --to REGION`")]
    IsPrimary { prefix: String, region: String },
    #[error("region {from} sent changes made under team revision {revision}, and this vault holds revision {held}: it waits for the owner's newer state, then takes them")]
    AwaitingState {
        from: String,
        revision: u64,
        held: u64,
    },
}

fn role_phrase(role: &Option<TeamRole>) -> String {
    match role {
        Some(role) => format!("a {}", role.as_str()),
        None => "not a member".to_owned(),
    }
}

impl TeamError {
    pub fn code(&self) -> &'static str {
        match self {
            TeamError::NoTeam | TeamError::UnknownMember { .. } | TeamError::NotShared { .. } => {
                "team_not_found"
            }
            TeamError::AlreadyInTeam { .. }
            | TeamError::AlreadyMember { .. }
            | TeamError::OverlappingFolder { .. }
            | TeamError::MemberCopy { .. }
            | TeamError::Moving { .. }
            | TeamError::AlreadyPrimary { .. }
            | TeamError::PrimaryNeedsWriter { .. }
            | TeamError::IsPrimary { .. } => "team_conflict",
            TeamError::NoSuchFolder { .. } => "team_not_found",
            TeamError::AwaitingState { .. } => "vault_busy",
            TeamError::NotOwner { .. }
            | TeamError::RoleRefused { .. }
            | TeamError::NotAdmin { .. } => "forbidden",
            TeamError::InvalidTeamName { .. }
            | TeamError::InvalidFolder { .. }
            | TeamError::OwnRegion { .. } => "invalid_argument",
            TeamError::PrimaryUnreachable { .. } | TeamError::OwnerUnreachable { .. } => {
                "peer_unreachable"
            }
            TeamError::RefusedByPrimary { code, .. } | TeamError::RefusedByOwner { code, .. } => {
                code
            }
        }
    }
}
