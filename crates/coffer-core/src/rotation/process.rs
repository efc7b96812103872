//! Running a `command` rotator's program: one step, bounded in time, with nothing of ours
//! leaking into it.
//!
//! - Its own process group, killed whole when the step ends, however it ends: a script
//!   that starts a background job (`sleep 600 &`) must not outlive the step, nor keep us
//!   waiting for the end of its output.
//! - Output is read without blocking, up to the deadline: a grandchild that keeps stdout
//!   open cannot stretch a step past its timeout.
//! - A cleared environment plus a short allow-list: no `XDG_RUNTIME_DIR` or `COFFER_*`,
//!   with which it could ask the unlocked agent for every other secret.
//! - No file descriptors beyond stdin, stdout and stderr.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

/// The variables a rotator inherits: what a program needs to find tools, write
/// temporary files and speak the user's language; nothing about Coffer or the session.
pub const INHERITED_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
];

/// How long output is still read after the program exits (its pipe may hold a last
/// write); its process group is already gone by then.
const DRAIN: Duration = Duration::from_millis(200);

pub enum Outcome {
    Exited {
        status: ExitStatus,
        stdout: Zeroizing<Vec<u8>>,
    },
    TimedOut,
}

/// Runs `path args…` with `input` on stdin; at most `max_output` bytes of stdout are
/// kept, stderr is discarded.
pub fn run(
    path: &str,
    args: &[&str],
    input: &[u8],
    timeout: Duration,
    max_output: usize,
) -> io::Result<Outcome> {
    let mut command = Command::new(path);
    command
        .args(args)
        .env_clear()
        .envs(allowed_env())
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe system calls run between fork and exec.
    unsafe {
        command.pre_exec(|| {
            close_inherited_fds();
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let group = libc::pid_t::try_from(child.id()).unwrap_or(0);
    let deadline = Instant::now() + timeout;

    let stdin = child.stdin.take();
    let request = Zeroizing::new(input.to_vec());
    // On a thread: a program that never reads its stdin must not block us; the write
    // fails (EPIPE) once the group is killed.
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&request);
        }
    });

    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("the rotator's stdout was not captured"))?;
    set_nonblocking(stdout.as_raw_fd())?;
    let mut buffer = Zeroizing::new(Vec::with_capacity(max_output));
    let mut chunk = Zeroizing::new([0u8; 8192]);
    let mut exited: Option<(ExitStatus, Instant)> = None;
    let mut eof = false;
    loop {
        let now = Instant::now();
        if exited.is_none() {
            if let Some(status) = child.try_wait()? {
                kill_group(group);
                exited = Some((status, (now + DRAIN).min(deadline.max(now))));
            } else if now >= deadline {
                kill_group(group);
                let _ = child.kill();
                let _ = child.wait();
                let _ = writer.join();
                return Ok(Outcome::TimedOut);
            }
        }
        if let Some((status, drain_until)) = exited {
            if eof || now >= drain_until {
                let _ = writer.join();
                return Ok(Outcome::Exited {
                    status,
                    stdout: buffer,
                });
            }
        }
        if eof {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        wait_readable(stdout.as_raw_fd(), Duration::from_millis(10));
        match stdout.read(chunk.as_mut()) {
            Ok(0) => eof = true,
            Ok(n) => {
                let room = max_output.saturating_sub(buffer.len());
                buffer.extend_from_slice(&chunk[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => eof = true,
        }
    }
}

fn allowed_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(name, _)| {
            let name = name.to_string_lossy();
            INHERITED_ENV.contains(&name.as_ref()) || name.starts_with("LC_")
        })
        .collect()
}

fn kill_group(group: libc::pid_t) {
    if group > 0 {
        // SAFETY: kill(2) has no memory-safety preconditions; a negative pid names the
        // process group we created for this program.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
}

fn set_nonblocking(fd: i32) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn wait_readable(fd: i32, limit: Duration) {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd.
    unsafe {
        libc::poll(&mut poll, 1, millis);
    }
}

/// In the child, before exec: closes every descriptor above stderr.
fn close_inherited_fds() {
    // SAFETY: close_range and close are async-signal-safe; nothing else runs here.
    unsafe {
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            // Kernels before 5.9: close them one by one.
            for fd in 3..65_536 {
                libc::close(fd);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn script(dir: &std::path::Path, body: &str) -> String {
        let path = dir.join("rotator.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    fn stdout_of(outcome: Outcome) -> String {
        match outcome {
            Outcome::Exited { stdout, .. } => String::from_utf8(stdout.to_vec()).unwrap(),
            Outcome::TimedOut => panic!("timed out"),
        }
    }

    #[test]
    fn a_background_child_holding_stdout_does_not_stretch_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(dir.path(), "sleep 20 &\necho '{\"value\": \"x\"}'");
        let started = Instant::now();
        let outcome = run(&path, &[], b"", Duration::from_secs(3), 1024).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(stdout_of(outcome).contains("\"value\""));
    }

    #[test]
    fn a_program_that_runs_past_its_timeout_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survivor");
        let path = script(
            dir.path(),
            &format!("(sleep 2; touch {}) &\nsleep 30", marker.display()),
        );
        let started = Instant::now();
        let outcome = run(&path, &[], b"", Duration::from_millis(500), 1024).unwrap();
        assert!(matches!(outcome, Outcome::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(2));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "a child of the rotator outlived the step");
    }

    #[test]
    fn the_environment_is_cleared_to_the_allow_list() {
        std::env::set_var("COFFER_TEST_LEAK", "leaked");
        let dir = tempfile::tempdir().unwrap();
        let path = script(dir.path(), "env");
        let env = stdout_of(run(&path, &[], b"", Duration::from_secs(10), 65536).unwrap());
        assert!(!env.contains("COFFER_TEST_LEAK"), "{env}");
        assert!(!env.contains("XDG_RUNTIME_DIR="), "{env}");
        assert!(env.contains("PATH="), "{env}");
        for line in env.lines() {
            let name = line.split('=').next().unwrap_or_default();
            assert!(
                INHERITED_ENV.contains(&name)
                    || name.starts_with("LC_")
                    || name == "PWD"
                    || name == "SHLVL"
                    || name == "_",
                "{name} was inherited"
            );
        }
    }

    #[test]
    fn only_stdin_stdout_and_stderr_are_inherited() {
        // A descriptor of ours without close-on-exec, as a C library might leave one.
        let file = std::fs::File::open("/dev/null").unwrap();
        let fd = file.as_raw_fd();
        // SAFETY: clearing FD_CLOEXEC on a descriptor we own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        let dir = tempfile::tempdir().unwrap();
        let path = script(dir.path(), "ls /proc/self/fd");
        let fds = stdout_of(run(&path, &[], b"", Duration::from_secs(10), 65536).unwrap());
        let mut seen: Vec<u32> = fds.lines().filter_map(|l| l.trim().parse().ok()).collect();
        seen.sort();
        // ls itself opens one directory descriptor to list /proc/self/fd.
        assert!(seen.iter().filter(|&&n| n > 2).count() <= 1, "{seen:?}");
        drop(file);
    }

    #[test]
    fn stdin_reaches_the_program_and_output_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(dir.path(), "cat; head -c 5000 /dev/zero");
        match run(&path, &[], b"hello", Duration::from_secs(10), 100).unwrap() {
            Outcome::Exited { stdout, status } => {
                assert!(status.success());
                assert_eq!(stdout.len(), 100);
                assert!(stdout.starts_with(b"hello"));
            }
            Outcome::TimedOut => panic!("timed out"),
        }
    }
}
