import { describe, expect, it, vi, beforeEach } from 'vitest';

const { invoke, FakeChannel } = vi.hoisted(() => ({
  invoke: vi.fn(),
  FakeChannel: class<T> {
    onmessage: (message: T) => void = () => {};
  },
}));
type FakeChannel<T> = { onmessage: (message: T) => void };
vi.mock('@tauri-apps/api/core', () => ({
  invoke: (...args: unknown[]) => invoke(...args),
  Channel: FakeChannel,
}));
vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn(async () => () => {}) }));

import { ApiError } from '../src/lib/api';
import {
  defaultSignaturePath,
  endpointProblem,
  formatBytes,
  progressPercent,
  upToDateMessage,
  updatesApi,
} from '../src/lib/updates';

describe('update endpoint rules', () => {
  it('accepts https, including loopback, and empty as off', () => {
    expect(endpointProblem('')).toBeNull();
    expect(endpointProblem('  ')).toBeNull();
    expect(endpointProblem('https://updates.example.org/coffer/latest.json')).toBeNull();
    expect(endpointProblem('https://127.0.0.1:8443/latest.json')).toBeNull();
  });

  it('refuses plain http (loopback too), other schemes, credentials and non-URLs', () => {
    expect(endpointProblem('http://127.0.0.1:8080/latest.json')).toContain('not http:');
    expect(endpointProblem('file:///media/usb/latest.json')).toContain('not file:');
    expect(endpointProblem('https://me:pw@example.org/latest.json')).toContain('user name');
    expect(endpointProblem('updates.example.org/latest.json')).toContain('full address');
  });
});

describe('download progress', () => {
  it('is a percentage only when the size is known', () => {
    expect(progressPercent(null)).toBeNull();
    expect(progressPercent({ downloaded: 10, total: null })).toBeNull();
    expect(progressPercent({ downloaded: 0, total: 0 })).toBeNull();
    expect(progressPercent({ downloaded: 512, total: 1024 })).toBe(50);
    expect(progressPercent({ downloaded: 2048, total: 1024 })).toBe(100);
  });

  it('shows sizes in readable units', () => {
    expect(formatBytes(100)).toBe('100 B');
    expect(formatBytes(812 * 1024)).toBe('812 KiB');
    expect(formatBytes(20552335)).toBe('19.6 MiB');
  });

  it('puts the signature beside the bundle by default', () => {
    expect(defaultSignaturePath('/media/usb/coffer_0.2.0_amd64.deb')).toBe('/media/usb/coffer_0.2.0_amd64.deb.sig');
    expect(defaultSignaturePath(' ')).toBe('');
  });

  it('says which version is up to date when it knows it', () => {
    expect(upToDateMessage('0.1.1')).toBe('Coffer 0.1.1 is up to date.');
    expect(upToDateMessage(null)).toBe('Coffer is up to date.');
    expect(upToDateMessage(undefined)).toBe('Coffer is up to date.');
  });
});

describe('update commands', () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  it('streams download progress through a channel', async () => {
    const seen: number[] = [];
    invoke.mockImplementation(async (_command: string, args: { onProgress: FakeChannel<{ downloaded: number }> }) => {
      args.onProgress.onmessage({ downloaded: 1 });
      args.onProgress.onmessage({ downloaded: 2 });
      return { current_version: '0.1.0', version: '0.1.1', downgrade: false };
    });
    const ready = await updatesApi.download((p) => seen.push(p.downloaded));
    expect(invoke.mock.calls[0]?.[0]).toBe('download_update');
    expect(seen).toEqual([1, 2]);
    expect(ready.version).toBe('0.1.1');
  });

  it('passes a file check with camelCase arguments and surfaces refusals', async () => {
    invoke.mockImplementation(async () => {
      throw { code: 'update_refused', message: 'x was signed by another key than Coffer’s update key; nothing was installed' };
    });
    const error = await updatesApi.checkFile('/media/usb/x.deb', null, false).catch((e) => e);
    expect(invoke).toHaveBeenCalledWith('check_update_file', { path: '/media/usb/x.deb', signature: null, allowDowngrade: false });
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe('update_refused');
  });
});
