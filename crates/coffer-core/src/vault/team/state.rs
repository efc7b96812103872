//! A team's state: its name and owner, its folders, and each member's role per folder.
//!
//! One JSON document, stored as a MACed vault setting: an edit of the file cannot give a
//! member a role or send a folder to a vault it was never shared with. The owner's copy
//! is the team; every member keeps the copy the owner last sent it (signed, through the
//! replication stream), which tells it which names are team folders and where their
//! writes go.

use std::collections::BTreeMap;

use rusqlite::{Connection, Transaction};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::TeamError;
use crate::names::SecretName;
use crate::store::meta;
use crate::vault::error::Result;
use crate::vault::integrity::Integrity;

/// The setting the state is kept in.
const STATE: &str = "team.state";

/// What a member may do in a folder. Ordered: each role may do what the ones before it may.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    /// Gets copies of the folder's secrets and reads them, also offline.
    Reader,
    /// May also create secrets in the folder and put new values.
    Writer,
    /// May also change the team's membership.
    Admin,
}

impl TeamRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Reader => "reader",
            TeamRole::Writer => "writer",
            TeamRole::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Result<TeamRole> {
        match text {
            "reader" => Ok(TeamRole::Reader),
            "writer" => Ok(TeamRole::Writer),
            "admin" => Ok(TeamRole::Admin),
            other => Err(crate::vault::error::Error::invalid(
                "role",
                format!("{other:?}; use reader, writer or admin"),
            )),
        }
    }

    pub fn may_write(self) -> bool {
        self >= TeamRole::Writer
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MemberState {
    pub region: String,
    pub added_at: i64,
    /// Role per folder prefix.
    #[serde(default)]
    pub roles: BTreeMap<String, TeamRole>,
    /// Where the member's vault answers and its pinned fingerprint, as the owner checked
    /// them at the invite: a folder's primary other than the owner pairs the folder's
    /// members with these (and they it), vouched for by the owner's signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FolderState {
    pub prefix: String,
    /// The region that orders the folder's writes.
    pub primary_region: String,
    /// While the folder moves to `primary_region`: the primary it moves from, which
    /// hands it over once everything it applied has reached the new one. The owner
    /// clears it when the new primary says it has taken over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover_from: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TeamState {
    /// Nil on a member until the owner's first state arrives.
    pub id: Uuid,
    pub name: String,
    pub owner_region: String,
    /// Counts the owner's changes, so members can show how current their copy is.
    pub revision: u64,
    pub members: Vec<MemberState>,
    pub folders: Vec<FolderState>,
}

impl TeamState {
    /// The folder a secret name lies in (folders never nest, so there is at most one).
    pub fn folder_of(&self, name: &str) -> Option<&FolderState> {
        self.folders.iter().find(|f| name.starts_with(&f.prefix))
    }

    pub fn member(&self, region: &str) -> Option<&MemberState> {
        self.members.iter().find(|m| m.region == region)
    }

    pub fn member_mut(&mut self, region: &str) -> Option<&mut MemberState> {
        self.members.iter_mut().find(|m| m.region == region)
    }

    pub fn role_of(&self, region: &str, prefix: &str) -> Option<TeamRole> {
        self.member(region)
            .and_then(|m| m.roles.get(prefix).copied())
    }

    /// A region's role as a folder's primary checks it: the owner administers every
    /// folder, whichever vault is its primary.
    pub fn effective_role(&self, region: &str, prefix: &str) -> Option<TeamRole> {
        if region == self.owner_region {
            Some(TeamRole::Admin)
        } else {
            self.role_of(region, prefix)
        }
    }

    pub fn folder(&self, prefix: &str) -> Option<&FolderState> {
        self.folders.iter().find(|f| f.prefix == prefix)
    }

    /// The regions that keep a copy of a folder: its members and the owner, but not its
    /// primary.
    pub fn holders(&self, prefix: &str) -> Vec<String> {
        let Some(folder) = self.folder(prefix) else {
            return Vec::new();
        };
        std::iter::once(self.owner_region.clone())
            .chain(self.members_of(prefix).map(|m| m.region.clone()))
            .filter(|region| *region != folder.primary_region)
            .collect()
    }

    /// The members with any role in a folder.
    pub fn members_of<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a MemberState> {
        self.members
            .iter()
            .filter(move |m| m.roles.contains_key(prefix))
    }

    /// Drops folders no member has a role in any more.
    pub fn drop_unshared_folders(&mut self) {
        let members = &self.members;
        self.folders
            .retain(|f| members.iter().any(|m| m.roles.contains_key(&f.prefix)));
    }
}

/// Checks a folder prefix: a valid start of secret names, ending in '/'.
pub fn check_prefix(prefix: &str) -> std::result::Result<(), TeamError> {
    let invalid = |reason: &str| TeamError::InvalidFolder {
        prefix: prefix.to_owned(),
        reason: reason.to_owned(),
    };
    if !prefix.ends_with('/') || prefix.len() < 2 {
        return Err(invalid(
            "a folder is a name prefix ending in '/', such as team/payments/",
        ));
    }
    if prefix.starts_with('/') {
        return Err(invalid(
            "it starts with '/'; write team/payments/, not /team/payments/",
        ));
    }
    SecretName::parse(&format!("{prefix}x")).map_err(|e| invalid(&e.reason))?;
    Ok(())
}

pub fn check_team_name(name: &str) -> std::result::Result<(), TeamError> {
    let valid = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(TeamError::InvalidTeamName {
            name: name.chars().take(80).collect(),
        })
    }
}

/// The team state as stored, checked against its MAC.
pub fn load(conn: &Connection, integrity: &Integrity) -> Result<Option<TeamState>> {
    let Some(bytes) = integrity.setting(conn, STATE)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        crate::store::StoreError::Corrupt {
            detail: format!("the team state cannot be read: {e}"),
        }
        .into()
    })
}

pub fn save(tx: &Transaction<'_>, integrity: &Integrity, state: &TeamState) -> Result<()> {
    let bytes = serde_json::to_vec(state).map_err(|e| crate::store::StoreError::Corrupt {
        detail: format!("the team state cannot be written: {e}"),
    })?;
    integrity.set_setting(tx, STATE, &bytes)
}

pub fn clear(tx: &Transaction<'_>) -> Result<()> {
    meta::delete(tx, STATE)?;
    meta::delete(tx, &format!("{STATE}.mac"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parsed() {
        assert!(TeamRole::Reader < TeamRole::Writer && TeamRole::Writer < TeamRole::Admin);
        assert!(!TeamRole::Reader.may_write());
        assert!(TeamRole::Writer.may_write() && TeamRole::Admin.may_write());
        assert_eq!(TeamRole::parse("writer").unwrap(), TeamRole::Writer);
        let error = TeamRole::parse("owner").unwrap_err().to_string();
        assert!(error.contains("reader, writer or admin"), "{error}");
    }

    #[test]
    fn folders_are_prefixes_ending_in_a_slash() {
        check_prefix("team/payments/").unwrap();
        for bad in ["team/payments", "/", "/team/", "team/pay ments/", ""] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
        check_team_name("acme-ops").unwrap();
        assert!(check_team_name("acme ops").is_err());
        assert!(check_team_name("").is_err());
    }
}
