// Pure helpers for the Keys screen: key versions, data-key counts, re-wrap progress and
// automatic rotation periods.
import type { KeyDescription, KeyRotationInfo, RewrapProgress } from './api';

/** Automatic rotation periods the engine accepts, in days (as KMS, plus short ones for tests). */
export const MIN_PERIOD_DAYS = 1;
export const MAX_PERIOD_DAYS = 2560;
export const DEFAULT_PERIOD_DAYS = 365;

const countFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** A count with thousands separators: 100000 → "100,000". */
export function formatCount(n: number): string {
  return countFormat.format(n);
}

/** "1 data key", "1,204 data keys". */
export function countOf(n: number, singular: string, plural = `${singular}s`): string {
  return `${formatCount(n)} ${n === 1 ? singular : plural}`;
}

/** The key's newest version number (0 if it has none). */
export function newestVersion(key: Pick<KeyDescription, 'versions'>): number {
  return key.versions.reduce((max, v) => Math.max(max, v.version), 0);
}

/** The Versions column of the keys table: "3 (newest v3)". */
export function versionsSummary(key: Pick<KeyDescription, 'versions'>): string {
  return `${formatCount(key.versions.length)} (newest v${newestVersion(key)})`;
}

/** How a key is named in sentences: its description, else its first alias, else its id. */
export function keyLabel(key: Pick<KeyDescription, 'id' | 'description' | 'aliases' | 'is_default'>): string {
  if (key.description.trim()) return `“${key.description.trim()}”`;
  if (key.aliases[0]) return key.aliases[0];
  if (key.is_default) return 'the default key';
  return `key ${key.id.slice(0, 8)}`;
}

export interface KeyVersionRow {
  version: number;
  /** From the key's description; null for a version it does not list yet. */
  created_at: string | null;
  /** Data keys wrapped under this version. */
  dataKeys: number;
  newest: boolean;
  /** Not the newest and wraps no data key: its sealed key can be deleted. */
  retirable: boolean;
}

/** One row per key version, newest first. The rotation status is the fresher source. */
export function versionRows(key: Pick<KeyDescription, 'versions'>, info: KeyRotationInfo): KeyVersionRow[] {
  const created = new Map(key.versions.map((v) => [v.version, v.created_at]));
  return info.data_keys_by_version
    .map(([version, dataKeys]) => {
      const newest = version === info.newest_version;
      return {
        version,
        created_at: created.get(version) ?? null,
        dataKeys,
        newest,
        retirable: !newest && dataKeys === 0,
      };
    })
    .sort((a, b) => b.version - a.version);
}

/** Every data key wrapped under the key, whatever the version. */
export function totalDataKeys(info: KeyRotationInfo): number {
  return info.data_keys_by_version.reduce((sum, [, n]) => sum + n, 0);
}

/** The re-wrap line: how many data keys are still under older versions. */
export function staleSummary(info: KeyRotationInfo): string {
  if (info.stale_data_keys > 0) {
    return info.stale_data_keys === 1
      ? '1 data key is under an older version'
      : `${formatCount(info.stale_data_keys)} data keys are under older versions`;
  }
  if (totalDataKeys(info) === 0) return 'No data key is wrapped under this key yet';
  return `Every data key is under version ${info.newest_version}`;
}

export interface RewrapFraction {
  done: number;
  total: number;
  /** 0 to 100, rounded down so that 100 means finished. */
  percent: number;
}

/** How far a re-wrap is: `done` of `done + remaining`. */
export function rewrapFraction(progress: Pick<RewrapProgress, 'done' | 'remaining'>): RewrapFraction {
  const total = progress.done + progress.remaining;
  const percent = total === 0 ? 100 : Math.floor((progress.done / total) * 100);
  return { done: progress.done, total, percent };
}

/** "12,000 of 100,000 re-wrapped". */
export function rewrapText(progress: Pick<RewrapProgress, 'done' | 'remaining'>): string {
  const { done, total } = rewrapFraction(progress);
  return `${formatCount(done)} of ${formatCount(total)} re-wrapped`;
}

/** A rotation period typed by the user, or why it is not one. */
export function parsePeriod(value: number | string | null | undefined): { days: number } | { error: string } {
  const text = String(value ?? '').trim();
  const days = Number(text);
  if (!text || !Number.isInteger(days) || days < MIN_PERIOD_DAYS || days > MAX_PERIOD_DAYS) {
    return { error: `Enter a whole number of days from ${MIN_PERIOD_DAYS} to ${formatCount(MAX_PERIOD_DAYS)}.` };
  }
  return { days };
}

/** "due now", "tomorrow", "in 12 days", for a date `days` from now as `daysUntil` counts. */
export function inDays(days: number | null): string {
  if (days === null) return '';
  if (days <= 0) return 'due now';
  if (days === 1) return 'tomorrow';
  return `in ${formatCount(days)} days`;
}
