//! The command-line grammar. Names follow `aws secretsmanager` and `aws kms` where they can.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Environment:
  COFFER_VAULT             vault file (default: $XDG_DATA_HOME/coffer/vault.db)
  COFFER_TCTI              TPM to use (default: device:/dev/tpmrm0; e.g. swtpm:host=127.0.0.1,port=2321)
  COFFER_PIN_FILE          read the PIN from this file instead of prompting (also the new PIN for init)
  COFFER_NEW_PIN_FILE      read the new PIN for recover and change-pin from this file
  COFFER_NO_AGENT          never use a running agent (1/0, yes/no, true/false, on/off)
  COFFER_BUSY_TIMEOUT_MS   how long to wait for another process's write (default 10000)

Exit codes: 0 ok, 1 other failure, 2 bad input, 3 PIN/lockout/PCR/recovery, 4 not found,
5 conflict, 6 tampered or damaged data, 7 TPM unreachable, 8 vault busy.";

#[derive(Parser, Debug)]
#[command(name = "coffer", version, about = "A local vault for secrets, with its master keys sealed in the TPM.", after_help = AFTER_HELP)]
pub struct Cli {
    /// Vault file.
    #[arg(long, global = true, env = "COFFER_VAULT", value_name = "PATH")]
    pub vault: Option<PathBuf>,
    /// TPM connection string (TCTI).
    #[arg(long, global = true, env = "COFFER_TCTI", value_name = "TCTI")]
    pub tcti: Option<String>,
    /// Output format.
    #[arg(long, short, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Say more about what happens (which agent or TPM is used) on stderr.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Never use a running agent; unseal the keys in this process. COFFER_NO_AGENT takes
    /// 1/0, yes/no, true/false or on/off.
    #[arg(
        long,
        global = true,
        env = "COFFER_NO_AGENT",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_agent: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a vault: a default key sealed in the TPM, and a recovery code shown once.
    Init {
        /// Also bind the keys to these SHA-256 PCRs (e.g. 7, or 0,2,7).
        #[arg(long, value_name = "LIST")]
        pcrs: Option<String>,
        /// This vault's region name, as peers will know it (default local-1; can be
        /// renamed until a peer is paired).
        #[arg(long, value_name = "NAME")]
        region: Option<String>,
        /// Seal the keys in this TPM with no PIN, for a server nobody unlocks by hand:
        /// anyone with root here can unlock the vault; the file elsewhere stays useless.
        /// Add --pcrs to also tie the keys to this machine's boot state.
        #[arg(long)]
        unattended: bool,
    },
    /// Bring the vault back with the recovery code after a TPM change, and set a new PIN.
    Recover {
        /// Read the recovery code from this file instead of prompting.
        #[arg(long, value_name = "FILE")]
        recovery_code_file: Option<PathBuf>,
        /// Bind to these PCRs from now on ("none" for no binding); default: as before.
        #[arg(long, value_name = "LIST")]
        pcrs: Option<String>,
        /// Keep this vault file even though the TPM's rollback counter shows it is an older
        /// copy (or the counter is gone): changes made after this copy are lost for good.
        #[arg(long)]
        accept_rollback: bool,
    },
    /// Re-seal every key under a new PIN (or, with --to-unattended, under no PIN).
    ChangePin {
        /// Re-seal every key with no PIN, so that a server unlocks without a person (needs
        /// the current PIN). `coffer recover` gives such a vault a PIN again.
        #[arg(long)]
        to_unattended: bool,
    },
    /// Show the vault file, its id, the TPM it uses and whether an agent serves it.
    Status,
    /// Unlock once: start an agent that serves later commands without the PIN until it locks.
    Unlock {
        /// Lock after this long without use (e.g. 90s, 15m, 8h).
        #[arg(long, default_value = "15m", value_name = "DURATION")]
        timeout: String,
    },
    /// Lock now: the agent wipes its keys and stops.
    Lock,
    /// Run the agent in the foreground (what `coffer unlock` starts in the background).
    Agent {
        #[arg(long, default_value = "15m", value_name = "DURATION")]
        timeout: String,
        /// Read the PIN from stdin and report readiness on stdout (used by `coffer unlock`).
        #[arg(long, hide = true)]
        pin_stdin: bool,
    },
    /// Run a command with the secret references in its environment resolved.
    ///
    /// Every environment variable whose value is a reference (coffer://NAME,
    /// coffer://NAME#field, coffer://NAME?label=L, coffer://NAME?version=ID) gets the value;
    /// so do the variables of --env-file files. Nothing is written anywhere; the command
    /// replaces this process, so its exit code and signals are its own.
    Run {
        /// A .env-style file of KEY=VALUE lines (values may be references); repeatable.
        #[arg(long, value_name = "FILE")]
        env_file: Vec<PathBuf>,
        /// The command and its arguments.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<std::ffi::OsString>,
    },
    /// Print `export` lines for the references in env files (and the environment).
    Env {
        #[arg(long, value_name = "FILE")]
        env_file: Vec<PathBuf>,
        /// The shell that evaluates the output (fish quotes differently).
        #[arg(long, value_enum, default_value = "posix")]
        shell: crate::commands::EnvShell,
    },
    /// Render a template, replacing every {{ coffer://… }} with the value it references.
    Inject {
        /// The template.
        #[arg(long, short = 'i', value_name = "FILE")]
        in_file: PathBuf,
        /// Write to this file (created 0600) instead of stdout.
        #[arg(long, short = 'f', value_name = "FILE")]
        out_file: Option<PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, …).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff).
    Man,
    /// Install a signed update (.deb or .rpm and its .sig) from a file, e.g. a USB stick;
    /// refuses unsigned, wrongly signed, altered and older bundles.
    SelfUpdate(crate::self_update::SelfUpdateArgs),
    /// Secrets and their versions.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Keys that protect secrets.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Envelope encryption for applications.
    #[command(subcommand)]
    Kms(KmsCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Rotation across all secrets.
    #[command(subcommand)]
    Rotation(RotationCommand),
    /// This vault's region and the peers (replica regions) it is paired with.
    #[command(subcommand)]
    Region(RegionCommand),
    /// A small team: folders (name prefixes) shared with members' vaults, a role per
    /// member per folder, and removal that lists what the member could read.
    #[command(subcommand)]
    Team(TeamCommand),
    /// Access keys for the AWS-compatible API (`coffer daemon --aws-listen`).
    #[command(subcommand)]
    AccessKey(AccessKeyCommand),
    /// Vault settings (`aws.account-id`, `audit.reads durable|batched`).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run scheduled rotations headless (servers): rotates secrets and keys when due,
    /// retries failures with backoff, re-wraps data keys under new key versions. After
    /// downtime each overdue rotation runs once, not once per missed period.
    Daemon {
        /// Run what is due now, then exit.
        #[arg(long)]
        once: bool,
        /// Longest sleep between two checks (e.g. 60s, 5m); other processes may change
        /// schedules meanwhile.
        #[arg(long, default_value = "60s", value_name = "DURATION")]
        max_sleep: String,
        /// Pretend the time is this (RFC 3339); for testing schedules with --once.
        #[arg(long, hide = true, value_name = "TIME")]
        now: Option<String>,
        /// Listen for paired peers here (IP:PORT, e.g. 0.0.0.0:7443). Without it the
        /// daemon listens nowhere.
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<String>,
        /// With --listen: unlock once to read this vault's TLS identity and pinned
        /// peers, then wipe the keys and hold the vault locked. Peers can still push;
        /// what they send is kept sealed and applied at the vault's next unlock.
        /// Rotations and pushing to peers wait for an unlocked daemon.
        #[arg(long, requires = "listen")]
        stay_locked: bool,
        /// Serve the AWS-compatible API (Secrets Manager and KMS, SigV4 with
        /// `coffer access-key` keys) here, e.g. 127.0.0.1:4566. Plain HTTP on loopback;
        /// any other address needs --aws-tls or --aws-tls-cert/--aws-tls-key.
        #[arg(long, value_name = "ADDR:PORT")]
        aws_listen: Option<String>,
        /// Serve the API over TLS with a certificate Coffer makes (the same at every start,
        /// its key never stored); prints the fingerprint of the CA clients pin.
        #[arg(long, requires = "aws_listen", conflicts_with_all = ["aws_tls_cert", "aws_tls_key"])]
        aws_tls: bool,
        /// With --aws-tls: names (host names or IP addresses) the certificate is for, besides
        /// the listening address, localhost and 127.0.0.1.
        #[arg(long, requires = "aws_tls", value_name = "NAME")]
        aws_tls_name: Vec<String>,
        /// With --aws-tls: write the CA certificate clients pin (PEM, public) here.
        #[arg(long, requires = "aws_tls", value_name = "FILE")]
        aws_tls_ca_out: Option<std::path::PathBuf>,
        /// Serve the API over TLS with this certificate chain (PEM); needs --aws-tls-key.
        #[arg(long, requires_all = ["aws_listen", "aws_tls_key"], value_name = "FILE")]
        aws_tls_cert: Option<std::path::PathBuf>,
        /// The private key (PEM) of --aws-tls-cert.
        #[arg(long, requires = "aws_tls_cert", value_name = "FILE")]
        aws_tls_key: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccessKeyCommand {
    /// Make an access key; prints its id and secret once (the secret is never shown
    /// again).
    Create {
        #[arg(long)]
        name: String,
        /// IAM-like policy (JSON) saying what the key may do; without one it may do
        /// nothing.
        #[arg(long, value_name = "FILE")]
        policy_file: Option<PathBuf>,
    },
    /// Take an existing access key pair, so an existing configuration works unchanged.
    Import {
        #[arg(long)]
        id: String,
        /// File holding the secret access key, or - for stdin (never an argument).
        #[arg(long, value_name = "FILE")]
        secret_file: PathBuf,
        /// Defaults to the id.
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_name = "FILE")]
        policy_file: Option<PathBuf>,
    },
    /// List access keys (never their secrets) and when each was last used.
    List,
    /// Refuse every request signed with this key, until enabled again.
    Disable {
        key: String,
    },
    Enable {
        key: String,
    },
    /// Replace a key's policy; without --policy-file the key may do nothing.
    SetPolicy {
        key: String,
        #[arg(long, value_name = "FILE")]
        policy_file: Option<PathBuf>,
    },
    Delete {
        key: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print a setting.
    Get { name: String },
    /// Set a setting, e.g. `coffer config set aws.account-id 123456789012`.
    Set { name: String, value: String },
}

#[derive(Subcommand, Debug)]
pub enum RegionCommand {
    /// Print this vault's region name and the fingerprint peers pin.
    Identity,
    /// Rename this vault's region (only while no peer is paired).
    Rename { name: String },
    /// Pair a peer: its region name, where its daemon listens, and its fingerprint as
    /// `coffer region identity` prints it there. The peer must pair this vault too.
    Add {
        name: String,
        /// https://HOST:PORT of the peer's `coffer daemon --listen`.
        #[arg(long)]
        url: String,
        #[arg(long)]
        fingerprint: String,
    },
    /// Unpair a peer: it is no longer contacted or let in.
    Remove { name: String },
    /// The paired peers, with the last contact and its key exchange.
    List,
    /// Contact a peer now over pinned TLS and show what was negotiated.
    Ping { name: String },
    /// Write what region NAME has not acknowledged as one signed bundle (for an
    /// air-gapped vault; carried by hand, applied there with `coffer region import`).
    Export {
        name: String,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Apply a bundle from a primary region and write the acknowledgement to carry back.
    Import {
        file: PathBuf,
        /// Where the acknowledgement goes (default: FILE.ack).
        #[arg(long, value_name = "FILE")]
        ack_out: Option<PathBuf>,
    },
    /// Take a region's acknowledgement of a bundle, so the next export moves on.
    ImportAck { file: PathBuf },
    /// Write an acknowledgement of what is applied from primary region NAME without a
    /// bundle: the first one tells that primary this vault's keys.
    Ack {
        name: String,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum TeamCommand {
    /// Create a team owned by this vault.
    Create { name: String },
    /// Add a member: its vault's region name, where its daemon listens, and its
    /// fingerprint as `coffer region identity` prints it there. Pairs it.
    Invite {
        member: String,
        /// https://HOST:PORT of the member's `coffer daemon --listen`.
        #[arg(long)]
        url: String,
        #[arg(long)]
        fingerprint: String,
    },
    /// Join a team (on a member's vault): pairs its owner, whose folders then arrive.
    Join {
        team: String,
        /// The owner vault's region name.
        #[arg(long)]
        owner: String,
        /// https://HOST:PORT of the owner's `coffer daemon --listen`.
        #[arg(long)]
        url: String,
        #[arg(long)]
        fingerprint: String,
    },
    /// Share a folder (a name prefix ending in '/') with a member, or change its role
    /// there. Every secret under the folder is replicated to it.
    Share {
        prefix: String,
        #[arg(long)]
        member: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Take a member's role in a folder away; its copies are deleted when it is reached.
    Unshare {
        prefix: String,
        #[arg(long)]
        member: String,
    },
    /// The team: members, their roles per folder, and their last contact.
    Members,
    /// Remove a member. Lists every secret it could read: those with a rotator are
    /// "rotate now", the others exposed until a new value is put.
    Remove {
        member: String,
        /// Rotate the secrets that have a rotator now.
        #[arg(long)]
        rotate: bool,
    },
    /// Secrets removed members could read, and what is left to do about each.
    Exposures,
    /// Make another member (one that may write there) or the owner the folder's
    /// primary, which orders its writes: how a team keeps writing when its primary
    /// leaves or sleeps. The old primary hands the folder over when both are reached;
    /// writes to it wait until then.
    MovePrimary {
        prefix: String,
        /// The region that becomes the primary.
        #[arg(long)]
        to: String,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleArg {
    Reader,
    Writer,
    Admin,
}

#[derive(Subcommand, Debug)]
pub enum RotationCommand {
    /// What rotates when: failing and overdue secrets first.
    List,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyArg {
    SingleUser,
    AlternatingUsers,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepArg {
    Create,
    Set,
    Test,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    pub name: String,
    /// Set the rotator: generate (a new random password), command (your executable) or
    /// postgres (a PostgreSQL role's password).
    #[arg(long, value_name = "ROTATOR")]
    pub rotator: Option<String>,
    /// Rotate on this schedule: rate(N hours|days) or cron(MIN HOUR DOM MONTH DOW YEAR), UTC.
    #[arg(long, value_name = "EXPR")]
    pub schedule: Option<String>,
    /// How long after the scheduled time a rotation may start (e.g. 2h). Enforced: when
    /// the window passes unused (the computer was off), the rotation waits for the next.
    #[arg(long, value_name = "DURATION")]
    pub window: Option<String>,
    /// command rotator: the executable, called as PATH [ARGS] STEP NAME TOKEN with the
    /// values as JSON on stdin; at create it prints {"value": "..."}.
    #[arg(long = "command", value_name = "PATH")]
    pub command_path: Option<String>,
    /// command rotator: an argument placed before STEP NAME TOKEN; repeatable.
    #[arg(long = "command-arg", value_name = "ARG")]
    pub command_args: Vec<String>,
    /// command and postgres rotators: how long each step may take, like 30s or 5m
    /// (default 30s, at most 1h).
    #[arg(long, value_name = "DURATION", value_parser = crate::commands::step_timeout_secs)]
    pub step_timeout: Option<u64>,
    /// generate rotator: replace only this field of a JSON value.
    #[arg(long, value_name = "FIELD")]
    pub field: Option<String>,
    /// postgres rotator: single-user (the role changes its own password) or
    /// alternating-users (an admin alternates USER and USER_clone).
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyArg>,
    /// postgres alternating-users: the secret with the admin's credentials.
    #[arg(long, value_name = "SECRET")]
    pub admin_secret: Option<String>,
    /// postgres rotator: how the connection is protected, as libpq's sslmode: disable,
    /// prefer (the default: TLS if offered, server not verified), require, verify-ca or
    /// verify-full (the default when --pg-ca-file is given).
    #[arg(long = "pg-sslmode", value_name = "MODE")]
    pub pg_sslmode: Option<String>,
    /// postgres rotator: the CA certificate (PEM) that signed the server's certificate. Its
    /// contents are saved with the rotation settings, so later edits of the file change
    /// nothing.
    #[arg(long = "pg-ca-file", value_name = "FILE")]
    pub pg_ca_file: Option<PathBuf>,
    /// Length of generated passwords (generate and postgres rotators).
    #[arg(long, value_name = "N")]
    pub password_length: Option<usize>,
    /// Only save the configuration; rotate when the schedule says.
    #[arg(long)]
    pub no_rotate_immediately: bool,
    /// Stop after this step as if the process died (for testing recovery).
    #[arg(long, hide = true, value_enum)]
    pub stop_after: Option<StepArg>,
}

#[derive(Subcommand, Debug)]
pub enum SecretRotationCommand {
    /// Rotate a secret now (resuming a rotation in progress), optionally setting its
    /// rotator and schedule first.
    Rotate(Box<RotateArgs>),
    /// Turn scheduled rotation off (a rotation in progress keeps its PENDING version).
    CancelRotate { name: String },
    /// Show a secret's rotation: rotator, schedule, last and next rotation, failures.
    RotationStatus {
        name: String,
        /// How many past attempts to show.
        #[arg(long, default_value_t = 10)]
        history: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyRotationCommand {
    /// Re-wrap every data key under the key's newest version (values are not
    /// re-encrypted); resumable, with progress on stderr.
    Rewrap {
        /// A key id or alias; the default key (alias/default) when omitted.
        #[arg(default_value = "alias/default")]
        key: String,
        /// Data keys per transaction.
        #[arg(long, default_value_t = 1000)]
        batch_size: u32,
    },
    /// Delete an old key version once no data key uses it. Ciphertexts from
    /// `coffer kms encrypt` under that version can no longer be decrypted.
    RetireVersion { key: String, version: u32 },
    /// Rotate the key automatically every N days (a new version, then a re-wrap).
    EnableRotation {
        /// A key id or alias; the default key (alias/default) when omitted.
        #[arg(default_value = "alias/default")]
        key: String,
        #[arg(long, default_value_t = 365)]
        period_days: u32,
    },
    DisableRotation {
        /// A key id or alias; the default key (alias/default) when omitted.
        #[arg(default_value = "alias/default")]
        key: String,
    },
    /// Show the rotation period, the versions and how many data keys each wraps.
    RotationStatus {
        /// A key id or alias; the default key (alias/default) when omitted.
        #[arg(default_value = "alias/default")]
        key: String,
    },
}

#[derive(Args, Debug, Default)]
pub struct PasswordArgs {
    /// Length of the generated password.
    #[arg(long, default_value_t = 32)]
    pub length: usize,
    /// Characters never to use.
    #[arg(long, default_value = "")]
    pub exclude_characters: String,
    #[arg(long)]
    pub exclude_numbers: bool,
    #[arg(long)]
    pub exclude_punctuation: bool,
    #[arg(long)]
    pub exclude_uppercase: bool,
    #[arg(long)]
    pub exclude_lowercase: bool,
    #[arg(long)]
    pub include_space: bool,
    /// Do not force one character of every included kind.
    #[arg(long)]
    pub no_require_each_included_type: bool,
}

#[derive(Args, Debug)]
pub struct ValueSource {
    /// Read the value from FILE (exact bytes), or from stdin with "-". Without it the
    /// value is read from piped stdin or a hidden prompt.
    #[arg(long, value_name = "FILE", conflicts_with = "generate")]
    pub value_file: Option<PathBuf>,
    /// Generate a random password as the value (see the password options).
    #[arg(long)]
    pub generate: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Create a secret, with a first value unless --no-value.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Key id or alias/NAME (default: the vault's default key).
        #[arg(long)]
        key: Option<String>,
        /// A tag as KEY=VALUE; repeatable.
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// Create the secret without a value.
        #[arg(long, conflicts_with_all = ["value_file", "generate"])]
        no_value: bool,
        /// Idempotency token: a retry with the same token creates nothing new.
        #[arg(long)]
        client_token: Option<String>,
        #[command(flatten)]
        source: ValueSource,
    },
    /// Print a secret's value alone (CURRENT unless a label or version is given).
    Get {
        name: String,
        #[arg(long, conflicts_with = "version_id")]
        label: Option<String>,
        #[arg(long)]
        version_id: Option<String>,
    },
    /// Store a new value as a new version (it becomes CURRENT unless --label says otherwise).
    Put {
        name: String,
        /// Staging label for the new version; repeatable.
        #[arg(long = "label", value_name = "LABEL")]
        labels: Vec<String>,
        #[arg(long)]
        client_token: Option<String>,
        #[command(flatten)]
        source: ValueSource,
    },
    /// Show a secret's metadata and versions.
    Describe { name: String },
    /// List secrets.
    List {
        /// Only names starting with this.
        #[arg(long)]
        prefix: Option<String>,
        /// Only secrets with this tag (KEY or KEY=VALUE).
        #[arg(long)]
        tag: Option<String>,
        /// Only secrets whose description contains this.
        #[arg(long)]
        description_contains: Option<String>,
        /// Match this text in names, descriptions and tags.
        #[arg(long)]
        search: Option<String>,
        /// Include secrets scheduled for deletion.
        #[arg(long, conflicts_with = "deleted_only")]
        include_deleted: bool,
        /// Only secrets scheduled for deletion.
        #[arg(long)]
        deleted_only: bool,
        #[arg(long, value_enum, default_value_t = Sort::Name)]
        sort: Sort,
        /// Page size (1-1000).
        #[arg(long, default_value_t = 100)]
        max_results: u32,
        /// Continue from a previous page.
        #[arg(long)]
        next_token: Option<String>,
        /// Fetch every page.
        #[arg(long, conflicts_with = "next_token")]
        all: bool,
    },
    /// List a secret's versions and their labels.
    Versions { name: String },
    /// Change a secret's description or key.
    Update {
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        key: Option<String>,
    },
    /// Move a staging label to another version, or remove it.
    UpdateVersionStage {
        name: String,
        #[arg(long)]
        label: String,
        /// Version to put the label on.
        #[arg(long)]
        move_to: Option<String>,
        /// Version the label is on now (required to move a label that is on a version).
        #[arg(long)]
        remove_from: Option<String>,
    },
    /// Add or change tags.
    Tag {
        name: String,
        #[arg(required = true, value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
    /// Remove tags.
    Untag {
        name: String,
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
    /// Delete a secret (recoverable for 30 days unless told otherwise).
    Delete {
        name: String,
        #[arg(
            long,
            value_name = "DAYS",
            conflicts_with = "force_delete_without_recovery"
        )]
        recovery_window_in_days: Option<u32>,
        /// Delete at once; the value cannot be recovered.
        #[arg(long)]
        force_delete_without_recovery: bool,
    },
    /// Cancel a scheduled deletion.
    Restore { name: String },
    /// Replicate a secret to a paired region (a read-only copy there, kept in sync by the
    /// daemons).
    Replicate {
        name: String,
        /// The paired region (`coffer region list`).
        #[arg(long)]
        region: String,
        /// The key the copy is wrapped under in that region: a key id or alias/NAME
        /// there (default: that region's default key).
        #[arg(long)]
        key: Option<String>,
    },
    /// Stop replicating a secret to a region; its copy there is deleted when reached.
    RemoveRegion {
        name: String,
        #[arg(long)]
        region: String,
    },
    /// Make a replica a secret of its own here: it stops following its primary region.
    Promote { name: String },
    /// Read several secrets' CURRENT values (JSON).
    BatchGet {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Generate a random password (no vault needed).
    RandomPassword {
        #[command(flatten)]
        password: PasswordArgs,
    },
    #[command(flatten)]
    Rotation(SecretRotationCommand),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Name,
    Changed,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create a key sealed in the TPM.
    Create {
        #[arg(long, default_value = "")]
        description: String,
        /// An alias for it, like alias/team-db.
        #[arg(long)]
        alias: Option<String>,
    },
    List,
    Describe {
        /// A key id or alias; the default key (alias/default) when omitted.
        #[arg(default_value = "alias/default")]
        key: String,
    },
    /// Add a new key version; new data keys are wrapped under it.
    Rotate {
        /// A key id or alias; the default key (alias/default) when omitted.
        #[arg(default_value = "alias/default")]
        key: String,
    },
    Enable {
        key: String,
    },
    Disable {
        key: String,
    },
    /// Delete a key after 7-30 days (refused while secrets use it).
    ScheduleDeletion {
        key: String,
        #[arg(long, default_value_t = 30)]
        pending_window_in_days: u32,
    },
    CancelDeletion {
        key: String,
    },
    CreateAlias {
        alias: String,
        key: String,
    },
    DeleteAlias {
        alias: String,
    },
    #[command(flatten)]
    Rotation(KeyRotationCommand),
}

#[derive(Args, Debug, Default)]
pub struct Context {
    /// Encryption context pair KEY=VALUE (repeatable); decrypt needs the same pairs.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pub pairs: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum KmsCommand {
    /// Encrypt up to 4 KiB; prints the ciphertext in base64.
    Encrypt {
        #[arg(long)]
        key: String,
        /// Plaintext file, or - for stdin.
        #[arg(long, default_value = "-")]
        plaintext_file: PathBuf,
        #[command(flatten)]
        context: Context,
    },
    /// Decrypt a base64 ciphertext; prints the plaintext bytes.
    Decrypt {
        /// File with the base64 ciphertext, or - for stdin.
        #[arg(long, default_value = "-")]
        ciphertext_file: PathBuf,
        #[command(flatten)]
        context: Context,
    },
    /// Decrypt and encrypt again under another key or context.
    ReEncrypt {
        #[arg(long, default_value = "-")]
        ciphertext_file: PathBuf,
        #[arg(long)]
        destination_key: String,
        #[arg(long = "source-context", value_name = "KEY=VALUE")]
        source_context: Vec<String>,
        #[arg(long = "destination-context", value_name = "KEY=VALUE")]
        destination_context: Vec<String>,
    },
    /// A new data key: plaintext and ciphertext (base64, JSON).
    GenerateDataKey {
        #[arg(long)]
        key: String,
        #[arg(long, default_value_t = 32)]
        number_of_bytes: usize,
        #[command(flatten)]
        context: Context,
    },
    /// A new data key, encrypted only.
    GenerateDataKeyWithoutPlaintext {
        #[arg(long)]
        key: String,
        #[arg(long, default_value_t = 32)]
        number_of_bytes: usize,
        #[command(flatten)]
        context: Context,
    },
    /// Random bytes from the OS RNG, in base64.
    GenerateRandom {
        #[arg(long, default_value_t = 32)]
        number_of_bytes: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Print the log, newest first.
    List {
        /// Only entries about this secret.
        #[arg(long)]
        secret: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Check every entry's MAC and the chain's head.
    Verify,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    #[test]
    fn no_agent_takes_the_values_people_type() {
        for (value, expected) in [
            ("1", true),
            ("yes", true),
            ("TRUE", true),
            ("on", true),
            ("0", false),
            ("no", false),
            ("false", false),
            ("off", false),
        ] {
            std::env::set_var("COFFER_NO_AGENT", value);
            let cli = Cli::try_parse_from(["coffer", "status"]).unwrap();
            assert_eq!(cli.no_agent, expected, "{value}");
        }
        std::env::set_var("COFFER_NO_AGENT", "maybe");
        assert!(Cli::try_parse_from(["coffer", "status"]).is_err());
        std::env::remove_var("COFFER_NO_AGENT");
        assert!(
            Cli::try_parse_from(["coffer", "--no-agent", "status"])
                .unwrap()
                .no_agent
        );
    }
}
