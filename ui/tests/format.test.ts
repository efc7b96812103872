import { describe, expect, it } from 'vitest';
import {
  challengeGroups,
  daysUntil,
  formatBytes,
  formatDuration,
  formatRelative,
  jsonRows,
  parseTagFilter,
  rowsToJson,
  bytesToBase64,
} from '../src/lib/format';

describe('format helpers', () => {
  it('detects JSON objects as key/value rows', () => {
    expect(jsonRows('{"user":"admin","port":5432}')).toEqual([
      ['user', 'admin'],
      ['port', '5432'],
    ]);
    expect(jsonRows('hunter2')).toBeNull();
    expect(jsonRows('[1,2]')).toBeNull();
    expect(jsonRows('{broken')).toBeNull();
  });

  it('builds JSON from editor rows and drops empty keys', () => {
    expect(JSON.parse(rowsToJson([{ key: 'a', value: '1' }, { key: ' ', value: 'x' }]))).toEqual({ a: '1' });
  });

  it('parses tag filters', () => {
    expect(parseTagFilter('env')).toEqual({ key: 'env' });
    expect(parseTagFilter(' env = prod ')).toEqual({ key: 'env', value: 'prod' });
    expect(parseTagFilter('=x')).toBeNull();
    expect(parseTagFilter('')).toBeNull();
  });

  it('formats sizes, durations and relative times', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(2048)).toBe('2.0 KB');
    expect(formatDuration(15)).toBe('15 seconds');
    expect(formatDuration(600)).toBe('10 minutes');
    expect(formatDuration(3600)).toBe('1 hour');
    const now = Date.parse('2026-01-10T12:00:00Z');
    expect(formatRelative('2026-01-10T11:59:50Z', now)).toBe('just now');
    expect(formatRelative('2026-01-10T11:30:00Z', now)).toBe('30 min ago');
    expect(daysUntil('2026-01-17T12:00:00Z', now)).toBe(7);
  });

  it('picks two different recovery groups in order', () => {
    for (const r of [0, 0.2, 0.5, 0.99]) {
      const [a, b] = challengeGroups(6, () => r);
      expect(a).toBeGreaterThanOrEqual(1);
      expect(b).toBeLessThanOrEqual(6);
      expect(a).toBeLessThan(b);
    }
  });

  it('encodes bytes as base64', () => {
    expect(bytesToBase64(new Uint8Array([0, 255, 16]))).toBe('AP8Q');
  });
});
