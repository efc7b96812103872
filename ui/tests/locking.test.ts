import { describe, expect, it, vi, beforeEach } from 'vitest';
import { render, screen, fireEvent } from '@testing-library/svelte';

const invoke = vi.fn();
vi.mock('@tauri-apps/api/core', () => ({ invoke: (...args: unknown[]) => invoke(...args) }));
vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn(async () => () => {}) }));

import Unlock from '../src/screens/Unlock.svelte';
import Settings from '../src/screens/Settings.svelte';
import { app, onLocked } from '../src/lib/state.svelte';

describe('locks the user did not make here', () => {
  beforeEach(() => {
    invoke.mockReset();
    invoke.mockResolvedValue(null);
  });

  it.each([
    ['elsewhere', 'command line'],
    ['suspend', 'went to sleep'],
    ['screen-lock', 'screen locked'],
  ] as const)('a %s lock leaves the main screen and says why', (reason, words) => {
    app.screen = 'main';
    app.selected = 'prod/db';
    onLocked(reason);
    expect(app.screen).toBe('unlock');
    expect(app.selected).toBeNull();
    render(Unlock);
    expect(screen.getByTestId('lock-reason')).toHaveTextContent(words);
  });
});

describe('Settings', () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  it('turns lock on suspend off and on', async () => {
    invoke.mockImplementation(async (command: string, args: { settings?: unknown }) =>
      command === 'save_settings' ? args.settings : null,
    );
    render(Settings);
    const suspend = screen.getByTestId('lock-on-suspend') as HTMLInputElement;
    expect(suspend.checked).toBe(true);
    await fireEvent.click(suspend);
    const saved = invoke.mock.calls.find(([command]) => command === 'save_settings');
    expect(saved?.[1]).toMatchObject({ settings: { lock_on_suspend: false, lock_on_screen_lock: true } });
  });

  it('asks for the current PIN before changing it', async () => {
    render(Settings);
    await fireEvent.input(screen.getByLabelText('New PIN'), { target: { value: 'new-pin-1234' } });
    await fireEvent.input(screen.getByLabelText('Repeat the new PIN'), { target: { value: 'new-pin-1234' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Change PIN' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('current PIN');
    expect(invoke.mock.calls.some(([command]) => command === 'change_pin')).toBe(false);
    await fireEvent.input(screen.getByLabelText('Current PIN'), { target: { value: 'old-pin-1234' } });
    invoke.mockResolvedValue(null);
    await fireEvent.click(screen.getByRole('button', { name: 'Change PIN' }));
    expect(invoke).toHaveBeenCalledWith('change_pin', { currentPin: 'old-pin-1234', newPin: 'new-pin-1234' });
  });
});
