//! What makes an update bundle installable, decided once for `coffer self-update` and the
//! app's "Check for updates" / "Install update from file…": its minisign signature verifies
//! with Coffer's update key ([`signature`]), it is the `coffer` .deb or .rpm ([`package`]),
//! and it is newer than the running version unless a downgrade is explicitly asked for
//! ([`version`]). Installing (and the privilege it needs) stays with the caller.
//!
//! [`check_bundle`] verifies the bytes it was given and then looks only at a private copy of
//! those bytes, so a file swapped after the check is never what gets inspected or installed.

pub mod package;
pub mod signature;
pub mod version;

pub use minisign_verify;
pub use semver;

use std::path::{Path, PathBuf};

pub use package::{Format, Package};
pub use signature::{SignatureRefusal, UpdateKey};
pub use version::{Direction, VersionRefusal};

/// Why a signed-and-verified set of bytes is still not a Coffer bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleRefusal {
    #[error("{0}")]
    Signature(#[from] SignatureRefusal),
    #[error("is signed but is neither a .deb nor an .rpm package")]
    NotAPackage,
    #[error("is the package {0:?}, not coffer")]
    OtherPackage(String),
    #[error("cannot make a private copy of the bundle: {0}")]
    Copy(std::io::Error),
    #[error("{0}")]
    Inspect(#[from] package::InspectError),
}

/// A bundle whose signature verified, as a private copy on disk with what it says it is.
pub struct VerifiedBundle {
    pub package: Package,
    /// Holds the copy; removed when this is dropped.
    dir: tempfile::TempDir,
    copy: PathBuf,
}

impl VerifiedBundle {
    /// The private copy of the verified bytes: the only file to install from.
    pub fn copy(&self) -> &Path {
        &self.copy
    }

    /// The folder holding the copy (private to this user, 0700).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Verifies `bytes` against `signature_text` with `key`, copies them into a private folder
/// and reads the package's name and version from that copy.
pub fn check_bundle(
    key: &UpdateKey,
    bytes: &[u8],
    signature_text: &str,
) -> Result<VerifiedBundle, BundleRefusal> {
    key.verify(bytes, signature_text)?;
    let format = Format::detect(bytes).ok_or(BundleRefusal::NotAPackage)?;
    let dir = tempfile::Builder::new()
        .prefix("coffer-update-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(BundleRefusal::Copy)?;
    let copy = dir.path().join(format.file_name());
    std::fs::write(&copy, bytes).map_err(BundleRefusal::Copy)?;
    let package = package::inspect(format, &copy)?;
    if package.name != "coffer" {
        return Err(BundleRefusal::OtherPackage(package.name));
    }
    Ok(VerifiedBundle { package, dir, copy })
}

/// Larger than any release; a bigger file is not a Coffer bundle.
pub const MAX_BUNDLE_BYTES: u64 = 1 << 30;

/// Why a bundle file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read the bundle {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than any Coffer bundle (over 1 GiB)")]
    TooLarge { path: PathBuf },
}

/// Reads a bundle once, refusing anything larger than [`MAX_BUNDLE_BYTES`].
pub fn read_bundle(path: &Path) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let unreadable = |source| ReadError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// Where a bundle's signature is when none is named: `BUNDLE.sig`.
pub fn default_signature_path(bundle: &Path) -> PathBuf {
    let mut name = bundle.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}
