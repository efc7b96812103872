//! Who is on the other end of a Unix socket, as the kernel says (`SO_PEERCRED`).

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use crate::vault::Actor;

pub struct PeerCredentials {
    pub uid: u32,
    pub pid: u32,
}

pub fn credentials(stream: &UnixStream) -> io::Result<PeerCredentials> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the fd is a live socket owned by `stream`, and `cred`/`len` describe a
    // correctly sized, writable ucred buffer, as SO_PEERCRED requires.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCredentials {
        uid: cred.uid,
        pid: cred.pid as u32,
    })
}

impl PeerCredentials {
    /// The peer as the audit log should name it.
    pub fn actor(&self) -> Actor {
        let process = std::fs::read_to_string(format!("/proc/{}/comm", self.pid))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        Actor {
            uid: self.uid,
            pid: self.pid,
            process,
        }
    }
}
