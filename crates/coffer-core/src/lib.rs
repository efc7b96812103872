//! Coffer's vault engine.
//!
//! Everything the desktop app and the `coffer` CLI can do is an operation on
//! [`vault::Vault`]; the shells only parse input and render results. The layers below it
//! are kept apart on purpose: [`crypto`] never touches SQL, [`store`] only ever sees
//! ciphertext and sealed blobs, and [`tpm`] is the only module that talks to the TPM.

pub mod agent;
pub mod clock;
pub mod crypto;
pub mod model;
pub mod names;
pub mod password;
pub mod private_file;
pub mod process;
pub mod reference;
pub mod region;
pub mod rotation;
pub mod runtime;
pub mod service;
pub mod store;
pub mod tpm;
pub mod vault;

pub use model::*;
pub use names::{KeyAlias, SecretName, StagingLabel};
pub use vault::{default_vault_path, CreateSecret, Error, PutValue, Result, Vault};
