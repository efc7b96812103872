//! Writing a file of rendered secrets (`coffer inject -f`): whole or not at all, never
//! through a link, readable by the user alone.
//!
//! The content goes to a new 0600 file beside the target (created with O_EXCL and
//! O_NOFOLLOW, so nothing planted there is opened), is flushed to disk, then renamed over
//! the target, and the directory is flushed so the rename survives a crash. A reader sees
//! the old file or the new one, never a partial one; a symlink planted at the target is
//! refused rather than followed (it could point at any file of the user's).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::failure::Failure;

pub fn write(path: &Path, contents: &[u8]) -> Result<(), Failure> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(Failure::usage(format!(
                "{} is a symbolic link; Coffer does not write secrets through links: remove it, or name the file it points to",
                path.display()
            )))
        }
        Ok(meta) if !meta.is_file() => {
            return Err(Failure::usage(format!(
                "{} exists and is not a regular file; name a file to write",
                path.display()
            )))
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Failure::usage(format!("cannot write {}: {e}", path.display())));
        }
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Failure::usage(format!("{} does not name a file", path.display())))?;
    let temp = dir.join(format!(
        ".{}.coffer-{}.tmp",
        name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        File::open(&dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        Failure::usage(format!("cannot write {}: {e}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_planted_symlink_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = dir.path().join("out.yml");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        let error = write(&out, b"secret: x").unwrap_err();
        assert!(error.message.contains("symbolic link"), "{}", error.message);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let mode = std::fs::metadata(&victim).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "the victim's mode was changed");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temp file left"
        );
    }

    #[test]
    fn an_existing_file_is_replaced_whole_and_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("config.yml");
        std::fs::write(&out, "old contents that are longer than the new ones").unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
        // A reader holding the old file keeps reading the old, whole contents.
        let held = File::open(&out).unwrap();
        write(&out, b"new").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let old = std::io::read_to_string(held).unwrap();
        assert!(old.starts_with("old contents"), "{old}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn a_directory_or_missing_parent_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write(dir.path(), b"x")
            .unwrap_err()
            .message
            .contains("not a regular file"));
        assert!(write(&dir.path().join("no/such/dir/f"), b"x")
            .unwrap_err()
            .message
            .contains("cannot write"));
    }
}
