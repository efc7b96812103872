//! `coffer self-update --file BUNDLE`: installs a signed update from a file (a USB stick on
//! an air-gapped machine), the headless twin of the app's "Install update from file…".
//!
//! The bundle is a release's .deb or .rpm and its signature the `.sig` that `tauri signer
//! sign` wrote: the minisign format the app's updater checks, against the same public key.
//! That key is read from `../share/coffer/update-key.pub` beside this program, where the
//! package installed it: whoever can replace that file can replace `coffer` itself, so it
//! is trusted as much as this program and no more (as `coffer-tpm` is, see `handoff`).
//!
//! The file is read once; the bytes that were verified are the bytes installed (from a
//! private copy), so swapping the file after the check installs nothing unverified.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use clap::Args;
use minisign_verify::{PublicKey, Signature};
use serde_json::json;

use crate::commands::{say, Env};
use crate::failure::{exit, Failure};

#[derive(Args, Debug)]
pub struct SelfUpdateArgs {
    /// The update bundle: a release's .deb or .rpm.
    #[arg(long, value_name = "BUNDLE")]
    pub file: PathBuf,
    /// Its signature (default: BUNDLE.sig).
    #[arg(long, value_name = "SIG")]
    pub signature: Option<PathBuf>,
    /// Install a bundle that is not newer than this Coffer (the downgrade is logged).
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Only verify the bundle and say what would be installed.
    #[arg(long)]
    pub check: bool,
}

/// Larger than any release; a bigger file is not a Coffer bundle.
const MAX_BUNDLE_BYTES: u64 = 1 << 30;
/// Where installs and downgrades are recorded (installing needs root anyway).
const LOG_FILE: &str = "/var/log/coffer/updates.log";

/// The package formats a bundle can be, told apart by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Deb,
    Rpm,
}

/// What a verified bundle says about itself.
struct Bundle {
    format: Format,
    name: String,
    version: semver::Version,
}

pub fn run(env: &Env, args: &SelfUpdateArgs) -> Result<(), Failure> {
    let key = update_key()?;
    let bytes = read_bundle(&args.file)?;
    let signature_path = args.signature.clone().unwrap_or_else(|| {
        let mut name = args.file.clone().into_os_string();
        name.push(".sig");
        PathBuf::from(name)
    });
    verify(&key, &bytes, &signature_path, &args.file)?;

    // From here on only verified bytes are looked at, from a copy no one else can write.
    let private = tempfile::Builder::new()
        .prefix("coffer-update-")
        .tempdir()
        .map_err(|e| failure(format!("cannot make a private temporary folder: {e}")))?;
    let format = detect_format(&bytes).ok_or_else(|| {
        Failure::usage(format!(
            "{} is signed but is neither a .deb nor an .rpm package; nothing was installed",
            args.file.display()
        ))
    })?;
    let copy = private.path().join(match format {
        Format::Deb => "coffer.deb",
        Format::Rpm => "coffer.rpm",
    });
    std::fs::write(&copy, &bytes)
        .map_err(|e| failure(format!("cannot write {}: {e}", copy.display())))?;
    let bundle = inspect(format, &copy)?;
    if bundle.name != "coffer" {
        return Err(Failure::usage(format!(
            "the bundle is the package {:?}, not coffer; nothing was installed",
            bundle.name
        )));
    }
    let running = running_version()?;
    let downgrade = bundle.version <= running;
    if downgrade && !args.allow_downgrade {
        return Err(Failure {
            message: format!(
                "the bundle is Coffer {}, which is not newer than the running {running}; nothing was installed (use --allow-downgrade to install it anyway)",
                bundle.version
            ),
            code: exit::CONFLICT,
        });
    }
    if args.check {
        return say(
            env,
            &format!(
                "{} is Coffer {}, signed with Coffer's update key; it would replace {running}{}.",
                args.file.display(),
                bundle.version,
                if downgrade { " (a downgrade)" } else { "" }
            ),
        );
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Failure {
            message: format!(
                "the bundle is verified (Coffer {}), but installing it needs root: run `sudo coffer self-update --file {}`",
                bundle.version,
                args.file.display()
            ),
            code: exit::FAILURE,
        });
    }
    if downgrade {
        eprintln!(
            "coffer: warning: installing Coffer {} over the newer or equal {running}, as --allow-downgrade asks",
            bundle.version
        );
    }
    record(&running, &bundle, downgrade, &args.file)?;
    install(format, &copy, downgrade)?;
    say(
        env,
        &format!(
            "Installed Coffer {} (was {running}). The vault file migrates, after a backup copy, when the new version first opens it.",
            bundle.version
        ),
    )
}

fn failure(message: String) -> Failure {
    Failure {
        message,
        code: exit::FAILURE,
    }
}

/// The public key the package installed beside this program.
fn update_key() -> Result<PublicKey, Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| failure(format!("cannot find where coffer is installed: {e}")))?;
    let path = exe
        .parent()
        .map(|dir| dir.join("../share/coffer/update-key.pub"))
        .unwrap_or_default();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        failure(format!(
            "cannot read Coffer's update key {} ({e}): this coffer was not installed from a package; update it the way it was installed",
            path.display()
        ))
    })?;
    decode_public_key(&text).ok_or_else(|| {
        failure(format!(
            "Coffer's update key {} is damaged; reinstall Coffer from a package",
            path.display()
        ))
    })
}

/// A key as `tauri signer generate` writes it: the minisign public key file, in base64.
fn decode_public_key(text: &str) -> Option<PublicKey> {
    let inner = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    PublicKey::decode(std::str::from_utf8(&inner).ok()?).ok()
}

/// A signature as `tauri signer sign` writes it (the minisign signature file, in base64),
/// or as minisign itself writes it.
fn decode_signature(text: &str) -> Option<Signature> {
    let text = text.trim();
    if text.starts_with("untrusted comment:") {
        return Signature::decode(text).ok();
    }
    let inner = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    Signature::decode(std::str::from_utf8(&inner).ok()?).ok()
}

fn read_bundle(path: &Path) -> Result<Vec<u8>, Failure> {
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::usage(format!("cannot read the bundle {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::usage(format!("cannot read the bundle {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(Failure::usage(format!(
            "{} is larger than any Coffer bundle (over 1 GiB); nothing was installed",
            path.display()
        )));
    }
    Ok(bytes)
}

fn verify(key: &PublicKey, bytes: &[u8], signature: &Path, bundle: &Path) -> Result<(), Failure> {
    let refused = |message: String| Failure {
        message: format!("{message}; nothing was installed"),
        code: exit::TAMPERED,
    };
    let text = match std::fs::read_to_string(signature) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refused(format!(
                "{} is unsigned: there is no signature at {} (give it with --signature); Coffer installs only signed bundles",
                bundle.display(),
                signature.display()
            )))
        }
        Err(e) => {
            return Err(refused(format!(
                "cannot read the signature {}: {e}",
                signature.display()
            )))
        }
    };
    let signature_box = decode_signature(&text).ok_or_else(|| {
        refused(format!(
            "{} is not a signature (expected the .sig file of a Coffer release)",
            signature.display()
        ))
    })?;
    match key.verify(bytes, &signature_box, false) {
        Ok(()) => Ok(()),
        Err(minisign_verify::Error::UnexpectedKeyId) => Err(refused(format!(
            "{} was signed by another key than Coffer's update key",
            bundle.display()
        ))),
        Err(_) => Err(refused(format!(
            "{} does not match its signature: it was changed after it was signed",
            bundle.display()
        ))),
    }
}

fn detect_format(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"!<arch>\ndebian-binary") {
        Some(Format::Deb)
    } else if bytes.starts_with(&[0xed, 0xab, 0xee, 0xdb]) {
        Some(Format::Rpm)
    } else {
        None
    }
}

/// The package's name and version, as the package tools read them.
fn inspect(format: Format, copy: &Path) -> Result<Bundle, Failure> {
    let (tool, args): (&str, Vec<&str>) = match format {
        Format::Deb => (
            "dpkg-deb",
            vec!["--show", "--showformat=${Package} ${Version}"],
        ),
        Format::Rpm => ("rpm", vec!["-qp", "--queryformat", "%{NAME} %{VERSION}"]),
    };
    let output = Command::new(tool)
        .args(&args)
        .arg(copy)
        .output()
        .map_err(|e| failure(format!("cannot run {tool} to read the bundle ({e}); this bundle is for a system that has {tool}")))?;
    if !output.status.success() {
        return Err(Failure::usage(format!(
            "{tool} cannot read the bundle: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let (name, version) = text.trim().split_once(' ').ok_or_else(|| {
        Failure::usage(format!("{tool} printed no name and version for the bundle"))
    })?;
    let version = semver::Version::parse(version).map_err(|_| {
        Failure::usage(format!(
            "the bundle's version {version:?} is not a Coffer version (MAJOR.MINOR.PATCH)"
        ))
    })?;
    Ok(Bundle {
        format,
        name: name.to_owned(),
        version,
    })
}

fn running_version() -> Result<semver::Version, Failure> {
    semver::Version::parse(env!("CARGO_PKG_VERSION"))
        .map_err(|e| failure(format!("this coffer's own version is unreadable: {e}")))
}

/// One line per install in the log, before the install starts.
fn record(
    running: &semver::Version,
    bundle: &Bundle,
    downgrade: bool,
    file: &Path,
) -> Result<(), Failure> {
    use std::io::Write;
    let entry = json!({
        "time": coffer_core::Timestamp::now(),
        "from": running.to_string(),
        "to": bundle.version.to_string(),
        "downgrade": downgrade,
        "format": format!("{:?}", bundle.format).to_lowercase(),
        "file": file.display().to_string(),
    });
    let path = Path::new(LOG_FILE);
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        })
        .and_then(|mut log| writeln!(log, "{entry}"));
    written.map_err(|e| {
        failure(format!(
            "cannot record the update in {LOG_FILE}: {e}; nothing was installed"
        ))
    })
}

fn install(format: Format, copy: &Path, downgrade: bool) -> Result<(), Failure> {
    let mut command = match format {
        Format::Deb => {
            let mut command = Command::new("dpkg");
            command.arg("-i");
            command
        }
        Format::Rpm => {
            let mut command = Command::new("rpm");
            command.arg("-U");
            if downgrade {
                command.args(["--oldpackage", "--replacepkgs"]);
            }
            command
        }
    };
    let program = format!("{:?}", command.get_program());
    let status = command
        .arg(copy)
        .status()
        .map_err(|e| failure(format!("cannot run {program}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(failure(format!(
            "{program} could not install the bundle ({status}); see its messages above"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_first_bytes() {
        assert_eq!(
            detect_format(b"!<arch>\ndebian-binary   0"),
            Some(Format::Deb)
        );
        assert_eq!(
            detect_format(&[0xed, 0xab, 0xee, 0xdb, 3, 0]),
            Some(Format::Rpm)
        );
        assert_eq!(detect_format(b"!<arch>\nother"), None);
        assert_eq!(detect_format(b""), None);
    }

    #[test]
    fn keys_and_signatures_that_are_not_minisign_are_refused() {
        assert!(decode_public_key("").is_none());
        assert!(decode_public_key("not base64!").is_none());
        let not_a_key = base64::engine::general_purpose::STANDARD.encode("hello\nworld\n");
        assert!(decode_public_key(&not_a_key).is_none());
        assert!(decode_signature("").is_none());
        assert!(decode_signature("untrusted comment: x\nAAAA\n").is_none());
    }
}
