// The Team screen (create and join with their checks, invite with the fingerprint check,
// role changes, removal listing what was exposed) and how shared folders show in the
// secrets list and detail. The engine is mocked at `invoke`, as in the other tests.
import { describe, expect, it, vi, beforeEach } from 'vitest';
import { render, screen, fireEvent, waitFor, within } from '@testing-library/svelte';

const invoke = vi.fn();
vi.mock('@tauri-apps/api/core', () => ({ invoke: (...args: unknown[]) => invoke(...args) }));
vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn(async () => () => {}) }));

import Team from '../src/screens/Team.svelte';
import Secrets from '../src/screens/Secrets.svelte';
import SecretDetail from '../src/screens/SecretDetail.svelte';
import type { Exposure, SecretDescription, TeamInfo, TeamMember, TeamRemoval } from '../src/lib/api';
import { fingerprintError, prefixError, regionNameError, teamNameError, teamPlaceOf, urlError } from '../src/lib/team';
import { setTeam } from '../src/lib/team.svelte';
import { app } from '../src/lib/state.svelte';

const OWN_FP = 'WPIO-EADJ-PJJY-JI6Z-BIYB-WCBX-Z2KM-KX2F-L4I5-GGXE-W5HF-33ZP-WTEA';
const THEIR_FP = '2QXA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA';
const identity = { region: 'eu-office-1', fingerprint: OWN_FP, vault_id: 'v' };

const ana: TeamMember = {
  region: 'eu-laptop-ana',
  added_at: '2026-12-01T10:00:00Z',
  roles: { 'team/payments/': 'reader', 'team/ops/': 'writer' },
  last_contact: '2026-12-05T10:00:00Z',
  backlog: 3,
  last_error: null,
};
const bo: TeamMember = {
  region: 'us-laptop-bo',
  added_at: '2026-12-01T10:00:00Z',
  roles: {},
  last_contact: null,
  backlog: 0,
  last_error: 'cannot reach region "us-laptop-bo" at https://10.0.0.7:7443',
};
const owned: TeamInfo = {
  name: 'payments',
  owner_region: 'eu-office-1',
  own_region: 'eu-office-1',
  is_owner: true,
  revision: 4,
  members: [ana, bo],
  folders: [
    { prefix: 'team/payments/', primary_region: 'eu-office-1' },
    { prefix: 'team/ops/', primary_region: 'eu-office-1' },
  ],
};

type Handler = (args: Record<string, unknown>) => unknown;

function route(handlers: Record<string, Handler>) {
  invoke.mockImplementation(async (command: string, args: Record<string, unknown>) => {
    const handler = handlers[command];
    if (!handler) throw new Error(`unexpected ${command}`);
    return handler(args ?? {});
  });
}

const calls = (command: string) => invoke.mock.calls.filter(([c]) => c === command).map(([, args]) => args);

async function typeInto(label: string, value: string) {
  await fireEvent.input(screen.getByLabelText(label), { target: { value } });
}

beforeEach(() => {
  invoke.mockReset();
  setTeam(null);
});

// jsdom has no layout: the secrets list's virtual list measures its height with this.
globalThis.ResizeObserver ??= class {
  observe() {}
  unobserve() {}
  disconnect() {}
} as unknown as typeof ResizeObserver;

describe('form checks, as the engine parses', () => {
  it('region names, addresses, fingerprints and folders', () => {
    expect(teamNameError('payments-2026.eu')).toBeNull();
    expect(teamNameError('pay ments')).toMatch(/letters, digits/);
    expect(teamNameError('x'.repeat(65))).toMatch(/64/);
    expect(regionNameError('eu-laptop-ana')).toBeNull();
    expect(regionNameError('EU')).toMatch(/lowercase/);
    expect(regionNameError('eu-')).toMatch(/dash/);
    expect(regionNameError('')).toMatch(/region name/);
    expect(urlError('https://192.0.2.10:7443')).toBeNull();
    expect(urlError('https://[::1]:7443')).toBeNull();
    expect(urlError('http://192.0.2.10:7443')).toMatch(/https:\/\//);
    expect(urlError('https://host')).toMatch(/HOST:PORT/);
    expect(urlError('https://host:7443/path')).toMatch(/HOST:PORT/);
    expect(fingerprintError(THEIR_FP)).toBeNull();
    expect(fingerprintError(THEIR_FP.toLowerCase().replace(/-/g, ' '))).toBeNull();
    expect(fingerprintError(THEIR_FP.slice(5))).toMatch(/52 letters/);
    expect(fingerprintError(THEIR_FP.replace('2QXA', '1QXA'))).toMatch(/A–Z and the digits 2–7/);
    expect(fingerprintError(OWN_FP, OWN_FP)).toMatch(/own fingerprint/);
    expect(prefixError('team/payments/')).toBeNull();
    expect(prefixError('team/payments')).toMatch(/ends with '\/'/);
    expect(prefixError('/team/')).toMatch(/no empty part/);
  });

  it('a secret is under the longest shared prefix; the role decides whether it is read-only', () => {
    const member: TeamInfo = {
      ...owned,
      is_owner: false,
      own_region: 'eu-laptop-ana',
      folders: [...owned.folders, { prefix: 'team/payments/keys/', primary_region: 'eu-office-1' }],
      members: [{ ...ana, roles: { 'team/payments/': 'reader', 'team/payments/keys/': 'writer' } }],
    };
    expect(teamPlaceOf(member, 'prod/db')).toBeNull();
    expect(teamPlaceOf(member, 'team/payments/stripe')?.readOnlyWhy).toMatch(/You are a reader of team\/payments\/; ask an admin/);
    const keys = teamPlaceOf(member, 'team/payments/keys/signing');
    expect(keys).toMatchObject({ prefix: 'team/payments/keys/', role: 'writer', readOnlyWhy: null });
    expect(teamPlaceOf(owned, 'team/payments/stripe')).toMatchObject({ role: null, readOnlyWhy: null });
    expect(teamPlaceOf(null, 'team/payments/stripe')).toBeNull();
  });
});

describe('Team: a vault in no team', () => {
  it('creates a team only with a name, and then shows it', async () => {
    route({
      region_identity: () => identity,
      team_show: () => null,
      team_create: (args) => ({ ...owned, name: String(args.name), members: [], folders: [] }),
      team_exposures: () => [],
      watch_team: () => null,
    });
    render(Team);
    expect(await screen.findByTestId('own-fingerprint')).toHaveTextContent(OWN_FP);
    await fireEvent.click(screen.getByTestId('create-team'));
    expect(await screen.findByTestId('team-name-error')).toHaveTextContent('Enter a name');
    expect(calls('team_create')).toHaveLength(0);

    await typeInto('Name of the new team', '  payments ');
    await fireEvent.click(screen.getByTestId('create-team'));
    expect(calls('team_create')).toEqual([{ name: 'payments' }]);
    expect(await screen.findByTestId('team-name')).toHaveTextContent('payments');
    expect(screen.getByTestId('team-owner')).toHaveTextContent('this vault');
    expect(screen.getByTestId('member-table')).toHaveTextContent('No member yet');
  });

  it("shows the engine's refusal of a create", async () => {
    route({
      region_identity: () => identity,
      team_show: () => null,
      team_create: () => {
        throw { code: 'invalid_argument', message: 'this vault is already in team "ops": leave it first' };
      },
    });
    render(Team);
    await fireEvent.input(await screen.findByLabelText('Name of the new team'), { target: { value: 'payments' } });
    await fireEvent.click(screen.getByTestId('create-team'));
    expect(await screen.findByTestId('create-error')).toHaveTextContent('already in team "ops"');
  });

  it('checks every join field at the field and sends nothing until all are right', async () => {
    route({ region_identity: () => identity, team_show: () => null });
    render(Team);
    await screen.findByTestId('team-join');
    await typeInto('Owner\'s region', 'EU Office');
    await typeInto("Where the owner's daemon listens", 'http://192.0.2.10:7443');
    await typeInto("The owner's fingerprint", 'ABCD-EFGH');
    await fireEvent.click(screen.getByTestId('join-checked'));
    await fireEvent.click(screen.getByTestId('join-submit'));
    expect(await screen.findByTestId('join-team-error')).toHaveTextContent('Enter a name');
    expect(screen.getByTestId('join-owner-error')).toHaveTextContent('lowercase');
    expect(screen.getByTestId('join-url-error')).toHaveTextContent('https://');
    expect(screen.getByTestId('join-fingerprint-error')).toHaveTextContent('52 letters');
    expect(screen.getByLabelText("Where the owner's daemon listens")).toHaveAttribute('aria-invalid', 'true');
    expect(calls('team_join')).toHaveLength(0);
  });

  it("joins only after the owner's fingerprint was checked, and editing it undoes the check", async () => {
    route({
      region_identity: () => identity,
      team_show: () => null,
      team_join: (args) => ({
        ...owned,
        name: String(args.team),
        owner_region: String(args.owner),
        own_region: 'eu-office-1',
        is_owner: false,
        revision: 0,
        members: [],
        folders: [],
      }),
    });
    render(Team);
    await screen.findByTestId('team-join');
    await typeInto('Team to join', 'payments');
    await typeInto("Owner's region", 'eu-hq-1');
    await typeInto("Where the owner's daemon listens", 'https://192.0.2.10:7443');
    // Its own fingerprint is not the owner's.
    await typeInto("The owner's fingerprint", OWN_FP);
    expect(screen.getByTestId('join-submit')).toBeDisabled();
    await fireEvent.click(screen.getByTestId('join-checked'));
    await fireEvent.click(screen.getByTestId('join-submit'));
    expect(await screen.findByTestId('join-fingerprint-error')).toHaveTextContent("this vault's own fingerprint");
    // A new fingerprint has not been compared yet.
    await typeInto("The owner's fingerprint", THEIR_FP);
    expect(screen.getByTestId('join-checked')).not.toBeChecked();
    expect(screen.getByTestId('join-submit')).toBeDisabled();
    expect(calls('team_join')).toHaveLength(0);
    await fireEvent.click(screen.getByTestId('join-checked'));
    await fireEvent.click(screen.getByTestId('join-submit'));
    expect(calls('team_join')).toEqual([
      { team: 'payments', owner: 'eu-hq-1', url: 'https://192.0.2.10:7443', fingerprint: THEIR_FP },
    ]);
    expect(await screen.findByTestId('team-owner')).toHaveTextContent('eu-hq-1');
    expect(screen.getByTestId('team-waiting')).toHaveTextContent('arrive from eu-hq-1');
    expect(screen.queryByTestId('team-invite')).toBeNull();
  });
});

describe('Team: a member', () => {
  it('shows roles without the owner\'s controls, and no link status it cannot know', async () => {
    const member: TeamInfo = { ...owned, is_owner: false, own_region: 'eu-laptop-ana' };
    route({ region_identity: () => ({ ...identity, region: 'eu-laptop-ana' }), team_show: () => member, watch_team: () => member });
    render(Team);
    const row = await screen.findByTestId('member-eu-laptop-ana');
    expect(row).toHaveTextContent('this vault');
    expect(row).toHaveTextContent('team/payments/');
    expect(within(row).queryByRole('combobox')).toBeNull();
    expect(within(row).getByTestId('member-backlog')).toHaveTextContent('—');
    expect(screen.queryByTestId('remove-us-laptop-bo')).toBeNull();
    expect(screen.queryByTestId('team-share')).toBeNull();
    expect(screen.queryByTestId('team-invite')).toBeNull();
    expect(screen.getByTestId('team-summary')).toHaveTextContent('Only the owner, eu-office-1');
  });
});

describe('Team: an admin who is not the owner', () => {
  // eu-laptop-ana administers team/ops/ and reads team/payments/; cy has only team/ops/.
  const cy: TeamMember = { ...bo, region: 'us-laptop-cy', roles: { 'team/ops/': 'reader' }, last_error: null };
  const dee: TeamMember = { ...bo, region: 'eu-laptop-dee', roles: { 'team/ops/': 'writer', 'team/payments/': 'reader' }, last_error: null };
  const admin: TeamInfo = {
    ...owned,
    is_owner: false,
    own_region: 'eu-laptop-ana',
    members: [{ ...ana, roles: { 'team/payments/': 'reader', 'team/ops/': 'admin' } }, cy, dee],
  };
  function asAdmin(extra: Record<string, Handler> = {}) {
    route({
      region_identity: () => ({ ...identity, region: 'eu-laptop-ana' }),
      team_show: () => admin,
      watch_team: () => admin,
      peer_listener_status: () => ({ enabled: false, address: '0.0.0.0:7443', default_address: '0.0.0.0:7443', listening: null, problem: null }),
      ...extra,
    });
  }

  it('changes roles only in the folders it administers, and says the owner makes each change', async () => {
    asAdmin({ team_share: () => ({ ...admin, members: [admin.members[0], { ...cy, roles: { 'team/ops/': 'writer' } }, dee] }) });
    render(Team);
    const cyRow = await screen.findByTestId('member-us-laptop-cy');
    expect(screen.getByTestId('team-admin')).toHaveTextContent('You are admin of team/ops/');
    expect(screen.getByTestId('team-admin')).toHaveTextContent('eu-office-1, the owner, makes each change');
    expect(screen.queryByTestId('team-read-only')).toBeNull();
    // dee's payments role is not its to change; its ops role is.
    const deeRow = screen.getByTestId('member-eu-laptop-dee');
    expect(within(deeRow).getByTestId('role-eu-laptop-dee-team/ops/')).toHaveValue('writer');
    expect(within(deeRow).queryByTestId('role-eu-laptop-dee-team/payments/')).toBeNull();
    expect([...deeRow.querySelectorAll('.chip')].map((c) => c.textContent?.trim())).toContain('reader');
    // Nor its own role.
    expect(screen.queryByTestId('role-eu-laptop-ana-team/ops/')).toBeNull();

    await fireEvent.change(within(cyRow).getByTestId('role-us-laptop-cy-team/ops/'), { target: { value: 'writer' } });
    expect(calls('team_share')).toEqual([{ prefix: 'team/ops/', member: 'us-laptop-cy', role: 'writer' }]);
    await waitFor(() => expect(screen.getByTestId('role-us-laptop-cy-team/ops/')).toHaveValue('writer'));
  });

  it("offers removal only of members whose folders it all administers, and shows the owner's refusal", async () => {
    asAdmin({
      team_remove: () => {
        throw { code: 'team_refused', message: 'eu-office-1 refused to remove us-laptop-cy: eu-laptop-ana is not admin of team/ops/' };
      },
    });
    render(Team);
    await screen.findByTestId('member-us-laptop-cy');
    expect(screen.queryByTestId('remove-eu-laptop-dee')).toBeNull();
    expect(screen.queryByTestId('remove-eu-laptop-ana')).toBeNull();
    await fireEvent.click(screen.getByTestId('remove-us-laptop-cy'));
    await fireEvent.click(screen.getByTestId('remove-confirm'));
    expect(calls('team_remove')).toEqual([{ member: 'us-laptop-cy', rotate: false }]);
    expect(await screen.findByTestId('remove-error')).toHaveTextContent('refused to remove us-laptop-cy');
  });

  it('removes through the owner, which rotates: no rotation is offered here', async () => {
    const exposures: Exposure[] = [
      { secret: 'team/ops/pager', member: 'us-laptop-cy', since: '2026-12-06T02:00:00Z', state: 'rotate_now' },
    ];
    asAdmin({ team_remove: () => ({ member: 'us-laptop-cy', exposures, rotated: [], rotation_failures: [] }) });
    render(Team);
    await fireEvent.click(await screen.findByTestId('remove-us-laptop-cy'));
    const dialog = screen.getByRole('dialog');
    await fireEvent.click(within(dialog).getByTestId('remove-confirm'));
    const result = await within(dialog).findByTestId('removal-result');
    expect(within(result).getByTestId('exposure-team/ops/pager')).toHaveTextContent('rotate now');
    expect(within(result).queryByTestId('rotate-team/ops/pager')).toBeNull();
    expect(within(dialog).getByTestId('removal-by-owner')).toHaveTextContent('eu-office-1, the owner');
  });

  it('shares and invites, its folders offered in the form', async () => {
    asAdmin({ team_share: () => admin, team_invite: () => admin });
    render(Team);
    const form = await screen.findByTestId('team-share');
    expect(within(form).getByTestId('share-admin-hint')).toHaveTextContent('As an admin you share team/ops/');
    const options = [...form.querySelectorAll('datalist option')].map((o) => (o as HTMLOptionElement).value);
    expect(options).toEqual(['team/ops/']);
    await typeInto('Folder', 'team/ops/');
    await fireEvent.change(screen.getByTestId('share-member'), { target: { value: 'eu-laptop-dee' } });
    await fireEvent.change(screen.getByTestId('share-role'), { target: { value: 'admin' } });
    await fireEvent.click(screen.getByTestId('share-submit'));
    expect(calls('team_share')).toEqual([{ prefix: 'team/ops/', member: 'eu-laptop-dee', role: 'admin' }]);

    await typeInto('Its region name', 'us-laptop-eve');
    await typeInto('Where its daemon listens', 'https://192.0.2.12:7443');
    await typeInto('Its fingerprint', THEIR_FP);
    await fireEvent.click(screen.getByTestId('invite-checked'));
    await fireEvent.click(screen.getByTestId('invite-submit'));
    expect(calls('team_invite')).toEqual([{ member: 'us-laptop-eve', url: 'https://192.0.2.12:7443', fingerprint: THEIR_FP }]);
    // The owner's exposures are not an admin's to list.
    expect(screen.queryByTestId('exposures')).toBeNull();
  });

  it('a writer sees the team read-only, with who can change it', async () => {
    const writer: TeamInfo = { ...admin, own_region: 'eu-laptop-dee' };
    route({
      region_identity: () => ({ ...identity, region: 'eu-laptop-dee' }),
      team_show: () => writer,
      watch_team: () => writer,
      peer_listener_status: () => ({ enabled: false, address: '0.0.0.0:7443', default_address: '0.0.0.0:7443', listening: null, problem: null }),
    });
    render(Team);
    const line = await screen.findByTestId('team-read-only');
    expect(line).toHaveTextContent('Only the owner, eu-office-1, and its admin eu-laptop-ana (team/ops/), invite, share and remove members');
    expect(screen.queryByRole('combobox', { name: /Role of/ })).toBeNull();
    expect(screen.queryByTestId('team-share')).toBeNull();
    expect(screen.queryByTestId('team-invite')).toBeNull();
    expect(screen.queryByText('Remove…')).toBeNull();
  });
});

describe('Team: receiving from peers', () => {
  const off = { enabled: false, address: '0.0.0.0:7443', default_address: '0.0.0.0:7443', listening: null, problem: null };
  it('turns listening on at an address, and shows a refused address at the field with the toggle back off', async () => {
    let refuse = true;
    route({
      region_identity: () => identity,
      team_show: () => null,
      peer_listener_status: () => off,
      configure_peer_listener: (args) => {
        if (refuse) throw { code: 'invalid_argument', field: 'address', message: 'cannot listen on 127.0.0.1:1: permission denied' };
        return { ...off, enabled: args.enabled, address: args.address, listening: args.address };
      },
    });
    render(Team);
    const toggle = await screen.findByTestId('peer-listener-enabled');
    expect(screen.getByTestId('peer-listener-status')).toHaveTextContent('Off');
    await fireEvent.input(screen.getByTestId('peer-listener-address'), { target: { value: '127.0.0.1:1' } });
    await fireEvent.click(toggle);
    expect(await screen.findByTestId('peer-listener-error')).toHaveTextContent('permission denied');
    expect(toggle).not.toBeChecked();
    refuse = false;
    await fireEvent.input(screen.getByTestId('peer-listener-address'), { target: { value: '127.0.0.1:7443' } });
    await fireEvent.click(toggle);
    expect(calls('configure_peer_listener').at(-1)).toEqual({ enabled: true, address: '127.0.0.1:7443' });
    await waitFor(() => expect(screen.getByTestId('peer-listener-status')).toHaveTextContent('https://127.0.0.1:7443'));
  });
});

describe('Team: the owner', () => {
  function owner(extra: Record<string, Handler> = {}) {
    route({
      region_identity: () => identity,
      team_show: () => owned,
      watch_team: () => owned,
      team_exposures: () => [],
      ...extra,
    });
  }

  it('lists members with their roles per folder, last contact, backlog and last error', async () => {
    owner();
    render(Team);
    const ana = await screen.findByTestId('member-eu-laptop-ana');
    expect(within(ana).getByTestId('role-eu-laptop-ana-team/payments/')).toHaveValue('reader');
    expect(within(ana).getByTestId('role-eu-laptop-ana-team/ops/')).toHaveValue('writer');
    expect(within(ana).getByTestId('member-backlog')).toHaveTextContent('3 pending');
    const bo = screen.getByTestId('member-us-laptop-bo');
    expect(bo).toHaveTextContent('nothing shared');
    expect(within(bo).getByTestId('member-error')).toHaveTextContent('cannot reach region "us-laptop-bo"');
  });

  it("names a folder's primary when it is not the owner, and a move in progress", async () => {
    owner({
      team_show: () => ({
        ...owned,
        folders: [
          { prefix: 'team/payments/', primary_region: 'eu-laptop-ana', handover_from: 'eu-office-1' },
          { prefix: 'team/ops/', primary_region: 'eu-laptop-ana' },
        ],
      }),
    });
    render(Team);
    expect(await screen.findByTestId('team-folder-primary-team/payments/')).toHaveTextContent(
      'moving from eu-office-1 to eu-laptop-ana',
    );
    expect(screen.getByTestId('team-folder-primary-team/ops/')).toHaveTextContent('primary eu-laptop-ana');
  });

  it('invites a member only after its fingerprint was checked', async () => {
    owner({ team_invite: () => owned });
    render(Team);
    await screen.findByTestId('team-invite');
    await typeInto('Its region name', 'us-laptop-cy');
    await typeInto('Where its daemon listens', 'https://192.0.2.11:7443');
    await typeInto('Its fingerprint', THEIR_FP);
    expect(screen.getByTestId('invite-submit')).toBeDisabled();
    await fireEvent.click(screen.getByTestId('invite-checked'));
    await fireEvent.click(screen.getByTestId('invite-submit'));
    expect(calls('team_invite')).toEqual([{ member: 'us-laptop-cy', url: 'https://192.0.2.11:7443', fingerprint: THEIR_FP }]);
    await waitFor(() => expect(screen.getByLabelText('Its region name')).toHaveValue(''));
    expect(screen.getByTestId('invite-checked')).not.toBeChecked();
  });

  it('changes a role in the members table, and shows a refusal with the role as it was', async () => {
    const promoted: TeamInfo = {
      ...owned,
      members: [{ ...ana, roles: { ...ana.roles, 'team/payments/': 'writer' } }, bo],
    };
    let refuse = false;
    owner({
      team_share: () => {
        if (refuse) throw { code: 'invalid_argument', message: 'eu-laptop-ana cannot be admin of team/ops/: an older engine' };
        return promoted;
      },
    });
    render(Team);
    const select = await screen.findByTestId('role-eu-laptop-ana-team/payments/');
    await fireEvent.change(select, { target: { value: 'writer' } });
    expect(calls('team_share')).toEqual([{ prefix: 'team/payments/', member: 'eu-laptop-ana', role: 'writer' }]);
    await waitFor(() => expect(screen.getByTestId('role-eu-laptop-ana-team/payments/')).toHaveValue('writer'));

    refuse = true;
    const ops = screen.getByTestId('role-eu-laptop-ana-team/ops/');
    await fireEvent.change(ops, { target: { value: 'admin' } });
    expect(await screen.findByTestId('member-message')).toHaveTextContent('cannot be admin of team/ops/');
    expect(screen.getByTestId('role-eu-laptop-ana-team/ops/')).toHaveValue('writer');
  });

  it('shares a folder from the form, which checks the prefix first', async () => {
    owner({ team_share: () => owned });
    render(Team);
    await screen.findByTestId('team-share');
    await typeInto('Folder', 'team/infra');
    await fireEvent.change(screen.getByTestId('share-member'), { target: { value: 'us-laptop-bo' } });
    await fireEvent.change(screen.getByTestId('share-role'), { target: { value: 'admin' } });
    await fireEvent.click(screen.getByTestId('share-submit'));
    expect(await screen.findByTestId('share-prefix-error')).toHaveTextContent("ends with '/'");
    expect(calls('team_share')).toHaveLength(0);
    await typeInto('Folder', 'team/infra/');
    await fireEvent.click(screen.getByTestId('share-submit'));
    expect(calls('team_share')).toEqual([{ prefix: 'team/infra/', member: 'us-laptop-bo', role: 'admin' }]);
  });

  it('removes a member after confirming, and lists what it could read with its state', async () => {
    const exposures: Exposure[] = [
      { secret: 'team/payments/stripe', member: 'eu-laptop-ana', since: '2026-12-06T02:00:00Z', state: 'rotate_now' },
      { secret: 'team/ops/pager', member: 'eu-laptop-ana', since: '2026-12-06T02:00:00Z', state: 'exposed' },
    ];
    const removal: TeamRemoval = { member: 'eu-laptop-ana', exposures, rotated: [], rotation_failures: [] };
    let rotated = false;
    let removed = false;
    owner({
      team_remove: () => {
        removed = true;
        return removal;
      },
      team_show: () => (removed ? { ...owned, members: [bo] } : owned),
      rotate_secret: () => {
        rotated = true;
        return { rotated: true };
      },
      team_exposures: () =>
        rotated ? exposures.map((x) => (x.state === 'rotate_now' ? { ...x, state: 'rotated' } : x)) : exposures,
    });
    render(Team);
    await fireEvent.click(await screen.findByTestId('remove-eu-laptop-ana'));
    const dialog = screen.getByRole('dialog');
    expect(within(dialog).getByTestId('remove-confirm-step')).toHaveTextContent('team/payments/');
    expect(within(dialog).getByTestId('remove-confirm-step')).toHaveTextContent('team/ops/');
    expect(calls('team_remove')).toHaveLength(0);
    await fireEvent.click(within(dialog).getByTestId('remove-rotate'));
    await fireEvent.click(within(dialog).getByTestId('remove-confirm'));
    expect(calls('team_remove')).toEqual([{ member: 'eu-laptop-ana', rotate: true }]);

    const result = await within(dialog).findByTestId('removal-result');
    expect(within(result).getByTestId('removal-summary')).toHaveTextContent('2 secrets exposed');
    const stripe = within(result).getByTestId('exposure-team/payments/stripe');
    expect(stripe).toHaveTextContent('rotate now');
    const pager = within(result).getByTestId('exposure-team/ops/pager');
    expect(pager).toHaveTextContent('exposed');
    expect(within(pager).queryByRole('button', { name: /Rotate now/ })).toBeNull();

    await fireEvent.click(within(stripe).getByTestId('rotate-team/payments/stripe'));
    expect(calls('rotate_secret')).toEqual([{ name: 'team/payments/stripe' }]);
    await waitFor(() => expect(within(dialog).getByTestId('exposure-team/payments/stripe')).toHaveTextContent('rotated'));
    // The member is gone from the table behind the dialog.
    await waitFor(() => expect(screen.queryByTestId('member-eu-laptop-ana')).toBeNull());
  });

  it('says why a removal was refused, and removes nothing', async () => {
    owner({
      team_remove: () => {
        throw { code: 'invalid_argument', message: 'only the owner removes members' };
      },
    });
    render(Team);
    await fireEvent.click(await screen.findByTestId('remove-us-laptop-bo'));
    await fireEvent.click(screen.getByTestId('remove-confirm'));
    expect(await screen.findByTestId('remove-error')).toHaveTextContent('only the owner removes members');
    expect(screen.queryByTestId('removal-result')).toBeNull();
    expect(calls('team_remove')).toEqual([{ member: 'us-laptop-bo', rotate: false }]);
  });
});

describe('Secrets under a shared folder', () => {
  const reader: TeamInfo = {
    ...owned,
    is_owner: false,
    own_region: 'eu-laptop-ana',
    members: [ana],
  };
  const secret = (name: string) => ({
    id: `id-${name}`,
    name,
    description: '',
    tags: {},
    changed_at: '2026-12-01T10:00:00Z',
    last_accessed: null,
    deleted_at: null,
    purge_at: null,
  });

  it('are marked "team" in the list, read-only where this vault is a reader', async () => {
    app.selected = null;
    route({
      team_show: () => reader,
      list_secrets: () => ({
        items: [secret('prod/db'), secret('team/payments/stripe'), secret('team/ops/pager')],
        next_token: null,
      }),
    });
    render(Secrets, { deleted: false });
    await waitFor(() => expect(screen.getAllByTestId('team-badge')).toHaveLength(2));
    const rows = screen.getAllByTestId('secret-row');
    const byName = (name: string) => rows.find((r) => r.dataset.name === name)!;
    expect(within(byName('prod/db')).queryByTestId('team-badge')).toBeNull();
    const stripe = within(byName('team/payments/stripe')).getByTestId('team-badge');
    expect(stripe).toHaveTextContent('read-only');
    expect(stripe.title).toMatch(/You are a reader of team\/payments\/; ask an admin/);
    expect(stripe.title).toMatch(/coffer team share team\/payments\/ --member eu-laptop-ana --role writer/);
    expect(within(byName('team/ops/pager')).getByTestId('team-badge')).toHaveTextContent(/^team$/);
  });

  const description = (name: string): SecretDescription => ({
    id: 'id',
    name,
    description: '',
    key_id: 'k1',
    key_aliases: [],
    tags: {},
    created_at: '2026-12-01T10:00:00Z',
    changed_at: '2026-12-01T10:00:00Z',
    last_accessed: null,
    deleted_at: null,
    purge_at: null,
    versions: [{ version_id: 'v1', created_at: '2026-12-01T10:00:00Z', labels: ['CURRENT'], key_id: 'k1', key_version: 1 }],
    replication: { primary_region: 'eu-office-1', last_applied: '2026-12-01T10:00:00Z' },
  });

  it("disable a reader's edit controls and say why", async () => {
    setTeam(reader);
    route({ describe_secret: (args) => description(String(args.name)), list_keys: () => [] });
    render(SecretDetail, { name: 'team/payments/stripe' });
    const banner = await screen.findByTestId('team-banner');
    expect(banner).toHaveTextContent('You are a reader of team/payments/; ask an admin');
    expect(banner).toHaveTextContent('Shared in team payments from eu-office-1, read-only here.');
    expect(screen.queryByTestId('replica-banner')).toBeNull();
    for (const id of ['new-version', 'edit-secret', 'delete-secret']) {
      expect(screen.getByTestId(id)).toBeDisabled();
      expect(screen.getByTestId(id).title).toMatch(/reader of team\/payments\//);
    }
  });

  it("let a writer put a new version (sent to the primary), the rest being the primary's", async () => {
    setTeam(reader);
    route({ describe_secret: (args) => description(String(args.name)), list_keys: () => [] });
    render(SecretDetail, { name: 'team/ops/pager' });
    expect(await screen.findByTestId('team-banner')).toHaveTextContent('You are a writer');
    expect(screen.getByTestId('new-version')).toBeEnabled();
    expect(screen.getByTestId('edit-secret')).toBeDisabled();
    expect(screen.getByTestId('edit-secret').title).toMatch(/eu-office-1, the primary of team\/ops\//);
  });
});
