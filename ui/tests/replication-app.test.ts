// The app replicating by itself (a region's status watched until it settles) and bundles
// for regions that are never connected (export, import, import the acknowledgement).
import { describe, expect, it, vi, beforeEach } from 'vitest';
import { render, screen, fireEvent, waitFor } from '@testing-library/svelte';

const invoke = vi.fn();
vi.mock('@tauri-apps/api/core', () => ({ invoke: (...args: unknown[]) => invoke(...args) }));
vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn(async () => () => {}) }));

import SecretDetail from '../src/screens/SecretDetail.svelte';
import Regions from '../src/screens/Regions.svelte';
import type { PeerInfo, SecretDescription, SecretReplication } from '../src/lib/api';

const base: SecretDescription = {
  id: '0193a6f1-0000-7000-8000-000000000001',
  name: 'prod/db',
  description: 'Main database',
  key_id: 'k1',
  key_aliases: [],
  tags: {},
  created_at: '2026-12-01T10:00:00Z',
  changed_at: '2026-12-01T10:00:00Z',
  last_accessed: null,
  deleted_at: null,
  purge_at: null,
  versions: [{ version_id: 'v1', created_at: '2026-12-01T10:00:00Z', labels: ['CURRENT'], key_id: 'k1', key_version: 1 }],
};

const lab: PeerInfo = {
  name: 'us-lab-1',
  url: 'https://127.0.0.1:7443',
  fingerprint: 'AAAA',
  added_at: '2026-12-01T10:00:00Z',
  last_contact: null,
  key_exchange: null,
  last_error: null,
  backlog: 2,
};

function route(handlers: Record<string, (args: Record<string, unknown>) => unknown>) {
  invoke.mockImplementation(async (command: string, args: Record<string, unknown>) => {
    const handler = handlers[command];
    if (!handler) throw new Error(`unexpected ${command}`);
    return handler(args ?? {});
  });
}

function refused(message: string) {
  return () => {
    throw { code: 'invalid', message, field: 'bundle' };
  };
}

describe('Replication tab: the app replicating by itself', () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  it('watches a region until it is in sync, without counting as activity, then stops watching', async () => {
    const inProgress: SecretReplication = {
      regions: [{ region: 'us-lab-1', status: 'InProgress', last_synced: null, pending: 1 }],
    };
    const inSync: SecretReplication = {
      regions: [{ region: 'us-lab-1', status: 'InSync', last_synced: '2026-12-02T08:00:00Z', pending: 0 }],
    };
    const watched: string[] = [];
    route({
      describe_secret: () => ({ ...base, replication: inProgress }),
      list_keys: () => [],
      list_peers: () => [lab],
      watch_secret_replication: (args) => {
        watched.push(String(args.name));
        return inSync;
      },
    });
    render(SecretDetail, { name: 'prod/db' });
    await fireEvent.click(await screen.findByTestId('tab-replication'));
    const row = await screen.findByTestId('region-us-lab-1');
    expect(row).toHaveTextContent('In progress');
    expect(row).toHaveTextContent('1 change pending');
    await waitFor(() => expect(screen.getByTestId('region-us-lab-1')).toHaveTextContent('In sync'), { timeout: 4000 });
    expect(screen.getByTestId('region-us-lab-1')).toHaveTextContent('nothing pending');
    expect(watched).toEqual(['prod/db']);
    // In sync: nothing more to watch.
    await new Promise((resolve) => setTimeout(resolve, 1800));
    expect(watched).toHaveLength(1);
    expect(invoke.mock.calls.filter(([c]) => c === 'describe_secret')).toHaveLength(1);
  });
});

describe('Regions: bundles for regions that are never connected', () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  const identity = () => ({ region: 'eu-home-1', fingerprint: 'WPIO', vault_id: 'v' });

  it('says why the last contact with a peer failed, in the row', async () => {
    const unreachable = { ...lab, last_error: 'cannot reach region "us-lab-1" at https://127.0.0.1:7443: connection refused' };
    route({ region_identity: identity, list_peers: () => [unreachable], watch_peers: () => [unreachable] });
    render(Regions);
    const row = await screen.findByTestId('peer-us-lab-1');
    expect(row).toHaveTextContent('failed');
    expect(row).toHaveTextContent('connection refused');
  });

  it('exports a bundle for a peer and says where it went and what follows', async () => {
    route({
      region_identity: identity,
      list_peers: () => [lab],
      watch_peers: () => [lab],
      export_region_bundle: (args) => ({
        region: args.name,
        entries: 2,
        after: 0,
        last_seq: 7,
        remaining: 0,
        path: '/media/usb/coffer-bundle-us-lab-1.json',
      }),
    });
    render(Regions);
    await screen.findByTestId('peer-us-lab-1');
    await waitFor(() => expect(screen.getByTestId('export-bundle')).toBeEnabled());
    await fireEvent.click(screen.getByTestId('export-bundle'));
    const message = await screen.findByTestId('bundle-message');
    expect(message).toHaveTextContent('Wrote 2 changes for us-lab-1 to /media/usb/coffer-bundle-us-lab-1.json');
    expect(invoke).toHaveBeenCalledWith('export_region_bundle', { name: 'us-lab-1' });
  });

  it('shows nothing when the file chooser is cancelled', async () => {
    route({
      region_identity: identity,
      list_peers: () => [lab],
      watch_peers: () => [lab],
      import_region_bundle: () => null,
    });
    render(Regions);
    await fireEvent.click(await screen.findByTestId('import-bundle'));
    await waitFor(() => expect(screen.getByTestId('import-bundle')).toBeEnabled());
    expect(screen.queryByTestId('bundle-message')).toBeNull();
    expect(screen.queryByTestId('bundle-error')).toBeNull();
  });

  it('imports a bundle and names the acknowledgement to carry back', async () => {
    route({
      region_identity: identity,
      list_peers: () => [],
      watch_peers: () => [],
      import_region_bundle: () => ({
        region: 'eu-home-1',
        applied: 3,
        skipped: 1,
        applied_upto: 9,
        not_applied: [],
        ack_path: '/media/usb/b.json.ack',
      }),
    });
    render(Regions);
    await fireEvent.click(await screen.findByTestId('import-bundle'));
    const message = await screen.findByTestId('bundle-message');
    expect(message).toHaveTextContent('Applied 3 changes from eu-home-1 (1 already here)');
    expect(message).toHaveTextContent('/media/usb/b.json.ack');
  });

  it('shows why a wrong file is refused, and clears it on the next success', async () => {
    let ack: () => unknown = refused('this file is not a Coffer acknowledgement: pick the .ack file the region wrote');
    route({
      region_identity: identity,
      list_peers: () => [lab],
      watch_peers: () => [lab],
      import_region_ack: () => ack(),
    });
    render(Regions);
    await fireEvent.click(await screen.findByTestId('import-ack'));
    expect(await screen.findByTestId('bundle-error')).toHaveTextContent('not a Coffer acknowledgement');
    expect(screen.queryByTestId('bundle-message')).toBeNull();

    ack = () => ({ region: 'us-lab-1', acked: 7, backlog: 0 });
    await fireEvent.click(screen.getByTestId('import-ack'));
    expect(await screen.findByTestId('bundle-message')).toHaveTextContent('us-lab-1 acknowledged changes up to 7; it has everything.');
    expect(screen.queryByTestId('bundle-error')).toBeNull();
  });
});
