//! Settings of a process that will hold plaintext keys.

use std::io;

/// Keeps keys and values out of core dumps, and other processes of the same user from
/// attaching a debugger (`ptrace`) or reading `/proc/PID/mem`: a non-dumpable process's
/// `/proc` entries belong to root. Call it first thing in every process that may unseal
/// keys (the CLI, the agent, the daemon, the app). Children that `exec` get the default
/// back, so rotators and `coffer run`'s command are unaffected.
pub fn harden() -> io::Result<()> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on this process with valid arguments.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_CORE, &zero) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether [`harden`] is in force (for `coffer status`).
pub fn is_hardened() -> bool {
    // SAFETY: PR_GET_DUMPABLE takes no pointer arguments.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hardened_process_is_not_dumpable_and_has_no_core_limit() {
        // Runs in a child so the test process itself stays debuggable.
        // SAFETY: fork in a test; the child only makes system calls and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ok = super::harden().is_ok() && super::is_hardened();
            let mut limit = libc::rlimit {
                rlim_cur: 1,
                rlim_max: 1,
            };
            // SAFETY: a valid out-pointer.
            let core_zero = unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) } == 0
                && limit.rlim_cur == 0;
            // SAFETY: leave the forked child without running the parent's destructors.
            unsafe { libc::_exit(if ok && core_zero { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        assert!(
            !super::is_hardened(),
            "the test process itself was left alone"
        );
    }
}
