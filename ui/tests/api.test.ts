import { describe, expect, it, vi, beforeEach } from 'vitest';

const invoke = vi.fn();
vi.mock('@tauri-apps/api/core', () => ({ invoke: (...args: unknown[]) => invoke(...args) }));
vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn(async () => () => {}) }));

import { api, ApiError } from '../src/lib/api';

describe('api client', () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  it('passes command names and camelCase arguments to invoke', async () => {
    invoke.mockResolvedValue({ clear_after_secs: 30 });
    const result = await api.copySecret('db/password', null, 'user');
    expect(invoke).toHaveBeenCalledWith('copy_secret', { name: 'db/password', versionId: null, jsonKey: 'user' });
    expect(result.clear_after_secs).toBe(30);
  });

  it('wraps list arguments in one object', async () => {
    invoke.mockResolvedValue({ items: [], next_token: null });
    await api.listSecrets({ text: 'db', sort: 'changed', limit: 200 });
    expect(invoke).toHaveBeenCalledWith('list_secrets', { args: { text: 'db', sort: 'changed', limit: 200 } });
  });

  it('turns typed rejections into ApiError with hints', async () => {
    invoke.mockImplementation(async () => {
      throw { code: 'wrong_pin', message: 'wrong PIN', field: 'PIN', attempts_left: 2 };
    });
    let error: unknown;
    try {
      await api.unlock('0000');
    } catch (e) {
      error = e;
    }
    expect(error instanceof ApiError).toBe(true);
    const e = error as ApiError;
    expect([e.code, e.attemptsLeft, e.field]).toEqual(['wrong_pin', 2, 'PIN']);
  });

  it('turns untyped rejections into internal errors', async () => {
    invoke.mockImplementation(async () => {
      throw 'boom';
    });
    let error: unknown;
    try {
      await api.status();
    } catch (e) {
      error = e;
    }
    expect(error instanceof ApiError).toBe(true);
    const e = error as ApiError;
    expect([e.code, e.message]).toEqual(['internal', 'boom']);
  });

  it('sends every command through invoke', async () => {
    invoke.mockResolvedValue(undefined);
    await api.moveLabel('s', 'CURRENT', 'v2', 'v1');
    await api.deleteSecret('s', 7);
    await api.recover('CODE', '1234');
    expect(invoke.mock.calls.map((c) => c[0])).toEqual(['move_label', 'delete_secret', 'recover_vault']);
    expect(invoke.mock.calls[1]?.[1]).toEqual({ name: 's', recoveryDays: 7, force: false });
  });
});
