//! Installing a verified bundle: `pkexec coffer self-update` on the app's private copy.
//! The `coffer` beside the app checks the bundle again as root (against the same key),
//! records the install in `/var/log/coffer/updates.log` and runs `dpkg -i` or `rpm -U`.

use std::path::PathBuf;
use std::process::Command;

use coffer_update::Direction;

use super::ReadyBundle;
use crate::error::{AppError, AppResult};

/// The `coffer` CLI installed with this app (`/usr/bin/coffer` beside `/usr/bin/coffer-app`).
fn coffer_cli() -> AppResult<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| AppError::internal(format!("cannot find where Coffer is installed: {e}")))?;
    let cli = exe.with_file_name("coffer");
    if cli.is_file() {
        Ok(cli)
    } else {
        Err(AppError::new(
            "update_install",
            format!(
                "cannot install: the coffer command is not at {}; install Coffer from its package first",
                cli.display()
            ),
        ))
    }
}

pub fn install(ready: &ReadyBundle) -> AppResult<()> {
    let exe = std::env::current_exe()
        .map_err(|e| AppError::internal(format!("cannot find where Coffer is installed: {e}")))?;
    // A package would not replace a Coffer that no package installed (a build run from
    // its folder), and its own key file is missing too: say so instead of trying.
    if coffer_update::UpdateKey::installed_beside(&exe).is_err() {
        return Err(AppError::new(
            "update_install",
            format!(
                "Coffer {} is verified, but this Coffer ({}) was not installed from a package, so a package cannot replace it; nothing was installed",
                ready.bundle.package.version,
                exe.display()
            ),
        ));
    }
    let cli = coffer_cli()?;
    let signature = ready.bundle.dir().join("bundle.sig");
    std::fs::write(&signature, &ready.signature).map_err(|e| {
        AppError::internal(format!("cannot write the signature beside the bundle: {e}"))
    })?;
    let mut command = Command::new("pkexec");
    command
        .arg(&cli)
        .arg("self-update")
        .arg("--file")
        .arg(ready.bundle.copy())
        .arg("--signature")
        .arg(&signature);
    if ready.direction == Direction::Downgrade {
        eprintln!(
            "coffer: warning: installing Coffer {} over the newer or equal running version, as asked",
            ready.bundle.package.version
        );
        command.arg("--allow-downgrade");
    }
    let manual = format!(
        "sudo {} self-update --file BUNDLE{}",
        cli.display(),
        if ready.direction == Direction::Downgrade {
            " --allow-downgrade"
        } else {
            ""
        }
    );
    let output = command.output().map_err(|e| {
        AppError::new(
            "update_install",
            format!(
                "the update is verified, but installing it needs an administrator and pkexec cannot run ({e}); nothing was installed. Install it from a terminal: {manual}"
            ),
        )
    })?;
    match output.status.code() {
        Some(0) => Ok(()),
        // pkexec: 126 the administrator refused or dismissed the prompt, 127 not authorized.
        Some(126) | Some(127) => Err(AppError::new(
            "update_install",
            format!("the administrator password was not given; nothing was installed. You can also run: {manual}"),
        )),
        _ => Err(AppError::new(
            "update_install",
            format!(
                "installing the update failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        )),
    }
}
