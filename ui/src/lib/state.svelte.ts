// App-wide state (Svelte 5 runes): which screen, the status, settings, toasts.
import { api, ApiError, type AppStatus, type LockReason, type Settings } from './api';

export type View =
  | 'secrets'
  | 'deleted'
  | 'rotation'
  | 'keys'
  | 'regions'
  | 'team'
  | 'access-keys'
  | 'audit'
  | 'settings';
export type DetailTab = 'overview' | 'versions' | 'rotation' | 'replication' | 'activity';
export type Screen = 'loading' | 'first-run' | 'unlock' | 'main';

export interface Toast {
  id: number;
  kind: 'info' | 'success' | 'error';
  text: string;
}

export const app = $state({
  screen: 'loading' as Screen,
  status: null as AppStatus | null,
  settings: {
    auto_lock_secs: 600,
    clipboard_clear_secs: 30,
    theme: 'system',
    lock_on_suspend: true,
    lock_on_screen_lock: true,
  } as Settings,
  view: 'secrets' as View,
  /** The secret shown in the detail pane. */
  selected: null as string | null,
  /** The tab the next secret detail opens on; the detail consumes it once. */
  detailTab: null as DetailTab | null,
  /** Why the vault was locked last (shown on the unlock screen). */
  lockReason: null as LockReason | null,
  /** Bumped when secrets change, so lists reload. */
  revision: 0,
  toasts: [] as Toast[],
  paletteOpen: false,
  /** The create form is open in the secrets view. */
  creating: false,
  loadError: null as string | null,
});

let toastId = 0;

export function toast(text: string, kind: Toast['kind'] = 'info', ms = 4000): void {
  const id = ++toastId;
  app.toasts.push({ id, kind, text });
  setTimeout(() => dismissToast(id), ms);
}

export function dismissToast(id: number): void {
  const index = app.toasts.findIndex((t) => t.id === id);
  if (index >= 0) app.toasts.splice(index, 1);
}

export function applyTheme(theme: Settings['theme']): void {
  const root = document.documentElement;
  if (theme === 'system') delete root.dataset.theme;
  else root.dataset.theme = theme;
}

export async function refreshStatus(): Promise<void> {
  try {
    const status = await api.status();
    app.status = status;
    app.loadError = null;
    if (!status.vault_exists) app.screen = 'first-run';
    else if (!status.unlocked) app.screen = 'unlock';
    else app.screen = 'main';
  } catch (e) {
    app.loadError = ApiError.from(e).message;
  }
}

export async function loadSettings(): Promise<void> {
  try {
    app.settings = await api.getSettings();
  } catch {
    // Defaults stay in place; the settings screen shows errors when saving.
  }
  applyTheme(app.settings.theme);
}

export function secretsChanged(): void {
  app.revision += 1;
}

export async function lockNow(): Promise<void> {
  try {
    await api.lock();
  } catch (e) {
    toast(ApiError.from(e).message, 'error');
  }
  onLocked('manual');
}

export function onLocked(reason: LockReason): void {
  app.lockReason = reason;
  app.selected = null;
  app.paletteOpen = false;
  if (app.screen === 'main') app.screen = 'unlock';
  void refreshStatus();
}

export function navigate(view: View): void {
  app.view = view;
  if (view !== 'secrets' && view !== 'deleted') app.selected = null;
}

/** Shows a secret in the secrets view, on `tab` if given. */
export function openSecret(name: string, tab: DetailTab | null = null): void {
  navigate('secrets');
  app.creating = false;
  app.detailTab = tab;
  app.selected = name;
}
