//! The listening socket: HTTP/1.1 with keep-alive (what the SDKs speak to a plain
//! `http://` endpoint), one task per connection, the vault work on the blocking pool.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming as Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::dispatch::{self, Incoming, Server};
use crate::secret_body::WipedBody;

/// The vault the API serves, shared with whatever else holds it (the scheduler, the app).
pub type SharedVault = Arc<Mutex<coffer_core::Vault>>;

/// A vault held by a session that opens and locks it (the desktop app, the agent):
/// `None` while no vault is open.
pub type SessionVault = Arc<Mutex<Option<coffer_core::Vault>>>;

/// The vault the API serves: one of its own (the daemon) or the one a session holds, so
/// that the app serves the API from the vault its user unlocked.
#[derive(Clone)]
pub enum ServedVault {
    Held(SharedVault),
    Session(SessionVault),
}

impl From<SharedVault> for ServedVault {
    fn from(vault: SharedVault) -> Self {
        ServedVault::Held(vault)
    }
}

impl From<SessionVault> for ServedVault {
    fn from(vault: SessionVault) -> Self {
        ServedVault::Session(vault)
    }
}

/// Where the server reports what it refused or could not do, one line each.
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

/// The largest request body read: Secrets Manager values are at most 64 KiB, base64 and
/// JSON framing included this stays far below.
const MAX_BODY: usize = 1024 * 1024;

/// A connection idle this long between requests is closed.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {address} for the AWS-compatible API: {cause}")]
    Bind { address: String, cause: String },
    #[error("the AWS-compatible API serves {address}, which is not a loopback address, only over TLS: access-key requests and secret values must not cross a network unencrypted; add --aws-tls (a certificate Coffer makes) or --aws-tls-cert FILE --aws-tls-key FILE")]
    NotLoopback { address: String },
}

/// A running API endpoint. Dropping it stops listening.
pub struct AwsListener {
    local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AwsListener {
    /// Binds `address` now (so a taken port is reported at once) and serves plain HTTP
    /// on a thread; loopback only.
    pub fn start(
        address: &str,
        vault: impl Into<ServedVault>,
        log: Log,
    ) -> Result<Self, ListenError> {
        Self::start_with_tls(address, vault, log, None)
    }

    /// Like [`AwsListener::start`], over TLS when `tls` is given, which any address other
    /// than loopback needs.
    pub fn start_with_tls(
        address: &str,
        vault: impl Into<ServedVault>,
        log: Log,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Self, ListenError> {
        let vault = vault.into();
        let bind_error = |cause: String| ListenError::Bind {
            address: address.to_owned(),
            cause,
        };
        let socket: SocketAddr = address.parse().map_err(|_| {
            bind_error("give an IP address and a port, as in 127.0.0.1:4566".into())
        })?;
        if !socket.ip().is_loopback() && tls.is_none() {
            return Err(ListenError::NotLoopback {
                address: address.to_owned(),
            });
        }
        let std_listener =
            std::net::TcpListener::bind(socket).map_err(|e| bind_error(e.to_string()))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| bind_error(e.to_string()))?;
        let local_addr = std_listener
            .local_addr()
            .map_err(|e| bind_error(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| bind_error(e.to_string()))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = Arc::new(Server::new(vault, log));
        let thread = std::thread::Builder::new()
            .name("coffer-aws-api".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(std_listener) else {
                        return;
                    };
                    tokio::pin!(stopped);
                    loop {
                        let tcp = tokio::select! {
                            _ = &mut stopped => return,
                            accepted = listener.accept() => match accepted {
                                Ok((tcp, _)) => tcp,
                                Err(_) => continue,
                            },
                        };
                        let _ = tcp.set_nodelay(true);
                        let server = Arc::clone(&server);
                        let acceptor = tls.clone().map(tokio_rustls::TlsAcceptor::from);
                        tokio::spawn(async move {
                            match acceptor {
                                None => connection(tcp, server).await,
                                // A handshake that stalls is dropped like an idle connection.
                                Some(acceptor) => {
                                    let handshake =
                                        tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(tcp));
                                    if let Ok(Ok(stream)) = handshake.await {
                                        connection(stream, server).await;
                                    }
                                }
                            }
                        });
                    }
                });
            })
            .map_err(|e| bind_error(e.to_string()))?;
        Ok(AwsListener {
            local_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for AwsListener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves HTTP/1.1 with keep-alive on one connection, plain or TLS.
async fn connection<I>(io: I, server: Arc<Server>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let server = Arc::clone(&server);
        async move { Ok::<_, std::convert::Infallible>(serve(server, request).await) }
    });
    let _ = http1::Builder::new()
        .keep_alive(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .await;
}

async fn serve(server: Arc<Server>, request: Request<Body>) -> Response<Full<WipedBody>> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return respond(dispatch::too_large());
        }
    };
    let mut headers = Vec::with_capacity(parts.headers.len() + 1);
    for (name, value) in &parts.headers {
        let Ok(value) = value.to_str() else {
            return respond(dispatch::bad_header(name.as_str()));
        };
        headers.push((name.as_str().to_owned(), value.to_owned()));
    }
    let incoming = Incoming {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        body,
    };
    let outgoing = tokio::task::spawn_blocking(move || server.handle(incoming))
        .await
        .unwrap_or_else(|_| dispatch::internal_failure());
    respond(outgoing)
}

fn respond(outgoing: dispatch::Outgoing) -> Response<Full<WipedBody>> {
    let mut builder = Response::builder()
        .status(outgoing.status)
        .header("Content-Type", coffer_aws::error::CONTENT_TYPE_JSON_1_1)
        .header("x-amzn-RequestId", uuid::Uuid::new_v4().to_string());
    if let Some(code) = &outgoing.error_type {
        builder = builder.header(coffer_aws::error::ERROR_TYPE_HEADER, code.as_str());
    }
    builder
        .body(Full::new(WipedBody::new(outgoing.body)))
        .unwrap_or_else(|_| Response::new(Full::new(WipedBody::new(Default::default()))))
}
