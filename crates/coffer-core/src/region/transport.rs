//! HTTP/2 over the pinned TLS of [`super::tls`]: the daemon's listener and the client
//! that contacts a peer. Both are blocking facades over a small tokio runtime of their
//! own, so the engine's synchronous callers (CLI, agent, app) need no runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::identity::{fingerprint_of, Hello, PEER_SERVER_NAME};
use super::tls::ALPN_H2;
use super::{Fingerprint, PeerUrl, RegionError};

pub const HELLO_PATH: &str = "/coffer/v1/hello";
/// No peer message in this protocol is near this size; anything larger is refused
/// before it is buffered.
const MAX_BODY: usize = 1 << 20;
/// Replication batches carry up to 4 MiB of payload, encoded; their requests may be this
/// large (still checked before anything is decoded).
const SYNC_MAX_BODY: usize = 8 << 20;
/// Paths under this prefix go to the listener's [`Handler`].
pub const SYNC_PREFIX: &str = "/coffer/v1/sync";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(15);

/// How a successful contact went.
#[derive(Debug, Clone)]
pub struct Contact {
    pub hello: Hello,
    pub fingerprint: Fingerprint,
    /// The TLS key exchange the two sides agreed on (for example `X25519`).
    pub key_exchange: String,
    pub protocol: String,
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Every message of an error and its sources, so a TLS alert under an HTTP error shows.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = inner.source();
    }
    text
}

/// What the client needs to know about the peer it contacts.
pub struct Target<'a> {
    pub name: &'a str,
    pub url: &'a PeerUrl,
    pub pinned: Fingerprint,
}

/// What the client says about itself, for the refusal message if the peer has not
/// paired it.
pub struct Caller<'a> {
    pub config: ClientConfig,
    pub verifier: Arc<super::tls::PinnedServer>,
    pub hello: &'a Hello,
    pub fingerprint: Fingerprint,
}

/// Contacts a peer: TLS 1.3 pinned both ways, then an exchange of signed hellos.
pub fn contact(caller: Caller<'_>, target: Target<'_>) -> Result<Contact, RegionError> {
    connect(caller, target).map(|link| link.contact.clone())
}

/// An open HTTP/2 connection to a peer whose hello checked out, for further requests.
pub struct Link {
    pub contact: Contact,
    runtime: tokio::runtime::Runtime,
    sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<()>,
    name: String,
    address: String,
}

impl Link {
    /// POSTs `body` to `path` on the peer and returns its answer, refusing anything but
    /// a success (the peer's reason is in the error).
    pub fn post(&mut self, path: &str, body: Vec<u8>) -> Result<Vec<u8>, RegionError> {
        let (status, bytes) = self.exchange(path, body)?;
        if !(200..300).contains(&status) {
            return Err(RegionError::Protocol {
                name: self.name.clone(),
                reason: format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
                ),
            });
        }
        Ok(bytes)
    }

    /// POSTs `body` to `path` on the peer and returns the status and answer as they
    /// are, for callers that read the peer's refusals.
    pub fn exchange(&mut self, path: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), RegionError> {
        let (name, address) = (self.name.clone(), self.address.clone());
        let unreachable = |cause: String| RegionError::Unreachable {
            name: name.clone(),
            address: address.clone(),
            cause,
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("https://{PEER_SERVER_NAME}{path}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| unreachable(e.to_string()))?;
        let sender = &mut self.sender;
        let exchange = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| unreachable(chain(&e)))?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), SYNC_MAX_BODY)
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .to_bytes();
            Ok::<_, RegionError>((status, bytes))
        };
        let (status, bytes) = self
            .runtime
            .block_on(async { tokio::time::timeout(EXCHANGE_TIMEOUT, exchange).await })
            .map_err(|_| unreachable("the peer did not answer within 15 seconds".into()))??;
        Ok((status.as_u16(), bytes.to_vec()))
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Connects to a peer as [`contact`] does and keeps the connection for more requests.
pub fn connect(caller: Caller<'_>, target: Target<'_>) -> Result<Link, RegionError> {
    let unreachable = |cause: String| RegionError::Unreachable {
        name: target.name.to_owned(),
        address: target.url.to_string(),
        cause,
    };
    let runtime = runtime().map_err(|e| unreachable(e.to_string()))?;
    let Caller {
        config,
        verifier,
        hello,
        fingerprint: ours,
    } = caller;
    let linked = runtime.block_on(async {
        let address = format!("{}:{}", bracket(target.url.host()), target.url.port());
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address))
            .await
            .map_err(|_| unreachable("no answer within 5 seconds".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        // Requests and answers are small and strictly alternate: without this, Nagle's
        // algorithm and delayed acknowledgements hold each one back by tens of ms.
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(PEER_SERVER_NAME)
            .map_err(|_| unreachable("internal: bad peer name".into()))?;
        let handshake = TlsConnector::from(Arc::new(config)).connect(name, tcp);
        let tls = match tokio::time::timeout(EXCHANGE_TIMEOUT, handshake).await {
            Err(_) => return Err(unreachable("the TLS handshake did not finish".into())),
            Ok(Err(error)) => {
                return Err(match verifier.presented() {
                    Some(presented) if presented != target.pinned => {
                        RegionError::FingerprintMismatch {
                            name: target.name.to_owned(),
                            url: target.url.to_string(),
                            pinned: target.pinned,
                            presented,
                        }
                    }
                    _ => unreachable(format!("TLS failed: {}", chain(&error))),
                })
            }
            Ok(Ok(tls)) => tls,
        };
        let (_, session) = tls.get_ref();
        if session.alpn_protocol() != Some(ALPN_H2) {
            return Err(unreachable(
                "the peer does not speak HTTP/2 (ALPN h2)".into(),
            ));
        }
        let key_exchange = session
            .negotiated_key_exchange_group()
            .map(|group| format!("{:?}", group.name()))
            .unwrap_or_else(|| "unknown".into());
        let protocol = session
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        let peer_ca = session
            .peer_certificates()
            .and_then(|certs| certs.get(1).cloned())
            .ok_or_else(|| unreachable("the peer presented no identity".into()))?;
        // The alerts a peer sends when it does not accept our certificate; any other
        // failure is reported as it is.
        let refused = |error: String| {
            let certificate_alert = [
                "BadCertificate",
                "CertificateUnknown",
                "UnknownCA",
                "AccessDenied",
            ]
            .iter()
            .any(|alert| error.contains(alert));
            if certificate_alert {
                RegionError::RefusedByPeer {
                    name: target.name.to_owned(),
                    url: target.url.to_string(),
                    theirs: target.pinned.to_string(),
                    ours: ours.to_string(),
                    our_region: hello.region.clone(),
                }
            } else {
                unreachable(error)
            }
        };
        let exchange = async {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .map_err(|e| refused(chain(&e)))?;
            let driver = tokio::spawn(async move {
                let _ = connection.await;
            });
            let body = serde_json::to_vec(hello).unwrap_or_default();
            let request = Request::builder()
                .method(Method::POST)
                .uri(format!("https://{PEER_SERVER_NAME}{HELLO_PATH}"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| unreachable(e.to_string()))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| refused(chain(&e)))?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| refused(e.to_string()))?
                .to_bytes();
            Ok::<_, RegionError>((status, bytes, sender, driver))
        };
        let (status, bytes, sender, driver) = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|_| unreachable("the peer did not answer within 15 seconds".into()))??;
        let protocol_error = |reason: String| RegionError::Protocol {
            name: target.name.to_owned(),
            reason,
        };
        if !status.is_success() {
            driver.abort();
            return Err(protocol_error(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            )));
        }
        let their_hello: Hello = serde_json::from_slice(&bytes)
            .map_err(|e| protocol_error(format!("its hello is not valid: {e}")))?;
        if !their_hello.is_signed_by(&peer_ca) {
            driver.abort();
            return Err(protocol_error(
                "its hello is not signed by the identity it presented".into(),
            ));
        }
        if their_hello.region != target.name {
            driver.abort();
            return Err(RegionError::RegionNameMismatch {
                name: target.name.to_owned(),
                url: target.url.to_string(),
                claimed: their_hello.region,
            });
        }
        Ok((
            Contact {
                hello: their_hello,
                fingerprint: target.pinned,
                key_exchange,
                protocol,
            },
            sender,
            driver,
        ))
    });
    let (contact, sender, driver) = linked?;
    Ok(Link {
        contact,
        runtime,
        sender,
        driver,
        name: target.name.to_owned(),
        address: target.url.to_string(),
    })
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// What the listener reports: refused connections and contacts, one line each.
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

/// A request under [`SYNC_PREFIX`] from a peer whose TLS handshake proved `fingerprint`.
pub struct PeerRequest {
    pub path: String,
    pub body: Vec<u8>,
    pub fingerprint: Fingerprint,
    /// The identity certificate the connection presented (payload signatures are checked
    /// against it).
    pub ca: rustls_pki_types::CertificateDer<'static>,
}

/// Answers a [`PeerRequest`] with an HTTP status and a body. It runs on a blocking thread,
/// so it may take the vault's lock.
pub type Handler = Arc<dyn Fn(PeerRequest) -> (u16, Vec<u8>) + Send + Sync>;

/// A listening daemon's peer endpoint. Dropping it stops listening.
pub struct PeerListener {
    local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeerListener {
    /// Binds `address` now (so a taken port is reported at once) and serves on a thread.
    pub fn start(
        address: &str,
        config: ServerConfig,
        hello: Hello,
        log: Log,
    ) -> Result<Self, RegionError> {
        Self::start_with(address, config, hello, log, None)
    }

    /// As [`PeerListener::start`], with `handler` answering the replication endpoints.
    pub fn start_with(
        address: &str,
        config: ServerConfig,
        hello: Hello,
        log: Log,
        handler: Option<Handler>,
    ) -> Result<Self, RegionError> {
        let listen_error = |cause: String| RegionError::Listen {
            address: address.to_owned(),
            cause,
        };
        let socket: SocketAddr = address.parse().map_err(|_| {
            listen_error("give an IP address and a port, as in 127.0.0.1:7443 or [::]:7443".into())
        })?;
        let std_listener =
            std::net::TcpListener::bind(socket).map_err(|e| listen_error(e.to_string()))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| listen_error(e.to_string()))?;
        let local_addr = std_listener
            .local_addr()
            .map_err(|e| listen_error(e.to_string()))?;
        let runtime = runtime().map_err(|e| listen_error(e.to_string()))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let hello = Arc::new(serde_json::to_vec(&hello).unwrap_or_default());
        let thread = std::thread::Builder::new()
            .name("coffer-peers".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(std_listener) else {
                        return;
                    };
                    tokio::pin!(stopped);
                    loop {
                        let (tcp, from) = tokio::select! {
                            _ = &mut stopped => return,
                            accepted = listener.accept() => match accepted {
                                Ok(pair) => pair,
                                Err(_) => continue,
                            },
                        };
                        let (acceptor, hello, log, handler) = (
                            acceptor.clone(),
                            Arc::clone(&hello),
                            Arc::clone(&log),
                            handler.clone(),
                        );
                        tokio::spawn(async move {
                            serve_connection(acceptor, tcp, from, hello, log, handler).await;
                        });
                    }
                });
            })
            .map_err(|e| listen_error(e.to_string()))?;
        Ok(PeerListener {
            local_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for PeerListener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve_connection(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    from: SocketAddr,
    hello: Arc<Vec<u8>>,
    log: Log,
    handler: Option<Handler>,
) {
    let _ = tcp.set_nodelay(true);
    let accept = acceptor.accept(tcp).into_fallible();
    let tls = match tokio::time::timeout(EXCHANGE_TIMEOUT, accept).await {
        Ok(Ok(tls)) => tls,
        Ok(Err((error, tcp))) => {
            log(format!(
                "refused a connection from {from}: {}",
                chain(&error)
            ));
            linger(tcp).await;
            return;
        }
        Err(_) => {
            log(format!(
                "dropped a connection from {from}: no TLS handshake within 15 s"
            ));
            return;
        }
    };
    let Some(peer_ca) = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.get(1))
        .map(|cert| cert.clone().into_owned())
    else {
        return;
    };
    let Some(peer) = fingerprint_of(&peer_ca) else {
        return;
    };
    let peer_ca = Arc::new(peer_ca);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (hello, log, peer_ca) = (Arc::clone(&hello), Arc::clone(&log), Arc::clone(&peer_ca));
        let handler = handler.clone();
        async move {
            if request.uri().path().starts_with(SYNC_PREFIX) {
                if let Some(handler) = handler {
                    return Ok(handle(request, handler, peer, &peer_ca).await);
                }
            }
            let caller = PeerCaller {
                ca: &peer_ca,
                fingerprint: peer,
                from,
            };
            Ok::<_, std::convert::Infallible>(respond(request, &hello, caller, &log).await)
        }
    });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

/// Closes a refused connection so that the client reads our alert (and with it why it
/// was refused): closing with its request still unread would reset the connection, and a
/// reset can discard the alert before the client reads it.
async fn linger(mut tcp: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tcp.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(read) = tcp.read(&mut sink).await {
            if read == 0 {
                break;
            }
        }
    })
    .await;
}

/// Hands a replication request to the handler on a blocking thread.
async fn handle(
    request: Request<Incoming>,
    handler: Handler,
    fingerprint: Fingerprint,
    ca: &rustls_pki_types::CertificateDer<'static>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, b"use POST".to_vec());
    }
    let path = request.uri().path().to_owned();
    let body = match Limited::new(request.into_body(), SYNC_MAX_BODY)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes().to_vec(),
        Err(_) => return reply(StatusCode::PAYLOAD_TOO_LARGE, b"too large".to_vec()),
    };
    let peer_request = PeerRequest {
        path,
        body,
        fingerprint,
        ca: ca.clone(),
    };
    match tokio::task::spawn_blocking(move || handler(peer_request)).await {
        Ok((status, body)) => reply(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        ),
        Err(_) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            b"the request handler failed".to_vec(),
        ),
    }
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// Who is on the other end of a served connection, as its TLS handshake proved.
struct PeerCaller<'a> {
    ca: &'a rustls_pki_types::CertificateDer<'static>,
    fingerprint: Fingerprint,
    from: SocketAddr,
}

async fn respond(
    request: Request<Incoming>,
    hello: &[u8],
    caller: PeerCaller<'_>,
    log: &Log,
) -> Response<Full<Bytes>> {
    if request.uri().path() != HELLO_PATH {
        return reply(StatusCode::NOT_FOUND, b"no such peer endpoint".to_vec());
    }
    if request.method() != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, b"use POST".to_vec());
    }
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return reply(StatusCode::PAYLOAD_TOO_LARGE, b"too large".to_vec()),
    };
    let their_hello = match serde_json::from_slice::<Hello>(&body) {
        Ok(their_hello) if their_hello.is_signed_by(caller.ca) => their_hello,
        _ => {
            return reply(
                StatusCode::BAD_REQUEST,
                b"the hello is not signed by the identity this connection presented".to_vec(),
            )
        }
    };
    log(format!(
        "hello from region {} ({}) at {}",
        their_hello.region, caller.fingerprint, caller.from
    ));
    reply(StatusCode::OK, hello.to_vec())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use uuid::Uuid;

    use super::*;
    use crate::region::tls::{client_config, server_config, PinnedSet};
    use crate::region::{Identity, RegionName};

    struct Side {
        identity: Identity,
        hello: Hello,
    }

    fn side(region: &str) -> Side {
        let identity = Identity::generate().unwrap();
        let hello = identity
            .hello(&RegionName::parse(region).unwrap(), Uuid::new_v4())
            .unwrap();
        Side { identity, hello }
    }

    fn listen(
        server: &Side,
        pinned: Vec<(String, Fingerprint)>,
    ) -> (PeerListener, Arc<Mutex<Vec<String>>>) {
        listen_on("127.0.0.1:0", server, pinned)
    }

    fn listen_on(
        address: &str,
        server: &Side,
        pinned: Vec<(String, Fingerprint)>,
    ) -> (PeerListener, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let pinned: PinnedSet = Arc::new(move || pinned.clone());
        let config = server_config(&server.identity, pinned).unwrap();
        let listener = PeerListener::start(
            address,
            config,
            server.hello.clone(),
            Arc::new(move |line| sink.lock().unwrap().push(line)),
        )
        .unwrap();
        (listener, lines)
    }

    fn call(
        client: &Side,
        name: &str,
        port: u16,
        pinned: Fingerprint,
    ) -> Result<Contact, RegionError> {
        call_at(client, name, &format!("127.0.0.1:{port}"), pinned)
    }

    fn call_at(
        client: &Side,
        name: &str,
        address: &str,
        pinned: Fingerprint,
    ) -> Result<Contact, RegionError> {
        let (config, verifier) = client_config(&client.identity, pinned).unwrap();
        let url = PeerUrl::parse(&format!("https://{address}")).unwrap();
        contact(
            Caller {
                config,
                verifier,
                hello: &client.hello,
                fingerprint: client.identity.fingerprint().unwrap(),
            },
            Target {
                name,
                url: &url,
                pinned,
            },
        )
    }

    #[test]
    fn peers_pinned_both_ways_exchange_signed_hellos_over_tls13() {
        let (a, b) = (side("eu-home-1"), side("us-lab-1"));
        let (listener, lines) = listen(
            &b,
            vec![("eu-home-1".into(), a.identity.fingerprint().unwrap())],
        );
        let port = listener.local_addr().port();
        let contact = call(&a, "us-lab-1", port, b.identity.fingerprint().unwrap()).unwrap();
        assert_eq!(contact.hello.region, "us-lab-1");
        assert_eq!(contact.hello.vault_id, b.hello.vault_id);
        assert_eq!(contact.protocol, "TLSv1_3");
        assert_eq!(contact.key_exchange, "X25519MLKEM768");
        let lines = lines.lock().unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("hello from region eu-home-1")),
            "{lines:?}"
        );
    }

    #[test]
    fn a_peer_without_post_quantum_key_exchange_gets_x25519() {
        let (a, b) = (side("eu-home-1"), side("us-lab-1"));
        let pinned = vec![("eu-home-1".to_owned(), a.identity.fingerprint().unwrap())];
        let pinned: PinnedSet = Arc::new(move || pinned.clone());
        let classical = rustls::crypto::CryptoProvider {
            kx_groups: vec![rustls::crypto::aws_lc_rs::kx_group::X25519],
            ..rustls::crypto::aws_lc_rs::default_provider()
        };
        let config =
            crate::region::tls::server_config_using(&b.identity, pinned, Arc::new(classical))
                .unwrap();
        let listener =
            PeerListener::start("127.0.0.1:0", config, b.hello.clone(), Arc::new(|_| {})).unwrap();
        let port = listener.local_addr().port();
        let contact = call(&a, "us-lab-1", port, b.identity.fingerprint().unwrap()).unwrap();
        assert_eq!(contact.key_exchange, "X25519");
    }

    #[test]
    fn an_unpinned_client_is_refused_and_both_sides_show_both_fingerprints() {
        let (a, b, c) = (side("eu-home-1"), side("us-lab-1"), side("ap-other-1"));
        let (listener, lines) = listen(
            &b,
            vec![("ap-other-1".into(), c.identity.fingerprint().unwrap())],
        );
        let port = listener.local_addr().port();
        let (fa, fb) = (
            a.identity.fingerprint().unwrap(),
            b.identity.fingerprint().unwrap(),
        );
        let error = call(&a, "us-lab-1", port, fb).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, RegionError::RefusedByPeer { .. }),
            "{message}"
        );
        assert!(
            message.contains(&fa.to_string()) && message.contains(&fb.to_string()),
            "{message}"
        );
        // The server says whom it refused, and what it is itself.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let lines = lines.lock().unwrap().clone();
            if let Some(line) = lines.iter().find(|l| l.contains("refused")) {
                assert!(
                    line.contains(&fa.to_string()) && line.contains(&fb.to_string()),
                    "{line}"
                );
                assert!(line.contains("ap-other-1"), "{line}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no refusal logged: {lines:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_server_with_another_fingerprint_is_refused_by_the_client() {
        let (a, b, c) = (side("eu-home-1"), side("us-lab-1"), side("us-lab-1"));
        let (listener, _) = listen(
            &b,
            vec![("eu-home-1".into(), a.identity.fingerprint().unwrap())],
        );
        let port = listener.local_addr().port();
        let pinned = c.identity.fingerprint().unwrap();
        match call(&a, "us-lab-1", port, pinned) {
            Err(RegionError::FingerprintMismatch {
                pinned: p,
                presented,
                ..
            }) => {
                assert_eq!(p, pinned);
                assert_eq!(presented, b.identity.fingerprint().unwrap());
            }
            other => panic!("expected a fingerprint mismatch, got {other:?}"),
        }
    }

    #[test]
    fn a_peer_paired_under_another_region_name_is_refused() {
        let (a, b) = (side("eu-home-1"), side("us-lab-1"));
        let (listener, _) = listen(
            &b,
            vec![("eu-home-1".into(), a.identity.fingerprint().unwrap())],
        );
        let port = listener.local_addr().port();
        let error = call(&a, "us-lab-2", port, b.identity.fingerprint().unwrap()).unwrap_err();
        assert!(
            matches!(error, RegionError::RegionNameMismatch { ref claimed, .. } if claimed == "us-lab-1"),
            "{error}"
        );
    }

    #[test]
    fn a_closed_port_is_unreachable_with_the_address_and_cause() {
        let a = side("eu-home-1");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let error = call(&a, "us-lab-1", port, a.identity.fingerprint().unwrap()).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, RegionError::Unreachable { .. }),
            "{message}"
        );
        assert!(
            message.contains(&format!("127.0.0.1:{port}")) && message.contains("refused"),
            "{message}"
        );
    }

    #[test]
    fn a_taken_or_malformed_listen_address_is_refused() {
        let b = side("us-lab-1");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap().to_string();
        let config = || server_config(&b.identity, Arc::new(Vec::new)).unwrap();
        let log: Log = Arc::new(|_| {});
        let error = PeerListener::start(&address, config(), b.hello.clone(), log.clone())
            .err()
            .unwrap();
        assert!(error.to_string().contains(&address), "{error}");
        let error = PeerListener::start("localhost", config(), b.hello.clone(), log)
            .err()
            .unwrap();
        assert!(error.to_string().contains("127.0.0.1:7443"), "{error}");
    }

    /// Peers on two network stacks of their own (network namespaces joined by a veth
    /// pair), as two machines would be: pairing works, a partition is reported as the
    /// peer being unreachable, and the link works again once the partition heals. Needs
    /// root (CI runs as root); elsewhere it says it was skipped.
    mod separate_hosts {
        use std::fs::File;
        use std::os::fd::AsRawFd;
        use std::process::Command;

        use super::*;

        fn ip(args: &[&str]) -> bool {
            Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|status| status.success())
        }

        /// A network namespace, deleted when dropped (also when the test fails).
        struct Netns(String);

        impl Netns {
            fn add(name: String) -> Netns {
                assert!(ip(&["netns", "add", &name]), "ip netns add {name} failed");
                Netns(name)
            }

            fn run(&self, args: &[&str]) -> bool {
                let mut full = vec!["netns", "exec", &self.0, "ip"];
                full.extend_from_slice(args);
                ip(&full)
            }

            /// Runs `work` on a thread that lives in this namespace: its sockets, and the
            /// threads it starts, are on this namespace's network stack.
            fn within<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
                let path = format!("/var/run/netns/{}", self.0);
                std::thread::spawn(move || {
                    let file = File::open(&path).unwrap();
                    // SAFETY: setns on a descriptor we hold open; it changes only this thread.
                    assert_eq!(
                        unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
                        0
                    );
                    work()
                })
                .join()
                .unwrap()
            }
        }

        impl Drop for Netns {
            fn drop(&mut self) {
                ip(&["netns", "del", &self.0]);
            }
        }

        #[test]
        fn peers_on_separate_network_stacks_pair_and_survive_a_partition() {
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                eprintln!("skipped: network namespaces need root");
                return;
            }
            let tag = format!("{:x}", std::process::id() ^ rand::random::<u32>());
            let (a, b) = (
                Netns::add(format!("cfa-{tag}")),
                Netns::add(format!("cfb-{tag}")),
            );
            let (va, vb) = (format!("va{tag}"), format!("vb{tag}"));
            let (va, vb) = (&va[..va.len().min(15)], &vb[..vb.len().min(15)]);
            assert!(ip(&[
                "link", "add", va, "netns", &a.0, "type", "veth", "peer", "name", vb, "netns", &b.0
            ]));
            for (ns, dev, address) in [(&a, va, "10.231.0.1/24"), (&b, vb, "10.231.0.2/24")] {
                assert!(ns.run(&["addr", "add", address, "dev", dev]));
                assert!(ns.run(&["link", "set", dev, "up"]));
                assert!(ns.run(&["link", "set", "lo", "up"]));
            }

            let server = Arc::new(side("us-lab-1"));
            let client = Arc::new(side("eu-home-1"));
            let (server_fp, client_fp) = (
                server.identity.fingerprint().unwrap(),
                client.identity.fingerprint().unwrap(),
            );
            let listening = Arc::clone(&server);
            let (listener, _lines) = a.within(move || {
                listen_on(
                    "10.231.0.1:7443",
                    &listening,
                    vec![("eu-home-1".into(), client_fp)],
                )
            });
            let ping = |ns: &Netns| {
                let client = Arc::clone(&client);
                ns.within(move || call_at(&client, "us-lab-1", "10.231.0.1:7443", server_fp))
            };

            let contact = ping(&b).unwrap();
            assert_eq!(contact.key_exchange, "X25519MLKEM768");
            // The root namespace has no route there: the hosts really are apart.
            assert!(call_at(&client, "us-lab-1", "10.231.0.1:7443", server_fp).is_err());

            // A partition: the server's side of the link goes down.
            assert!(a.run(&["link", "set", va, "down"]));
            let error = ping(&b).unwrap_err();
            assert!(matches!(error, RegionError::Unreachable { .. }), "{error}");
            assert!(error.to_string().contains("10.231.0.1:7443"), "{error}");

            // Healed: the same listener answers again, nothing restarted.
            assert!(a.run(&["link", "set", va, "up"]));
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                match ping(&b) {
                    Ok(contact) => {
                        assert_eq!(contact.hello.region, "us-lab-1");
                        break;
                    }
                    Err(error) if std::time::Instant::now() < deadline => {
                        eprintln!("not healed yet: {error}");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    Err(error) => panic!("the link did not come back: {error}"),
                }
            }
            drop(listener);
        }
    }
}
