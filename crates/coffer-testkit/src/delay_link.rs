//! A slow link for tests that measure or exercise replication across a wide-area network.
//!
//! This machine's kernel has no `sch_netem`, so `tc netem delay` is not available. A
//! [`DelayLink`] stands in for it: a TCP relay that holds every chunk travelling from the
//! client to the upstream for a fixed time before passing it on, as netem does on one
//! interface's egress (so a round trip grows by that delay once). Replies pass at once.
//! Because it terminates TCP, a lost packet is retransmitted on one side of the relay only;
//! that is why loss is simulated in the kernel (nftables) instead.
//!
//! The relay's sockets belong to the network namespace of the thread that starts it, so a
//! test can start one inside a namespace of its own from a thread that has entered it.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A TCP relay that delays the client-to-upstream direction; stops accepting when dropped.
pub struct DelayLink {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl DelayLink {
    /// Listens on `listen` (port 0 picks a free one) and relays every connection to
    /// `upstream`, holding client-to-upstream bytes for `delay`.
    ///
    /// # Panics
    /// If it cannot bind `listen`.
    pub fn start(listen: SocketAddr, upstream: SocketAddr, delay: Duration) -> DelayLink {
        let listener = TcpListener::bind(listen)
            .unwrap_or_else(|e| panic!("delay link: cannot bind {listen}: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("delay link: {e}"));
        // Polled rather than woken by a connection at drop: the thread that drops the link
        // may sit in another network namespace, from which this address is unreachable.
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("delay link: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let acceptor = thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => continue,
                };
                if client.set_nonblocking(false).is_err() {
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                relay_delayed(&client, &server, delay);
                relay_delayed(&server, &client, Duration::ZERO);
            }
        });
        DelayLink {
            addr,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// The address to connect to instead of the upstream one.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Copies `from` to `to`, each chunk no earlier than `delay` after it arrived, in order.
/// A reader and a writer thread, so that holding one chunk never holds up reading the next.
fn relay_delayed(from: &TcpStream, to: &TcpStream, delay: Duration) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let (chunks, due) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if chunks
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    thread::spawn(move || {
        for (at, chunk) in due {
            let now = Instant::now();
            if at > now {
                thread::sleep(at - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

impl Drop for DelayLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn bytes_arrive_in_order_and_no_earlier_than_the_delay() {
        let upstream = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let upstream_addr = upstream.local_addr().unwrap();
        let echo = thread::spawn(move || {
            let (mut conn, _) = upstream.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while got.len() < 6 {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "closed early");
                got.extend_from_slice(&buf[..n]);
            }
            conn.write_all(&got).unwrap();
            got
        });
        let delay = Duration::from_millis(120);
        let link = DelayLink::start(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            upstream_addr,
            delay,
        );
        let mut client = TcpStream::connect(link.local_addr()).unwrap();
        let sent = Instant::now();
        client.write_all(b"abc").unwrap();
        client.write_all(b"def").unwrap();
        let mut back = [0u8; 6];
        client.read_exact(&mut back).unwrap();
        assert!(sent.elapsed() >= delay, "arrived before the delay");
        assert_eq!(&back, b"abcdef");
        assert_eq!(echo.join().unwrap(), b"abcdef");
    }
}
