import { describe, expect, it, vi, beforeEach } from 'vitest';
import { render, screen, fireEvent, waitFor } from '@testing-library/svelte';

const invoke = vi.fn();
vi.mock('@tauri-apps/api/core', () => ({ invoke: (...args: unknown[]) => invoke(...args) }));
vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn(async () => () => {}) }));

import SecretDetail from '../src/screens/SecretDetail.svelte';
import AccessKeys from '../src/screens/AccessKeys.svelte';
import AwsApi from '../src/screens/settings/AwsApi.svelte';
import type { AccessKeyInfo, AwsApiStatus, PeerInfo, SecretDescription } from '../src/lib/api';

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

function peer(name: string): PeerInfo {
  return {
    name,
    url: `https://127.0.0.1:74${name.length}`,
    fingerprint: 'AAAA',
    added_at: '2026-12-01T10:00:00Z',
    last_contact: null,
    key_exchange: null,
    last_error: null,
    backlog: 0,
  };
}

/** Routes IPC commands to `handlers`; an unexpected command fails the test. */
function route(handlers: Record<string, (args: Record<string, unknown>) => unknown>) {
  invoke.mockImplementation(async (command: string, args: Record<string, unknown>) => {
    const handler = handlers[command];
    if (!handler) throw new Error(`unexpected ${command}`);
    return handler(args ?? {});
  });
}

describe('Secret detail: replication', () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  it('on a primary lists each region with its status and failure message, and removes one after confirmation', async () => {
    let secret: SecretDescription = {
      ...base,
      replication: {
        regions: [
          { region: 'us-lab-1', status: 'InSync', last_synced: '2026-12-02T08:00:00Z', pending: 0 },
          { region: 'ap-lab-2', key: 'alias/ap', status: 'Failed', message: 'no key "alias/ap" in ap-lab-2', last_synced: null, pending: 2 },
        ],
      },
    };
    route({
      describe_secret: () => secret,
      list_keys: () => [],
      list_peers: () => [peer('us-lab-1'), peer('ap-lab-2')],
      remove_secret_region: () => {
        secret = { ...secret, replication: { regions: secret.replication!.regions!.slice(0, 1) } };
        return null;
      },
    });
    render(SecretDetail, { name: 'prod/db' });
    await fireEvent.click(await screen.findByTestId('tab-replication'));
    const failed = await screen.findByTestId('region-ap-lab-2');
    expect(failed).toHaveTextContent('Failed');
    expect(failed).toHaveTextContent('no key "alias/ap" in ap-lab-2');
    expect(failed).toHaveTextContent('2 changes pending');
    expect(failed).toHaveTextContent('alias/ap');
    expect(screen.getByTestId('region-us-lab-1')).toHaveTextContent('In sync');
    // Every paired region already has it: nothing left to offer.
    await waitFor(() => expect(screen.getByTestId('replicate-open')).toBeDisabled());

    const removeButtons = screen.getAllByTestId('remove-region');
    await fireEvent.click(removeButtons[1]!);
    expect(invoke).not.toHaveBeenCalledWith('remove_secret_region', expect.anything());
    await fireEvent.click(await screen.findByTestId('remove-region-confirm'));
    expect(invoke).toHaveBeenCalledWith('remove_secret_region', { name: 'prod/db', region: 'ap-lab-2' });
    await waitFor(() => expect(screen.queryByTestId('region-ap-lab-2')).toBeNull());
  });

  it('offers only paired regions the secret is not in, passes the optional key, and shows a refusal', async () => {
    route({
      describe_secret: () => ({ ...base, replication: { regions: [{ region: 'us-lab-1', status: 'InProgress', last_synced: null, pending: 1 }] } }),
      list_keys: () => [],
      list_peers: () => [peer('us-lab-1'), peer('eu-lab-3')],
      replicate_secret: () => {
        throw { code: 'invalid_argument', message: 'key reference is not valid: use a key id, alias/NAME or ARN', field: 'key reference' };
      },
    });
    render(SecretDetail, { name: 'prod/db' });
    await fireEvent.click(await screen.findByTestId('tab-replication'));
    expect(await screen.findByTestId('region-us-lab-1')).toHaveTextContent('In progress');
    await waitFor(() => expect(screen.getByTestId('replicate-open')).toBeEnabled());
    await fireEvent.click(screen.getByTestId('replicate-open'));
    const options = Array.from((screen.getByTestId('replica-region') as HTMLSelectElement).options).map((o) => o.value);
    expect(options).toEqual(['eu-lab-3']);
    await fireEvent.input(screen.getByTestId('replica-key'), { target: { value: ' bad key ' } });
    await fireEvent.click(screen.getByTestId('replicate-confirm'));
    expect(invoke).toHaveBeenCalledWith('replicate_secret', { name: 'prod/db', region: 'eu-lab-3', key: 'bad key' });
    expect(await screen.findByTestId('replicate-error')).toHaveTextContent('use a key id, alias/NAME or ARN');
  });

  it('on a replica disables every edit control, says why, and promotes only after a confirmation', async () => {
    let secret: SecretDescription = {
      ...base,
      replication: { primary_region: 'eu-home-1', last_applied: '2026-12-02T08:00:00Z' },
    };
    route({
      describe_secret: () => secret,
      list_keys: () => [],
      list_peers: () => [peer('eu-home-1')],
      promote_secret: () => {
        secret = { ...base, replication: null };
        return null;
      },
    });
    render(SecretDetail, { name: 'prod/db' });
    expect(await screen.findByTestId('replica-banner')).toHaveTextContent('Read-only replica of region eu-home-1');
    for (const id of ['new-version', 'edit-secret', 'delete-secret']) {
      const button = screen.getByTestId(id);
      expect(button).toBeDisabled();
      expect(button.getAttribute('title')).toContain('eu-home-1');
    }
    await fireEvent.click(screen.getByTestId('tab-replication'));
    expect(await screen.findByTestId('replica-of')).toHaveTextContent('Read-only replica of region eu-home-1');
    await fireEvent.click(screen.getByTestId('promote'));
    expect(screen.getByRole('dialog')).toHaveTextContent('stops following eu-home-1');
    expect(invoke).not.toHaveBeenCalledWith('promote_secret', expect.anything());
    await fireEvent.click(screen.getByTestId('promote-confirm'));
    expect(invoke).toHaveBeenCalledWith('promote_secret', { name: 'prod/db' });
    await waitFor(() => expect(screen.getByTestId('edit-secret')).toBeEnabled());
    expect(screen.queryByTestId('replica-banner')).toBeNull();
  });
});

const awsOn: AwsApiStatus = {
  enabled: true,
  address: '127.0.0.1:4566',
  default_address: '127.0.0.1:4566',
  listening: '127.0.0.1:4566',
  problem: null,
  account_id: '000000000000',
};

describe('Access keys', () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  const ci: AccessKeyInfo = {
    id: 'AKIAEXAMPLEEXAMPLE12',
    name: 'ci',
    enabled: true,
    policy: '{"Statement":[]}',
    created_at: '2026-12-01T10:00:00Z',
    last_used_at: '2026-12-02T09:00:00Z',
    last_used_for: 'secretsmanager:GetSecretValue',
  };

  it('shows an engine policy error at the form, then the new secret once', async () => {
    const keys: AccessKeyInfo[] = [ci];
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    let attempts = 0;
    route({
      list_access_keys: () => keys,
      aws_api_status: () => awsOn,
      create_access_key: (args) => {
        attempts += 1;
        if (attempts === 1) throw { code: 'invalid_argument', message: 'policy is not valid: statement 1: "Effect" must be "Allow" or "Deny"', field: 'policy' };
        const key = { ...ci, id: 'AKIANEWNEWNEWNEWNEW1', name: args.name as string, last_used_at: null, last_used_for: null };
        keys.push(key);
        return { key, secret };
      },
    });
    render(AccessKeys);
    const row = await screen.findByTestId('access-key-ci');
    expect(row).toHaveTextContent('AKIAEXAMPLEEXAMPLE12');
    expect(row).toHaveTextContent('Enabled');
    expect(row).toHaveTextContent('secretsmanager:GetSecretValue');
    expect(await screen.findByTestId('aws-api-state')).toHaveTextContent('http://127.0.0.1:4566');

    await fireEvent.click(screen.getByTestId('access-key-new'));
    await fireEvent.input(screen.getByTestId('access-key-name'), { target: { value: 'deploy' } });
    await fireEvent.input(screen.getByTestId('access-key-policy-editor'), { target: { value: '{"Statement":[{"Effect":"Maybe"}]}' } });
    await fireEvent.click(screen.getByTestId('access-key-create'));
    expect(await screen.findByTestId('access-key-error')).toHaveTextContent('"Effect" must be "Allow" or "Deny"');
    expect(invoke).toHaveBeenCalledWith('create_access_key', { name: 'deploy', policy: '{"Statement":[{"Effect":"Maybe"}]}' });

    await fireEvent.click(screen.getByTestId('access-key-create'));
    expect(await screen.findByTestId('created-key-secret')).toHaveTextContent(secret);
    expect(screen.getByTestId('created-key-id')).toHaveTextContent('AKIANEWNEWNEWNEWNEW1');
    await fireEvent.click(screen.getByTestId('created-done'));
    // Gone from the page once dismissed: the list never carries it.
    await waitFor(() => expect(screen.queryByTestId('created-key-secret')).toBeNull());
    expect(document.body.textContent).not.toContain(secret);
    expect(await screen.findByTestId('access-key-deploy')).toBeInTheDocument();
  });

  it('disables a key, and deletes one only after a confirmation', async () => {
    let keys: AccessKeyInfo[] = [ci];
    route({
      list_access_keys: () => keys,
      aws_api_status: () => ({ ...awsOn, enabled: false, listening: null }),
      set_access_key_enabled: (args) => {
        keys = keys.map((k) => ({ ...k, enabled: args.enabled as boolean }));
        return keys[0];
      },
      delete_access_key: () => {
        keys = [];
        return null;
      },
    });
    render(AccessKeys);
    expect(await screen.findByTestId('aws-api-state')).toHaveTextContent('is off');
    await screen.findByTestId('access-key-ci');
    await fireEvent.click(screen.getByTestId('access-key-toggle'));
    expect(invoke).toHaveBeenCalledWith('set_access_key_enabled', { key: ci.id, enabled: false });
    await waitFor(() => expect(screen.getByTestId('access-key-state')).toHaveTextContent('Disabled'));
    await fireEvent.click(screen.getByTestId('access-key-delete'));
    expect(invoke).not.toHaveBeenCalledWith('delete_access_key', expect.anything());
    await fireEvent.click(await screen.findByTestId('access-key-delete-confirm'));
    expect(invoke).toHaveBeenCalledWith('delete_access_key', { key: ci.id });
    await waitFor(() => expect(screen.queryByTestId('access-key-ci')).toBeNull());
  });
});

describe('Settings: AWS-compatible API', () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  it('turns the API on, keeps the toggle off when the address is refused, and checks the account id', async () => {
    const off = { ...awsOn, enabled: false, listening: null };
    route({
      aws_api_status: () => off,
      configure_aws_api: (args) => {
        if (args.address === '0.0.0.0:4566')
          throw { code: 'invalid_argument', field: 'address', message: 'the AWS-compatible API listens only on a loopback address (127.0.0.1 or [::1])' };
        return { ...awsOn, address: args.address as string, listening: args.address as string };
      },
      set_aws_account_id: () => {
        throw { code: 'invalid_argument', field: 'aws.account-id', message: 'aws.account-id is not valid: an AWS account id is exactly 12 digits' };
      },
    });
    render(AwsApi);
    const toggle = (await screen.findByTestId('aws-api-enabled')) as HTMLInputElement;
    expect(toggle.checked).toBe(false);
    expect(screen.getByTestId('aws-api-status')).toHaveTextContent('Off');

    await fireEvent.input(screen.getByTestId('aws-api-address'), { target: { value: '0.0.0.0:4566' } });
    await fireEvent.click(toggle);
    expect(await screen.findByTestId('aws-api-error')).toHaveTextContent('loopback');
    expect(toggle.checked).toBe(false);

    await fireEvent.input(screen.getByTestId('aws-api-address'), { target: { value: '127.0.0.1:14566' } });
    await fireEvent.click(toggle);
    expect(invoke).toHaveBeenCalledWith('configure_aws_api', { enabled: true, address: '127.0.0.1:14566' });
    await waitFor(() => expect(screen.getByTestId('aws-api-status')).toHaveTextContent('http://127.0.0.1:14566'));
    expect(toggle.checked).toBe(true);

    await fireEvent.input(screen.getByTestId('aws-account-id'), { target: { value: '12345' } });
    await fireEvent.click(screen.getByTestId('aws-account-save'));
    expect(await screen.findByTestId('aws-account-error')).toHaveTextContent('exactly 12 digits');
  });
});

import Regions from '../src/screens/Regions.svelte';

describe('Regions: backlog', () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  it('shows how many replicated changes each peer has not acknowledged', async () => {
    route({
      region_identity: () => ({ region: 'eu-home-1', fingerprint: 'WPIO', vault_id: 'v' }),
      list_peers: () => [{ ...peer('us-lab-1'), backlog: 3 }, peer('ap-lab-2')],
    });
    render(Regions);
    expect(await screen.findByTestId('peer-us-lab-1')).toHaveTextContent('3 pending');
    expect(screen.getByTestId('peer-ap-lab-2')).toHaveTextContent('none');
  });
});
