//! Which programs a `command` rotator may run.
//!
//! A rotator receives the secret's values on stdin. If someone other than the user (or
//! root) can write the program, or replace it through a directory on its path, they can
//! make it run their code with those values. So the file and every directory above it
//! must belong to the user or root and be writable by nobody else (a sticky directory
//! such as /tmp is fine for the directories: others cannot rename or remove what is not
//! theirs there). Checked when a rotator is saved and again before every step, because
//! ownership and modes can change in between.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const GROUP_OR_WORLD_WRITABLE: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// Refuses a rotator program that is not an absolute path to an executable file that
/// only the user or root can change. The reason names the path and the fix.
pub fn check(path: &str) -> Result<(), String> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    check_for(path, uid)
}

fn check_for(path: &str, uid: u32) -> Result<(), String> {
    let path = Path::new(path);
    if !path.is_absolute() {
        return Err(format!(
            "the rotator command {:?} is not an absolute path; give the full path, like /usr/local/bin/rotate-db",
            path.display()
        ));
    }
    let file = std::fs::metadata(path).map_err(|e| {
        format!(
            "the rotator command {:?} cannot be used: {e}",
            path.display()
        )
    })?;
    if !file.is_file() || file.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "the rotator command {:?} is not an executable file (chmod +x it, or name another)",
            path.display()
        ));
    }
    let trusted_owner = |owner: u32| owner == uid || owner == 0;
    if !trusted_owner(file.uid()) {
        return Err(format!(
            "the rotator command {:?} belongs to uid {}, not to you or root: another user could change what it does with your values; copy it somewhere of yours",
            path.display(),
            file.uid()
        ));
    }
    if file.permissions().mode() & GROUP_OR_WORLD_WRITABLE != 0 {
        return Err(format!(
            "the rotator command {:?} can be changed by other users (mode {:o}); run chmod go-w on it",
            path.display(),
            file.permissions().mode() & 0o7777
        ));
    }
    // The file as it is reached: a symlink's target is what runs, and its directories
    // are the ones that could be used to swap it.
    let resolved = std::fs::canonicalize(path).map_err(|e| {
        format!(
            "the rotator command {:?} cannot be used: {e}",
            path.display()
        )
    })?;
    for dir in resolved.ancestors().skip(1) {
        let meta = std::fs::metadata(dir)
            .map_err(|e| format!("the directory {:?} cannot be checked: {e}", dir.display()))?;
        let mode = meta.permissions().mode();
        let others_can_swap = mode & GROUP_OR_WORLD_WRITABLE != 0 && mode & STICKY == 0;
        if !trusted_owner(meta.uid()) || others_can_swap {
            return Err(format!(
                "the rotator command {:?} is in {:?}, which other users can change (owner uid {}, mode {:o}); keep rotators in a directory only you or root can write",
                path.display(),
                dir.display(),
                meta.uid(),
                mode & 0o7777
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, mode: u32) -> String {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.display().to_string()
    }

    fn private_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    #[test]
    fn a_private_executable_is_accepted() {
        let dir = private_dir();
        check(&script(dir.path(), "ok.sh", 0o755)).unwrap();
        check("/bin/sh").unwrap();
    }

    #[test]
    fn a_group_or_world_writable_program_is_refused() {
        let dir = private_dir();
        for mode in [0o775, 0o757, 0o777] {
            let path = script(dir.path(), &format!("w{mode:o}.sh"), mode);
            let error = check(&path).unwrap_err();
            assert!(error.contains("chmod go-w"), "{mode:o}: {error}");
        }
    }

    #[test]
    fn a_program_in_a_directory_others_can_write_is_refused() {
        let dir = private_dir();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = check(&script(&shared, "x.sh", 0o755)).unwrap_err();
        assert!(error.contains("other users can change"), "{error}");
        // Sticky, like /tmp: others cannot swap what is not theirs.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        check(&shared.join("x.sh").display().to_string()).unwrap();
    }

    #[test]
    fn a_program_of_another_user_is_refused() {
        let dir = private_dir();
        let path = script(dir.path(), "theirs.sh", 0o755);
        // SAFETY: getuid has no preconditions.
        let error = if unsafe { libc::getuid() } == 0 {
            // As root (CI), give the file to nobody: root trusts only itself.
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
            check(&path).unwrap_err()
        } else {
            // As a user, ask as someone who is neither the owner nor root.
            check_for(&path, 4242).unwrap_err()
        };
        assert!(error.contains("not to you or root"), "{error}");
    }

    #[test]
    fn relative_and_missing_paths_say_what_to_do() {
        assert!(check("rotate.sh").unwrap_err().contains("absolute path"));
        assert!(check("/nonexistent/rotate.sh")
            .unwrap_err()
            .contains("cannot be used"));
    }
}
