//! `.env` files: `KEY=VALUE` lines, with `#` comments, blank lines, an optional `export `
//! prefix, and values optionally in single or double quotes.

use std::path::Path;

use zeroize::Zeroizing;

use crate::failure::Failure;

/// One variable of an env file. Values may be secret literals, so they are wiped.
pub struct Entry {
    pub key: String,
    pub value: Zeroizing<String>,
    pub line: usize,
}

/// A name a POSIX shell accepts for a variable: letters, digits and `_`, not starting
/// with a digit. Anything else could turn an `export` line into a command.
pub fn is_variable_name(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn parse(path: &Path) -> Result<Vec<Entry>, Failure> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(format!("cannot read the env file {}: {e}", path.display()))
    })?);
    parse_text(&text, path)
}

/// Parses the text of an env file; `path` only names it in errors. No I/O, so that it
/// can be fuzzed.
pub fn parse_text(text: &str, path: &Path) -> Result<Vec<Entry>, Failure> {
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let bad = |why: &str| Failure::usage(format!("{}:{line_no}: {why}", path.display()));
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE"))?;
        let key = key.trim();
        if !is_variable_name(key) {
            return Err(bad(
                "the variable name must be letters, digits and _, not starting with a digit",
            ));
        }
        let value = value.trim();
        let value = match value.chars().next() {
            Some(q @ ('"' | '\'')) => {
                if value.len() < 2 || !value.ends_with(q) {
                    return Err(bad("the quoted value has no closing quote"));
                }
                &value[1..value.len() - 1]
            }
            _ => value.split(" #").next().unwrap_or(value).trim_end(),
        };
        entries.push(Entry {
            key: key.to_owned(),
            value: Zeroizing::new(value.to_owned()),
            line: line_no,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_common_forms() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "# comment\n\nA=1\nexport B = two words # note\nC=\"quoted # kept\"\nD='coffer://db#pw'\nE=\n",
        )
        .unwrap();
        let entries = parse(&path).unwrap();
        let pairs: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("A", "1"),
                ("B", "two words"),
                ("C", "quoted # kept"),
                ("D", "coffer://db#pw"),
                ("E", "")
            ]
        );
    }

    #[test]
    fn reports_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "A=1\nnot a pair\n").unwrap();
        let err = parse(&path).err().unwrap();
        assert!(err.message.contains(":2:"), "{}", err.message);
        std::fs::write(&path, "1A=x\n").unwrap();
        assert!(parse(&path).is_err());
        std::fs::write(&path, "A=\"open\n").unwrap();
        assert!(parse(&path).is_err());
    }
}
