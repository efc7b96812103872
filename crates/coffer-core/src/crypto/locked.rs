//! Key bytes in memory that stay put, stay out of swap where the OS allows, and are
//! wiped when dropped.
//!
//! A key stored inline in a struct is copied whenever the struct moves (a `HashMap`
//! that grows, a `Vault` returned by value), and each move leaves an unwiped copy behind.
//! A `LockedKey` lives in its own page-aligned heap page: moving it moves a pointer, and
//! the page can be `mlock`ed without affecting any other allocation (`munlock` on drop
//! cannot unlock a neighbour's page, since no neighbour shares it).

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroize;

use super::KEY_LEN;

const PAGE: usize = 4096;

#[repr(C, align(4096))]
struct Page([u8; PAGE]);

/// How many key pages could not be locked in memory (RLIMIT_MEMLOCK too low, or no
/// permission): shown by `coffer status`, because a failed `mlock` is a warning, not an
/// error.
static LOCK_FAILURES: AtomicU64 = AtomicU64::new(0);

pub fn lock_failures() -> u64 {
    LOCK_FAILURES.load(Ordering::Relaxed)
}

/// A 32-byte key in a page of its own.
pub struct LockedKey {
    page: Box<Page>,
    locked: bool,
}

impl LockedKey {
    /// A zeroed key page, locked in memory if the OS allows it; fill it with
    /// [`LockedKey::bytes_mut`] so the key is never in an unlocked buffer first.
    pub fn zeroed() -> Self {
        let mut page = Box::new(Page([0u8; PAGE]));
        let ptr = page.0.as_mut_ptr().cast::<libc::c_void>();
        // SAFETY: the pointer and length describe memory owned by `page`, which lives as
        // long as this struct; mlock does not read or write it.
        let locked = unsafe { libc::mlock(ptr, PAGE) } == 0;
        if !locked {
            LOCK_FAILURES.fetch_add(1, Ordering::Relaxed);
        }
        LockedKey { page, locked }
    }

    /// Copies `bytes` in; the caller wipes its own copy.
    pub fn from_slice(bytes: &[u8; KEY_LEN]) -> Self {
        let mut key = LockedKey::zeroed();
        key.bytes_mut().copy_from_slice(bytes);
        key
    }

    pub fn bytes_mut(&mut self) -> &mut [u8; KEY_LEN] {
        let head = &mut self.page.0[..KEY_LEN];
        // The slice is exactly KEY_LEN long, so the conversion cannot fail.
        match head.try_into() {
            Ok(array) => array,
            Err(_) => unreachable!("a {KEY_LEN}-byte slice"),
        }
    }

    /// Whether this page is locked in memory.
    pub fn is_locked(&self) -> bool {
        self.locked
    }
}

impl Deref for LockedKey {
    type Target = [u8; KEY_LEN];

    fn deref(&self) -> &Self::Target {
        match self.page.0[..KEY_LEN].try_into() {
            Ok(array) => array,
            Err(_) => unreachable!("a {KEY_LEN}-byte slice"),
        }
    }
}

impl Drop for LockedKey {
    fn drop(&mut self) {
        self.page.0.zeroize();
        if self.locked {
            let ptr = self.page.0.as_mut_ptr().cast::<libc::c_void>();
            // SAFETY: the same range that was locked in `zeroed`, still owned by us.
            unsafe {
                libc::munlock(ptr, PAGE);
            }
        }
    }
}

impl std::fmt::Debug for LockedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockedKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_has_a_page_of_its_own_and_survives_moves() {
        let key = LockedKey::from_slice(&[7u8; KEY_LEN]);
        let address = key.as_ptr() as usize;
        assert_eq!(address % PAGE, 0, "page-aligned");
        let mut moved = vec![key];
        moved.reserve(1000);
        assert_eq!(
            moved[0].as_ptr() as usize,
            address,
            "moving moves a pointer"
        );
        assert_eq!(*moved[0], [7u8; KEY_LEN]);
    }

    #[test]
    fn a_failed_lock_is_counted_not_fatal() {
        // Whatever RLIMIT_MEMLOCK is here, making many keys works; failures are counted.
        let before = lock_failures();
        let keys: Vec<LockedKey> = (0..64).map(|_| LockedKey::zeroed()).collect();
        let failed = keys.iter().filter(|k| !k.is_locked()).count() as u64;
        assert!(lock_failures() >= before + failed);
    }
}
