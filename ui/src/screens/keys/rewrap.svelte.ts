// Re-wraps in progress, by key id. They live here rather than in the key panel so that a
// re-wrap keeps its progress (and its outcome) when the panel is closed and opened again.
import { api, ApiError, events, type RewrapProgress } from '../../lib/api';
import { toast } from '../../lib/state.svelte';
import { countOf, formatCount } from '../../lib/keyRotation';

export interface RewrapRun {
  running: boolean;
  /** The latest progress of this run; null until the first batch is done. */
  progress: RewrapProgress | null;
  /** Why the last run stopped; null while running. (A run that succeeds is removed.) */
  error: string | null;
}

export const rewraps: Record<string, RewrapRun> = $state({});

/** Bumped whenever a run ends, so that open panels reload the counts. */
export const rewrapRuns = $state({ ended: 0 });

/**
 * Re-wraps every data key of `keyId` under its newest version, following the progress
 * events, and says how it ended. `label` names the key in the toast.
 */
export async function startRewrap(keyId: string, label: string): Promise<void> {
  if (rewraps[keyId]?.running) return;
  rewraps[keyId] = { running: true, progress: null, error: null };
  // The stored (reactive) run, not the object literal above.
  const run = rewraps[keyId]!;
  // Listen before starting, so the first batch is not missed.
  const unlisten = await events
    .onRewrapProgress((progress) => {
      if (progress.key_id === keyId && run.running) run.progress = progress;
    })
    .catch(() => () => {});
  try {
    const final = await api.rewrapKey(keyId);
    delete rewraps[keyId];
    if (final.remaining === 0) {
      toast(`Every data key of ${label} is now under version ${final.to_version}.`, 'success', 6000);
    } else {
      toast(
        `Re-wrapped ${countOf(final.done, 'data key')} of ${label}; ${formatCount(final.remaining)} still under older versions. Run it again to continue.`,
        'info',
        8000,
      );
    }
  } catch (e) {
    run.running = false;
    run.error = ApiError.from(e).message;
    toast(`Re-wrapping ${label} stopped: ${run.error}`, 'error', 8000);
  } finally {
    unlisten();
    rewrapRuns.ended += 1;
  }
}

/** Forgets a finished run (its progress and error). */
export function clearRewrap(keyId: string): void {
  if (!rewraps[keyId]?.running) delete rewraps[keyId];
}
