//! Replication between two hosts: each region's daemon runs in its own network namespace
//! (iproute2), joined by a veth pair; a link taken down partitions them, and they
//! converge once it is up again; over a link that loses packets (nftables) and adds 50 ms
//! (a delaying relay, as this kernel has no `sch_netem`) they converge too. Needs root (CI
//! runs as root); elsewhere it says so and checks nothing.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_system_tests::{coffer_bin, Env, Spawned};
use coffer_testkit::DelayLink;
use serde_json::Value;

const HOME_ADDR: &str = "10.213.0.1";
const LAB_ADDR: &str = "10.213.0.2";

#[track_caller]
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces and the veth pair between them, deleted when dropped (however the
/// test ends).
struct Hosts {
    home: String,
    lab: String,
    home_link: String,
    lab_link: String,
}

impl Hosts {
    fn new() -> Hosts {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let tag = format!("{:x}", std::process::id() ^ nanos);
        let hosts = Hosts {
            home: format!("coffer-{tag}-home"),
            lab: format!("coffer-{tag}-lab"),
            home_link: format!("cf{tag}h").chars().take(15).collect(),
            lab_link: format!("cf{tag}l").chars().take(15).collect(),
        };
        ip(&["netns", "add", &hosts.home]);
        ip(&["netns", "add", &hosts.lab]);
        ip(&[
            "link",
            "add",
            &hosts.home_link,
            "netns",
            &hosts.home,
            "type",
            "veth",
            "peer",
            "name",
            &hosts.lab_link,
            "netns",
            &hosts.lab,
        ]);
        for (ns, link, addr) in [
            (&hosts.home, &hosts.home_link, HOME_ADDR),
            (&hosts.lab, &hosts.lab_link, LAB_ADDR),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", link]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", link, "up"]);
        }
        hosts
    }

    /// Drops `percent` % of the packets that arrive over the veth pair, on both hosts
    /// (nftables; loopback inside each namespace is left alone).
    fn lose_packets(&self, percent: u8) {
        for (ns, link) in [(&self.home, &self.home_link), (&self.lab, &self.lab_link)] {
            let rules = format!(
                "table inet coffer_wan {{\n chain input {{\n  type filter hook input priority 0; \
                 policy accept;\n  iifname \"{link}\" numgen random mod 100 < {percent} drop\n }}\n}}\n"
            );
            let mut nft = Command::new("ip")
                .args(["netns", "exec", ns, "nft", "-f", "-"])
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("ip netns exec nft (install nftables)");
            nft.stdin
                .take()
                .unwrap()
                .write_all(rules.as_bytes())
                .unwrap();
            let out = nft.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "nft in {ns}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn home_link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.home, "link", "set", &self.home_link, state]);
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth pair with it.
        for ns in [&self.home, &self.lab] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `f` on a thread that has entered `netns`; sockets it creates, and threads it
/// starts, belong to that namespace. The calling thread stays where it is.
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

/// Makes a swtpm of the host reachable at the same port inside a namespace (each
/// namespace has its own loopback): listeners bound in the namespace, connections made
/// from the host. Stops when dropped.
struct TpmRelay {
    stop: Arc<AtomicBool>,
}

impl TpmRelay {
    fn new(netns: &str, tcti: &str) -> TpmRelay {
        let port: u16 = tcti.rsplit("port=").next().unwrap().parse().unwrap();
        // Bound inside the namespace; connections are then made from the host. The swtpm
        // TCTI uses the port and the next one (control).
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

/// `coffer daemon …` inside a namespace, killed when dropped.
struct Daemon(Spawned);

impl Daemon {
    fn start(env: &Env, netns: &str, extra: &[&str]) -> Daemon {
        let bin = coffer_bin();
        let mut args = vec![
            "netns",
            "exec",
            netns,
            bin.to_str().unwrap(),
            "daemon",
            "--max-sleep",
            "1h",
        ];
        args.extend_from_slice(extra);
        // The child's environment is cleared, so `ip` is named by its path.
        let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("iproute2's ip");
        Daemon(env.cmd(args).program(ip).spawn())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.0.sigkill();
        self.0.wait();
    }
}

#[track_caller]
fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(seen) if start.elapsed() > limit => {
                panic!("{what} never happened; last seen: {seen}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn value_on(env: &Env, name: &str) -> Result<String, String> {
    let run = env.coffer(&["secret", "get", name]);
    if run.code() == 0 {
        Ok(String::from_utf8_lossy(&run.stdout).into_owned())
    } else {
        Err(run.text())
    }
}

fn fingerprint(env: &Env) -> String {
    env.coffer(&["region", "identity", "-o", "json"])
        .ok()
        .json()["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn shape(describe: &Value) -> Value {
    let mut versions: Vec<Value> = describe["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| serde_json::json!([v["version_id"], v["labels"]]))
        .collect();
    versions.sort_by_key(|v| v.to_string());
    serde_json::json!({ "versions": versions, "tags": describe["tags"] })
}

/// Two initialised regions, each with its daemon in its own namespace, paired both ways:
/// `home` (eu-home-1) pushes, `lab` (us-lab-1) listens on `LAB_ADDR:PORT`. The home
/// region reaches the lab at `lab_port` (the listener itself, or a relay in front of it).
struct Regions {
    home: Env,
    lab: Env,
    // Dropped first: daemons stop before their TPM relays go.
    home_daemon: Daemon,
    lab_daemon: Daemon,
    _tpms: [TpmRelay; 2],
}

const PORT: u16 = 7443;

impl Regions {
    fn start(hosts: &Hosts, lab_port: u16) -> Regions {
        let (home, lab) = (Env::new(), Env::new());
        home.init_with(&["--region", "eu-home-1"]);
        lab.init_with(&["--region", "us-lab-1"]);
        let (home_fp, lab_fp) = (fingerprint(&home), fingerprint(&lab));
        home.coffer(&[
            "region",
            "add",
            "us-lab-1",
            "--url",
            &format!("https://{LAB_ADDR}:{lab_port}"),
            "--fingerprint",
            &lab_fp,
        ])
        .ok();
        lab.coffer(&[
            "region",
            "add",
            "eu-home-1",
            "--url",
            &format!("https://{HOME_ADDR}:{PORT}"),
            "--fingerprint",
            &home_fp,
        ])
        .ok();
        let tpms = [
            TpmRelay::new(&hosts.home, &home.tcti()),
            TpmRelay::new(&hosts.lab, &lab.tcti()),
        ];
        let lab_daemon = Daemon::start(
            &lab,
            &hosts.lab,
            &["--listen", &format!("{LAB_ADDR}:{PORT}")],
        );
        let home_daemon = Daemon::start(&home, &hosts.home, &[]);
        eventually("the lab daemon to listen", Duration::from_secs(60), || {
            let log = lab_daemon.0.stderr();
            if log.contains("listening for peers") {
                Ok(())
            } else {
                Err(log)
            }
        });
        Regions {
            home,
            lab,
            home_daemon,
            lab_daemon,
            _tpms: tpms,
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

#[test]
fn regions_on_separate_hosts_converge_after_a_partition_heals() {
    if !running_as_root() {
        return;
    }
    let hosts = Hosts::new();
    let Regions {
        home,
        lab,
        home_daemon,
        lab_daemon,
        _tpms,
    } = Regions::start(&hosts, PORT);

    home.sensitive("netns-value-0001");
    home.create("db/password", b"netns-value-0001");
    home.coffer(&["secret", "replicate", "db/password", "--region", "us-lab-1"])
        .ok();
    eventually(
        "the first value on the lab host",
        Duration::from_secs(60),
        || match value_on(&lab, "db/password") {
            Ok(v) if v == "netns-value-0001" => Ok(()),
            other => Err(format!("{other:?}; home: {}", home_daemon.0.stderr())),
        },
    );

    // Partition: changes pile up on the primary and the region shows why.
    hosts.home_link(false);
    home.sensitive("netns-value-0002");
    home.put("db/password", b"netns-value-0002");
    home.coffer(&["secret", "tag", "db/password", "site=home"])
        .ok();
    eventually(
        "the primary to see the region unreachable",
        Duration::from_secs(60),
        || {
            let status = home.describe("db/password")["replication"]["regions"][0].clone();
            if status["status"] == "Failed" && status["pending"].as_u64() > Some(0) {
                Ok(())
            } else {
                Err(status.to_string())
            }
        },
    );
    assert_eq!(value_on(&lab, "db/password").unwrap(), "netns-value-0001");

    // Healed: the backlog goes through (retries back off up to a minute).
    hosts.home_link(true);
    eventually(
        "convergence after the partition",
        Duration::from_secs(120),
        || {
            let status = home.describe("db/password")["replication"]["regions"][0].clone();
            match value_on(&lab, "db/password") {
                Ok(v) if v == "netns-value-0002" && status["status"] == "InSync" => Ok(()),
                other => Err(format!("{other:?}, {status}")),
            }
        },
    );
    assert_eq!(
        shape(&lab.describe("db/password")),
        shape(&home.describe("db/password"))
    );
    drop(home_daemon);
    drop(lab_daemon);
}

#[test]
fn regions_converge_over_a_slow_link_that_loses_packets() {
    if !running_as_root() {
        return;
    }
    let hosts = Hosts::new();
    hosts.lose_packets(5);
    // 50 ms on the way from home to lab, as `tc netem delay 50ms` on home's egress would.
    let relay_port = PORT + 1;
    let _wan = in_netns(&hosts.lab, move || {
        DelayLink::start(
            format!("{LAB_ADDR}:{relay_port}").parse().unwrap(),
            format!("{LAB_ADDR}:{PORT}").parse().unwrap(),
            Duration::from_millis(50),
        )
    });
    let regions = Regions::start(&hosts, relay_port);
    let (home, lab) = (&regions.home, &regions.lab);

    let names: Vec<String> = (0..8).map(|i| format!("wan/service-{i}/token")).collect();
    for (i, name) in names.iter().enumerate() {
        let value = format!("wan-first-value-{i:04}");
        home.sensitive(&value);
        home.create(name, value.as_bytes());
        home.coffer(&["secret", "replicate", name, "--region", "us-lab-1"])
            .ok();
    }
    // Changes of every kind while the first transfer is still on its way.
    for (i, name) in names.iter().enumerate().take(4) {
        let value = format!("wan-second-value-{i:04}");
        home.sensitive(&value);
        home.put(name, value.as_bytes());
    }
    home.coffer(&["secret", "tag", &names[5], "tier=wan"]).ok();
    home.coffer(&[
        "secret",
        "delete",
        &names[7],
        "--force-delete-without-recovery",
    ])
    .ok();

    eventually(
        "every region in sync over the lossy link",
        Duration::from_secs(240),
        || {
            for name in &names[..7] {
                let status = home.describe(name)["replication"]["regions"][0].clone();
                if status["status"] != "InSync" {
                    return Err(format!(
                        "{name}: {status}; home: {}",
                        regions.home_daemon.0.stderr()
                    ));
                }
            }
            Ok(())
        },
    );
    for (i, name) in names.iter().enumerate().take(7) {
        let expected = if i < 4 {
            format!("wan-second-value-{i:04}")
        } else {
            format!("wan-first-value-{i:04}")
        };
        assert_eq!(value_on(lab, name).as_deref(), Ok(expected.as_str()));
        assert_eq!(shape(&lab.describe(name)), shape(&home.describe(name)));
    }
    eventually(
        "the deleted secret gone on the lab host",
        Duration::from_secs(120),
        || match value_on(lab, &names[7]) {
            Err(_) => Ok(()),
            Ok(v) => Err(format!("still readable: {} bytes", v.len())),
        },
    );
}
