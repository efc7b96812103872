import { describe, expect, it, vi, beforeEach } from 'vitest';
import { render, screen, fireEvent, within } from '@testing-library/svelte';

const invoke = vi.fn();
vi.mock('@tauri-apps/api/core', () => ({ invoke: (...args: unknown[]) => invoke(...args) }));
const listeners = new Map<string, Set<(event: { payload: unknown }) => void>>();
vi.mock('@tauri-apps/api/event', () => ({
  listen: vi.fn(async (name: string, handler: (event: { payload: unknown }) => void) => {
    if (!listeners.has(name)) listeners.set(name, new Set());
    listeners.get(name)!.add(handler);
    return () => listeners.get(name)!.delete(handler);
  }),
}));

/** What the app's scheduler emits after running due rotations. */
function schedulerRan(report: Partial<DueReport>) {
  const payload: DueReport = { rotated: [], failed: [], keys_rotated: [], data_keys_rewrapped: 0, next_due: null, ...report };
  for (const handler of listeners.get('rotations-ran') ?? []) handler({ payload });
}

import Rotation from '../src/screens/detail/Rotation.svelte';
import RotationSchedule from '../src/screens/RotationSchedule.svelte';
import SecretDetail from '../src/screens/SecretDetail.svelte';
import {
  defaultPasswordOptions,
  type DueReport,
  type RotationHistoryEntry,
  type RotationInfo,
  type SecretDescription,
} from '../src/lib/api';
import { app } from '../src/lib/state.svelte';

type Handler = (args: Record<string, unknown>) => unknown;

/** Answers invoke by command name; any other command fails the test loudly. */
function backend(handlers: Record<string, Handler>) {
  invoke.mockImplementation(async (cmd: string, args: Record<string, unknown>) => {
    const handler = handlers[cmd];
    if (!handler) throw new Error(`unexpected command ${cmd}`);
    return handler(args);
  });
}

function calls(cmd: string) {
  return invoke.mock.calls.filter(([c]) => c === cmd).map(([, args]) => args);
}

const secret: SecretDescription = {
  id: 'sec-1',
  name: 'prod/db',
  description: '',
  key_id: 'key-1',
  key_aliases: [],
  tags: {},
  created_at: '2026-01-01T00:00:00Z',
  changed_at: '2026-01-01T00:00:00Z',
  last_accessed: null,
  deleted_at: null,
  purge_at: null,
  versions: [{ version_id: 'v1aaaaaaaa', created_at: '2026-01-01T00:00:00Z', labels: ['CURRENT'], key_id: 'key-1', key_version: 1 }],
};

const scheduled: RotationInfo = {
  secret_name: 'prod/db',
  enabled: true,
  schedule: 'rate(30 days)',
  window: null,
  rotator: { rotator: 'generate', field: 'password', password: { ...defaultPasswordOptions } },
  state: 'scheduled',
  last_rotated: '2026-01-02T00:00:00Z',
  next_rotation: '2099-02-01T00:00:00Z',
  token: null,
  step: null,
  attempts: 0,
  last_error: null,
  last_error_at: null,
  next_retry: null,
};

const failing: RotationInfo = {
  ...scheduled,
  rotator: { rotator: 'command', path: '/usr/local/bin/rotate-db', timeout_secs: 30 },
  state: 'failing',
  token: '0123456789abcdef',
  step: 'set',
  attempts: 3,
  last_error: 'the rotator exited with status 2: connection refused',
  last_error_at: '2026-01-03T00:00:00Z',
  next_retry: '2099-01-01T00:00:00Z',
};

const history: RotationHistoryEntry[] = [
  { at: '2026-01-03T00:00:00Z', token: 'tok', step: 'set', result: 'rotation_failed', version_id: null, error: 'connection refused' },
  { at: '2026-01-03T00:00:00Z', token: 'tok', step: 'create', result: 'ok', version_id: 'abcd1234ffff', error: null },
];

const preview = (args: Record<string, unknown>) => ({
  schedule: args.schedule,
  window: args.window,
  next: ['2026-12-07T03:00:00Z', '2026-12-14T03:00:00Z', '2026-12-21T03:00:00Z'],
  due_now: false,
});

function renderTab(rotation: RotationInfo | undefined, extra: { readOnly?: boolean; onChanged?: () => void } = {}) {
  const onChanged = extra.onChanged ?? vi.fn();
  render(Rotation, { secret: { ...secret, rotation }, readOnly: extra.readOnly ?? false, onChanged });
  return onChanged;
}

beforeEach(() => {
  invoke.mockReset();
  app.toasts.splice(0);
  app.view = 'rotation';
  app.selected = null;
  app.detailTab = null;
});

describe('Rotation tab', () => {
  it('offers to set up rotation when there is none', async () => {
    backend({ preview_schedule: preview });
    renderTab(undefined);
    expect(screen.getByTestId('rotation-none')).toHaveTextContent('No rotation set up');
    expect(screen.queryByTestId('rotation-state')).toBeNull();
    expect(screen.queryByTestId('rotate-now')).toBeNull();
    await fireEvent.click(screen.getByTestId('rotation-configure'));
    expect(screen.getByTestId('rotation-editor')).toBeInTheDocument();
    expect(calls('rotation_history')).toEqual([]);
  });

  it('shows a scheduled rotation in words, with its history', async () => {
    backend({ rotation_history: () => history });
    renderTab(scheduled);
    expect(screen.getByTestId('rotation-state')).toHaveTextContent('Scheduled');
    expect(screen.getByTestId('rotation-state')).toHaveClass('success');
    expect(screen.getByTestId('rotation-rotator')).toHaveTextContent('Generated password (field password, 32 chars)');
    expect(screen.getByTestId('rotation-schedule-text')).toHaveTextContent('Every 30 days · rate(30 days)');
    expect(screen.getByTestId('rotation-next')).toHaveTextContent(/in \d+ days/);
    expect(screen.getByTestId('rotate-now')).toHaveTextContent('Rotate now');
    expect(screen.getByTestId('cancel-rotation')).toBeInTheDocument();
    expect(screen.queryByTestId('rotation-last-error')).toBeNull();
    const rows = await screen.findAllByTestId('rotation-history-row');
    expect(rows).toHaveLength(2);
    expect(within(rows[0]!).getByText('rotation_failed')).toHaveClass('danger');
    expect(within(rows[1]!).getByText('ok')).toHaveClass('success');
    expect(rows[1]).toHaveTextContent('abcd1234');
    expect(rows[1]).not.toHaveTextContent('abcd1234ffff');
    expect(calls('rotation_history')).toEqual([{ name: 'prod/db', limit: 50 }]);
  });

  it('says so when no rotation has run yet', async () => {
    backend({ rotation_history: () => [] });
    renderTab({ ...scheduled, last_rotated: null });
    expect(await screen.findByTestId('rotation-history-empty')).toHaveTextContent('No rotation has run yet');
    expect(screen.getByTestId('rotation-last')).toHaveTextContent('Never');
  });

  it('shows why a failing rotation failed, when it retries, and that CURRENT is unchanged', async () => {
    backend({ rotation_history: () => history });
    renderTab(failing);
    expect(screen.getByTestId('rotation-state')).toHaveTextContent('Failing');
    expect(screen.getByTestId('rotation-state')).toHaveClass('danger');
    const banner = screen.getByTestId('rotation-last-error');
    expect(banner).toHaveTextContent('connection refused');
    expect(banner).toHaveTextContent('at step set');
    expect(banner).toHaveTextContent('3 failed attempts');
    expect(banner).toHaveTextContent('CURRENT is unchanged');
    expect(banner).toHaveTextContent(/tries again in \d+ days/);
    expect(screen.getByTestId('rotation-progress')).toHaveTextContent('Paused before step set · rotation 01234567');
    expect(screen.getByTestId('rotate-now')).toHaveTextContent('Resume rotation');
    expect(screen.getByTestId('rotation-rotator')).toHaveTextContent('Command /usr/local/bin/rotate-db (30 s per step)');
  });

  it('rotates now and says which version is CURRENT', async () => {
    backend({
      rotation_history: () => [],
      rotate_secret: () => ({ secret_name: 'prod/db', token: 't', version_id: 'abcd1234-5678', completed: 'finish', finished: true }),
    });
    const onChanged = renderTab(scheduled);
    await fireEvent.click(screen.getByTestId('rotate-now'));
    await vi.waitFor(() => expect(onChanged).toHaveBeenCalled());
    expect(calls('rotate_secret')).toEqual([{ name: 'prod/db' }]);
    expect(app.toasts.map((t) => t.text)).toContain(
      'Rotated “prod/db”: CURRENT is now version abcd1234, PREVIOUS keeps the old one.',
    );
    expect(app.toasts[0]!.kind).toBe('success');
    await vi.waitFor(() => expect(calls('rotation_history')).toHaveLength(2));
  });

  it('shows a failed rotation as an error and reloads so the failing state shows', async () => {
    backend({
      rotation_history: () => [],
      rotate_secret: () => {
        throw { code: 'rotation_failed', message: 'rotation of secret "prod/db" failed at step test: bad login; CURRENT is unchanged' };
      },
    });
    const onChanged = renderTab(scheduled);
    await fireEvent.click(screen.getByTestId('rotate-now'));
    await vi.waitFor(() => expect(onChanged).toHaveBeenCalled());
    expect(app.toasts.find((t) => t.kind === 'error')?.text).toMatch(/failed at step test: bad login/);
    expect(screen.getByTestId('rotate-now')).not.toBeDisabled();
  });

  it('turns scheduled rotation off, and on again with the same settings', async () => {
    const off: RotationInfo = { ...scheduled, enabled: false, state: 'disabled' };
    backend({ rotation_history: () => [], cancel_rotation: () => off, configure_rotation: () => scheduled });
    const onChanged = renderTab({ ...scheduled, window: '2h' });
    await fireEvent.click(screen.getByTestId('cancel-rotation'));
    expect(await screen.findByTestId('enable-rotation')).toBeInTheDocument();
    expect(screen.getByTestId('rotation-state')).toHaveTextContent('Off');
    expect(screen.getByTestId('rotation-next')).toHaveTextContent('scheduled rotation is off');
    expect(screen.getByTestId('rotate-now')).toBeInTheDocument();
    expect(calls('cancel_rotation')).toEqual([{ name: 'prod/db' }]);
    expect(onChanged).toHaveBeenCalledTimes(1);

    await fireEvent.click(screen.getByTestId('enable-rotation'));
    expect(await screen.findByTestId('cancel-rotation')).toBeInTheDocument();
    expect(calls('configure_rotation')).toEqual([
      { name: 'prod/db', settings: { schedule: 'rate(30 days)', window: null, rotator: off.rotator }, pin: null },
    ]);
  });

  it('reloads when the scheduler rotated this secret, and only then', async () => {
    backend({ rotation_history: () => [] });
    const onChanged = renderTab(scheduled);
    await vi.waitFor(() => expect(listeners.get('rotations-ran')?.size).toBe(1));
    schedulerRan({ rotated: ['other'] });
    expect(onChanged).not.toHaveBeenCalled();
    schedulerRan({ failed: [{ name: 'prod/db', code: 'rotation_failed', message: 'boom' }] });
    expect(onChanged).toHaveBeenCalledTimes(1);
    await vi.waitFor(() => expect(calls('rotation_history')).toHaveLength(2));
  });

  it('has no actions on a deleted secret', async () => {
    backend({ rotation_history: () => [] });
    renderTab(scheduled, { readOnly: true });
    expect(screen.getByTestId('rotation-state')).toBeInTheDocument();
    for (const id of ['rotate-now', 'rotation-configure', 'cancel-rotation', 'enable-rotation']) {
      expect(screen.queryByTestId(id)).toBeNull();
    }
    expect(screen.getByText(/Restore it to rotate it/)).toBeInTheDocument();
    expect(calls('rotation_history')).toEqual([]);
  });

  it('never shows a secret value', async () => {
    backend({ rotation_history: () => history });
    renderTab(failing);
    await screen.findAllByTestId('rotation-history-row');
    expect(calls('reveal_secret')).toEqual([]);
    expect(invoke.mock.calls.map(([c]) => c).sort()).toEqual(['rotation_history']);
  });
});

describe('Rotation editor', () => {
  async function openEditor(rotation?: RotationInfo) {
    const onChanged = renderTab(rotation);
    await fireEvent.click(screen.getByTestId('rotation-configure'));
    return onChanged;
  }

  it('saves a generated-password rotation as exact settings', async () => {
    backend({ preview_schedule: preview, configure_rotation: () => scheduled, rotation_history: () => [] });
    const onChanged = await openEditor();
    expect(screen.getByTestId('rotator-select')).toHaveValue('generate');
    expect(screen.getByTestId('schedule-kind')).toHaveValue('rate');
    expect(screen.getByLabelText('Every')).toHaveValue(30);
    expect(screen.getByLabelText('Length')).toHaveValue(32);
    await fireEvent.click(screen.getByLabelText('No punctuation'));
    await fireEvent.click(screen.getByTestId('save-rotation'));
    await vi.waitFor(() => expect(onChanged).toHaveBeenCalled());
    expect(calls('configure_rotation')).toEqual([
      {
        name: 'prod/db',
        settings: {
          schedule: 'rate(30 days)',
          window: null,
          rotator: { rotator: 'generate', password: { ...defaultPasswordOptions, exclude_punctuation: true } },
        },
        pin: null,
      },
    ]);
    expect(screen.queryByTestId('rotation-editor')).toBeNull();
    expect(screen.getByTestId('rotation-state')).toHaveTextContent('Scheduled');
  });

  it('saves a command rotator on a cron schedule with a window', async () => {
    backend({ preview_schedule: preview, configure_rotation: () => failing, rotation_history: () => [] });
    await openEditor();
    await fireEvent.change(screen.getByTestId('rotator-select'), { target: { value: 'command' } });
    await fireEvent.input(screen.getByLabelText('Executable'), { target: { value: ' /usr/local/bin/rotate-db ' } });
    expect(screen.queryByLabelText('Arguments (optional)')).toBeNull();
    await fireEvent.input(screen.getByLabelText('Step timeout (seconds)'), { target: { value: '90' } });
    await fireEvent.change(screen.getByTestId('schedule-kind'), { target: { value: 'cron' } });
    const cron = screen.getByLabelText('Cron expression (UTC)');
    expect(cron).toHaveAttribute('placeholder', 'cron(0 4 ? * SUN *)');
    await fireEvent.input(cron, { target: { value: '0 4 ? * SUN *' } });
    await fireEvent.input(screen.getByLabelText('Window (optional)'), { target: { value: '2h' } });
    // Running a new program needs the PIN, asked at its field before the engine is called.
    await fireEvent.click(screen.getByTestId('save-rotation'));
    expect(await screen.findByTestId('rotation-pin-error')).toHaveTextContent('PIN');
    expect(calls('configure_rotation')).toEqual([]);
    await fireEvent.input(screen.getByLabelText('Your PIN'), { target: { value: 'my-pin-1234' } });
    await fireEvent.click(screen.getByTestId('save-rotation'));
    await vi.waitFor(() => expect(calls('configure_rotation')).toHaveLength(1));
    expect(calls('configure_rotation')[0]).toEqual({
      name: 'prod/db',
      settings: {
        schedule: 'cron(0 4 ? * SUN *)',
        window: '2h',
        rotator: { rotator: 'command', path: '/usr/local/bin/rotate-db', timeout_secs: 90 },
      },
      pin: 'my-pin-1234',
    });
  });

  it('saves PostgreSQL alternating users with the admin secret, and on-demand needs no window', async () => {
    backend({ preview_schedule: preview, configure_rotation: () => scheduled, rotation_history: () => [] });
    await openEditor();
    await fireEvent.change(screen.getByTestId('rotator-select'), { target: { value: 'postgres' } });
    expect(screen.queryByLabelText('Admin secret')).toBeNull();
    await fireEvent.change(screen.getByLabelText('Strategy'), { target: { value: 'alternating_users' } });
    await fireEvent.click(screen.getByTestId('save-rotation'));
    expect(await screen.findByText(/Name the secret that holds the admin credentials/)).toBeInTheDocument();
    expect(calls('configure_rotation')).toEqual([]);

    await fireEvent.input(screen.getByLabelText('Admin secret'), { target: { value: 'prod/db/admin' } });
    await fireEvent.input(screen.getByLabelText('Length'), { target: { value: '24' } });
    await fireEvent.change(screen.getByTestId('schedule-kind'), { target: { value: 'none' } });
    expect(screen.queryByLabelText('Window (optional)')).toBeNull();
    await fireEvent.click(screen.getByTestId('save-rotation'));
    await vi.waitFor(() => expect(calls('configure_rotation')).toHaveLength(1));
    expect(calls('configure_rotation')[0]).toEqual({
      name: 'prod/db',
      settings: {
        schedule: null,
        window: null,
        rotator: {
          rotator: 'postgres',
          strategy: 'alternating_users',
          admin_secret: 'prod/db/admin',
          timeout_secs: 30,
          password: { ...defaultPasswordOptions, length: 24 },
        },
      },
      pin: null,
    });
  });

  it('asks for the command path before calling the engine', async () => {
    backend({ preview_schedule: preview, rotation_history: () => [] });
    await openEditor();
    await fireEvent.change(screen.getByTestId('rotator-select'), { target: { value: 'command' } });
    await fireEvent.click(screen.getByTestId('save-rotation'));
    expect(await screen.findByTestId('command-error')).toHaveTextContent('Enter the full path of the executable');
    await fireEvent.input(screen.getByLabelText('Executable'), { target: { value: 'rotate-db' } });
    expect(screen.queryByTestId('command-error')).toBeNull();
    await fireEvent.click(screen.getByTestId('save-rotation'));
    expect(await screen.findByTestId('command-error')).toHaveTextContent('not an absolute path');
    expect(calls('configure_rotation')).toEqual([]);
  });

  it('counts the preview from the last rotation, and says when saving makes one due', async () => {
    backend({
      preview_schedule: (args) => ({
        ...preview(args),
        next: ['2026-12-01T10:00:00Z', '2026-12-31T10:00:00Z'],
        due_now: true,
      }),
      rotation_history: () => [],
    });
    await openEditor(scheduled);
    expect(await screen.findByTestId('schedule-preview')).toHaveTextContent(
      /Due as soon as it is saved.*then Thu 31 Dec( 2026)? 10:00 UTC/,
    );
    expect(calls('preview_schedule').at(-1)).toMatchObject({ lastRotated: scheduled.last_rotated });
  });

  it('previews the next rotation times as the schedule is typed', async () => {
    backend({ preview_schedule: preview, rotation_history: () => [] });
    await openEditor();
    expect(await screen.findByTestId('schedule-preview')).toHaveTextContent(
      // The year shows only when it is not the current one.
      /^Next: Mon 7 Dec( 2026)? 03:00 UTC, Mon 14 Dec( 2026)? 03:00 UTC, Mon 21 Dec( 2026)? 03:00 UTC/,
    );
    await fireEvent.input(screen.getByLabelText('Every'), { target: { value: '1' } });
    await fireEvent.change(screen.getByLabelText('Unit'), { target: { value: 'hours' } });
    await vi.waitFor(() => expect(calls('preview_schedule').at(-1)).toEqual({ schedule: 'rate(1 hour)', window: null, lastRotated: null, count: 3 }));
  });

  it('shows a preview error at the schedule', async () => {
    backend({
      rotation_history: () => [],
      preview_schedule: (args) => {
        if (args.schedule === 'cron(0 4 * * * *)')
          throw {
            code: 'invalid_argument',
            field: 'rotation schedule',
            message: 'give either day-of-month or day-of-week and put ? in the other; write for example rate(30 days)',
          };
        return preview(args);
      },
    });
    await openEditor();
    await fireEvent.change(screen.getByTestId('schedule-kind'), { target: { value: 'cron' } });
    await fireEvent.input(screen.getByLabelText('Cron expression (UTC)'), { target: { value: 'cron(0 4 * * * *)' } });
    expect(await screen.findByTestId('schedule-error')).toHaveTextContent('give either day-of-month or day-of-week');
    expect(screen.queryByTestId('schedule-preview')).toBeNull();
    await fireEvent.input(screen.getByLabelText('Cron expression (UTC)'), { target: { value: 'cron(0 4 ? * * *)' } });
    expect(await screen.findByTestId('schedule-preview')).toHaveTextContent(/Next: Mon 7 Dec( 2026)? 03:00 UTC/);
    expect(screen.queryByTestId('schedule-error')).toBeNull();
  });

  it('drops a preview answer that arrives after newer input', async () => {
    let releaseSlow: (() => void) | undefined;
    backend({
      rotation_history: () => [],
      preview_schedule: (args) =>
        args.schedule === 'rate(5 days)'
          ? new Promise((resolve) => (releaseSlow = () => resolve({ ...preview(args), next: ['2030-01-01T00:00:00Z'] })))
          : preview(args),
    });
    await openEditor();
    await fireEvent.input(screen.getByLabelText('Every'), { target: { value: '5' } });
    await vi.waitFor(() => expect(releaseSlow).toBeDefined());
    await fireEvent.input(screen.getByLabelText('Every'), { target: { value: '6' } });
    await vi.waitFor(() => expect(calls('preview_schedule').at(-1)).toMatchObject({ schedule: 'rate(6 days)' }));
    expect(await screen.findByTestId('schedule-preview')).toHaveTextContent('Mon 7 Dec');
    releaseSlow!();
    await new Promise((r) => setTimeout(r, 20));
    expect(screen.getByTestId('schedule-preview')).not.toHaveTextContent('2030');
  });

  it('shows engine errors from saving at the field they name', async () => {
    let answer: unknown = { code: 'invalid_argument', field: 'rotation window', message: 'the rotation window (2d) must be shorter than the time between rotations (rate(1 day))' };
    backend({
      rotation_history: () => [],
      preview_schedule: preview,
      configure_rotation: () => {
        throw answer;
      },
    });
    await openEditor();
    await fireEvent.click(screen.getByTestId('save-rotation'));
    expect(await screen.findByTestId('window-error')).toHaveTextContent('must be shorter than the time between rotations');

    answer = { code: 'invalid_argument', field: 'rotator', message: 'the password options are not valid: nothing left to pick from' };
    await fireEvent.click(screen.getByTestId('save-rotation'));
    expect(await screen.findByTestId('rotator-error')).toHaveTextContent('nothing left to pick from');
    expect(screen.queryByTestId('window-error')).toBeNull();

    answer = { code: 'secret_not_found', message: 'no secret named "prod/db"' };
    await fireEvent.click(screen.getByTestId('save-rotation'));
    expect(await screen.findByTestId('rotation-error')).toHaveTextContent('no secret named');
    expect(screen.getByTestId('rotation-editor')).toBeInTheDocument();
  });

  it('fills the form from the saved rotation', async () => {
    backend({ preview_schedule: preview, rotation_history: () => [] });
    await openEditor({
      ...scheduled,
      schedule: 'cron(0 3 ? * MON *)',
      window: '90m',
      rotator: { rotator: 'command', path: '/opt/rotate', args: ['--db', 'a b'], timeout_secs: 120 },
    });
    expect(screen.getByTestId('rotator-select')).toHaveValue('command');
    expect(screen.getByLabelText('Executable')).toHaveValue('/opt/rotate');
    // Arguments set in a terminal are shown and kept, not edited here.
    expect(screen.getByTestId('rotation-args-note')).toHaveTextContent('--db "a b"');
    expect(screen.getByLabelText('Step timeout (seconds)')).toHaveValue(120);
    expect(screen.getByTestId('schedule-kind')).toHaveValue('cron');
    expect(screen.getByLabelText('Cron expression (UTC)')).toHaveValue('cron(0 3 ? * MON *)');
    expect(screen.getByLabelText('Window (optional)')).toHaveValue('90m');
  });

  it('fills a one-day rate and a JSON field back in', async () => {
    backend({ preview_schedule: preview, rotation_history: () => [] });
    await openEditor({ ...scheduled, schedule: 'rate(1 day)' });
    expect(screen.getByLabelText('Every')).toHaveValue(1);
    expect(screen.getByLabelText('Unit')).toHaveValue('days');
    expect(screen.getByLabelText('JSON field (optional)')).toHaveValue('password');
    expect(screen.getByText(/Leave empty to replace the whole value/)).toBeInTheDocument();
  });
});

describe('Rotation schedule', () => {
  const overdue: RotationInfo = { ...scheduled, secret_name: 'api/token', state: 'overdue', next_rotation: '2026-01-01T00:00:00Z' };
  const off: RotationInfo = { ...scheduled, secret_name: 'old', enabled: false, state: 'disabled' };
  const later: RotationInfo = { ...scheduled, secret_name: 'web/session' };

  it('lists every rotation, the most urgent first, with a summary', async () => {
    backend({ list_rotations: () => [failing, overdue, later, off] });
    render(RotationSchedule);
    const rows = await screen.findAllByTestId('schedule-row');
    expect(rows.map((r) => r.dataset.state)).toEqual(['failing', 'overdue', 'scheduled', 'disabled']);
    expect(screen.getByTestId('rotation-summary')).toHaveTextContent('1 failing · 1 overdue · 1 scheduled · 1 off');
    expect(rows[0]).toHaveTextContent('connection refused');
    expect(rows[0]).toHaveTextContent(/Retry in \d+ days/);
    expect(rows[1]).toHaveTextContent('Overdue');
    expect(rows[1]).toHaveTextContent(/Due \S/);
    expect(rows[2]).toHaveTextContent('Every 30 days');
    expect(rows[3]).toHaveTextContent('Off');
    expect(rows[0]).toHaveAttribute('tabindex', '0');
  });

  it('opens a secret on its Rotation tab by click or Enter', async () => {
    backend({ list_rotations: () => [failing, overdue] });
    render(RotationSchedule);
    const rows = await screen.findAllByTestId('schedule-row');
    await fireEvent.click(rows[1]!);
    expect([app.view, app.selected, app.detailTab]).toEqual(['secrets', 'api/token', 'rotation']);

    app.view = 'rotation';
    app.detailTab = null;
    await fireEvent.keyDown(rows[0]!, { key: 'Enter' });
    expect([app.view, app.selected, app.detailTab]).toEqual(['secrets', 'prod/db', 'rotation']);
  });

  it('explains how to set up rotation when nothing rotates', async () => {
    backend({ list_rotations: () => [] });
    render(RotationSchedule);
    expect(await screen.findByTestId('rotation-schedule-empty')).toHaveTextContent('Rotation tab');
  });

  it('reloads when the scheduler has run, and stops listening when closed', async () => {
    backend({ list_rotations: () => [] });
    const { unmount } = render(RotationSchedule);
    await vi.waitFor(() => expect(listeners.get('rotations-ran')?.size).toBe(1));
    expect(calls('list_rotations')).toHaveLength(1);
    schedulerRan({ rotated: ['prod/db'] });
    expect(calls('list_rotations')).toHaveLength(2);
    unmount();
    await vi.waitFor(() => expect(listeners.get('rotations-ran')?.size).toBe(0));
  });

  it('reloads every 30 seconds while shown', async () => {
    vi.useFakeTimers();
    try {
      backend({ list_rotations: () => [] });
      const { unmount } = render(RotationSchedule);
      await vi.advanceTimersByTimeAsync(0);
      expect(calls('list_rotations')).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(30_000);
      expect(calls('list_rotations')).toHaveLength(2);
      unmount();
      await vi.advanceTimersByTimeAsync(60_000);
      expect(calls('list_rotations')).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('Secret detail', () => {
  it('opens on the tab another screen asked for, once', async () => {
    backend({
      describe_secret: () => ({ ...secret, rotation: failing }),
      list_keys: () => [],
      rotation_history: () => history,
    });
    app.detailTab = 'rotation';
    render(SecretDetail, { name: 'prod/db' });
    expect(await screen.findByTestId('rotation-last-error')).toHaveTextContent('connection refused');
    expect(screen.getByTestId('tab-rotation')).toHaveAttribute('aria-selected', 'true');
    expect(app.detailTab).toBeNull();
  });
});
