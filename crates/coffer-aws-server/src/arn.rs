//! ARNs as Coffer answers them, and the ways a caller may name a secret or a key.
//!
//! A secret's ARN ends in `-` and six characters, as AWS's do; Coffer derives them from
//! the vault id and the name, so an ARN stays the same for as long as the name does.

use sha2::{Digest, Sha256};

/// `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX`.
pub fn secret_arn(region: &str, account: &str, vault_id: uuid::Uuid, name: &str) -> String {
    format!(
        "arn:aws:secretsmanager:{region}:{account}:secret:{name}-{}",
        secret_suffix(vault_id, name)
    )
}

/// The six characters after a secret's name in its ARN.
pub fn secret_suffix(vault_id: uuid::Uuid, name: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digest = Sha256::new()
        .chain_update(b"coffer.secret-arn-suffix.v1\0")
        .chain_update(vault_id.as_bytes())
        .chain_update(name.as_bytes())
        .finalize();
    digest[..6]
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// What a `SecretId` names: a secret name, or the name inside a (possibly partial) ARN
/// with the suffix it claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub name: String,
    /// For a full ARN: the six characters it ended with, checked against the secret.
    pub suffix: Option<String>,
}

/// Reads a `SecretId`: a name, or an ARN (full, with the six-character suffix, or partial,
/// without it). `exists` tells whether a secret of a given name exists, which decides
/// whether a trailing `-XXXXXX` is a suffix or part of the name.
pub fn parse_secret_id(id: &str, exists: impl Fn(&str) -> bool) -> SecretRef {
    let Some(rest) = id.strip_prefix("arn:") else {
        return SecretRef {
            name: id.to_owned(),
            suffix: None,
        };
    };
    // arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME
    let parts: Vec<&str> = rest.splitn(6, ':').collect();
    let name = match parts.as_slice() {
        [_, "secretsmanager", _, _, "secret", name] => *name,
        _ => {
            return SecretRef {
                name: id.to_owned(),
                suffix: None,
            }
        }
    };
    if let Some((base, suffix)) = name.rsplit_once('-') {
        if suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()) && exists(base) {
            return SecretRef {
                name: base.to_owned(),
                suffix: Some(suffix.to_owned()),
            };
        }
    }
    SecretRef {
        name: name.to_owned(),
        suffix: None,
    }
}

/// `arn:aws:kms:REGION:ACCOUNT:key/ID`.
pub fn key_arn(region: &str, account: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{key_id}")
}

/// `arn:aws:kms:REGION:ACCOUNT:alias/NAME` (the alias includes `alias/`).
pub fn alias_arn(region: &str, account: &str, alias: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:{alias}")
}

/// A `KeyId` as the engine takes it: a key id, or `alias/NAME`, from any of KMS's four
/// forms (id, key ARN, alias name, alias ARN).
pub fn key_reference(key_id: &str) -> String {
    if let Some(rest) = key_id.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if let [_, "kms", _, _, resource] = parts.as_slice() {
            if let Some(id) = resource.strip_prefix("key/") {
                return id.to_owned();
            }
            if resource.starts_with("alias/") {
                return (*resource).to_owned();
            }
        }
    }
    key_id.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_ids_in_every_form_name_the_secret() {
        let vault = uuid::Uuid::nil();
        let arn = secret_arn("local-1", "000000000000", vault, "prod/db-a");
        let suffix = secret_suffix(vault, "prod/db-a");
        assert!(arn.ends_with(&format!("secret:prod/db-a-{suffix}")));
        let exists = |n: &str| n == "prod/db-a";
        assert_eq!(
            parse_secret_id(&arn, exists),
            SecretRef {
                name: "prod/db-a".into(),
                suffix: Some(suffix)
            }
        );
        // Partial ARN and plain name.
        let partial = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-a";
        assert_eq!(parse_secret_id(partial, exists).name, "prod/db-a");
        assert_eq!(parse_secret_id("prod/db-a", exists).name, "prod/db-a");
        // A name that itself ends like a suffix stays whole when no shorter one exists.
        let tricky = "arn:aws:secretsmanager:r:0:secret:app-abcdef";
        assert_eq!(parse_secret_id(tricky, |_| false).name, "app-abcdef");
    }

    #[test]
    fn key_ids_in_every_form_name_the_key() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(key_reference(id), id);
        assert_eq!(key_reference(&key_arn("us-east-1", "111122223333", id)), id);
        assert_eq!(key_reference("alias/app"), "alias/app");
        assert_eq!(
            key_reference(&alias_arn("us-east-1", "111122223333", "alias/app")),
            "alias/app"
        );
    }
}
