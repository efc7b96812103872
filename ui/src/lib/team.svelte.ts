// The team as last loaded, shared by the Team screen and the secrets list and detail (which
// mark secrets under a shared folder and disable a reader's edit controls).
import { api, type TeamInfo } from './api';

export const teamState = $state({
  info: null as TeamInfo | null,
  /** The last load answered (with a team or with none). */
  loaded: false,
});

/** Reloads the team; returns it. A failure (locked, an older engine) leaves no team shown. */
export async function loadTeam(): Promise<TeamInfo | null> {
  try {
    teamState.info = await api.teamShow();
  } catch {
    teamState.info = null;
  }
  teamState.loaded = true;
  return teamState.info;
}

/** Keeps what a command returned, so every screen shows the team as it is now. */
export function setTeam(info: TeamInfo | null): void {
  teamState.info = info;
  teamState.loaded = true;
}
