//! Replica regions: this vault's region name and peer identity, the peers it is paired
//! with, and the mutually authenticated TLS transport between them.
//!
//! A peer is trusted by its fingerprint alone, pinned on both sides at pairing: there is
//! no certificate authority and no trust on first use. The fingerprint is the hash of
//! the vault's signing key, which also issues the vault's TLS certificate; so one value a
//! person can compare covers the TLS connection and every payload the vault signs.

mod error;
mod fingerprint;
pub mod identity;
mod names;
pub mod sealed;
pub mod tls;
pub mod transport;

pub use error::RegionError;
pub use fingerprint::Fingerprint;
pub use identity::{Hello, Identity};
pub use names::{PeerUrl, RegionName, DEFAULT_REGION};
pub use transport::{Contact, Handler, Link, PeerListener, PeerRequest};
