// Pure helpers for secret rotation: schedules and rotators in words, states as chips,
// and the small parsers the rotation editor needs. Nothing here talks to the engine.
import type {
  PgSslMode,
  ApiError,
  DueReport,
  PasswordOptions,
  RotationInfo,
  RotationSettings,
  RotationState,
  RotatorConfig,
} from './api';
import { formatRelative } from './format';

// ---------- states ----------

const STATE_LABELS: Record<RotationState, string> = {
  failing: 'Failing',
  overdue: 'Overdue',
  in_progress: 'In progress',
  scheduled: 'Scheduled',
  disabled: 'Off',
};

const STATE_CHIPS: Record<RotationState, string> = {
  failing: 'danger',
  overdue: 'warning',
  in_progress: 'accent',
  scheduled: 'success',
  disabled: '',
};

/** The order `list_rotations` sorts by, most urgent first. */
export const STATE_ORDER: RotationState[] = ['failing', 'overdue', 'in_progress', 'scheduled', 'disabled'];

export function stateLabel(state: RotationState): string {
  return STATE_LABELS[state] ?? state;
}

/** The `.chip` modifier class for a state ('' for the neutral chip). */
export function stateChip(state: RotationState): string {
  return STATE_CHIPS[state] ?? '';
}

/** "1 failing · 2 overdue · 5 scheduled": non-zero counts, most urgent first. */
export function summarize(rotations: Pick<RotationInfo, 'state'>[]): string {
  const counts = new Map<RotationState, number>();
  for (const r of rotations) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  return STATE_ORDER.filter((s) => counts.get(s))
    .map((s) => `${counts.get(s)} ${s === 'disabled' ? 'off' : stateLabel(s).toLowerCase()}`)
    .join(' · ');
}

// ---------- schedules ----------

export type RateUnit = 'hours' | 'days';
export type ScheduleKind = 'none' | 'rate' | 'cron';

/** `rate(30 days)` → { amount: 30, unit: 'days' }; anything else → null. */
export function parseRate(schedule: string | null | undefined): { amount: number; unit: RateUnit } | null {
  const match = /^\s*rate\(\s*(\d+)\s+(hours?|days?)\s*\)\s*$/i.exec(schedule ?? '');
  if (!match) return null;
  const amount = Number(match[1]);
  const unit = match[2]!.toLowerCase().startsWith('hour') ? 'hours' : 'days';
  return { amount, unit };
}

/** `rate(1 day)`, `rate(30 days)`, `rate(12 hours)`: the unit is singular for 1, as Coffer writes it. */
export function buildRate(amount: number, unit: RateUnit): string {
  return `rate(${amount} ${amount === 1 ? unit.slice(0, -1) : unit})`;
}

/** What the editor's schedule select shows for a saved schedule: a rate it can edit, else cron. */
export function scheduleKind(schedule: string | null | undefined): ScheduleKind {
  if (!schedule) return 'none';
  return parseRate(schedule) ? 'rate' : 'cron';
}

/** A cron expression as typed: bare fields (`0 4 ? * SUN *`) are wrapped in `cron(…)`. */
export function normalizeCron(text: string): string {
  const trimmed = text.trim();
  if (!trimmed || trimmed.includes('(')) return trimmed;
  return `cron(${trimmed})`;
}

/**
 * The schedule the editor's inputs describe, or what keeps them from describing one. Only the
 * obvious is checked here (a whole number, something typed); the engine checks the rest.
 */
export function buildSchedule(
  kind: ScheduleKind,
  amount: number | null | undefined,
  unit: RateUnit,
  cron: string,
): { schedule: string | null; error?: string } {
  if (kind === 'none') return { schedule: null };
  if (kind === 'rate') {
    const n = Number(amount);
    if (amount === null || amount === undefined || !Number.isInteger(n) || n < 1) {
      return { schedule: null, error: `Enter how many ${unit} between rotations: a whole number, 1 or more.` };
    }
    return { schedule: buildRate(n, unit) };
  }
  const text = normalizeCron(cron);
  if (!text) return { schedule: null, error: 'Enter a cron expression, like cron(0 4 ? * SUN *).' };
  return { schedule: text };
}

export interface ScheduleParts {
  /** "Every 30 days", "On demand only"; null for cron (shown raw). */
  words: string | null;
  /** The expression itself, or null when there is none. */
  raw: string | null;
  /** Cron runs in UTC; say so. */
  utc: boolean;
}

export function scheduleParts(schedule: string | null | undefined): ScheduleParts {
  if (!schedule) return { words: 'On demand only', raw: null, utc: false };
  const rate = parseRate(schedule);
  if (rate) {
    const unit = rate.unit.slice(0, -1);
    const words = rate.amount === 1 ? `Every ${unit}` : `Every ${rate.amount} ${rate.unit}`;
    return { words, raw: schedule.trim(), utc: false };
  }
  return { words: null, raw: schedule.trim(), utc: true };
}

/** "Every 30 days · rate(30 days)", "cron(0 4 ? * SUN *) UTC", "On demand only". */
export function describeSchedule(schedule: string | null | undefined): string {
  const { words, raw, utc } = scheduleParts(schedule);
  if (!raw) return words ?? '';
  if (utc) return `${raw} UTC`;
  return `${words} · ${raw}`;
}

/** "Every 30 days", "Cron (UTC)", "On demand only": for narrow table cells. */
export function scheduleShort(schedule: string | null | undefined): string {
  return scheduleParts(schedule).words ?? 'Cron (UTC)';
}

/** "Starts within 2h of the scheduled time; …", or "None". A window is enforced: a
 * scheduled rotation whose window passed unused waits for the next one. */
export function describeWindow(window: string | null | undefined): string {
  return window
    ? `Starts within ${window} of the scheduled time; a window missed (computer off) waits for the next`
    : 'None';
}

// ---------- rotators ----------

/** "32 chars, no punctuation": the password rules in a few words. */
export function describePassword(p: PasswordOptions | undefined): string {
  if (!p) return '';
  const parts = [`${p.length} chars`];
  if (p.exclude_uppercase) parts.push('no uppercase');
  if (p.exclude_lowercase) parts.push('no lowercase');
  if (p.exclude_numbers) parts.push('no numbers');
  if (p.exclude_punctuation) parts.push('no punctuation');
  if (p.include_space) parts.push('with spaces');
  if (p.exclude_characters) parts.push(`without ${p.exclude_characters}`);
  return parts.join(', ');
}

/** "Generated password", "Command", "PostgreSQL". */
export function rotatorKind(rotator: RotatorConfig): string {
  switch (rotator.rotator) {
    case 'generate':
      return 'Generated password';
    case 'command':
      return 'Command';
    case 'postgres':
      return 'PostgreSQL';
  }
}

/**
 * "Generated password (field password, 32 chars)", "Command /usr/local/bin/rotate-db (30 s per
 * step)", "PostgreSQL, single user". Never includes a value: configs hold none.
 */
export function describeRotator(rotator: RotatorConfig): string {
  switch (rotator.rotator) {
    case 'generate': {
      const parts = rotator.field ? [`field ${rotator.field}`] : [];
      const rules = describePassword(rotator.password);
      if (rules) parts.push(rules);
      return parts.length ? `Generated password (${parts.join(', ')})` : 'Generated password';
    }
    case 'command': {
      const args = rotator.args?.length ? ` ${joinArgs(rotator.args)}` : '';
      return `Command ${rotator.path}${args} (${rotator.timeout_secs} s per step)`;
    }
    case 'postgres': {
      const strategy =
        rotator.strategy === 'alternating_users'
          ? `PostgreSQL, alternating users (admin ${rotator.admin_secret ?? 'not set'})`
          : 'PostgreSQL, single user';
      return `${strategy}; ${describeSslMode(rotator.sslmode ?? 'prefer')}`;
    }
  }
}

/** How a PostgreSQL rotator's connection is protected, saying when it may be unencrypted. */
export function describeSslMode(mode: PgSslMode): string {
  switch (mode) {
    case 'disable':
      return 'unencrypted connection';
    case 'prefer':
      return 'TLS only if the server offers it, server not verified';
    case 'require':
      return 'TLS, server not verified';
    case 'verify-ca':
      return 'TLS, certificate checked against the CA';
    case 'verify-full':
      return 'TLS, certificate and host verified';
  }
}

/** The settings a rotation was saved with, to save them again (turning rotation back on). */
export function settingsOf(info: Pick<RotationInfo, 'schedule' | 'window' | 'rotator'>): RotationSettings {
  return { schedule: info.schedule, window: info.window, rotator: info.rotator };
}

// ---------- command arguments ----------

/**
 * Splits the editor's argument text at spaces; "double" or 'single' quotes keep spaces in one
 * argument, and a backslash escapes the next character inside double quotes or outside quotes.
 */
export function splitArgs(text: string): { args: string[]; error?: string } {
  const args: string[] = [];
  let current = '';
  let inArg = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) current += text[++i];
      else current += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inArg = true;
    } else if (c === '\\' && i + 1 < text.length) {
      current += text[++i];
      inArg = true;
    } else if (/\s/.test(c)) {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
    } else {
      current += c;
      inArg = true;
    }
  }
  if (quote) return { args, error: `A ${quote === '"' ? 'double' : 'single'} quote is not closed.` };
  if (inArg) args.push(current);
  return { args };
}

/** The inverse of `splitArgs`: arguments with spaces or quotes are double-quoted. */
export function joinArgs(args: string[]): string {
  return args
    .map((a) => (a === '' || /[\s"'\\]/.test(a) ? `"${a.replace(/["\\]/g, (c) => `\\${c}`)}"` : a))
    .join(' ');
}

// ---------- errors ----------

export type RotationField = 'schedule' | 'window' | 'rotator' | 'pin';

/** Which part of the rotation form an engine error is about (ApiError.field), if any. */
export function rotationField(error: Pick<ApiError, 'field'>): RotationField | null {
  const field = error.field?.toLowerCase() ?? '';
  if (field.includes('schedule')) return 'schedule';
  if (field.includes('window')) return 'window';
  if (field.includes('rotator')) return 'rotator';
  if (field === 'pin') return 'pin';
  return null;
}

// ---------- times ----------

/** "in 5 min", "in 3 h", "in 4 days" for the future; the past as `formatRelative` says it. */
export function formatWhen(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const then = new Date(iso).getTime();
  if (Number.isNaN(then)) return iso;
  const secs = Math.round((then - now) / 1000);
  if (secs <= 0) return formatRelative(iso, now);
  if (secs < 60) return 'in less than a minute';
  const mins = Math.round(secs / 60);
  if (mins < 60) return `in ${mins} min`;
  const hours = Math.round(mins / 60);
  if (hours < 48) return `in ${hours} h`;
  return `in ${Math.round(hours / 24)} days`;
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "Mon 7 Dec 03:00 UTC" (with the year when it is not this year): schedules run in UTC. */
export function formatUtc(iso: string | null | undefined, now = new Date()): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  const year = d.getUTCFullYear() === now.getUTCFullYear() ? '' : ` ${d.getUTCFullYear()}`;
  return `${WEEKDAYS[d.getUTCDay()]} ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}${year} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

export function shortToken(token: string | null | undefined): string {
  return token ? token.slice(0, 8) : '';
}

// ---------- the scheduler ----------

/** One sentence on what a scheduler pass did, for a toast; null when it is not worth one
 * (a re-wrap alone shows on the Keys screen). */
export function schedulerSummary(report: DueReport): { text: string; kind: 'success' | 'error' } | null {
  const names = (list: string[]) =>
    list.length <= 2 ? list.map((n) => `“${n}”`).join(' and ') : `${list.length} secrets`;
  const failed = report.failed.map((f) => f.name);
  const parts: string[] = [];
  if (report.rotated.length) parts.push(`rotated ${names(report.rotated)}`);
  if (report.keys_rotated.length)
    parts.push(`rotated ${report.keys_rotated.length === 1 ? 'a key' : `${report.keys_rotated.length} keys`}`);
  if (failed.length) parts.push(`could not rotate ${names(failed)} (see Rotation)`);
  if (!parts.length) return null;
  const text = `Scheduled rotation: ${parts.join('; ')}.`;
  return { text, kind: failed.length ? 'error' : 'success' };
}
