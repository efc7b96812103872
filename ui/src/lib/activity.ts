// Reports user activity to the app (throttled) so auto-lock measures real idleness.
import { api } from './api';

const THROTTLE_MS = 2000;

export function trackActivity(target: Window = window, report = api.noteActivity): () => void {
  let last = 0;
  const onActivity = () => {
    const now = Date.now();
    if (now - last < THROTTLE_MS) return;
    last = now;
    report().catch(() => {});
  };
  const kinds = ['keydown', 'pointerdown', 'wheel', 'pointermove'] as const;
  for (const kind of kinds) target.addEventListener(kind, onActivity, { passive: true });
  return () => {
    for (const kind of kinds) target.removeEventListener(kind, onActivity);
  };
}
