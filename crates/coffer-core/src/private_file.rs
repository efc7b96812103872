//! Writing a file that may carry secrets or sealed payloads (`coffer inject -f`, replica
//! bundles and their acknowledgements, from the CLI and the app): whole or not at all,
//! never through a link, readable by the user alone. And reading such a file back with a
//! size limit, so a wrong file picked by mistake is refused before it is parsed.
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

/// Why a file could not be written or read; the message names the file and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FileError(String);

/// Writes `contents` to `path` whole, 0600, never through a link.
pub fn write(path: &Path, contents: &[u8]) -> Result<(), FileError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(FileError(format!(
                "{} is a symbolic link; Coffer does not write secrets through links: remove it, or name the file it points to",
                path.display()
            )))
        }
        Ok(meta) if !meta.is_file() => {
            return Err(FileError(format!(
                "{} exists and is not a regular file; name a file to write",
                path.display()
            )))
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(FileError(format!("cannot write {}: {e}", path.display())));
        }
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| FileError(format!("{} does not name a file", path.display())))?;
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
        FileError(format!("cannot write {}: {e}", path.display()))
    })
}

/// Reads `path` as text, refusing a file over `max` bytes: `what` names the kind of file
/// in the error ("bundle", "acknowledgement").
pub fn read_text(path: &Path, what: &str, max: usize) -> Result<String, FileError> {
    let cannot = |e: io::Error| FileError(format!("cannot read {what} {}: {e}", path.display()));
    let len = std::fs::metadata(path).map_err(cannot)?.len();
    if len > max as u64 {
        return Err(FileError(format!(
            "{} is {len} bytes, larger than any {what} Coffer writes; name the right file",
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == io::ErrorKind::InvalidData {
            FileError(format!(
                "{} is not a {what} Coffer wrote (it is not text); name the right file",
                path.display()
            ))
        } else {
            cannot(e)
        }
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
        assert!(error.0.contains("symbolic link"), "{}", error.0);
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
            .0
            .contains("not a regular file"));
        assert!(write(&dir.path().join("no/such/dir/f"), b"x")
            .unwrap_err()
            .0
            .contains("cannot write"));
    }

    #[test]
    fn reading_refuses_a_file_too_large_or_not_text() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 11]).unwrap();
        let error = read_text(&big, "bundle", 10).unwrap_err();
        assert!(error.0.contains("larger than any bundle"), "{}", error.0);
        assert_eq!(read_text(&big, "bundle", 11).unwrap().len(), 11);
        let binary = dir.path().join("photo.png");
        std::fs::write(&binary, [0x89, b'P', b'N', b'G', 0xff, 0xfe]).unwrap();
        let error = read_text(&binary, "bundle", 100).unwrap_err();
        assert!(error.0.contains("not a bundle Coffer wrote"), "{}", error.0);
        let error = read_text(&dir.path().join("missing"), "bundle", 100).unwrap_err();
        assert!(error.0.contains("cannot read bundle"), "{}", error.0);
    }
}
