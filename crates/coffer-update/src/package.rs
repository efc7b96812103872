//! Which package format a bundle is, and the name and version the package tools read in it.

use std::path::Path;
use std::process::Command;

/// The package formats a bundle can be, told apart by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Deb,
    Rpm,
}

impl Format {
    pub fn detect(bytes: &[u8]) -> Option<Format> {
        if bytes.starts_with(b"!<arch>\ndebian-binary") {
            Some(Format::Deb)
        } else if bytes.starts_with(&[0xed, 0xab, 0xee, 0xdb]) {
            Some(Format::Rpm)
        } else {
            None
        }
    }

    pub fn file_name(self) -> &'static str {
        match self {
            Format::Deb => "coffer.deb",
            Format::Rpm => "coffer.rpm",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Deb => "deb",
            Format::Rpm => "rpm",
        }
    }
}

/// What a bundle says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub format: Format,
    pub name: String,
    pub version: semver::Version,
}

/// Why the package tools could not say what a bundle is.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot run {tool} to read the bundle ({source}); this bundle is for a system that has {tool}")]
    NoTool {
        tool: &'static str,
        source: std::io::Error,
    },
    #[error("{tool} cannot read the bundle: {message}")]
    Unreadable { tool: &'static str, message: String },
    #[error("{tool} printed no name and version for the bundle")]
    NoVersion { tool: &'static str },
    #[error("the bundle's version {0:?} is not a Coffer version (MAJOR.MINOR.PATCH)")]
    BadVersion(String),
}

/// The package's name and version, as `dpkg-deb` or `rpm` read them from `copy`.
pub fn inspect(format: Format, copy: &Path) -> Result<Package, InspectError> {
    let (tool, args): (&'static str, &[&str]) = match format {
        Format::Deb => (
            "dpkg-deb",
            &["--show", "--showformat=${Package} ${Version}"],
        ),
        Format::Rpm => ("rpm", &["-qp", "--queryformat", "%{NAME} %{VERSION}"]),
    };
    let output = Command::new(tool)
        .args(args)
        .arg(copy)
        .output()
        .map_err(|source| InspectError::NoTool { tool, source })?;
    if !output.status.success() {
        return Err(InspectError::Unreadable {
            tool,
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let (name, version) = text
        .trim()
        .split_once(' ')
        .ok_or(InspectError::NoVersion { tool })?;
    let version = semver::Version::parse(version)
        .map_err(|_| InspectError::BadVersion(version.to_owned()))?;
    Ok(Package {
        format,
        name: name.to_owned(),
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_first_bytes() {
        assert_eq!(
            Format::detect(b"!<arch>\ndebian-binary   0"),
            Some(Format::Deb)
        );
        assert_eq!(
            Format::detect(&[0xed, 0xab, 0xee, 0xdb, 3, 0]),
            Some(Format::Rpm)
        );
        assert_eq!(Format::detect(b"!<arch>\nother"), None);
        assert_eq!(Format::detect(b""), None);
    }
}
