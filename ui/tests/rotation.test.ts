import { describe, expect, it } from 'vitest';
import { defaultPasswordOptions, type RotationInfo } from '../src/lib/api';
import {
  buildRate,
  buildSchedule,
  describeRotator,
  describeSchedule,
  describeWindow,
  formatUtc,
  formatWhen,
  joinArgs,
  normalizeCron,
  parseRate,
  rotationField,
  scheduleKind,
  scheduleShort,
  settingsOf,
  splitArgs,
  stateChip,
  stateLabel,
  schedulerSummary,
  summarize,
} from '../src/lib/rotation';

describe('rotation schedules', () => {
  it('parses rate expressions back into amount and unit', () => {
    expect(parseRate('rate(30 days)')).toEqual({ amount: 30, unit: 'days' });
    expect(parseRate('rate(1 day)')).toEqual({ amount: 1, unit: 'days' });
    expect(parseRate(' rate( 12  hours ) ')).toEqual({ amount: 12, unit: 'hours' });
    expect(parseRate('rate(1 hour)')).toEqual({ amount: 1, unit: 'hours' });
    expect(parseRate('rate(2 weeks)')).toBeNull();
    expect(parseRate('rate(1.5 days)')).toBeNull();
    expect(parseRate('cron(0 4 ? * SUN *)')).toBeNull();
    expect(parseRate(null)).toBeNull();
  });

  it('builds rate expressions with a singular unit for 1', () => {
    expect(buildRate(30, 'days')).toBe('rate(30 days)');
    expect(buildRate(1, 'days')).toBe('rate(1 day)');
    expect(buildRate(1, 'hours')).toBe('rate(1 hour)');
    expect(buildRate(12, 'hours')).toBe('rate(12 hours)');
  });

  it('round-trips a rate through parse and build', () => {
    for (const text of ['rate(1 day)', 'rate(7 days)', 'rate(1 hour)', 'rate(36 hours)']) {
      const rate = parseRate(text)!;
      expect(buildRate(rate.amount, rate.unit)).toBe(text);
    }
  });

  it('picks the editor kind: none, an editable rate, else cron', () => {
    expect(scheduleKind(null)).toBe('none');
    expect(scheduleKind('')).toBe('none');
    expect(scheduleKind('rate(30 days)')).toBe('rate');
    expect(scheduleKind('cron(0 4 ? * SUN *)')).toBe('cron');
    expect(scheduleKind('rate(2 weeks)')).toBe('cron');
  });

  it('builds the schedule from the editor inputs and names what is missing', () => {
    expect(buildSchedule('none', 30, 'days', '')).toEqual({ schedule: null });
    expect(buildSchedule('rate', 30, 'days', '')).toEqual({ schedule: 'rate(30 days)' });
    expect(buildSchedule('rate', 1, 'hours', '')).toEqual({ schedule: 'rate(1 hour)' });
    expect(buildSchedule('rate', null, 'days', '').error).toMatch(/how many days/);
    expect(buildSchedule('rate', 0, 'hours', '').error).toMatch(/how many hours/);
    expect(buildSchedule('rate', 2.5, 'days', '').error).toMatch(/whole number/);
    expect(buildSchedule('cron', 30, 'days', ' cron(0 4 ? * SUN *) ')).toEqual({ schedule: 'cron(0 4 ? * SUN *)' });
    expect(buildSchedule('cron', 30, 'days', '0 4 ? * SUN *')).toEqual({ schedule: 'cron(0 4 ? * SUN *)' });
    expect(buildSchedule('cron', 30, 'days', '  ').error).toMatch(/cron expression/);
  });

  it('wraps bare cron fields but leaves anything with a parenthesis to the engine', () => {
    expect(normalizeCron('0 4 1 * ? *')).toBe('cron(0 4 1 * ? *)');
    expect(normalizeCron('cron(0 4 1 * ? *)')).toBe('cron(0 4 1 * ? *)');
    expect(normalizeCron('rate(3 days)')).toBe('rate(3 days)');
    expect(normalizeCron('')).toBe('');
  });

  it('describes schedules in words with the raw expression', () => {
    expect(describeSchedule('rate(30 days)')).toBe('Every 30 days · rate(30 days)');
    expect(describeSchedule('rate(1 day)')).toBe('Every day · rate(1 day)');
    expect(describeSchedule('rate(12 hours)')).toBe('Every 12 hours · rate(12 hours)');
    expect(describeSchedule('cron(0 4 ? * SUN *)')).toBe('cron(0 4 ? * SUN *) UTC');
    expect(describeSchedule(null)).toBe('On demand only');
    expect(scheduleShort('rate(1 hour)')).toBe('Every hour');
    expect(scheduleShort('cron(0 4 ? * SUN *)')).toBe('Cron (UTC)');
    expect(describeWindow('2h')).toBe(
      'Starts within 2h of the scheduled time; a window missed (computer off) waits for the next',
    );
    expect(describeWindow(null)).toBe('None');
  });
});

describe('rotators in words', () => {
  it('describes a generated password with its field and rules', () => {
    expect(describeRotator({ rotator: 'generate', field: 'password', password: defaultPasswordOptions })).toBe(
      'Generated password (field password, 32 chars)',
    );
    expect(
      describeRotator({
        rotator: 'generate',
        password: { ...defaultPasswordOptions, length: 20, exclude_punctuation: true },
      }),
    ).toBe('Generated password (20 chars, no punctuation)');
  });

  it('describes a command with its arguments and timeout', () => {
    expect(describeRotator({ rotator: 'command', path: '/usr/local/bin/rotate-db', timeout_secs: 30 })).toBe(
      'Command /usr/local/bin/rotate-db (30 s per step)',
    );
    expect(
      describeRotator({ rotator: 'command', path: '/opt/r', args: ['--env', 'prod one'], timeout_secs: 5 }),
    ).toBe('Command /opt/r --env "prod one" (5 s per step)');
  });

  it('describes the PostgreSQL strategies', () => {
    const password = defaultPasswordOptions;
    expect(describeRotator({ rotator: 'postgres', strategy: 'single_user', timeout_secs: 30, password })).toBe(
      'PostgreSQL, single user; TLS only if the server offers it, server not verified',
    );
    expect(
      describeRotator({ rotator: 'postgres', strategy: 'single_user', timeout_secs: 30, password, sslmode: 'disable' }),
    ).toBe('PostgreSQL, single user; unencrypted connection');
    expect(
      describeRotator({
        rotator: 'postgres',
        strategy: 'alternating_users',
        admin_secret: 'prod/db/admin',
        timeout_secs: 30,
        password,
        sslmode: 'verify-full',
      }),
    ).toBe('PostgreSQL, alternating users (admin prod/db/admin); TLS, certificate and host verified');
  });
});

describe('rotation states', () => {
  it('labels states in words and picks chip colours', () => {
    expect(stateLabel('failing')).toBe('Failing');
    expect(stateLabel('in_progress')).toBe('In progress');
    expect(stateLabel('disabled')).toBe('Off');
    expect(stateChip('failing')).toBe('danger');
    expect(stateChip('overdue')).toBe('warning');
    expect(stateChip('scheduled')).toBe('success');
    expect(stateChip('in_progress')).toBe('accent');
    expect(stateChip('disabled')).toBe('');
  });

  it('summarises counts, most urgent first, leaving out zeros', () => {
    const states = ['scheduled', 'overdue', 'failing', 'scheduled', 'overdue', 'disabled'] as const;
    expect(summarize(states.map((state) => ({ state })))).toBe('1 failing · 2 overdue · 2 scheduled · 1 off');
    expect(summarize([{ state: 'in_progress' }])).toBe('1 in progress');
    expect(summarize([])).toBe('');
  });

  it('keeps the saved settings to turn rotation back on', () => {
    const info = {
      secret_name: 'db',
      enabled: false,
      schedule: 'rate(7 days)',
      window: '2h',
      rotator: { rotator: 'command', path: '/bin/r', timeout_secs: 30 },
      state: 'disabled',
    } as RotationInfo;
    expect(settingsOf(info)).toEqual({
      schedule: 'rate(7 days)',
      window: '2h',
      rotator: { rotator: 'command', path: '/bin/r', timeout_secs: 30 },
    });
  });
});

describe('command arguments', () => {
  it('splits at spaces and keeps quoted spaces', () => {
    expect(splitArgs('')).toEqual({ args: [] });
    expect(splitArgs('  --env   prod ')).toEqual({ args: ['--env', 'prod'] });
    expect(splitArgs('--name "a b" \'c d\' e\\ f')).toEqual({ args: ['--name', 'a b', 'c d', 'e f'] });
    expect(splitArgs('""')).toEqual({ args: [''] });
    expect(splitArgs('--x "open').error).toMatch(/double quote is not closed/);
  });

  it('joins arguments so that they split back the same', () => {
    for (const args of [['--env', 'prod'], ['a b', 'say "hi"', 'back\\slash', ''], []]) {
      expect(splitArgs(joinArgs(args)).args).toEqual(args);
    }
  });
});

describe('rotation errors and times', () => {
  it('maps engine error fields to form fields', () => {
    expect(rotationField({ field: 'rotation schedule' })).toBe('schedule');
    expect(rotationField({ field: 'rotation window' })).toBe('window');
    expect(rotationField({ field: 'rotator' })).toBe('rotator');
    expect(rotationField({ field: 'rotator configuration' })).toBe('rotator');
    expect(rotationField({ field: 'secret name' })).toBeNull();
    expect(rotationField({})).toBeNull();
  });

  it('says future times relatively and past ones as format does', () => {
    const now = Date.parse('2026-03-01T12:00:00Z');
    expect(formatWhen('2026-03-01T12:00:30Z', now)).toBe('in less than a minute');
    expect(formatWhen('2026-03-01T12:05:00Z', now)).toBe('in 5 min');
    expect(formatWhen('2026-03-01T15:00:00Z', now)).toBe('in 3 h');
    expect(formatWhen('2026-03-05T12:00:00Z', now)).toBe('in 4 days');
    expect(formatWhen('2026-03-01T10:00:00Z', now)).toBe('2 h ago');
    expect(formatWhen(null, now)).toBe('—');
  });

  it('writes times in UTC, with the year only when it is not this year', () => {
    const now = new Date('2026-06-01T00:00:00Z');
    expect(formatUtc('2026-12-07T03:00:00Z', now)).toBe('Mon 7 Dec 03:00 UTC');
    expect(formatUtc('2027-01-03T04:05:00+02:00', now)).toBe('Sun 3 Jan 2027 02:05 UTC');
    expect(formatUtc(null, now)).toBe('—');
  });
});

describe('scheduler summary', () => {
  const quiet = { rotated: [], failed: [], keys_rotated: [], data_keys_rewrapped: 0, next_due: null };

  it('says nothing for a pass that only re-wrapped', () => {
    expect(schedulerSummary({ ...quiet, data_keys_rewrapped: 1000 })).toBeNull();
  });

  it('names what rotated, and failures as errors', () => {
    expect(schedulerSummary({ ...quiet, rotated: ['prod/db'] })).toEqual({
      text: 'Scheduled rotation: rotated “prod/db”.',
      kind: 'success',
    });
    const mixed = schedulerSummary({
      ...quiet,
      rotated: ['a', 'b', 'c'],
      keys_rotated: ['k1'],
      failed: [{ name: 'ci/key', code: 'rotation_failed', message: 'refused' }],
    });
    expect(mixed).toEqual({
      text: 'Scheduled rotation: rotated 3 secrets; rotated a key; could not rotate “ci/key” (see Rotation).',
      kind: 'error',
    });
  });
});
