//! What KMS keeps about a key besides its material: its description, tags and key policy.
//!
//! The policy decides who may use the key, so it carries a MAC bound to the key's id;
//! tags and the description are labels and steer nothing.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::error::{Error, Result};
use super::secrets::resolve_key;
use super::{AuditEvent, Vault};
use crate::store::keys as key_rows;

/// Most tags a key may carry, as in KMS.
pub const MAX_KEY_TAGS: usize = 50;

impl Vault {
    fn key_id_of(&mut self, reference: &str) -> Result<Uuid> {
        self.require_unlocked()?;
        let integrity = self.integrity()?;
        Ok(resolve_key(self.store.conn(), &integrity, reference)?.id)
    }

    pub fn update_key_description(&mut self, reference: &str, description: &str) -> Result<()> {
        if description.chars().count() > 8192 {
            return Err(Error::invalid("description", "use at most 8192 characters"));
        }
        let key_id = self.key_id_of(reference)?;
        self.write(
            AuditEvent::new("update_key_description").key(key_id),
            |tx, _, _| Ok(key_rows::set_description(tx, key_id, description)?),
        )
    }

    pub fn key_tags(&mut self, reference: &str) -> Result<BTreeMap<String, String>> {
        let key_id = self.key_id_of(reference)?;
        Ok(key_rows::tags(self.store.conn(), key_id)?
            .into_iter()
            .collect())
    }

    pub fn tag_key(&mut self, reference: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        for (k, v) in tags {
            if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
                return Err(Error::invalid(
                    "tag",
                    "keys are 1 to 128 characters, values at most 256",
                ));
            }
        }
        let key_id = self.key_id_of(reference)?;
        self.write(AuditEvent::new("tag_key").key(key_id), |tx, _, _| {
            let mut all: BTreeMap<String, String> =
                key_rows::tags(tx, key_id)?.into_iter().collect();
            all.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            if all.len() > MAX_KEY_TAGS {
                return Err(Error::invalid(
                    "tags",
                    format!("a key carries at most {MAX_KEY_TAGS} tags"),
                ));
            }
            for (k, v) in tags {
                key_rows::set_tag(tx, key_id, k, v)?;
            }
            Ok(())
        })
    }

    pub fn untag_key(&mut self, reference: &str, keys: &[String]) -> Result<()> {
        let key_id = self.key_id_of(reference)?;
        self.write(AuditEvent::new("untag_key").key(key_id), |tx, _, _| {
            for k in keys {
                key_rows::remove_tag(tx, key_id, k)?;
            }
            Ok(())
        })
    }

    /// A key's policy, `None` while it has the default one.
    pub fn key_policy(&mut self, reference: &str) -> Result<Option<String>> {
        let key_id = self.key_id_of(reference)?;
        let integrity = self.integrity()?;
        match key_rows::policy(self.store.conn(), key_id)? {
            None => Ok(None),
            Some((policy, mac)) => {
                integrity.check_key_policy(key_id, &policy, &mac)?;
                Ok(Some(policy))
            }
        }
    }

    /// Sets a key's policy: a resource policy whose statements name principals.
    pub fn put_key_policy(&mut self, reference: &str, policy: &str) -> Result<()> {
        coffer_aws::policy::Policy::parse_resource(policy)
            .map_err(|e| Error::invalid("key policy", e.to_string()))?;
        let key_id = self.key_id_of(reference)?;
        self.write(
            AuditEvent::new("put_key_policy").key(key_id),
            |tx, keyring, _| {
                let mac = keyring.integrity().key_policy_tag(key_id, policy);
                Ok(key_rows::set_policy(tx, key_id, policy, &mac)?)
            },
        )
    }
}
