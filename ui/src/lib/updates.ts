// Settings → Updates: the typed calls and the small rules the update dialog shows.
// The checks that matter (https only, signature, package, version) are the app's; these
// only let the screen say early what the app would say anyway.
import { Channel } from '@tauri-apps/api/core';
import { call } from './api';

export interface UpdatePreferences {
  /** The manifest (latest.json) URL; null: Coffer never checks. */
  endpoint: string | null;
  /** An extra CA certificate (PEM path) for a private update server. */
  ca_file: string | null;
}

export interface UpdateOffer {
  current_version: string;
  version: string;
  notes: string;
  date: string | null;
}

export interface ReadyUpdate {
  current_version: string;
  version: string;
  downgrade: boolean;
}

export interface DownloadProgress {
  downloaded: number;
  total: number | null;
}

export const updatesApi = {
  getSettings: () => call<UpdatePreferences>('get_update_settings'),
  saveSettings: (settings: UpdatePreferences) =>
    call<UpdatePreferences>('save_update_settings', { settings }),
  check: () => call<UpdateOffer | null>('check_for_update'),
  download: (onProgress: (progress: DownloadProgress) => void) => {
    const channel = new Channel<DownloadProgress>();
    channel.onmessage = onProgress;
    return call<ReadyUpdate>('download_update', { onProgress: channel });
  },
  checkFile: (path: string, signature: string | null, allowDowngrade: boolean) =>
    call<ReadyUpdate>('check_update_file', { path, signature, allowDowngrade }),
  install: () => call<void>('install_update'),
};

/** Why an endpoint would be refused, or null if it looks usable (empty is "off"). */
export function endpointProblem(text: string): string | null {
  const value = text.trim();
  if (value === '') return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'Give the full address of latest.json, like https://updates.example.org/coffer/latest.json.';
  }
  if (url.protocol !== 'https:') {
    return `Use https://, not ${url.protocol}//: the manifest decides what is downloaded.`;
  }
  if (url.username || url.password) return 'Leave the user name and password out of the address.';
  return null;
}

/** The download's progress in percent, or null while the size is unknown. */
export function progressPercent(progress: DownloadProgress | null): number | null {
  if (!progress || !progress.total) return null;
  return Math.min(100, Math.floor((progress.downloaded / progress.total) * 100));
}

/** Bytes in the unit a person reads: "812 KiB", "19.6 MiB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/** Where a bundle's signature is unless the user names it: BUNDLE.sig. */
export function defaultSignaturePath(bundle: string): string {
  const value = bundle.trim();
  return value === '' ? '' : `${value}.sig`;
}

/** What a check that found nothing newer says, naming the running version when it is known
 * (after "Install and restart" this is how the user sees which version now runs). */
export function upToDateMessage(running: string | null | undefined): string {
  return running ? `Coffer ${running} is up to date.` : 'Coffer is up to date.';
}
