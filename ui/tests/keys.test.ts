import { describe, expect, it, vi, beforeEach } from 'vitest';
import { render, screen, fireEvent, within } from '@testing-library/svelte';

const invoke = vi.fn();
type Handler = (event: { payload: unknown }) => void;
const listeners = new Map<string, Set<Handler>>();
const listen = vi.fn(async (name: string, handler: Handler) => {
  if (!listeners.has(name)) listeners.set(name, new Set());
  listeners.get(name)!.add(handler);
  return () => listeners.get(name)?.delete(handler);
});
vi.mock('@tauri-apps/api/core', () => ({ invoke: (...args: unknown[]) => invoke(...args) }));
vi.mock('@tauri-apps/api/event', () => ({
  listen: (name: string, handler: Handler) => listen(name, handler),
}));

import Keys from '../src/screens/Keys.svelte';
import { app } from '../src/lib/state.svelte';
import { rewraps } from '../src/screens/keys/rewrap.svelte';
import type { KeyDescription, KeyRotationInfo, RewrapProgress } from '../src/lib/api';
import {
  formatCount,
  inDays,
  parsePeriod,
  rewrapFraction,
  rewrapText,
  staleSummary,
  versionRows,
  versionsSummary,
} from '../src/lib/keyRotation';

const KEY_ID = '0b6f8c1e-5d2a-4c7b-9e3f-1a2b3c4d5e6f';
const OTHER_ID = 'f0e1d2c3-b4a5-4968-8776-655443322110';

function key(overrides: Partial<KeyDescription> = {}): KeyDescription {
  return {
    id: KEY_ID,
    aliases: ['alias/payments'],
    description: 'Payments team',
    state: 'enabled',
    is_default: false,
    created_at: '2025-01-10T09:00:00Z',
    deletion_at: null,
    versions: [
      { version: 1, created_at: '2025-01-10T09:00:00Z' },
      { version: 2, created_at: '2025-06-01T09:00:00Z' },
      { version: 3, created_at: '2026-01-05T09:00:00Z' },
    ],
    ...overrides,
  };
}

function status(overrides: Partial<KeyRotationInfo> = {}): KeyRotationInfo {
  return {
    key_id: KEY_ID,
    period_days: null,
    next_rotation: null,
    newest_version: 3,
    data_keys_by_version: [
      [1, 0],
      [2, 1204],
      [3, 50],
    ],
    stale_data_keys: 1204,
    ...overrides,
  };
}

type Responder = (args: Record<string, unknown>) => unknown;

/** A fake engine: `list_keys` and `key_rotation_status` by default, plus per-test commands. */
function backend(commands: Record<string, Responder> = {}, keys: KeyDescription[] = [key()]) {
  const all: Record<string, Responder> = {
    list_keys: () => keys,
    key_rotation_status: () => status(),
    ...commands,
  };
  invoke.mockImplementation(async (cmd: string, args: Record<string, unknown> = {}) => {
    const respond = all[cmd];
    if (!respond) throw { code: 'internal', message: `unexpected command ${cmd}` };
    return respond(args);
  });
}

function emit(name: string, payload: unknown) {
  for (const handler of listeners.get(name) ?? []) handler({ payload });
}

function calls(cmd: string) {
  return invoke.mock.calls.filter((c) => c[0] === cmd);
}

function toasts() {
  return app.toasts.map((t) => t.text);
}

async function openPanel(id = KEY_ID) {
  render(Keys);
  const row = await screen.findByTestId((_, el) => el?.getAttribute('data-key-id') === id);
  await fireEvent.click(within(row).getByTestId('key-details'));
  const panel = await screen.findByTestId('key-panel');
  await within(panel).findByTestId('key-versions-table');
  return panel;
}

function versionRow(panel: HTMLElement, version: number): HTMLElement {
  const row = panel.querySelector<HTMLElement>(`[data-testid="key-version-row"][data-version="${version}"]`);
  if (!row) throw new Error(`no row for version ${version}`);
  return row;
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

beforeEach(() => {
  invoke.mockReset();
  listen.mockClear();
  listeners.clear();
  app.toasts.splice(0);
  for (const id of Object.keys(rewraps)) delete rewraps[id];
});

describe('key rotation helpers', () => {
  it('formats counts, re-wrap progress and periods', () => {
    expect(formatCount(100000)).toBe('100,000');
    expect(rewrapText({ done: 12000, remaining: 88000 })).toBe('12,000 of 100,000 re-wrapped');
    expect(rewrapFraction({ done: 1, remaining: 2 }).percent).toBe(33);
    expect(rewrapFraction({ done: 0, remaining: 0 }).percent).toBe(100);
    expect(parsePeriod('90')).toEqual({ days: 90 });
    expect(parsePeriod(0)).toHaveProperty('error');
    expect(parsePeriod(2561)).toHaveProperty('error');
    expect(parsePeriod('1.5')).toHaveProperty('error');
    expect(parsePeriod(null)).toHaveProperty('error');
    expect(inDays(0)).toBe('due now');
    expect(inDays(1)).toBe('tomorrow');
    expect(inDays(1200)).toBe('in 1,200 days');
  });

  it('says how many data keys are under older versions', () => {
    expect(staleSummary(status())).toBe('1,204 data keys are under older versions');
    expect(staleSummary(status({ stale_data_keys: 1 }))).toBe('1 data key is under an older version');
    expect(staleSummary(status({ stale_data_keys: 0, data_keys_by_version: [[3, 9]] }))).toBe(
      'Every data key is under version 3',
    );
    expect(staleSummary(status({ stale_data_keys: 0, data_keys_by_version: [[3, 0]] }))).toBe(
      'No data key is wrapped under this key yet',
    );
  });

  it('lists versions newest first and only unused old ones as retirable', () => {
    const rows = versionRows(key(), status());
    expect(rows.map((r) => [r.version, r.dataKeys, r.newest, r.retirable])).toEqual([
      [3, 50, true, false],
      [2, 1204, false, false],
      [1, 0, false, true],
    ]);
    // A version the key list does not know yet (rotated since) still gets a row.
    const fresher = versionRows(key(), status({ newest_version: 4, data_keys_by_version: [[3, 0], [4, 7]] }));
    expect(fresher.map((r) => [r.version, r.created_at, r.retirable])).toEqual([
      [4, null, false],
      [3, '2026-01-05T09:00:00Z', true],
    ]);
    expect(versionsSummary(key())).toBe('3 (newest v3)');
  });
});

describe('Keys screen: versions', () => {
  it('shows the newest version in the keys table', async () => {
    backend();
    render(Keys);
    const row = await screen.findByTestId('key-row');
    expect(row).toHaveAttribute('data-key-id', KEY_ID);
    expect(within(row).getByTestId('key-versions')).toHaveTextContent('3 (newest v3)');
  });

  it('shows the data keys wrapped under each version', async () => {
    backend();
    const panel = await openPanel();
    expect(calls('key_rotation_status')[0]?.[1]).toEqual({ key: KEY_ID });
    expect(panel).toHaveTextContent('Payments team');
    expect(panel).toHaveTextContent('alias/payments');
    expect(panel).toHaveTextContent(KEY_ID);
    expect(within(panel).getByTestId('key-panel-state')).toHaveTextContent('enabled');

    const rows = within(panel).getAllByTestId('key-version-row');
    expect(rows.map((r) => r.dataset.version)).toEqual(['3', '2', '1']);
    expect(within(versionRow(panel, 3)).getByTestId('version-data-keys')).toHaveTextContent('50');
    expect(within(versionRow(panel, 2)).getByTestId('version-data-keys')).toHaveTextContent('1,204');
    expect(within(versionRow(panel, 1)).getByTestId('version-data-keys')).toHaveTextContent('0');
    expect(versionRow(panel, 3)).toHaveTextContent('newest');
    expect(versionRow(panel, 2)).not.toHaveTextContent('newest');
    expect(within(panel).getByTestId('stale-count')).toHaveTextContent('1,204 data keys are under older versions');
  });

  it('offers Retire only for an old version that wraps no data key', async () => {
    backend({
      key_rotation_status: () =>
        status({
          data_keys_by_version: [
            [1, 0],
            [2, 1204],
            [3, 0],
          ],
        }),
    });
    const panel = await openPanel();
    expect(within(panel).getAllByTestId('retire-version')).toHaveLength(1);
    expect(within(versionRow(panel, 1)).getByTestId('retire-version')).toBeInTheDocument();
    // In use: not offered.
    expect(within(versionRow(panel, 2)).queryByTestId('retire-version')).toBeNull();
    // The newest, although it wraps nothing yet: not offered.
    expect(within(versionRow(panel, 3)).queryByTestId('retire-version')).toBeNull();
  });

  it('retires a version after a confirmation that warns about kms ciphertexts', async () => {
    const after = status({ data_keys_by_version: [[2, 1204], [3, 50]] });
    backend({ retire_key_version: () => after, key_rotation_status: () => status() });
    const panel = await openPanel();
    await fireEvent.click(within(versionRow(panel, 1)).getByTestId('retire-version'));
    const dialog = await screen.findByRole('dialog');
    expect(dialog).toHaveTextContent('coffer kms encrypt');
    expect(dialog).toHaveTextContent('can no longer be decrypted');
    expect(calls('retire_key_version')).toHaveLength(0);

    await fireEvent.click(screen.getByTestId('confirm-retire'));
    await vi.waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(calls('retire_key_version')[0]?.[1]).toEqual({ key: KEY_ID, version: 1 });
    expect(within(panel).getAllByTestId('key-version-row').map((r) => r.dataset.version)).toEqual(['3', '2']);
    expect(toasts().join('\n')).toContain('Version 1 of “Payments team” is retired');
  });

  it('shows why the engine refused to retire a version', async () => {
    const message = `key ${KEY_ID} version 1 still wraps 3 data keys; re-wrap them under the newest version first`;
    backend({
      retire_key_version: () => {
        throw { code: 'key_conflict', message };
      },
    });
    const panel = await openPanel();
    await fireEvent.click(within(versionRow(panel, 1)).getByTestId('retire-version'));
    await fireEvent.click(await screen.findByTestId('confirm-retire'));
    expect(await screen.findByTestId('retire-error')).toHaveTextContent('still wraps 3 data keys');
    // The dialog stays open with the reason, and the counts are reloaded.
    expect(screen.getByRole('dialog')).toBeInTheDocument();
    await vi.waitFor(() => expect(calls('key_rotation_status')).toHaveLength(2));
  });

  it('rotates the key after a confirmation and reloads', async () => {
    let rotated = false;
    backend({
      rotate_key: () => {
        rotated = true;
        return key({ versions: [...key().versions, { version: 4, created_at: '2026-02-01T09:00:00Z' }] });
      },
      list_keys: () =>
        rotated
          ? [key({ versions: [...key().versions, { version: 4, created_at: '2026-02-01T09:00:00Z' }] })]
          : [key()],
      key_rotation_status: () =>
        rotated
          ? status({ newest_version: 4, data_keys_by_version: [[1, 0], [2, 1204], [3, 50], [4, 0]], stale_data_keys: 1254 })
          : status(),
    });
    const panel = await openPanel();
    await fireEvent.click(within(panel).getByTestId('rotate-key'));
    const dialog = await screen.findByRole('dialog');
    expect(dialog).toHaveTextContent('v4');
    expect(dialog).toHaveTextContent('stays readable');
    expect(calls('rotate_key')).toHaveLength(0);

    await fireEvent.click(screen.getByTestId('confirm-rotate'));
    await vi.waitFor(() => expect(versionRow(panel, 4)).toHaveTextContent('newest'));
    expect(calls('rotate_key')[0]?.[1]).toEqual({ key: KEY_ID });
    expect(within(panel).getByTestId('stale-count')).toHaveTextContent('1,254 data keys are under older versions');
    expect(screen.getByTestId('key-versions')).toHaveTextContent('4 (newest v4)');
    expect(toasts().join('\n')).toContain('“Payments team” is now on version 4');
  });

  it('cannot rotate or re-wrap a disabled key, and says why', async () => {
    backend({}, [key({ state: 'disabled' })]);
    const panel = await openPanel();
    expect(within(panel).getByTestId('rotate-key')).toBeDisabled();
    expect(within(panel).getByTestId('rewrap-key')).toBeDisabled();
    expect(within(panel).getByTestId('key-unavailable')).toHaveTextContent('disabled');
    expect(within(panel).getByTestId('key-unavailable')).toHaveTextContent(`coffer key enable ${KEY_ID}`);
  });

  it('reloads when the scheduler ran', async () => {
    let ran = false;
    backend({
      key_rotation_status: () => (ran ? status({ stale_data_keys: 0, data_keys_by_version: [[1, 0], [2, 0], [3, 1254]] }) : status()),
    });
    const panel = await openPanel();
    expect(within(panel).getByTestId('stale-count')).toHaveTextContent('1,204');
    ran = true;
    emit('rotations-ran', { rotated: [], failed: [], keys_rotated: [], data_keys_rewrapped: 1204, next_due: null });
    await vi.waitFor(() =>
      expect(within(panel).getByTestId('stale-count')).toHaveTextContent('Every data key is under version 3'),
    );
  });
});

describe('Keys screen: re-wrap', () => {
  it('follows progress events for this key, then shows the final state', async () => {
    const run = deferred<RewrapProgress>();
    let finished = false;
    backend({
      rewrap_key: () => run.promise,
      key_rotation_status: () =>
        finished ? status({ stale_data_keys: 0, data_keys_by_version: [[1, 0], [2, 0], [3, 100050]] }) : status({ stale_data_keys: 100000, data_keys_by_version: [[1, 0], [2, 100000], [3, 50]] }),
    });
    const panel = await openPanel();
    const button = within(panel).getByTestId('rewrap-key');
    expect(button).toBeEnabled();
    await fireEvent.click(button);
    await vi.waitFor(() => expect(calls('rewrap_key')[0]?.[1]).toEqual({ key: KEY_ID }));
    expect(listeners.get('rewrap-progress')?.size).toBe(1);
    expect(within(panel).getByTestId('rewrap-key')).toBeDisabled();

    emit('rewrap-progress', { key_id: KEY_ID, to_version: 3, done: 12000, remaining: 88000 });
    const bar = await within(panel).findByRole('progressbar');
    await vi.waitFor(() => expect(bar).toHaveAttribute('aria-valuenow', '12000'));
    expect(bar).toHaveAttribute('aria-valuemax', '100000');
    expect(within(panel).getByTestId('rewrap-progress')).toBe(bar);
    expect(panel).toHaveTextContent('12,000 of 100,000 re-wrapped');
    expect(within(panel).getByTestId('stale-count')).toHaveTextContent('88,000 data keys are under older versions');
    // The keys table shows it too.
    expect(screen.getByTestId('key-row')).toHaveTextContent('re-wrapping 12%');

    // Another key's re-wrap is not this one's progress.
    emit('rewrap-progress', { key_id: OTHER_ID, to_version: 7, done: 5, remaining: 1 });
    await Promise.resolve();
    expect(bar).toHaveAttribute('aria-valuenow', '12000');

    finished = true;
    run.resolve({ key_id: KEY_ID, to_version: 3, done: 100000, remaining: 0 });
    await vi.waitFor(() =>
      expect(within(panel).getByTestId('stale-count')).toHaveTextContent('Every data key is under version 3'),
    );
    expect(within(panel).queryByTestId('rewrap-progress')).toBeNull();
    expect(within(panel).getByTestId('rewrap-key')).toBeDisabled();
    expect(within(versionRow(panel, 3)).getByTestId('version-data-keys')).toHaveTextContent('100,050');
    expect(toasts()).toContain('Every data key of “Payments team” is now under version 3.');
    expect(listeners.get('rewrap-progress')?.size ?? 0).toBe(0);
  });

  it('keeps the progress when the panel is closed and opened again', async () => {
    const run = deferred<RewrapProgress>();
    backend({ rewrap_key: () => run.promise });
    const panel = await openPanel();
    await fireEvent.click(within(panel).getByTestId('rewrap-key'));
    await vi.waitFor(() => expect(calls('rewrap_key')).toHaveLength(1));
    emit('rewrap-progress', { key_id: KEY_ID, to_version: 3, done: 1000, remaining: 204 });

    const details = screen.getByTestId('key-details');
    await fireEvent.click(details);
    expect(screen.queryByTestId('key-panel')).toBeNull();
    await fireEvent.click(details);
    const again = await screen.findByTestId('key-panel');
    expect(await within(again).findByRole('progressbar')).toHaveAttribute('aria-valuenow', '1000');
    expect(within(again).getByTestId('rewrap-key')).toBeDisabled();
    run.resolve({ key_id: KEY_ID, to_version: 3, done: 1204, remaining: 0 });
    await vi.waitFor(() => expect(within(again).queryByRole('progressbar')).toBeNull());
  });

  it('says a failed re-wrap continues where it stopped when run again', async () => {
    backend({
      rewrap_key: () => {
        emit('rewrap-progress', { key_id: KEY_ID, to_version: 3, done: 1000, remaining: 204 });
        throw { code: 'storage', message: 'the vault file is busy' };
      },
    });
    const panel = await openPanel();
    await fireEvent.click(within(panel).getByTestId('rewrap-key'));
    const error = await within(panel).findByTestId('rewrap-error');
    expect(error).toHaveTextContent('the vault file is busy');
    expect(error).toHaveTextContent('1,000 of 1,204 re-wrapped before it stopped');
    expect(error).toHaveTextContent('running it again continues where it stopped');
    expect(within(panel).getByTestId('rewrap-key')).toBeEnabled();
  });

  it('cannot re-wrap when every data key is under the newest version', async () => {
    backend({ key_rotation_status: () => status({ stale_data_keys: 0, data_keys_by_version: [[3, 9]] }) });
    const panel = await openPanel();
    expect(within(panel).getByTestId('stale-count')).toHaveTextContent('Every data key is under version 3');
    expect(within(panel).getByTestId('rewrap-key')).toBeDisabled();
  });
});

describe('Keys screen: automatic rotation', () => {
  it('sends enable_key_rotation with the period and shows the next rotation', async () => {
    const next = new Date(Date.now() + 90 * 86_400_000).toISOString();
    backend({
      enable_key_rotation: (args) => status({ period_days: args.periodDays as number, next_rotation: next }),
    });
    const panel = await openPanel();
    const days = within(panel).getByLabelText('Rotate every') as HTMLInputElement;
    expect(days.id).toBe('auto-rotation-days');
    expect(days.value).toBe('365');
    expect(days).toBeDisabled();
    expect(within(panel).queryByTestId('key-next-rotation')).toBeNull();
    expect(within(panel).getByTestId('save-auto-rotation')).toBeDisabled();

    await fireEvent.click(within(panel).getByTestId('auto-rotation-toggle'));
    expect(days).toBeEnabled();
    await fireEvent.input(days, { target: { value: '90' } });
    await fireEvent.click(within(panel).getByTestId('save-auto-rotation'));

    await vi.waitFor(() => expect(calls('enable_key_rotation')).toHaveLength(1));
    expect(calls('enable_key_rotation')[0]?.[1]).toEqual({ key: KEY_ID, periodDays: 90 });
    const shown = await within(panel).findByTestId('key-next-rotation');
    expect(shown).toHaveTextContent('in 90 days');
    expect(within(panel).getByTestId('save-auto-rotation')).toBeDisabled();
  });

  it('turns automatic rotation off', async () => {
    backend({
      key_rotation_status: () => status({ period_days: 30, next_rotation: '2026-03-01T00:00:00Z' }),
      disable_key_rotation: () => status(),
    });
    const panel = await openPanel();
    expect(within(panel).getByTestId('key-next-rotation')).toBeInTheDocument();
    expect((within(panel).getByLabelText('Rotate every') as HTMLInputElement).value).toBe('30');
    await fireEvent.click(within(panel).getByTestId('auto-rotation-toggle'));
    await fireEvent.click(within(panel).getByTestId('save-auto-rotation'));
    await vi.waitFor(() => expect(calls('disable_key_rotation')[0]?.[1]).toEqual({ key: KEY_ID }));
    await vi.waitFor(() => expect(within(panel).queryByTestId('key-next-rotation')).toBeNull());
  });

  it('refuses a period out of range at the field, before calling the engine', async () => {
    backend();
    const panel = await openPanel();
    await fireEvent.click(within(panel).getByTestId('auto-rotation-toggle'));
    const days = within(panel).getByLabelText('Rotate every');
    await fireEvent.input(days, { target: { value: '3000' } });
    await fireEvent.click(within(panel).getByTestId('save-auto-rotation'));
    expect(await within(panel).findByTestId('auto-rotation-error')).toHaveTextContent('1 to 2,560');
    expect(days).toHaveAttribute('aria-invalid', 'true');
    expect(calls('enable_key_rotation')).toHaveLength(0);
  });

  it('shows an engine error at the period field', async () => {
    backend({
      enable_key_rotation: () => {
        throw { code: 'invalid_argument', message: 'rotation period: 7 days is too short here', field: 'rotation period' };
      },
    });
    const panel = await openPanel();
    await fireEvent.click(within(panel).getByTestId('auto-rotation-toggle'));
    const days = within(panel).getByLabelText('Rotate every');
    await fireEvent.input(days, { target: { value: '7' } });
    await fireEvent.click(within(panel).getByTestId('save-auto-rotation'));
    expect(await within(panel).findByTestId('auto-rotation-error')).toHaveTextContent('7 days is too short here');
    expect(days).toHaveAttribute('aria-invalid', 'true');
  });
});

describe('Keys screen: existing features', () => {
  it('still creates a key with an alias', async () => {
    let created = false;
    backend({
      create_key: () => {
        created = true;
        return key({ id: OTHER_ID, description: 'Ops' });
      },
      list_keys: () => (created ? [key(), key({ id: OTHER_ID, description: 'Ops', aliases: ['alias/ops'] })] : [key()]),
    });
    render(Keys);
    await fireEvent.click(await screen.findByTestId('new-key'));
    await fireEvent.input(document.querySelector('#key-description')!, { target: { value: 'Ops' } });
    await fireEvent.input(document.querySelector('#key-alias')!, { target: { value: 'alias/ops' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Create key' }));
    await vi.waitFor(() => expect(screen.getByTestId('keys-table')).toHaveTextContent('alias/ops'));
    expect(calls('create_key')[0]?.[1]).toEqual({ description: 'Ops', alias: 'alias/ops' });
  });
});
