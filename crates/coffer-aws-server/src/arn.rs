//! ARNs as Coffer answers them, and the ways a caller may name a secret or a key.
//!
//! A secret's ARN ends in `-` and six characters, as AWS's do. AWS picks them at random
//! when the secret is made; Coffer derives them from the secret's immutable id, so they
//! stay the same for that secret's whole life (and on its replicas, which share its id,
//! as AWS's replicas share the suffix), and a secret deleted and made again under the same
//! name gets a new ARN: a policy or a program holding the old ARN does not silently reach
//! the new secret.

use sha2::{Digest, Sha256};

/// `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX`.
pub fn secret_arn(region: &str, account: &str, secret_id: uuid::Uuid, name: &str) -> String {
    format!(
        "arn:aws:secretsmanager:{region}:{account}:secret:{name}-{}",
        secret_suffix(secret_id)
    )
}

/// The resource a request for a secret that does not exist (yet) is authorized on: its
/// ARN with IAM's documented `-??????` stand-in for the suffix, which the usual policy
/// patterns (`secret:NAME-??????`, `secret:NAME*`, `secret:prefix/*`) match.
pub fn unknown_secret_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:secretsmanager:{region}:{account}:secret:{name}-??????")
}

/// The six characters after a secret's name in its ARN.
pub fn secret_suffix(secret_id: uuid::Uuid) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digest = Sha256::new()
        .chain_update(b"coffer.secret-arn-suffix.v2\0")
        .chain_update(secret_id.as_bytes())
        .finalize();
    digest[..6]
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// What a `SecretId` names, before looking anything up: a name, or the name part of a
/// secret ARN, which is either a partial ARN (the name alone) or a full one (the name,
/// `-` and the six-character suffix). Which of the two only the vault can tell, since a
/// name may itself end in `-` and six letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The name, or the ARN's whole name part (read as a partial ARN).
    pub name: String,
    /// For an ARN whose name part ends like a suffix: the name before it and the suffix
    /// (read as a full ARN).
    pub full: Option<(String, String)>,
}

/// Reads a `SecretId`: a name, or an ARN (full, with the six-character suffix, or partial,
/// without it).
pub fn parse_secret_id(id: &str) -> SecretRef {
    let plain = SecretRef {
        name: id.to_owned(),
        full: None,
    };
    let Some(rest) = id.strip_prefix("arn:") else {
        return plain;
    };
    // arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME
    let parts: Vec<&str> = rest.splitn(6, ':').collect();
    let name = match parts.as_slice() {
        [_, "secretsmanager", _, _, "secret", name] => *name,
        _ => return plain,
    };
    let full = name.rsplit_once('-').and_then(|(base, suffix)| {
        let looks_like_suffix =
            suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric());
        (looks_like_suffix && !base.is_empty()).then(|| (base.to_owned(), suffix.to_owned()))
    });
    SecretRef {
        name: name.to_owned(),
        full,
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
        let id = uuid::Uuid::from_u128(7);
        let arn = secret_arn("local-1", "000000000000", id, "prod/db-a");
        let suffix = secret_suffix(id);
        assert_eq!(suffix.len(), 6);
        assert!(arn.ends_with(&format!("secret:prod/db-a-{suffix}")));
        assert_eq!(
            parse_secret_id(&arn),
            SecretRef {
                name: format!("prod/db-a-{suffix}"),
                full: Some(("prod/db-a".into(), suffix)),
            }
        );
        // Partial ARN and plain name.
        let partial = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-a";
        assert_eq!(
            parse_secret_id(partial),
            SecretRef {
                name: "prod/db-a".into(),
                full: None
            }
        );
        assert_eq!(parse_secret_id("prod/db-a").name, "prod/db-a");
        assert_eq!(parse_secret_id("prod/db-a").full, None);
        // Not a secret ARN: taken as a name, and so not found.
        let key = "arn:aws:kms:r:0:key/abc";
        assert_eq!(parse_secret_id(key).name, key);
    }

    #[test]
    fn a_secret_made_again_under_its_name_gets_another_arn() {
        let (first, second) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        assert_eq!(secret_suffix(first), secret_suffix(first));
        assert_ne!(
            secret_arn("r-1", "0", first, "app/db"),
            secret_arn("r-1", "0", second, "app/db")
        );
        assert!(secret_suffix(first)
            .bytes()
            .all(|b| b.is_ascii_alphabetic()));
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
