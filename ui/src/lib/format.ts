// Pure display helpers: dates, sizes, durations, JSON detection, tag filters.

const dateFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
});

const dayFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
});

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateFormat.format(date);
}

const shortFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
});

/** Date and time without the year when it is this year (for narrow tables). */
export function formatShortDate(iso: string | null | undefined, now = new Date()): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.getFullYear() === now.getFullYear() ? shortFormat.format(date) : formatDate(iso);
}

export function formatDay(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dayFormat.format(date);
}

/** "just now", "5 min ago", "3 h ago", "2 days ago", else the date. */
export function formatRelative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const then = new Date(iso).getTime();
  if (Number.isNaN(then)) return iso;
  const secs = Math.round((now - then) / 1000);
  if (secs < 0) return formatDay(iso);
  if (secs < 45) return 'just now';
  const mins = Math.round(secs / 60);
  if (mins < 60) return `${mins} min ago`;
  const hours = Math.round(mins / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.round(hours / 24);
  if (days < 14) return days === 1 ? 'yesterday' : `${days} days ago`;
  return formatDay(iso);
}

/** Days from now until `iso`, rounded up (0 if past). */
export function daysUntil(iso: string | null | undefined, now = Date.now()): number | null {
  if (!iso) return null;
  const then = new Date(iso).getTime();
  if (Number.isNaN(then)) return null;
  return Math.max(0, Math.ceil((then - now) / 86_400_000));
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function formatDuration(secs: number): string {
  if (secs < 60) return `${secs} second${secs === 1 ? '' : 's'}`;
  const mins = Math.round(secs / 60);
  if (mins < 60) return `${mins} minute${mins === 1 ? '' : 's'}`;
  const hours = Math.round(mins / 60);
  return `${hours} hour${hours === 1 ? '' : 's'}`;
}

export type JsonScalar = string | number | boolean | null;

/** A JSON object value as key/value rows, or null if the text is not a JSON object. */
export function jsonRows(text: string | null | undefined): [string, string][] | null {
  if (!text) return null;
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return null;
  try {
    const value: unknown = JSON.parse(trimmed);
    if (!value || typeof value !== 'object' || Array.isArray(value)) return null;
    return Object.entries(value as Record<string, unknown>).map(([k, v]) => [
      k,
      typeof v === 'string' ? v : JSON.stringify(v),
    ]);
  } catch {
    return null;
  }
}

/** Builds the JSON text of a key/value editor; empty keys are dropped. */
export function rowsToJson(rows: { key: string; value: string }[]): string {
  const object: Record<string, string> = {};
  for (const row of rows) {
    if (row.key.trim()) object[row.key.trim()] = row.value;
  }
  return JSON.stringify(object, null, 2);
}

/** `key` or `key=value` from the tag filter box. */
export function parseTagFilter(text: string): { key: string; value?: string } | null {
  const trimmed = text.trim();
  if (!trimmed) return null;
  const eq = trimmed.indexOf('=');
  if (eq < 0) return { key: trimmed };
  const key = trimmed.slice(0, eq).trim();
  const value = trimmed.slice(eq + 1).trim();
  if (!key) return null;
  return value ? { key, value } : { key };
}

/** Tags from `key=value` lines (the editor's text form). Returns an error message per bad line. */
export function parseTagLines(text: string): { tags: Record<string, string>; error?: string } {
  const tags: Record<string, string> = {};
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  for (const [i, line] of lines.entries()) {
    const eq = line.indexOf('=');
    const key = (eq < 0 ? line : line.slice(0, eq)).trim();
    const value = eq < 0 ? '' : line.slice(eq + 1).trim();
    if (!key) return { tags, error: `Line ${i + 1}: a tag needs a key before “=”.` };
    tags[key] = value;
  }
  return { tags };
}

export function tagsToLines(tags: Record<string, string>): string {
  return Object.entries(tags)
    .map(([k, v]) => (v ? `${k}=${v}` : k))
    .join('\n');
}

/** Which recovery-code groups (1-based) the user must type back. */
export function challengeGroups(groupCount: number, random: () => number = Math.random): [number, number] {
  const first = 1 + Math.floor(random() * groupCount);
  let second = 1 + Math.floor(random() * (groupCount - 1));
  if (second >= first) second += 1;
  return first < second ? [first, second] : [second, first];
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}
