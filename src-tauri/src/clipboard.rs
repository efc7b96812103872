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
    /// Puts `text` on the clipboard, marked so that clipboard managers keep it out of
    /// their history (`x-kde-passwordManagerHint`); returns the generation to pass to
    /// [`Clipboard::clear_if_ours`].
    pub fn copy(&self, text: &str) -> AppResult<u64> {
        use arboard::SetExtLinux;
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
        board
            .set()
            .exclude_from_history()
            .text(text.to_owned())
            .map_err(unavailable)?;
        inner.ours = Some(digest(text));
        inner.generation += 1;
        Ok(inner.generation)
    }

    /// Clears the clipboard if it still holds the text of copy `generation` (the timer
    /// after a copy). Returns whether it cleared.
    pub fn clear_if_ours(&self, generation: u64) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        if inner.generation != generation {
            return false;
        }
        inner.clear_if_ours()
    }

    /// Clears the clipboard now if it still holds the last text we copied (on lock and
    /// on exit). Returns whether it cleared.
    pub fn clear_now_if_ours(&self) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        inner.clear_if_ours()
    }
}

impl Inner {
    /// The record of what we copied is kept until a clear has succeeded, so a clipboard
    /// that was briefly unreachable is still cleared by the next attempt (lock, exit).
    fn clear_if_ours(&mut self) -> bool {
        let Some(ours) = self.ours else {
            return false;
        };
        let Some(board) = self.board.as_mut() else {
            return false;
        };
        match board.get_text().map(Zeroizing::new) {
            Ok(text) if digest(&text) == ours => {
                let cleared = board.clear().is_ok();
                if cleared {
                    self.ours = None;
                }
                cleared
            }
            // Someone copied something else, or it is empty: not ours any more.
            Ok(_) | Err(arboard::Error::ContentNotAvailable) => {
                self.ours = None;
                false
            }
            Err(_) => false,
        }
    }
}
