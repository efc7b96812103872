//! One request, from bytes to bytes: the vault must be unlocked, the signature valid,
//! the operation known; then the service module maps it onto the engine.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use coffer_aws::policy::Policy;
use coffer_aws::sigv4::{self, SecretKeyMaterial, VerifyConfig};
use coffer_aws::AwsError;
use coffer_core::vault::Actor;
use coffer_core::Vault;
use serde_json::{Map, Value};

use crate::call::{Call, Service};
use crate::listener::{Log, ServedVault};

/// How long a request waits for the vault while another holds it (a rotation step, the
/// scheduler): after that it fails rather than hang.
const VAULT_WAIT: Duration = Duration::from_secs(10);

/// A key's last use is written at most this often (it is status, not audit).
const LAST_USE_INTERVAL: Duration = Duration::from_secs(60);

/// The served vault, held for one request.
enum VaultGuard<'a> {
    Held(MutexGuard<'a, Vault>),
    Session(MutexGuard<'a, Option<Vault>>),
}

impl VaultGuard<'_> {
    /// The vault if it is open and unlocked.
    fn unlocked(&mut self) -> Option<&mut Vault> {
        let vault = match self {
            VaultGuard::Held(vault) => &mut **vault,
            VaultGuard::Session(vault) => vault.as_mut()?,
        };
        vault.is_unlocked().then_some(vault)
    }
}

/// Takes `mutex`, waiting at most [`VAULT_WAIT`] for whoever holds it.
fn wait_for<T>(mutex: &Mutex<T>, service: Service) -> Result<MutexGuard<'_, T>, AwsError> {
    let deadline = Instant::now() + VAULT_WAIT;
    loop {
        match mutex.try_lock() {
            Ok(guard) => return Ok(guard),
            // The vault's state is the database's, which a panic cannot half-write.
            Err(TryLockError::Poisoned(poisoned)) => return Ok(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(500));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(AwsError::new(
                    service.internal_error_code(),
                    500,
                    "The Coffer vault stayed busy for 10 seconds (a rotation or re-wrap may be running); try again.",
                ))
            }
        }
    }
}

/// A request as received.
pub struct Incoming {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// A response to send: status, JSON body (wiped once sent: it may hold secret values,
/// see `secret_body`), and the error code for `x-amzn-ErrorType`.
pub struct Outgoing {
    pub status: u16,
    pub body: zeroize::Zeroizing<Vec<u8>>,
    pub error_type: Option<String>,
}

impl Outgoing {
    fn error(error: &AwsError) -> Self {
        Outgoing {
            status: error.status(),
            body: zeroize::Zeroizing::new(error.body_json()),
            error_type: Some(error.code().to_owned()),
        }
    }
}

pub fn too_large() -> Outgoing {
    Outgoing::error(&AwsError::new(
        "RequestEntityTooLarge",
        413,
        "The request body is larger than 1 MiB.",
    ))
}

pub fn bad_header(name: &str) -> Outgoing {
    Outgoing::error(&AwsError::new(
        "IncompleteSignatureException",
        400,
        format!("Header '{name}' is not visible ASCII, so it cannot be part of a signature."),
    ))
}

pub fn internal_failure() -> Outgoing {
    Outgoing::error(&AwsError::new(
        "InternalFailure",
        500,
        "The request processing has failed because of an unknown error.",
    ))
}

/// What one listener shares between its requests.
pub struct Server {
    vault: ServedVault,
    log: Log,
    config: VerifyConfig,
    actor: Actor,
    last_use: Mutex<HashMap<String, Instant>>,
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Server {
    pub fn new(vault: ServedVault, log: Log) -> Self {
        let mut config = VerifyConfig::new(["secretsmanager", "kms"]);
        // The operation is chosen by this header, so it must be signed: otherwise a
        // captured request could be replayed as another operation.
        config.required_signed_headers = vec!["x-amz-target".to_owned()];
        Server {
            vault,
            log,
            config,
            actor: Actor::current(),
            last_use: Mutex::new(HashMap::new()),
        }
    }

    pub fn handle(&self, request: Incoming) -> Outgoing {
        match self.try_handle(&request) {
            Ok(reply) => Outgoing {
                status: 200,
                body: reply.to_body(),
                error_type: None,
            },
            Err(error) => Outgoing::error(&error),
        }
    }

    fn vault(&self, service: Service) -> Result<VaultGuard<'_>, AwsError> {
        Ok(match &self.vault {
            ServedVault::Held(vault) => VaultGuard::Held(wait_for(vault, service)?),
            ServedVault::Session(vault) => VaultGuard::Session(wait_for(vault, service)?),
        })
    }

    fn try_handle(&self, request: &Incoming) -> Result<crate::secret_body::Reply, AwsError> {
        let target = header(&request.headers, "x-amz-target").unwrap_or_default();
        let parsed = Service::parse_target(target);
        let service = parsed
            .map(|(service, _)| service)
            .unwrap_or(Service::SecretsManager);
        let mut guard = self.vault(service)?;
        let Some(vault) = guard.unlocked() else {
            return Err(AwsError::new(
                service.locked_code(),
                400,
                "The Coffer vault is locked, so nothing can be read or written; unlock it (coffer unlock, or the desktop app) and retry.",
            ));
        };
        let key = std::cell::RefCell::new(None);
        let verified = {
            let req = sigv4::Request {
                method: &request.method,
                path: &request.path,
                query: &request.query,
                headers: &request.headers,
                body: &request.body,
            };
            let now = time::OffsetDateTime::now_utc();
            let shared = std::cell::RefCell::new(&mut *vault);
            let log = &self.log;
            sigv4::verify(&req, now, &self.config, |id| {
                match shared.borrow_mut().access_key_auth(id) {
                    Ok(Some(auth)) => {
                        let secret = SecretKeyMaterial::new(auth.secret.to_vec());
                        *key.borrow_mut() = Some(auth);
                        Some(secret)
                    }
                    Ok(None) => None,
                    Err(error) => {
                        log(format!("refused access key {id}: {error}"));
                        None
                    }
                }
            })
        };
        let verified = verified.map_err(|e| e.to_aws_error())?;
        let Some(key) = key.into_inner() else {
            return Err(sigv4::SigV4Error::UnrecognizedClient.to_aws_error());
        };
        let Some((service, operation)) = parsed else {
            return Err(AwsError::new(
                "UnknownOperationException",
                400,
                format!(
                    "X-Amz-Target {:?} names no operation; use secretsmanager.<Operation> or TrentService.<Operation>.",
                    target.chars().take(128).collect::<String>()
                ),
            ));
        };
        if verified.service != service.signing_name() {
            return Err(AwsError::new(
                "InvalidSignatureException",
                400,
                format!(
                    "Credential should be scoped to correct service: '{}'.",
                    service.signing_name()
                ),
            ));
        }
        let input = parse_body(&request.body)?;
        // Checked when stored and MACed since, so only a newer Coffer's policy could
        // fail to parse here: it then grants nothing rather than something.
        let policy: Option<Policy> = key
            .policy
            .as_deref()
            .map(Policy::parse)
            .transpose()
            .unwrap_or_default();
        let mut actor = self.actor.clone();
        actor.process = format!("aws-api {}", key.id);
        let previous = vault.set_actor(actor);
        let result = {
            let mut call = Call::new(vault, &key.id, &key.name, policy, service)?;
            match service {
                Service::SecretsManager => {
                    crate::secrets_manager::call(&mut call, operation, &input)
                }
                Service::Kms => crate::kms::call(&mut call, operation, &input),
            }
        };
        vault.set_actor(previous);
        self.record_use(vault, &key.id, service, operation);
        result
    }

    fn record_use(&self, vault: &mut Vault, id: &str, service: Service, operation: &str) {
        let mut last = self
            .last_use
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let due = last
            .get(id)
            .map(|at| at.elapsed() >= LAST_USE_INTERVAL)
            .unwrap_or(true);
        if due {
            last.insert(id.to_owned(), Instant::now());
            let what = format!("{}:{operation}", service.action_prefix());
            if let Err(error) = vault.record_access_key_use(id, &what) {
                (self.log)(format!(
                    "could not record the use of access key {id}: {error}"
                ));
            }
        }
    }
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, AwsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AwsError::new(
            "SerializationException",
            400,
            "The request body is not a JSON object.",
        )),
    }
}
