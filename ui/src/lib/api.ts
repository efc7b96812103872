// The typed client for Coffer's IPC commands. Components never call `invoke` directly:
// everything goes through this module, which also turns rejections into `ApiError`s.
import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';

// ---------- types mirrored from src-tauri (serde) ----------

export type TpmSource = 'environment' | 'device' | 'software' | 'missing';

export interface TpmInfo {
  manufacturer: string;
  vendor: string;
  firmware_version: string;
  is_software: boolean;
  lockout_counter: number;
  max_auth_fail: number;
  lockout_interval_secs: number;
  lockout_recovery_secs: number;
  in_lockout: boolean;
}

export interface TpmStatus {
  source: TpmSource;
  tcti: string;
  info: TpmInfo | null;
  attempts_left: number | null;
  retry_after_secs: number | null;
  problem: string | null;
}

export interface AppStatus {
  vault_path: string;
  vault_exists: boolean;
  unlocked: boolean;
  tpm: TpmStatus;
  /** How the vault unlocks: "pin", or "unattended" (TPM only, no PIN; made with `coffer init --unattended`). */
  unlock_policy: "pin" | "unattended" | null;
  version: string;
}

export type Tags = Record<string, string>;

export interface SecretSummary {
  id: string;
  name: string;
  description: string;
  tags: Tags;
  changed_at: string;
  last_accessed: string | null;
  deleted_at: string | null;
  purge_at: string | null;
}

export interface Page<T> {
  items: T[];
  next_token: string | null;
}

export interface SecretVersionInfo {
  version_id: string;
  created_at: string;
  labels: string[];
  key_id: string;
  key_version: number;
}

export interface SecretDescription {
  id: string;
  name: string;
  description: string;
  key_id: string;
  key_aliases: string[];
  tags: Tags;
  created_at: string;
  changed_at: string;
  last_accessed: string | null;
  deleted_at: string | null;
  purge_at: string | null;
  versions: SecretVersionInfo[];
  /** Absent when the secret has no rotation configured. */
  rotation?: RotationInfo;
  /** Absent when the secret is neither replicated nor a replica. */
  replication?: SecretReplication | null;
}

/** Like Secrets Manager's `ReplicationStatus` (mirrors coffer_core replication). */
export type ReplicationStatus = 'InSync' | 'InProgress' | 'Failed';

/** One region a primary secret is replicated to. */
export interface RegionReplication {
  region: string;
  /** The key the copy is wrapped under there; that region's default key when absent. */
  key?: string | null;
  status: ReplicationStatus;
  /** Why the region could not apply the last change, when `Failed`. */
  message?: string | null;
  last_synced: string | null;
  /** Changes of this secret the region has not acknowledged yet. */
  pending: number;
}

/** A secret's place in replication: a replica names its primary region; a primary lists its regions. */
export interface SecretReplication {
  primary_region?: string | null;
  last_applied?: string | null;
  regions?: RegionReplication[];
}

/** An access key of the AWS-compatible API, as listed: never its secret. */
export interface AccessKeyInfo {
  id: string;
  name: string;
  enabled: boolean;
  /** The IAM-like policy document; null allows nothing. */
  policy: string | null;
  created_at: string;
  last_used_at: string | null;
  last_used_for: string | null;
}

/** A new access key with its secret, which is shown once and then dropped. */
export interface CreatedAccessKey {
  key: AccessKeyInfo;
  secret: string;
}

/** Settings → AWS-compatible API. */
export interface AwsApiStatus {
  enabled: boolean;
  address: string;
  default_address: string;
  /** Where it listens now; null while off or locked. */
  listening: string | null;
  /** Why it is on but not listening. */
  problem: string | null;
  account_id: string;
}

/** Receive from peers: whether the app listens for paired peers while unlocked. */
export interface PeerListenerStatus {
  enabled: boolean;
  address: string;
  default_address: string;
  /** Where it listens now; null while off or locked. */
  listening: string | null;
  /** Why it is on but not listening. */
  problem: string | null;
}

export interface VersionWritten {
  name: string;
  secret_id: string;
  version_id: string;
  labels: string[];
  created: boolean;
}

export type SecretInput = { kind: 'text'; text: string } | { kind: 'binary'; base64: string };

export interface Revealed {
  version_id: string;
  labels: string[];
  size: number;
  kind: 'text' | 'binary';
  text: string | null;
  base64: string | null;
}

export interface ListArgs {
  text?: string;
  tag_key?: string;
  tag_value?: string;
  deleted?: 'exclude' | 'include' | 'only';
  sort?: 'name' | 'changed';
  limit?: number;
  next_token?: string | null;
}

export interface CreateArgs {
  name: string;
  description?: string;
  key?: string;
  tags?: Tags;
  value?: SecretInput;
}

export interface UpdateArgs {
  name: string;
  description?: string;
  key?: string;
  set_tags?: Tags;
  remove_tags?: string[];
}

export interface PasswordOptions {
  length: number;
  exclude_characters: string;
  exclude_numbers: boolean;
  exclude_punctuation: boolean;
  exclude_uppercase: boolean;
  exclude_lowercase: boolean;
  include_space: boolean;
  require_each_included_type: boolean;
}

export const defaultPasswordOptions: PasswordOptions = {
  length: 32,
  exclude_characters: '',
  exclude_numbers: false,
  exclude_punctuation: false,
  exclude_uppercase: false,
  exclude_lowercase: false,
  include_space: false,
  require_each_included_type: true,
};

export type KeyState = 'enabled' | 'disabled' | 'pending_deletion';

export interface KeyDescription {
  id: string;
  aliases: string[];
  description: string;
  state: KeyState;
  is_default: boolean;
  created_at: string;
  deletion_at: string | null;
  versions: { version: number; created_at: string }[];
}

export interface AuditEntry {
  seq: number;
  at: string;
  uid: number;
  pid: number;
  process: string;
  operation: string;
  secret_id: string | null;
  secret_name: string | null;
  version_id: string | null;
  key_id: string | null;
  result: string;
  detail: string;
  chained: boolean;
}

export interface AuditVerification {
  entries: number;
  chained: number;
  pending: number;
  /** Chained entries in which an unlock recorded that failed-unlock entries had been
   * deleted or forged while the vault was locked. */
  findings?: AuditFinding[];
}

/** This vault as a region: its name and the fingerprint peers pin. */
export interface RegionIdentity {
  region: string;
  fingerprint: string;
  vault_id: string;
}

/** A paired peer (replica region) and what the last contact found. */
export interface PeerInfo {
  name: string;
  url: string;
  fingerprint: string;
  added_at: string;
  last_contact: string | null;
  key_exchange: string | null;
  last_error: string | null;
  /** Replicated changes it has not acknowledged yet. */
  backlog?: number;
}

/** What exporting a bundle for an air-gapped region wrote (`coffer region export`). */
export interface BundleWritten {
  region: string;
  entries: number;
  after: number;
  last_seq: number;
  /** Changes left for the next bundle, once this one is acknowledged. */
  remaining: number;
  path: string;
}

/** A region a change could not be applied in, and why. */
export interface NotApplied {
  secret_id: string;
  reason: string;
}

/** What importing a bundle applied (`coffer region import`), and where the
 * acknowledgement to carry back was written. */
export interface BundleRead {
  /** The primary region the bundle came from. */
  region: string;
  applied: number;
  skipped: number;
  applied_upto: number;
  not_applied: NotApplied[];
  ack_path: string;
}

/** What importing an acknowledgement did (`coffer region import-ack`). */
export interface AckImport {
  region: string;
  acked: number;
  /** Changes the region still lacks. */
  backlog: number;
}

export interface PeerContact {
  name: string;
  url: string;
  fingerprint: string;
  vault_id: string;
  protocol: string;
  key_exchange: string;
}

/** A role in a shared folder (mirrors coffer_core::vault::team::TeamRole): each includes the one before. */
export type TeamRole = 'reader' | 'writer' | 'admin';

/** A member vault of the team; last contact, backlog and last error are known on the owner only. */
export interface TeamMember {
  region: string;
  added_at: string;
  /** Its role per shared folder, by prefix (ending in '/'). */
  roles: Record<string, TeamRole>;
  last_contact: string | null;
  /** Replicated changes it has not acknowledged yet. */
  backlog: number;
  last_error: string | null;
}

/** A shared folder: a name prefix, and the region that orders writes to it. */
export interface TeamFolder {
  prefix: string;
  primary_region: string;
  /** While the folder moves (`coffer team move-primary`): the primary handing it over. */
  handover_from?: string | null;
}

/** The team this vault belongs to (`coffer team members`). */
export interface TeamInfo {
  name: string;
  owner_region: string;
  own_region: string;
  is_owner: boolean;
  /** The owner's change count this copy reflects (0: nothing received from it yet). */
  revision: number;
  members: TeamMember[];
  folders: TeamFolder[];
}

/** rotate_now: it has a rotator and was not rotated since; exposed: no rotator, until a new version is put. */
export type ExposureState = 'rotate_now' | 'exposed' | 'rotated';

/** A secret a removed member could read. */
export interface Exposure {
  secret: string;
  member: string;
  since: string;
  state: ExposureState;
}

/** What removing a member did (`coffer team remove`). */
export interface TeamRemoval {
  member: string;
  exposures: Exposure[];
  rotated: string[];
  /** Secret, and why its rotation failed. */
  rotation_failures: [string, string][];
}

export interface AuditFinding {
  seq: number;
  at: string;
  detail: string;
}

export type Theme = 'system' | 'light' | 'dark';

export interface Settings {
  auto_lock_secs: number;
  clipboard_clear_secs: number;
  theme: Theme;
  /** Lock when the machine is about to suspend. */
  lock_on_suspend: boolean;
  /** Lock when the screen locks. */
  lock_on_screen_lock: boolean;
}

// ---------- rotation (mirrors coffer_core::rotation) ----------

export type Step = 'create' | 'set' | 'test' | 'finish';
export type RotationState = 'failing' | 'overdue' | 'in_progress' | 'scheduled' | 'disabled';
export type PgStrategy = 'single_user' | 'alternating_users';

export type RotatorConfig =
  | { rotator: 'generate'; field?: string | null; password: PasswordOptions }
  | { rotator: 'command'; path: string; args?: string[]; timeout_secs: number }
  | {
      rotator: 'postgres';
      strategy: PgStrategy;
      admin_secret?: string | null;
      timeout_secs: number;
      password: PasswordOptions;
      /** libpq's sslmode; absent in settings saved before it existed (then `prefer`). */
      sslmode?: PgSslMode;
      /** The CA certificates (PEM) that verify-ca and verify-full trust. */
      ca_pem?: string | null;
    };

export type PgSslMode = 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

export interface RotationSettings {
  /** `rate(30 days)`, `cron(0 4 ? * SUN *)`, or null for rotation on demand only. */
  schedule: string | null;
  /** `2h`, `90m`…: how long after the scheduled time a rotation may start. */
  window: string | null;
  rotator: RotatorConfig;
}

export interface RotationInfo {
  secret_name: string;
  enabled: boolean;
  schedule: string | null;
  window: string | null;
  rotator: RotatorConfig;
  state: RotationState;
  last_rotated: string | null;
  next_rotation: string | null;
  /** The rotation in progress (its PENDING version's token) and the next step to run. */
  token: string | null;
  step: Step | null;
  attempts: number;
  last_error: string | null;
  last_error_at: string | null;
  next_retry: string | null;
}

export interface RotationHistoryEntry {
  at: string;
  token: string;
  step: Step;
  /** `ok`, or the error code of a failed step. */
  result: string;
  version_id: string | null;
  error: string | null;
}

export interface RotationOutcome {
  secret_name: string;
  token: string;
  version_id: string | null;
  completed: Step | null;
  finished: boolean;
}

export interface SchedulePreview {
  /** The schedule as Coffer writes it back (normalised spacing and units). */
  schedule: string;
  /** The window, normalised, if one was given. */
  window: string | null;
  /** The next few rotation times, soonest first; the first is now when `due_now`. */
  next: string[];
  /** Saving makes a rotation due at once (the scheduler catches up once). */
  due_now: boolean;
}

export interface KeyRotationInfo {
  key_id: string;
  /** Automatic rotation period; null when automatic rotation is off. */
  period_days: number | null;
  next_rotation: string | null;
  newest_version: number;
  /** [version, data keys wrapped under it], oldest version first. */
  data_keys_by_version: [number, number][];
  /** Data keys not yet under the newest version. */
  stale_data_keys: number;
}

export interface RewrapProgress {
  key_id: string;
  to_version: number;
  /** Re-wrapped by this run so far. */
  done: number;
  /** Still under an older version. */
  remaining: number;
}

export interface DueReport {
  rotated: string[];
  failed: { name: string; code: string; message: string }[];
  keys_rotated: string[];
  data_keys_rewrapped: number;
  next_due: string | null;
}

// ---------- errors ----------

export interface ErrorPayload {
  code: string;
  message: string;
  field?: string;
  attempts_left?: number;
  retry_after_secs?: number;
}

/** A failed command: `code` to branch on, `message` to show, `field` to show it at. */
export class ApiError extends Error {
  readonly code: string;
  readonly field?: string;
  readonly attemptsLeft?: number;
  readonly retryAfterSecs?: number;

  constructor(payload: ErrorPayload) {
    super(payload.message);
    this.name = 'ApiError';
    this.code = payload.code;
    this.field = payload.field;
    this.attemptsLeft = payload.attempts_left;
    this.retryAfterSecs = payload.retry_after_secs;
  }

  static from(raw: unknown): ApiError {
    if (raw instanceof ApiError) return raw;
    if (raw && typeof raw === 'object' && 'code' in raw && 'message' in raw) {
      return new ApiError(raw as ErrorPayload);
    }
    const message = raw instanceof Error ? raw.message : String(raw);
    return new ApiError({ code: 'internal', message });
  }
}

export async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (raw) {
    throw ApiError.from(raw);
  }
}

// ---------- commands ----------

export const api = {
  status: () => call<AppStatus>('app_status'),
  initVault: (pin: string, pcrs: number[]) =>
    call<{ recovery_code: string }>('init_vault', { pin, pcrs }),
  unlock: (pin: string) => call<void>('unlock_vault', { pin }),
  /** For a vault whose unlock policy is unattended: the TPM alone releases the keys. */
  unlockUnattended: () => call<void>('unlock_vault_unattended'),
  recover: (recoveryCode: string, newPin: string) =>
    call<void>('recover_vault', { recoveryCode, newPin }),
  lock: () => call<void>('lock_vault'),
  changePin: (currentPin: string, newPin: string) =>
    call<void>('change_pin', { currentPin, newPin }),
  noteActivity: () => call<void>('note_activity'),

  listSecrets: (args: ListArgs) => call<Page<SecretSummary>>('list_secrets', { args }),
  describeSecret: (name: string) => call<SecretDescription>('describe_secret', { name }),
  createSecret: (args: CreateArgs) => call<VersionWritten>('create_secret', { args }),
  putSecretValue: (name: string, value: SecretInput) =>
    call<VersionWritten>('put_secret_value', { name, value }),
  updateSecret: (args: UpdateArgs) => call<void>('update_secret', { args }),
  moveLabel: (name: string, label: string, to: string, from: string | null) =>
    call<void>('move_label', { name, label, to, from }),
  deleteSecret: (name: string, recoveryDays: number | null, force = false) =>
    call<string | null>('delete_secret', { name, recoveryDays, force }),
  restoreSecret: (name: string) => call<void>('restore_secret', { name }),

  revealSecret: (name: string, versionId: string | null = null) =>
    call<Revealed>('reveal_secret', { name, versionId }),
  copySecret: (name: string, versionId: string | null = null, jsonKey: string | null = null) =>
    call<{ clear_after_secs: number }>('copy_secret', { name, versionId, jsonKey }),
  generatePassword: (options: PasswordOptions) => call<string>('generate_password', { options }),

  listKeys: () => call<KeyDescription[]>('list_keys'),
  createKey: (description: string, alias: string | null) =>
    call<KeyDescription>('create_key', { description, alias }),
  createAlias: (alias: string, key: string) => call<void>('create_alias', { alias, key }),
  rotateKey: (key: string) => call<KeyDescription>('rotate_key', { key }),
  keyRotationStatus: (key: string) => call<KeyRotationInfo>('key_rotation_status', { key }),
  enableKeyRotation: (key: string, periodDays: number) =>
    call<KeyRotationInfo>('enable_key_rotation', { key, periodDays }),
  disableKeyRotation: (key: string) => call<KeyRotationInfo>('disable_key_rotation', { key }),
  /** Re-wraps every data key under the key's newest version; progress arrives as events. */
  rewrapKey: (key: string) => call<RewrapProgress>('rewrap_key', { key }),
  retireKeyVersion: (key: string, version: number) =>
    call<KeyRotationInfo>('retire_key_version', { key, version }),

  /** `pin` is needed when the rotator is a new or changed command (it runs a program). */
  configureRotation: (name: string, settings: RotationSettings, pin: string | null = null) =>
    call<RotationInfo>('configure_rotation', { name, settings, pin }),
  cancelRotation: (name: string) => call<RotationInfo>('cancel_rotation', { name }),
  /** Rotates now, or resumes the rotation in progress. */
  rotateSecret: (name: string) => call<RotationOutcome>('rotate_secret', { name }),
  rotationHistory: (name: string, limit = 50) =>
    call<RotationHistoryEntry[]>('rotation_history', { name, limit }),
  listRotations: () => call<RotationInfo[]>('list_rotations'),
  /** Checks a schedule (and window) and lists the next rotation times, counted from the
   * last rotation as the scheduler counts them; errors name the field. */
  previewSchedule: (schedule: string, window: string | null = null, lastRotated: string | null = null, count = 3) =>
    call<SchedulePreview>('preview_schedule', { schedule, window, lastRotated, count }),

  auditList: (secret: string | null, beforeSeq: number | null = null, limit = 200) =>
    call<AuditEntry[]>('audit_list', { secret, beforeSeq, limit }),
  auditVerify: () => call<AuditVerification>('audit_verify'),

  regionIdentity: () => call<RegionIdentity>('region_identity'),
  renameRegion: (name: string) => call<RegionIdentity>('rename_region', { name }),
  listPeers: () => call<PeerInfo[]>('list_peers'),
  addPeer: (name: string, url: string, fingerprint: string) =>
    call<PeerInfo>('add_peer', { name, url, fingerprint }),
  removePeer: (name: string) => call<void>('remove_peer', { name }),
  pingPeer: (name: string) => call<PeerContact>('ping_peer', { name }),
  /** Not counted as user activity: for a screen that watches backlog and contact move. */
  watchPeers: () => call<PeerInfo[]>('watch_peers'),
  /** Each opens the native file chooser; `null` when the user cancels it. */
  exportRegionBundle: (name: string) => call<BundleWritten | null>('export_region_bundle', { name }),
  importRegionBundle: () => call<BundleRead | null>('import_region_bundle'),
  importRegionAck: () => call<AckImport | null>('import_region_ack'),

  /** `key`: the key the copy is wrapped under there (that region's default when null). */
  replicateSecret: (name: string, region: string, key: string | null = null) =>
    call<SecretReplication>('replicate_secret', { name, region, key }),
  removeSecretRegion: (name: string, region: string) =>
    call<void>('remove_secret_region', { name, region }),
  promoteSecret: (name: string) => call<void>('promote_secret', { name }),
  /** Not counted as user activity: for a tab that watches replication settle. */
  watchSecretReplication: (name: string) =>
    call<SecretReplication | null>('watch_secret_replication', { name }),

  /** The team this vault is in; null when it is in none. */
  teamShow: () => call<TeamInfo | null>('team_show'),
  teamCreate: (name: string) => call<TeamInfo>('team_create', { name }),
  /** Pairs the member's vault (pinned by `fingerprint`) and adds it to the team. */
  teamInvite: (member: string, url: string, fingerprint: string) =>
    call<TeamInfo>('team_invite', { member, url, fingerprint }),
  /** Pairs this vault with the team's owner (pinned by `fingerprint`). */
  teamJoin: (team: string, owner: string, url: string, fingerprint: string) =>
    call<TeamInfo>('team_join', { team, owner, url, fingerprint }),
  /** Shares a folder with a member, or changes its role there. */
  teamShare: (prefix: string, member: string, role: TeamRole) =>
    call<TeamInfo>('team_share', { prefix, member, role }),
  teamUnshare: (prefix: string, member: string) => call<TeamInfo>('team_unshare', { prefix, member }),
  /** `rotate`: rotate now every exposed secret that has a rotator. */
  teamRemove: (member: string, rotate: boolean) => call<TeamRemoval>('team_remove', { member, rotate }),
  teamExposures: () => call<Exposure[]>('team_exposures'),
  /** Not counted as user activity: for a screen that watches last contact and backlog move. */
  watchTeam: () => call<TeamInfo | null>('watch_team'),

  listAccessKeys: () => call<AccessKeyInfo[]>('list_access_keys'),
  /** The policy is checked by the engine; errors name what is wrong in it. */
  createAccessKey: (name: string, policy: string | null) =>
    call<CreatedAccessKey>('create_access_key', { name, policy }),
  setAccessKeyEnabled: (key: string, enabled: boolean) =>
    call<AccessKeyInfo>('set_access_key_enabled', { key, enabled }),
  deleteAccessKey: (key: string) => call<void>('delete_access_key', { key }),

  peerListenerStatus: () => call<PeerListenerStatus>('peer_listener_status'),
  /** Binds the address before saving: a refused one is an error and nothing changes. */
  configurePeerListener: (enabled: boolean, address: string) =>
    call<PeerListenerStatus>('configure_peer_listener', { enabled, address }),
  awsApiStatus: () => call<AwsApiStatus>('aws_api_status'),
  /** Binds the address before saving: a refused one is an error and nothing changes. */
  configureAwsApi: (enabled: boolean, address: string) =>
    call<AwsApiStatus>('configure_aws_api', { enabled, address }),
  setAwsAccountId: (accountId: string) =>
    call<AwsApiStatus>('set_aws_account_id', { accountId }),

  getSettings: () => call<Settings>('get_settings'),
  saveSettings: (settings: Settings) => call<Settings>('save_settings', { settings }),
};

export type Api = typeof api;

// ---------- events ----------

/** Why the vault locked (mirrors the app's `locking::LockReason`). */
export type LockReason = 'manual' | 'idle' | 'elsewhere' | 'suspend' | 'screen-lock';

export const events = {
  onLocked: (handler: (reason: LockReason) => void): Promise<UnlistenFn> =>
    listen<LockReason>('vault-locked', (event) => handler(event.payload)),
  onClipboardCleared: (handler: () => void): Promise<UnlistenFn> =>
    listen('clipboard-cleared', () => handler()),
  /** The app's scheduler ran something (rotations, key rotations, re-wraps). */
  onRotationsRan: (handler: (report: DueReport) => void): Promise<UnlistenFn> =>
    listen<DueReport>('rotations-ran', (event) => handler(event.payload)),
  onRewrapProgress: (handler: (progress: RewrapProgress) => void): Promise<UnlistenFn> =>
    listen<RewrapProgress>('rewrap-progress', (event) => handler(event.payload)),
};
