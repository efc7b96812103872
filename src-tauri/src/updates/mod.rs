//! Updating Coffer from the app: online from an endpoint the user chose, or from a bundle
//! and its `.sig` on a USB stick. Off by default: with no endpoint set, the app never
//! contacts anything.
//!
//! What may be installed is decided by `coffer-update`, exactly as `coffer self-update`
//! decides it: a signature by Coffer's update key over the very bytes, the `coffer`
//! package, newer than the running version unless a downgrade is explicitly asked for.
//! Online, tauri-plugin-updater fetches the manifest and the bundle (and checks the
//! signature itself too), and then the downloaded bytes go through that same check: the
//! manifest's version is not signed, so only the package's own version counts.
//!
//! Installing needs root: the app runs `pkexec coffer self-update` on its private copy of
//! the verified bytes, so the privileged side checks everything once more and logs it.

pub mod install;
pub mod key;
pub mod preferences;

use std::sync::Mutex;

use coffer_update::{Direction, VerifiedBundle};

/// A bundle that passed every check and waits for the user's "Install and restart".
pub struct ReadyBundle {
    pub bundle: VerifiedBundle,
    /// The signature text, handed to the privileged `coffer self-update` with the bundle.
    pub signature: String,
    pub direction: Direction,
}

/// What the update screens hold between their steps.
#[derive(Default)]
pub struct UpdateState {
    /// The update the last check found online, for "Download".
    pub offered: Mutex<Option<tauri_plugin_updater::Update>>,
    /// The verified bundle, online or from a file, for "Install and restart".
    pub ready: Mutex<Option<ReadyBundle>>,
}
