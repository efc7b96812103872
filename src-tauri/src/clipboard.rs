//! Copying a secret to the system clipboard, and clearing it after the timeout, but only if
//! the clipboard still holds what we put there (the user may have copied something else).
//! We remember a hash of the copied text, never the text.

use std::sync::Mutex;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{AppError, AppResult};

#[derive(Default)]
pub struct Clipboard {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Kept alive: on X11 the clipboard is served by this process while it lives.
    board: Option<arboard::Clipboard>,
    /// Hash of the text we copied last, and a counter so older timers do nothing.
    ours: Option<[u8; 32]>,
    generation: u64,
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn unavailable(error: arboard::Error) -> AppError {
    AppError::new(
        "clipboard_unavailable",
        format!("the system clipboard is not available ({error})"),
    )
}

impl Clipboard {
    /// Puts `text` on the clipboard; returns the generation to pass to [`Clipboard::clear_if_ours`].
    pub fn copy(&self, text: &str) -> AppResult<u64> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| AppError::internal("the clipboard state was damaged; restart Coffer"))?;
        if inner.board.is_none() {
            inner.board = Some(arboard::Clipboard::new().map_err(unavailable)?);
        }
        let board = inner
            .board
            .as_mut()
            .ok_or_else(|| AppError::internal("the clipboard could not be opened"))?;
        board.set_text(text.to_owned()).map_err(unavailable)?;
        inner.ours = Some(digest(text));
        inner.generation += 1;
        Ok(inner.generation)
    }

    /// Clears the clipboard if it still holds the text of copy `generation`. Returns whether
    /// it cleared.
    pub fn clear_if_ours(&self, generation: u64) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        if inner.generation != generation {
            return false;
        }
        let Some(ours) = inner.ours.take() else {
            return false;
        };
        let Some(board) = inner.board.as_mut() else {
            return false;
        };
        let current = board.get_text().map(Zeroizing::new);
        match current {
            Ok(text) if digest(&text) == ours => board.clear().is_ok(),
            _ => false,
        }
    }
}
