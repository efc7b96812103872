//! A team across hosts: alice (the owner), bob and carol each in a network namespace of
//! their own, with their daemon *and* their commands there (a member's write is forwarded
//! by the command itself, and `team join` contacts the owner), so the only way between
//! them is the network. alice is joined to each member by a veth pair; members never talk
//! to each other. Needs root (CI runs as root); elsewhere it says so and checks nothing.
//!
//! The namespace plumbing follows `replication_netns.rs` (copied rather than shared, so
//! that file stays as it is).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_system_tests::{coffer_bin, exit, Env, Run, Spawned};
use serde_json::Value;

const PORT: u16 = 7443;
const TEAM: &str = "netns-team";
const FOLDER: &str = "team/payments/";

#[track_caller]
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_path() -> PathBuf {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("iproute2's ip")
}

/// Three namespaces; alice's is joined to bob's and to carol's by a veth pair each.
/// Deleted when dropped, however the test ends (deleting a namespace deletes its links).
struct Hosts {
    namespaces: Vec<String>,
}

/// alice's address towards `member` (index 1 or 2), and the member's.
fn addresses(member: u8) -> (String, String) {
    (format!("10.214.{member}.1"), format!("10.214.{member}.2"))
}

impl Hosts {
    fn new() -> Hosts {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let tag = format!("{:x}", std::process::id() ^ nanos);
        let namespaces: Vec<String> = ["alice", "bob", "carol"]
            .iter()
            .map(|m| format!("coffer-{tag}-{m}"))
            .collect();
        // Made one by one, each recorded before the next: a failure half-way still
        // deletes what exists.
        let mut hosts = Hosts {
            namespaces: Vec::new(),
        };
        for ns in &namespaces {
            ip(&["netns", "add", ns]);
            hosts.namespaces.push(ns.clone());
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        for member in [1u8, 2] {
            let (alice_link, member_link): (String, String) = (
                format!("cf{tag}a{member}").chars().take(15).collect(),
                format!("cf{tag}m{member}").chars().take(15).collect(),
            );
            let (alice_ns, member_ns) = (&namespaces[0], &namespaces[member as usize]);
            ip(&[
                "link",
                "add",
                &alice_link,
                "netns",
                alice_ns,
                "type",
                "veth",
                "peer",
                "name",
                &member_link,
                "netns",
                member_ns,
            ]);
            let (alice_addr, member_addr) = addresses(member);
            for (ns, link, addr) in [
                (alice_ns, &alice_link, alice_addr),
                (member_ns, &member_link, member_addr),
            ] {
                ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", link]);
                ip(&["-n", ns, "link", "set", link, "up"]);
            }
        }
        hosts
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `f` on a thread that has entered `netns`.
fn in_netns<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{netns}");
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).unwrap();
        // SAFETY: setns(2) on a valid descriptor; it moves only this thread.
        let entered = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap()
}

/// Makes a host swtpm reachable at the same port inside a namespace. Stops when dropped.
struct TpmRelay {
    stop: Arc<AtomicBool>,
}

impl TpmRelay {
    fn new(netns: &str, tcti: &str) -> TpmRelay {
        let port: u16 = tcti.rsplit("port=").next().unwrap().parse().unwrap();
        let listeners = in_netns(netns, move || {
            [port, port + 1].map(|p| TcpListener::bind(("127.0.0.1", p)).unwrap())
        });
        let stop = Arc::new(AtomicBool::new(false));
        for (listener, p) in listeners.into_iter().zip([port, port + 1]) {
            let stop = Arc::clone(&stop);
            listener.set_nonblocking(true).unwrap();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((inside, _)) => {
                            inside.set_nonblocking(false).unwrap();
                            if let Ok(host) = TcpStream::connect(("127.0.0.1", p)) {
                                pipe(inside, host);
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        Err(_) => return,
                    }
                }
            });
        }
        TpmRelay { stop }
    }
}

impl Drop for TpmRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn pipe(a: TcpStream, b: TcpStream) {
    for (mut from, mut to) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)] {
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}

/// A member on its own host: its vault, its namespace, its TPM relayed in, its daemon.
struct Member {
    env: Env,
    ns: String,
    region: &'static str,
    daemon: Option<Spawned>,
    _tpm: TpmRelay,
}

impl Member {
    fn new(ns: &str, region: &'static str) -> Member {
        let env = Env::new();
        env.init_with(&["--region", region]);
        let tpm = TpmRelay::new(ns, &env.tcti());
        Member {
            env,
            ns: ns.to_owned(),
            region,
            daemon: None,
            _tpm: tpm,
        }
    }

    /// `coffer ARGS` inside this member's namespace, with `stdin`.
    fn run(&self, args: &[&str], stdin: &[u8]) -> Run {
        let bin = coffer_bin();
        let mut all = vec!["netns", "exec", &self.ns, bin.to_str().unwrap()];
        all.extend_from_slice(args);
        self.env
            .cmd(all)
            .program(ip_path())
            .stdin(stdin.to_vec())
            .run()
    }

    fn coffer(&self, args: &[&str]) -> Run {
        self.run(args, b"")
    }

    fn start_daemon(&mut self, listen: &str) {
        let bin = coffer_bin();
        let args = vec![
            "netns",
            "exec",
            &self.ns,
            bin.to_str().unwrap(),
            "daemon",
            "--listen",
            listen,
            "--max-sleep",
            "1h",
        ];
        let daemon = self.env.cmd(args).program(ip_path()).spawn();
        eventually(
            &format!("{}'s daemon to listen", self.region),
            Duration::from_secs(60),
            || {
                let log = daemon.stderr();
                if log.contains("listening for peers") {
                    Ok(())
                } else {
                    Err(log)
                }
            },
        );
        self.daemon = Some(daemon);
    }

    fn log(&self) -> String {
        self.daemon
            .as_ref()
            .map(Spawned::stderr)
            .unwrap_or_default()
    }

    fn fingerprint(&self) -> String {
        self.coffer(&["region", "identity", "-o", "json"])
            .ok()
            .json()["fingerprint"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn value(&self, name: &str) -> Result<String, String> {
        let run = self.coffer(&["secret", "get", name]);
        if run.code() == exit::OK {
            Ok(String::from_utf8_lossy(&run.stdout).into_owned())
        } else {
            Err(run.to_string())
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(daemon) = self.daemon.as_mut() {
            daemon.sigkill();
            daemon.wait();
        }
    }
}

#[track_caller]
fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(seen) if start.elapsed() > limit => {
                panic!("{what} did not happen within {limit:?}; last seen: {seen}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: network namespaces need root");
    }
    root
}

fn role_of(info: &Value, member: &str) -> Option<String> {
    info["members"]
        .as_array()?
        .iter()
        .find(|m| m["region"] == member)?["roles"][FOLDER]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn a_writers_update_reaches_members_on_other_hosts() {
    if !running_as_root() {
        return;
    }
    let hosts = Hosts::new();
    let [alice_ns, bob_ns, carol_ns] = [0, 1, 2].map(|i| hosts.namespaces[i].clone());
    // Declared after `hosts`, so dropped first: daemons stop before their namespaces go.
    let mut alice = Member::new(&alice_ns, "alice");
    let mut bob = Member::new(&bob_ns, "bob");
    let mut carol = Member::new(&carol_ns, "carol");
    alice.start_daemon(&format!("0.0.0.0:{PORT}"));
    bob.start_daemon(&format!("{}:{PORT}", addresses(1).1));
    carol.start_daemon(&format!("{}:{PORT}", addresses(2).1));

    alice.coffer(&["team", "create", TEAM]).ok();
    for (member, index) in [(&bob, 1u8), (&carol, 2)] {
        let url = format!("https://{}:{PORT}", addresses(index).1);
        alice
            .coffer(&[
                "team",
                "invite",
                member.region,
                "--url",
                &url,
                "--fingerprint",
                &member.fingerprint(),
            ])
            .ok();
    }
    let alice_fp = alice.fingerprint();
    for (member, index) in [(&bob, 1u8), (&carol, 2)] {
        // Each member reaches alice at her address on its own link.
        let url = format!("https://{}:{PORT}", addresses(index).0);
        member
            .coffer(&[
                "team",
                "join",
                TEAM,
                "--owner",
                "alice",
                "--url",
                &url,
                "--fingerprint",
                &alice_fp,
            ])
            .ok();
    }
    alice.env.sensitive("netns-team-value-01");
    alice
        .run(
            &["secret", "create", "team/payments/db", "--value-file", "-"],
            b"netns-team-value-01",
        )
        .ok();
    for (member, role) in [(&bob, "reader"), (&carol, "writer")] {
        alice
            .coffer(&[
                "team",
                "share",
                FOLDER,
                "--member",
                member.region,
                "--role",
                role,
            ])
            .ok();
    }
    let logs = |a: &Member, b: &Member, c: &Member| {
        format!(
            "--- alice:\n{}\n--- bob:\n{}\n--- carol:\n{}",
            a.log(),
            b.log(),
            c.log()
        )
    };
    for (member, role) in [(&bob, "reader"), (&carol, "writer")] {
        eventually(
            &format!("{} to see its role and the secret", member.region),
            Duration::from_secs(60),
            || {
                let info = member
                    .coffer(&["team", "members", "-o", "json"])
                    .ok()
                    .json();
                match (
                    role_of(&info, member.region),
                    member.value("team/payments/db"),
                ) {
                    (Some(r), Ok(v)) if r == role && v == "netns-team-value-01" => Ok(()),
                    other => Err(format!("{other:?}\n{}", logs(&alice, &bob, &carol))),
                }
            },
        );
    }

    // Carol writes from her host: forwarded to alice over the link, then sent to all.
    carol.env.sensitive("netns-team-by-carol-2");
    carol
        .run(
            &["secret", "put", "team/payments/db", "--value-file", "-"],
            b"netns-team-by-carol-2",
        )
        .ok();
    for member in [&alice, &bob, &carol] {
        eventually(
            &format!("carol's value on {}", member.region),
            Duration::from_secs(60),
            || match member.value("team/payments/db") {
                Ok(v) if v == "netns-team-by-carol-2" => Ok(()),
                other => Err(format!("{other:?}\n{}", logs(&alice, &bob, &carol))),
            },
        );
    }
    // Bob, a reader, is refused from his host too, and nothing changes.
    let refused = bob.run(
        &["secret", "put", "team/payments/db", "--value-file", "-"],
        b"netns-bob-may-not-3",
    );
    assert!(
        refused.code() != exit::OK && refused.stderr.to_lowercase().contains("reader"),
        "{refused}"
    );
    assert_eq!(
        alice.value("team/payments/db").as_deref(),
        Ok("netns-team-by-carol-2")
    );

    // With alice's links down, carol's write is refused saying the primary is unreachable,
    // and reads keep working on every member.
    let alice_links = links_in(&alice_ns);
    for link in &alice_links {
        ip(&["-n", &alice_ns, "link", "set", link, "down"]);
    }
    let run = carol.run(
        &["secret", "put", "team/payments/db", "--value-file", "-"],
        b"netns-while-partitioned",
    );
    assert!(
        run.code() != exit::OK && run.stderr.to_lowercase().contains("reach"),
        "a write with the primary unreachable was not refused as such\n{run}"
    );
    assert_eq!(
        carol.value("team/payments/db").as_deref(),
        Ok("netns-team-by-carol-2")
    );
    assert_eq!(
        bob.value("team/payments/db").as_deref(),
        Ok("netns-team-by-carol-2")
    );
    for link in &alice_links {
        ip(&["-n", &alice_ns, "link", "set", link, "up"]);
    }
    drop((alice, bob, carol));
    drop(hosts);
}

/// The veth links in a namespace (every link but loopback).
fn links_in(ns: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-n", ns, "-o", "link", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split(':').nth(1))
        .map(|name| name.trim().split('@').next().unwrap_or("").to_owned())
        .filter(|name| !name.is_empty() && name != "lo")
        .collect()
}
