//! Whether a bundle may replace the running version: only a newer one, unless a downgrade
//! (or a reinstall of the same version) is explicitly asked for.

use semver::Version;

/// Which way a bundle moves the installed version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Upgrade,
    /// Older or the same: installed only when forced, and then logged.
    Downgrade,
}

/// A bundle that is not newer, when no downgrade was asked for.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the bundle is Coffer {bundle}, which is not newer than the running {running}")]
pub struct VersionRefusal {
    pub bundle: Version,
    pub running: Version,
}

/// The version of this build of Coffer (every crate shares the workspace version).
pub fn running() -> Version {
    // The workspace version is a literal in Cargo.toml that cargo has already parsed as semver.
    Version::parse(env!("CARGO_PKG_VERSION")).unwrap_or_else(|_| Version::new(0, 0, 0))
}

/// Decides whether `bundle` may replace `running`.
pub fn decide(
    running: &Version,
    bundle: &Version,
    allow_downgrade: bool,
) -> Result<Direction, VersionRefusal> {
    if bundle > running {
        Ok(Direction::Upgrade)
    } else if allow_downgrade {
        Ok(Direction::Downgrade)
    } else {
        Err(VersionRefusal {
            bundle: bundle.clone(),
            running: running.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn only_a_newer_version_is_an_upgrade() {
        assert_eq!(
            decide(&v("1.2.3"), &v("1.2.4"), false),
            Ok(Direction::Upgrade)
        );
        assert_eq!(
            decide(&v("1.2.3"), &v("2.0.0"), true),
            Ok(Direction::Upgrade)
        );
        for bundle in ["1.2.3", "1.2.2", "0.9.0", "1.2.3-rc.1"] {
            let refusal = decide(&v("1.2.3"), &v(bundle), false).unwrap_err();
            assert!(refusal
                .to_string()
                .contains("not newer than the running 1.2.3"));
            assert_eq!(
                decide(&v("1.2.3"), &v(bundle), true),
                Ok(Direction::Downgrade)
            );
        }
    }

    #[test]
    fn the_running_version_is_the_workspace_version() {
        assert_eq!(running().to_string(), env!("CARGO_PKG_VERSION"));
    }
}
