import { describe, expect, it, vi, beforeEach, afterEach } from 'vitest';
import { render, screen, fireEvent } from '@testing-library/svelte';

const invoke = vi.fn();
vi.mock('@tauri-apps/api/core', () => ({ invoke: (...args: unknown[]) => invoke(...args) }));
vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn(async () => () => {}) }));

import TpmBadge from '../src/components/TpmBadge.svelte';
import Unlock from '../src/screens/Unlock.svelte';
import SecretEditor from '../src/screens/SecretEditor.svelte';
import Audit from '../src/screens/Audit.svelte';
import type { AppStatus, TpmStatus } from '../src/lib/api';
import { app } from '../src/lib/state.svelte';

const info = {
  manufacturer: 'IBM ',
  vendor: 'SW   TPM',
  firmware_version: '0.0.0.0',
  is_software: true,
  lockout_counter: 0,
  max_auth_fail: 3,
  lockout_interval_secs: 1000,
  lockout_recovery_secs: 1000,
  in_lockout: false,
};
const softTpm: TpmStatus = {
  source: 'software',
  tcti: 'swtpm:host=127.0.0.1,port=2321',
  info,
  attempts_left: 3,
  retry_after_secs: null,
  problem: null,
};

describe('TpmBadge', () => {
  it('warns that a software TPM is not secure', () => {
    render(TpmBadge, { tpm: softTpm });
    expect(screen.getByTestId('tpm-badge')).toHaveTextContent('Software TPM — not secure');
  });

  it('names the maker of a hardware TPM', () => {
    render(TpmBadge, { tpm: { ...softTpm, source: 'device', info: { ...info, is_software: false, manufacturer: 'INTC' } } });
    expect(screen.getByTestId('tpm-badge')).toHaveTextContent('Hardware TPM · INTC');
  });

  it('says when there is no TPM', () => {
    render(TpmBadge, { tpm: { ...softTpm, source: 'missing', info: null, problem: 'no swtpm' } });
    expect(screen.getByTestId('tpm-badge')).toHaveTextContent('No TPM');
  });
});

describe('Unlock', () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  it('shows the attempts left after a wrong PIN', async () => {
    invoke.mockRejectedValueOnce({ code: 'wrong_pin', message: 'wrong PIN', field: 'PIN', attempts_left: 2 });
    render(Unlock);
    await fireEvent.input(screen.getByLabelText('PIN'), { target: { value: '9999' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Unlock' }));
    expect(await screen.findByTestId('unlock-error')).toHaveTextContent('2 attempts left');
    expect(invoke).toHaveBeenCalledWith('unlock_vault', { pin: '9999' });
  });

  it('shows the wait during a lockout', async () => {
    invoke.mockRejectedValueOnce({ code: 'lockout', message: 'locked out', retry_after_secs: 600 });
    render(Unlock);
    await fireEvent.input(screen.getByLabelText('PIN'), { target: { value: '9999' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Unlock' }));
    expect(await screen.findByTestId('unlock-error')).toHaveTextContent('about 10 minutes');
  });

  it('asks for a PIN before calling the engine', async () => {
    render(Unlock);
    await fireEvent.click(screen.getByRole('button', { name: 'Unlock' }));
    expect(await screen.findByTestId('unlock-error')).toHaveTextContent('Enter your PIN');
    expect(invoke).not.toHaveBeenCalled();
  });
});

describe('Unlock: a vault whose unlock policy is unattended', () => {
  const status = (unlocked: boolean): AppStatus => ({
    vault_path: '/srv/coffer/vault.db',
    vault_exists: true,
    unlocked,
    tpm: softTpm,
    unlock_policy: 'unattended',
    version: '0.1.0',
  });

  beforeEach(() => {
    invoke.mockReset();
    app.status = status(false);
    app.lockReason = null;
  });

  afterEach(() => {
    app.status = null;
    app.lockReason = null;
  });

  it('says it unlocks without a PIN by policy, asks for none, and unlocks with the TPM alone', async () => {
    invoke.mockImplementation(async (cmd: string) => (cmd === 'app_status' ? status(true) : undefined));
    render(Unlock);
    expect(screen.getByTestId('unattended-policy')).toHaveTextContent('unlocks without a PIN by its policy');
    expect(screen.queryByLabelText('PIN')).toBeNull();
    expect(screen.queryByText(/recovery code/)).toBeNull();
    expect(screen.queryByText(/PIN attempts available/)).toBeNull();
    await fireEvent.click(screen.getByRole('button', { name: 'Unlock' }));
    expect(invoke).toHaveBeenCalledWith('unlock_vault_unattended', undefined);
    expect(invoke).not.toHaveBeenCalledWith('unlock_vault', expect.anything());
    await vi.waitFor(() => expect(app.status?.unlocked).toBe(true));
  });

  it("shows the engine's refusal (another TPM) and stays locked", async () => {
    invoke.mockImplementation(async (cmd: string) => {
      if (cmd === 'unlock_vault_unattended') {
        throw { code: 'foreign_tpm', message: 'this TPM cannot open the vault key: it was sealed by another TPM' };
      }
      return status(false);
    });
    app.lockReason = 'elsewhere';
    render(Unlock);
    expect(screen.getByTestId('lock-reason')).toHaveTextContent('Locked from the command line');
    expect(screen.getByTestId('lock-reason')).not.toHaveTextContent('PIN');
    await fireEvent.click(screen.getByRole('button', { name: 'Unlock' }));
    expect(await screen.findByTestId('unlock-error')).toHaveTextContent('sealed by another TPM');
    expect(app.status?.unlocked).toBe(false);
  });

  it('a vault with a PIN still asks for it', () => {
    app.status = { ...status(false), unlock_policy: 'pin' };
    render(Unlock);
    expect(screen.getByLabelText('PIN')).toBeInTheDocument();
    expect(screen.queryByTestId('unattended-policy')).toBeNull();
  });
});

describe('SecretEditor', () => {
  beforeEach(() => {
    invoke.mockReset();
    invoke.mockImplementation(async (cmd: string) => (cmd === 'list_keys' ? [] : undefined));
  });

  it('requires a name at the field', async () => {
    render(SecretEditor, { mode: 'create', onDone: () => {}, onCancel: () => {} });
    await fireEvent.click(screen.getByTestId('save-secret'));
    expect(await screen.findByTestId('name-error')).toHaveTextContent('Give the secret a name');
    expect(invoke).not.toHaveBeenCalledWith('create_secret', expect.anything());
  });

  it('shows engine errors at the field they are about', async () => {
    invoke.mockImplementation(async (cmd: string) => {
      if (cmd === 'list_keys') return [];
      throw { code: 'secret_exists', message: 'a secret named "a" already exists', field: 'secret name' };
    });
    render(SecretEditor, { mode: 'create', onDone: () => {}, onCancel: () => {} });
    await fireEvent.input(screen.getByLabelText('Name'), { target: { value: 'a' } });
    await fireEvent.click(screen.getByTestId('save-secret'));
    expect(await screen.findByTestId('name-error')).toHaveTextContent('already exists');
  });

  it('sends a text value and tags to create_secret', async () => {
    const done = vi.fn();
    invoke.mockImplementation(async (cmd: string) =>
      cmd === 'list_keys' ? [] : { name: 'db', version_id: 'v1', secret_id: 's', labels: ['CURRENT'], created: true },
    );
    render(SecretEditor, { mode: 'create', onDone: done, onCancel: () => {} });
    await fireEvent.input(screen.getByLabelText('Name'), { target: { value: 'db' } });
    await fireEvent.input(screen.getByTestId('value-input'), { target: { value: 's3cret' } });
    await fireEvent.click(screen.getByRole('button', { name: /Add tag/ }));
    await fireEvent.input(screen.getByLabelText('Tag 1'), { target: { value: 'env' } });
    await fireEvent.input(screen.getByLabelText('Value 1'), { target: { value: 'prod' } });
    await fireEvent.click(screen.getByTestId('save-secret'));
    await vi.waitFor(() => expect(done).toHaveBeenCalledWith('db'));
    expect(invoke).toHaveBeenCalledWith('create_secret', {
      args: { name: 'db', description: '', key: undefined, tags: { env: 'prod' }, value: { kind: 'text', text: 's3cret' } },
    });
  });
});

describe('Audit', () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  it('shows tampering that an unlock found, beside the intact chain', async () => {
    invoke.mockImplementation(async (command: string) => {
      if (command === 'audit_list') return [];
      if (command === 'audit_verify') {
        return {
          entries: 12,
          chained: 12,
          pending: 0,
          findings: [
            {
              seq: 9,
              at: '2026-12-01T10:00:00Z',
              detail: '1 failed unlock(s) counted by the TPM; 2 failed unlock(s) the TPM counted have no entry in the log',
            },
          ],
        };
      }
      throw new Error(`unexpected ${command}`);
    });
    render(Audit);
    await fireEvent.click(screen.getByTestId('verify-audit'));
    expect(await screen.findByTestId('verify-result')).toHaveTextContent('The chain is intact: 12 entries');
    const finding = await screen.findByTestId('verify-finding');
    expect(finding).toHaveTextContent('Entry 9');
    expect(finding).toHaveTextContent('have no entry in the log');
  });

  it('shows no warning when nothing was found', async () => {
    invoke.mockImplementation(async (command: string) =>
      command === 'audit_verify' ? { entries: 3, chained: 3, pending: 0, findings: [] } : [],
    );
    render(Audit);
    await fireEvent.click(screen.getByTestId('verify-audit'));
    expect(await screen.findByTestId('verify-result')).toBeInTheDocument();
    expect(screen.queryByTestId('verify-finding')).toBeNull();
  });
});

import Regions from '../src/screens/Regions.svelte';

describe('Regions', () => {
  const identity = { region: 'eu-home-1', fingerprint: 'WPIO-EADJ-PJJY-JI6Z-BIYB-WCBX-Z2KM-KX2F-L4I5-GGXE-W5HF-33ZP-WTEA', vault_id: 'v' };
  const peer = {
    name: 'us-lab-1',
    url: 'https://127.0.0.1:7443',
    fingerprint: '2QXA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA',
    added_at: '2026-12-01T10:00:00Z',
    last_contact: null,
    key_exchange: null,
    last_error: null,
  };

  beforeEach(() => {
    invoke.mockReset();
  });

  it('shows the fingerprint to compare, and pairs only after the fingerprint was checked', async () => {
    const peers: (typeof peer)[] = [];
    invoke.mockImplementation(async (command: string, args: { name: string; url: string; fingerprint: string }) => {
      if (command === 'region_identity') return identity;
      if (command === 'list_peers') return peers;
      if (command === 'add_peer') {
        peers.push({ ...peer, name: args.name, url: args.url, fingerprint: args.fingerprint });
        return peers[0];
      }
      throw new Error(`unexpected ${command}`);
    });
    render(Regions);
    expect(await screen.findByTestId('region-fingerprint')).toHaveTextContent(identity.fingerprint);
    expect(screen.getByTestId('region-name')).toHaveTextContent('eu-home-1');
    await fireEvent.input(screen.getByLabelText('Its region name'), { target: { value: 'us-lab-1' } });
    await fireEvent.input(screen.getByLabelText('Where its daemon listens'), { target: { value: peer.url } });
    await fireEvent.input(screen.getByLabelText('Its fingerprint'), { target: { value: peer.fingerprint } });
    expect(screen.getByTestId('pair-peer')).toBeDisabled();
    await fireEvent.click(screen.getByTestId('fingerprint-checked'));
    await fireEvent.click(screen.getByTestId('pair-peer'));
    expect(invoke).toHaveBeenCalledWith('add_peer', { name: 'us-lab-1', url: peer.url, fingerprint: peer.fingerprint });
    expect(await screen.findByTestId('peer-us-lab-1')).toHaveTextContent('never');
    // Renaming is offered only while no peer knows this vault by its name.
    expect(screen.queryByRole('button', { name: 'Rename' })).toBeNull();
  });

  it('says why a pairing was refused, and a failed link check in its row', async () => {
    invoke.mockImplementation(async (command: string) => {
      if (command === 'region_identity') return identity;
      if (command === 'list_peers') return [peer];
      if (command === 'add_peer') throw { code: 'invalid_argument', message: '"http://x:1" is not a peer address: it must start with https://' };
      if (command === 'ping_peer')
        throw { code: 'peer_untrusted', message: 'region "us-lab-1" at https://127.0.0.1:7443 presented fingerprint AAAA, but it is paired with fingerprint 2QXA' };
      throw new Error(`unexpected ${command}`);
    });
    render(Regions);
    await screen.findByTestId('peer-us-lab-1');
    await fireEvent.input(screen.getByLabelText('Where its daemon listens'), { target: { value: 'http://x:1' } });
    await fireEvent.click(screen.getByTestId('fingerprint-checked'));
    await fireEvent.click(screen.getByTestId('pair-peer'));
    expect(await screen.findByTestId('pair-error')).toHaveTextContent('must start with https://');
    await fireEvent.click(screen.getByRole('button', { name: 'Check link' }));
    expect(await screen.findByTestId('peer-message')).toHaveTextContent('presented fingerprint AAAA');
  });
});
