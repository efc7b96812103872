use crate::region::Fingerprint;

/// What can go wrong with regions and peers. Messages say what was wrong and how to fix
/// it, and show fingerprints in full so a person can compare them with the other side.
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("region name {name:?} is not valid: use 1 to 32 lowercase letters, digits and dashes, starting with a letter and not ending with a dash (for example eu-home-1)")]
    InvalidName { name: String },
    #[error("{url:?} is not a peer address: {reason} (for example https://192.0.2.10:7443)")]
    InvalidUrl { url: String, reason: &'static str },
    #[error("{text:?} is not a fingerprint: {reason}; copy it from `coffer region identity` on the peer")]
    InvalidFingerprint { text: String, reason: &'static str },
    #[error("no region named {name:?} is paired with this vault; `coffer region list` shows the paired regions")]
    UnknownPeer { name: String },
    #[error("a region named {name:?} is already paired; remove it first with `coffer region remove {name}`")]
    PeerExists { name: String },
    #[error(
        "region {name:?} is this vault's own region name; a peer needs a region name of its own"
    )]
    OwnRegion { name: String },
    #[error("fingerprint {fingerprint} is this vault's own; pair the peer with the fingerprint that `coffer region identity` prints on the peer")]
    OwnFingerprint { fingerprint: Fingerprint },
    #[error(
        "region {name:?} is already paired with fingerprint {fingerprint}; one peer is paired once"
    )]
    FingerprintPaired {
        name: String,
        fingerprint: Fingerprint,
    },
    #[error("the region name cannot change while {count} peer(s) are paired (they know this vault by it); remove them first")]
    NameInUse { count: u64 },
    #[error("this vault's region identity failed its integrity check: it was altered outside Coffer; restore the vault file from a backup")]
    IdentityTampered,
    #[error("region peer {name:?} failed its integrity check: its address or fingerprint was altered outside Coffer; remove it and pair it again")]
    PeerTampered { name: String },
    #[error("this vault's region name failed its integrity check: it was altered outside Coffer; restore the vault file from a backup")]
    RegionNameTampered,
    #[error("cannot reach region {name:?} at {address}: {cause}; check that `coffer daemon --listen` runs there and that the address is right")]
    Unreachable {
        name: String,
        address: String,
        cause: String,
    },
    #[error("region {name:?} at {url} presented fingerprint {presented}, but it is paired with fingerprint {pinned}; compare both with `coffer region identity` on the peer and pair again if the peer was reinstalled")]
    FingerprintMismatch {
        name: String,
        url: String,
        pinned: Fingerprint,
        presented: Fingerprint,
    },
    #[error("region {name:?} at {url} (fingerprint {theirs}) refused this vault (fingerprint {ours}): pair this vault there with `coffer region add {our_region} --url https://THIS-HOST:PORT --fingerprint {ours}`")]
    RefusedByPeer {
        name: String,
        url: String,
        theirs: String,
        ours: String,
        our_region: String,
    },
    #[error(
        "region {name:?} at {url} calls itself {claimed:?}; pair it under its own region name"
    )]
    RegionNameMismatch {
        name: String,
        url: String,
        claimed: String,
    },
    #[error(
        "region {name:?} answered with something that is not a Coffer peer's answer: {reason}"
    )]
    Protocol { name: String, reason: String },
    #[error(
        "cannot listen on {address}: {cause}; choose a free port, or an address of this machine"
    )]
    Listen { address: String, cause: String },
    #[error("the data key of secret {secret_id} version {version_id} could not be opened: it was sealed for another vault or version, or altered on the way; ask the primary to send it again")]
    SealRefused {
        secret_id: uuid::Uuid,
        version_id: uuid::Uuid,
    },
    #[error("the region identity could not be made: {reason}")]
    Certificate { reason: String },
}

impl RegionError {
    pub fn code(&self) -> &'static str {
        match self {
            RegionError::InvalidName { .. }
            | RegionError::InvalidUrl { .. }
            | RegionError::InvalidFingerprint { .. }
            | RegionError::OwnRegion { .. }
            | RegionError::OwnFingerprint { .. } => "invalid_argument",
            RegionError::UnknownPeer { .. } => "region_not_found",
            RegionError::PeerExists { .. }
            | RegionError::FingerprintPaired { .. }
            | RegionError::NameInUse { .. } => "region_conflict",
            RegionError::IdentityTampered
            | RegionError::PeerTampered { .. }
            | RegionError::RegionNameTampered => "tampered",
            RegionError::Unreachable { .. } | RegionError::Listen { .. } => "peer_unreachable",
            RegionError::FingerprintMismatch { .. }
            | RegionError::RefusedByPeer { .. }
            | RegionError::RegionNameMismatch { .. } => "peer_untrusted",
            RegionError::Protocol { .. } => "peer_protocol",
            RegionError::SealRefused { .. } => "tampered",
            RegionError::Certificate { .. } => "internal",
        }
    }
}
