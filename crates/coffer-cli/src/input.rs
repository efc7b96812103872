//! Where PINs, recovery codes and secret values come from: a hidden prompt, a file, or
//! stdin, never a command-line argument (arguments are visible to every user in `ps`).

use std::io::{IsTerminal, Read};
use std::path::Path;

use coffer_core::SecretValue;
use zeroize::Zeroizing;

use crate::failure::Failure;

/// Reads a file that holds a PIN or code, without its trailing newline.
fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<String>, Failure> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
        Failure::usage(format!(
            "cannot read the {what} file {}: {e}",
            path.display()
        ))
    })?);
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Failure::usage(format!(
            "the {what} file {} is not UTF-8 text",
            path.display()
        ))
    })?;
    Ok(Zeroizing::new(
        text.trim_end_matches(['\n', '\r']).to_owned(),
    ))
}

fn prompt(label: &str) -> Result<Zeroizing<String>, Failure> {
    rpassword::prompt_password(label)
        .map(Zeroizing::new)
        .map_err(|_| {
            Failure::usage(format!(
            "cannot prompt for input ({}): no terminal; see `coffer --help` for the file variables",
            label.trim_end_matches([':', ' '])
        ))
        })
}

/// The current PIN: `COFFER_PIN_FILE`, else a prompt.
pub fn pin() -> Result<Zeroizing<String>, Failure> {
    match std::env::var_os("COFFER_PIN_FILE") {
        Some(path) => read_secret_file(Path::new(&path), "PIN"),
        None => prompt("Vault PIN: ").map_err(|_| Failure {
            message: "the vault is locked and there is no terminal to ask for the PIN: run `coffer unlock` first, or set COFFER_PIN_FILE".to_owned(),
            code: crate::failure::exit::AUTH,
        }),
    }
}

/// The current PIN as proof for a change of who can unlock (`change-pin`):
/// `COFFER_PIN_FILE`, else a prompt. Asked even when an agent holds the vault unlocked.
pub fn current_pin() -> Result<Zeroizing<String>, Failure> {
    match std::env::var_os("COFFER_PIN_FILE") {
        Some(path) => read_secret_file(Path::new(&path), "PIN"),
        None => prompt("Current PIN: ").map_err(|_| Failure {
            message: "changing the PIN needs the current PIN and there is no terminal to ask for it: set COFFER_PIN_FILE to a file that holds it".to_owned(),
            code: crate::failure::exit::AUTH,
        }),
    }
}

/// A new PIN: from `variable` if set, else prompted twice.
pub fn new_pin(variable: &str) -> Result<Zeroizing<String>, Failure> {
    if let Some(path) = std::env::var_os(variable) {
        return read_secret_file(Path::new(&path), "new PIN");
    }
    let first = prompt("New PIN: ")?;
    let second = prompt("Repeat the new PIN: ")?;
    if *first != *second {
        return Err(Failure::usage("the two PINs differ; nothing was changed"));
    }
    Ok(first)
}

/// The recovery code: from `--recovery-code-file`, else a prompt.
pub fn recovery_code(file: Option<&Path>) -> Result<Zeroizing<String>, Failure> {
    match file {
        Some(path) => read_secret_file(path, "recovery code"),
        None => prompt("Recovery code: "),
    }
}

/// A secret value: `--value-file FILE`, `--value-file -` or piped stdin (exact bytes),
/// else a hidden prompt.
pub fn value(file: Option<&Path>) -> Result<SecretValue, Failure> {
    let from_stdin = |what: &str| -> Result<SecretValue, Failure> {
        // Sized for the largest value up front: a growing buffer would leave unwiped
        // copies of the value behind at each reallocation.
        let mut bytes = Zeroizing::new(Vec::with_capacity(coffer_core::MAX_VALUE_LEN + 1));
        // Read one byte past the limit so an oversize value is reported, not truncated.
        std::io::stdin()
            .take(coffer_core::MAX_VALUE_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::usage(format!("cannot read the value from {what}: {e}")))?;
        Ok(SecretValue::from_bytes(bytes))
    };
    match file {
        Some(path) if path == Path::new("-") => from_stdin("stdin"),
        Some(path) => {
            let meta = std::fs::metadata(path).map_err(|e| {
                Failure::usage(format!(
                    "cannot read the value file {}: {e}",
                    path.display()
                ))
            })?;
            if meta.len() > coffer_core::MAX_VALUE_LEN as u64 {
                return Err(coffer_core::Error::ValueTooLarge {
                    size: meta.len() as usize,
                    max: coffer_core::MAX_VALUE_LEN,
                }
                .into());
            }
            let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
                Failure::usage(format!(
                    "cannot read the value file {}: {e}",
                    path.display()
                ))
            })?);
            Ok(SecretValue::from_bytes(bytes))
        }
        None if !std::io::stdin().is_terminal() => from_stdin("stdin"),
        None => {
            let text = prompt("Secret value: ")?;
            Ok(SecretValue::Text(text))
        }
    }
}

/// Reads a whole file or stdin (`-`), for ciphertexts and plaintexts of the KMS commands.
pub fn blob(path: &Path, limit: usize) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut bytes = Zeroizing::new(Vec::new());
    let read = if path == Path::new("-") {
        std::io::stdin()
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit as u64 + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(bytes)
}
