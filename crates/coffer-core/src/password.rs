//! A password generator with the options of Secrets Manager's `GetRandomPassword`.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_core::OsRng;
use zeroize::Zeroizing;

use crate::vault::Error;

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
/// The punctuation set Secrets Manager uses.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// Also the stored configuration of the `generate` and `postgres` rotators, so missing
/// fields take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PasswordOptions {
    /// 1 to 4096 characters; 32 by default.
    pub length: usize,
    pub exclude_characters: String,
    pub exclude_numbers: bool,
    pub exclude_punctuation: bool,
    pub exclude_uppercase: bool,
    pub exclude_lowercase: bool,
    pub include_space: bool,
    /// At least one character from every included kind.
    pub require_each_included_type: bool,
}

impl Default for PasswordOptions {
    fn default() -> Self {
        PasswordOptions {
            length: 32,
            exclude_characters: String::new(),
            exclude_numbers: false,
            exclude_punctuation: false,
            exclude_uppercase: false,
            exclude_lowercase: false,
            include_space: false,
            require_each_included_type: true,
        }
    }
}

/// Generates a password from the OS RNG.
pub fn generate_password(options: &PasswordOptions) -> Result<Zeroizing<String>, Error> {
    if !(1..=4096).contains(&options.length) {
        return Err(Error::invalid(
            "password length",
            format!("{}; use 1 to 4096", options.length),
        ));
    }
    let keep = |set: &str| -> Vec<char> {
        set.chars()
            .filter(|c| !options.exclude_characters.contains(*c))
            .collect()
    };
    let mut classes: Vec<Vec<char>> = Vec::new();
    for (excluded, set) in [
        (options.exclude_lowercase, LOWER),
        (options.exclude_uppercase, UPPER),
        (options.exclude_numbers, DIGITS),
        (options.exclude_punctuation, PUNCTUATION),
        (!options.include_space, " "),
    ] {
        if !excluded {
            let chars = keep(set);
            if !chars.is_empty() {
                classes.push(chars);
            }
        }
    }
    let alphabet: Vec<char> = classes.iter().flatten().copied().collect();
    if alphabet.is_empty() {
        return Err(Error::invalid(
            "password options",
            "they exclude every character; allow at least one kind",
        ));
    }
    if options.require_each_included_type && classes.len() > options.length {
        return Err(Error::invalid(
            "password length",
            format!(
                "{} is too short to include one of each of the {} character kinds",
                options.length,
                classes.len()
            ),
        ));
    }
    let mut rng = OsRng;
    let mut chars: Zeroizing<Vec<char>> = Zeroizing::new(Vec::with_capacity(options.length));
    if options.require_each_included_type {
        for class in &classes {
            chars.push(class[rng.gen_range(0..class.len())]);
        }
    }
    while chars.len() < options.length {
        chars.push(alphabet[rng.gen_range(0..alphabet.len())]);
    }
    chars.shuffle(&mut rng);
    Ok(Zeroizing::new(chars.iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honours_every_option() {
        let options = PasswordOptions {
            length: 64,
            exclude_characters: "abc".into(),
            exclude_punctuation: true,
            ..Default::default()
        };
        for _ in 0..50 {
            let password = generate_password(&options).unwrap();
            assert_eq!(password.chars().count(), 64);
            assert!(!password.contains(['a', 'b', 'c']));
            assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
            assert!(password.chars().any(|c| c.is_ascii_digit()));
            assert!(password.chars().any(|c| c.is_ascii_uppercase()));
            assert!(password.chars().any(|c| c.is_ascii_lowercase()));
        }
    }

    #[test]
    fn rejects_impossible_requests() {
        let none = PasswordOptions {
            exclude_numbers: true,
            exclude_punctuation: true,
            exclude_uppercase: true,
            exclude_lowercase: true,
            ..Default::default()
        };
        assert!(generate_password(&none).is_err());
        assert!(generate_password(&PasswordOptions {
            length: 0,
            ..Default::default()
        })
        .is_err());
        assert!(generate_password(&PasswordOptions {
            length: 2,
            ..Default::default()
        })
        .is_err());
    }
}
