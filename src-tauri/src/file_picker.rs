//! The native file chooser, for the files the user carries between vaults (replica
//! bundles and acknowledgements). The backend asks for the file and reads or writes it
//! itself: the web view never names a path to write.
//!
//! TEST-ONLY PATH: when `COFFER_TEST_FILE_PICKER` names a file, the chooser is not shown;
//! the path written in that file is the answer (the file is removed, so each answer is used
//! once), and no file there means "cancelled". WebDriver cannot drive a native dialog; with
//! this the end-to-end suite still runs the real export and import code. Only debug builds
//! look at it (the suite runs one; `tests/e2e/run.sh` sets it); release builds ignore it.

use std::path::PathBuf;

use gtk::prelude::{FileChooserExt, NativeDialogExt};
use tauri::{AppHandle, Manager};

use crate::error::{AppError, AppResult};

/// What the chooser is for.
pub enum Pick<'a> {
    /// An existing file to read.
    Open,
    /// Where to write, with the file name proposed.
    Save { suggested: &'a str },
}

/// Asks the user for a file; `None` when they cancel.
pub async fn pick(app: &AppHandle, title: &str, pick: Pick<'_>) -> AppResult<Option<PathBuf>> {
    // Debug builds only (the end-to-end suite runs one): a release build never lets its
    // environment choose the files it reads and writes.
    if cfg!(debug_assertions) {
        if let Some(answers) = std::env::var_os("COFFER_TEST_FILE_PICKER") {
            return Ok(test_answer(PathBuf::from(answers)));
        }
    }
    let (action, accept, suggested) = match pick {
        Pick::Open => (gtk::FileChooserAction::Open, "Open", None),
        Pick::Save { suggested } => (
            gtk::FileChooserAction::Save,
            "Save",
            Some(suggested.to_owned()),
        ),
    };
    let title = title.to_owned();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = app.clone();
    app.run_on_main_thread(move || {
        let parent = handle
            .get_webview_window("main")
            .and_then(|window| window.gtk_window().ok());
        let dialog = gtk::FileChooserNative::new(
            Some(&title),
            parent.as_ref(),
            action,
            Some(accept),
            Some("Cancel"),
        );
        if let Some(name) = &suggested {
            dialog.set_do_overwrite_confirmation(true);
            dialog.set_current_name(name);
        }
        let chosen = (dialog.run() == gtk::ResponseType::Accept)
            .then(|| dialog.filename())
            .flatten();
        dialog.destroy();
        let _ = tx.send(chosen);
    })
    .map_err(|e| AppError::internal(format!("the file chooser could not open: {e}")))?;
    rx.await
        .map_err(|_| AppError::internal("the file chooser closed without an answer"))
}

/// The test-only answer (see the module's doc): the path in `answers`, used once.
fn test_answer(answers: PathBuf) -> Option<PathBuf> {
    let text = std::fs::read_to_string(&answers).ok()?;
    let _ = std::fs::remove_file(&answers);
    let path = text.trim();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_answer_is_used_once_and_none_means_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let answers = dir.path().join("answer");
        assert_eq!(test_answer(answers.clone()), None);
        std::fs::write(&answers, "/tmp/bundle.json\n").unwrap();
        assert_eq!(
            test_answer(answers.clone()),
            Some(PathBuf::from("/tmp/bundle.json"))
        );
        assert_eq!(test_answer(answers), None);
    }
}
