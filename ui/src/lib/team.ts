// Pure helpers of the Team screen: the checks a form makes before asking the engine (the
// engine checks again; these only say sooner, at the field, what it would refuse), and the
// shared folder a secret is under, computed from `TeamInfo.folders` so that the secrets list
// needs no call per secret.
import type { ExposureState, TeamInfo, TeamRole } from './api';

export const ROLES: TeamRole[] = ['reader', 'writer', 'admin'];

export const ROLE_HINT: Record<TeamRole, string> = {
  reader: 'gets a read-only copy, reads it offline',
  writer: 'may also create and update secrets in the folder',
  admin: 'may also change who has access',
};

export const EXPOSURE_LABEL: Record<ExposureState, string> = {
  rotate_now: 'rotate now',
  exposed: 'exposed',
  rotated: 'rotated',
};

/** As the engine's `RegionName`: 1–32 lowercase letters, digits and dashes, a letter first. */
export function regionNameError(name: string): string | null {
  if (!name) return 'Enter the region name of that vault (as `coffer region identity` prints it there).';
  if (name.length > 32) return 'A region name has at most 32 characters.';
  if (!/^[a-z][a-z0-9-]*$/.test(name) || name.endsWith('-')) {
    return 'A region name has lowercase letters, digits and dashes, starts with a letter and does not end with a dash.';
  }
  return null;
}

/** As the engine's `PeerUrl`: `https://HOST:PORT`, nothing more. */
export function urlError(url: string): string | null {
  if (!url) return 'Enter where its daemon listens, such as https://192.0.2.10:7443.';
  if (!url.startsWith('https://')) return 'It must start with https:// (vaults only talk over TLS).';
  const rest = url.slice('https://'.length);
  const port = /^(\[[0-9a-fA-F:.]+\]|[^/:\s[\]]+):(\d{1,5})$/.exec(rest);
  if (!port || Number(port[2]) < 1 || Number(port[2]) > 65535) {
    return 'Write it as https://HOST:PORT, with a port and no path.';
  }
  return null;
}

/** The fingerprint without separators, in capitals, as the engine compares it. */
export function compactFingerprint(text: string): string {
  return text.replace(/[-\s:]/g, '').toUpperCase();
}

/** As the engine's `Fingerprint::parse`: 52 letters A–Z and digits 2–7, dashes optional. */
export function fingerprintError(text: string, own: string | null = null): string | null {
  const compact = compactFingerprint(text);
  if (!compact) return 'Enter its fingerprint, as `coffer region identity` prints it on that vault.';
  if (!/^[A-Z2-7]*$/.test(compact)) return 'A fingerprint only holds the letters A–Z and the digits 2–7.';
  if (compact.length !== 52) return `A fingerprint has 52 letters and digits (13 groups of 4); this has ${compact.length}.`;
  if (own && compact === compactFingerprint(own)) {
    return "This is this vault's own fingerprint: enter the one the other vault shows.";
  }
  return null;
}

/** As the engine's `check_team_name`: 1–64 letters, digits, '.', '_' or '-'. */
export function teamNameError(name: string): string | null {
  if (!name) return 'Enter a name for the team.';
  if (name.length > 64) return 'A team name has at most 64 characters.';
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return "A team name has letters, digits, '.', '_' and '-' only.";
  return null;
}

/** A shared folder is a name prefix ending in '/', such as team/payments/. */
export function prefixError(prefix: string): string | null {
  if (!prefix) return 'Enter the folder, a name prefix such as team/payments/.';
  if (!prefix.endsWith('/')) return `A folder ends with '/': ${prefix}/ shares ${prefix}/db but not ${prefix}-old.`;
  if (prefix.startsWith('/') || prefix.includes('//')) return 'A folder has no empty part (no leading or double /).';
  return null;
}

/** Where a secret stands in the team: its folder, this vault's role there (null on the
 * folder's primary, which may do anything), and why this vault may not change it (null if
 * it may: a writer's new versions are sent to the primary). As `Vault::team_folder_of`. */
export interface TeamPlace {
  team: string;
  prefix: string;
  primary: string;
  role: TeamRole | null;
  readOnlyWhy: string | null;
}

/** The shared folder `name` is under (the longest matching prefix), or null. */
export function teamPlaceOf(info: TeamInfo | null, name: string): TeamPlace | null {
  if (!info) return null;
  const folder = info.folders
    .filter((f) => name.startsWith(f.prefix))
    .sort((a, b) => b.prefix.length - a.prefix.length)[0];
  if (!folder) return null;
  const primary = folder.primary_region === info.own_region;
  const own = info.members.find((m) => m.region === info.own_region);
  const role = primary ? null : (own?.roles[folder.prefix] ?? null);
  let readOnlyWhy: string | null = null;
  if (!primary && role !== 'writer' && role !== 'admin') {
    readOnlyWhy = role
      ? `You are a ${role} of ${folder.prefix}; ask an admin for the writer role to change it: coffer team share ${folder.prefix} --member ${info.own_region} --role writer`
      : `This vault has no role in ${folder.prefix} any more; ask an admin.`;
  }
  return { team: info.name, prefix: folder.prefix, primary: folder.primary_region, role, readOnlyWhy };
}
