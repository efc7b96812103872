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

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;
use coffer_update::{
    version, BundleRefusal, Direction, Format, Package, ReadError, SignatureRefusal, UpdateKey,
};
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

/// Where installs and downgrades are recorded (installing needs root anyway).
const LOG_FILE: &str = "/var/log/coffer/updates.log";

pub fn run(env: &Env, args: &SelfUpdateArgs) -> Result<(), Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| failure(format!("cannot find where coffer is installed: {e}")))?;
    let key = UpdateKey::installed_beside(&exe).map_err(|e| failure(e.to_string()))?;
    let bytes = coffer_update::read_bundle(&args.file).map_err(|e| match e {
        ReadError::TooLarge { .. } => Failure::usage(format!("{e}; nothing was installed")),
        ReadError::Unreadable { .. } => Failure::usage(e.to_string()),
    })?;
    let signature_path = args
        .signature
        .clone()
        .unwrap_or_else(|| coffer_update::default_signature_path(&args.file));
    let signature = read_signature(&signature_path, &args.file)?;

    // From here on only verified bytes are looked at, from a copy no one else can write.
    let bundle = coffer_update::check_bundle(&key, &bytes, &signature)
        .map_err(|e| refusal(e, &args.file, &signature_path))?;
    let package = &bundle.package;
    let running = version::running();
    let direction =
        version::decide(&running, &package.version, args.allow_downgrade).map_err(|e| Failure {
            message: format!(
                "{e}; nothing was installed (use --allow-downgrade to install it anyway)"
            ),
            code: exit::CONFLICT,
        })?;
    let downgrade = direction == Direction::Downgrade;
    if args.check {
        return say(
            env,
            &format!(
                "{} is Coffer {}, signed with Coffer's update key; it would replace {running}{}.",
                args.file.display(),
                package.version,
                if downgrade { " (a downgrade)" } else { "" }
            ),
        );
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Failure {
            message: format!(
                "the bundle is verified (Coffer {}), but installing it needs root: run `sudo coffer self-update --file {}`",
                package.version,
                args.file.display()
            ),
            code: exit::FAILURE,
        });
    }
    if downgrade {
        eprintln!(
            "coffer: warning: installing Coffer {} over the newer or equal {running}, as --allow-downgrade asks",
            package.version
        );
    }
    record(&running, package, downgrade, &args.file)?;
    install(package.format, bundle.copy(), downgrade)?;
    say(
        env,
        &format!(
            "Installed Coffer {} (was {running}). The vault file migrates, after a backup copy, when the new version first opens it.",
            package.version
        ),
    )
}

fn failure(message: String) -> Failure {
    Failure {
        message,
        code: exit::FAILURE,
    }
}

/// The signature file's text; a missing one means the bundle is unsigned.
fn read_signature(signature: &Path, bundle: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(signature).map_err(|e| Failure {
        message: if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "{} is unsigned: there is no signature at {} (give it with --signature); Coffer installs only signed bundles; nothing was installed",
                bundle.display(),
                signature.display()
            )
        } else {
            format!(
                "cannot read the signature {}: {e}; nothing was installed",
                signature.display()
            )
        },
        code: exit::TAMPERED,
    })
}

/// One sentence and exit code per reason a bundle is refused.
fn refusal(refusal: BundleRefusal, bundle: &Path, signature: &Path) -> Failure {
    let (message, code) = match &refusal {
        BundleRefusal::Signature(SignatureRefusal::NotASignature) => (
            format!(
                "{} is not a signature (expected the .sig file of a Coffer release)",
                signature.display()
            ),
            exit::TAMPERED,
        ),
        BundleRefusal::Signature(_) => (format!("{} {refusal}", bundle.display()), exit::TAMPERED),
        BundleRefusal::NotAPackage | BundleRefusal::OtherPackage(_) => {
            (format!("{} {refusal}", bundle.display()), exit::USAGE)
        }
        BundleRefusal::Inspect(coffer_update::package::InspectError::NoTool { .. })
        | BundleRefusal::Copy(_) => (refusal.to_string(), exit::FAILURE),
        BundleRefusal::Inspect(_) => (refusal.to_string(), exit::USAGE),
    };
    Failure {
        message: format!("{message}; nothing was installed"),
        code,
    }
}

/// One line per install in the log, before the install starts.
fn record(
    running: &coffer_update::semver::Version,
    bundle: &Package,
    downgrade: bool,
    file: &Path,
) -> Result<(), Failure> {
    use std::io::Write;
    let entry = json!({
        "time": coffer_core::Timestamp::now(),
        "from": running.to_string(),
        "to": bundle.version.to_string(),
        "downgrade": downgrade,
        "format": bundle.format.name(),
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
