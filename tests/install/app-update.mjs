// The installed app updating itself, driven over WebDriver from the host (tests/install/
// app-update.sh starts tauri-driver inside the Debian root and runs this once per phase):
//   online  checks a local HTTPS endpoint (test CA) that offers the real N+1 package, downloads
//           and verifies it, and presses "Install and restart";
//   file    "Install update from file…" with the N+1 package inside the root, then the same;
//   after   the app that the restart brought up again: the vault unlocks with the same PIN and
//           every secret reads as before, the endpoint says it is up to date, and the N package
//           is refused as not newer than the running N+1 (the app itself saying what runs).
// Every phase first unlocks the vault and reads every secret, so "before" is the app's view too.
// Environment: E2E_APP, E2E_DRIVER_PORT, E2E_SCREENSHOTS (see ../e2e/lib.mjs); UPDATE_PIN_FILE
// and UPDATE_SECRETS_FILE (a JSON object name -> value), both host paths; UPDATE_FROM, UPDATE_TO
// (versions); online: UPDATE_RELEASE_DIR (host folder with the N+1 .deb and .sig),
// UPDATE_CA_DIR (a host folder the app sees as UPDATE_CA_DIR_IN_ROOT); file: UPDATE_BUNDLE;
// after: UPDATE_OLDER_BUNDLE (paths inside the root).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:https';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, byTestId, waitForTestId, click, type, text, screenshot, until, rowNames } from '../e2e/lib.mjs';
import { testCertificate } from '../e2e/update-fixture.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (tests/install/app-update.sh sets it)`);
  return value;
};
const phase = process.argv[2];
const FROM = env('UPDATE_FROM');
const TO = env('UPDATE_TO');

/** Unlocks with the test PIN and reads every secret's current value in the app. */
async function unlockAndRead(browser) {
  const pin = readFileSync(env('UPDATE_PIN_FILE'), 'utf8');
  const expected = JSON.parse(readFileSync(env('UPDATE_SECRETS_FILE'), 'utf8'));
  const input = await browser.$('#unlock-pin');
  await input.waitForDisplayed({ timeout: 60_000, timeoutMsg: 'the unlock screen did not appear' });
  await type(browser, '#unlock-pin', pin);
  await (await browser.$('button=Unlock')).click();
  await waitForTestId(browser, 'lock-button', 60_000);
  await click(browser, 'nav-secrets');
  await until(
    browser,
    async () => (await rowNames(browser)).length >= Object.keys(expected).length,
    'the secrets list did not fill',
    30_000,
  );
  assert.deepEqual((await rowNames(browser)).sort(), Object.keys(expected).sort(), 'the app lists other secrets');
  for (const [name, value] of Object.entries(expected)) {
    const row = await browser.$(`[data-testid="secret-row"][data-name="${name}"]`);
    await row.click();
    await until(browser, async () => (await text(browser, 'detail-name')) === name, `${name} did not open`);
    await click(browser, 'reveal');
    // innerText drops a trailing newline; the CLI checks every byte of every version.
    await until(
      browser,
      async () => (await text(browser, 'revealed-value')).trimEnd() === value.trimEnd(),
      `${name} does not read as it was written`,
    );
    await click(browser, 'reveal');
  }
  console.log(`   the app unlocked the vault and read ${Object.keys(expected).length} secrets as written`);
}

const literal = (version) => version.replaceAll('.', '\\.');

/** Sets an input, replacing what it held (the app keeps the endpoint it saved before). */
async function fill(browser, id, value) {
  await type(browser, `[data-testid="${id}"]`, value);
}

async function openUpdates(browser) {
  await click(browser, 'nav-settings');
  await waitForTestId(browser, 'updates-settings');
}

/** Presses "Install and restart" and waits for the app to go away (pkexec, dpkg, restart). */
async function installAndRestart(browser) {
  await click(browser, 'update-install');
  const deadline = Date.now() + 180_000;
  for (;;) {
    let failure;
    try {
      if (await byTestId(browser, 'update-dialog-error').isExisting()) {
        failure = await text(browser, 'update-dialog-error');
      }
    } catch {
      break; // the app (and with it the WebDriver session) is gone: it restarted
    }
    if (failure) throw new Error(`the app did not install the update: ${failure}`);
    if (Date.now() > deadline) throw new Error('the app neither restarted nor said why within 180 s');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await browser.deleteSession().catch(() => {});
  console.log('   the app installed the update and went away to restart');
}

/** An HTTPS server on 127.0.0.1 (test CA) offering the N+1 release as a release publishes it. */
async function serveRelease() {
  const release = env('UPDATE_RELEASE_DIR');
  const { ca, key, cert } = testCertificate(env('UPDATE_CA_DIR'));
  let manifest;
  const server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (request, response) => {
    const path = new URL(request.url, 'https://127.0.0.1').pathname;
    if (path === '/latest.json') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(manifest);
      return;
    }
    const name = path.startsWith('/files/') ? basename(path) : '';
    if (name && readdirSync(release).includes(name)) {
      const body = readFileSync(join(release, name));
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      response.end(body);
      return;
    }
    response.writeHead(404);
    response.end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `https://127.0.0.1:${server.address().port}`;
  // The manifest from the writer packaging/build.sh uses for releases.
  manifest = execFileSync('python3', [join(ROOT, 'packaging/latest_json.py'), TO, release], {
    encoding: 'utf8',
    env: { ...process.env, COFFER_RELEASE_URL: `${base}/files`, COFFER_RELEASE_NOTES: `Coffer ${TO}\n\n- Installed by the install test` },
  });
  const caInRoot = join(env('UPDATE_CA_DIR_IN_ROOT'), basename(ca));
  return {
    endpoint: `${base}/latest.json`,
    ca: caInRoot,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function online(browser) {
  const server = await serveRelease();
  try {
    await openUpdates(browser);
    await fill(browser, 'update-endpoint', server.endpoint);
    await fill(browser, 'update-ca', server.ca);
    await click(browser, 'update-save');
    await click(browser, 'update-check');
    await waitForTestId(browser, 'update-version', 60_000);
    assert.equal(await text(browser, 'update-version'), `Coffer ${TO} is available. You have ${FROM}.`);
    await click(browser, 'update-download');
    await waitForTestId(browser, 'update-ready', 120_000);
    assert.match(await text(browser, 'update-ready'), new RegExp(`Coffer ${literal(TO)} is signed with Coffer’s update key\\.$`));
    await screenshot(browser, 'update-installed-ready');
    await installAndRestart(browser);
  } finally {
    await server.close();
  }
}

async function verifyFile(browser, path) {
  await click(browser, 'update-from-file');
  await type(browser, '[data-testid="update-file"]', path);
  await click(browser, 'update-verify');
  await until(
    browser,
    async () => (await byTestId(browser, 'update-ready').isExisting()) || (await byTestId(browser, 'update-dialog-error').isExisting()),
    'the file check gave no answer',
    60_000,
  );
}

async function fromFile(browser) {
  await openUpdates(browser);
  await verifyFile(browser, env('UPDATE_BUNDLE'));
  assert.match(await text(browser, 'update-ready'), new RegExp(`Coffer ${literal(TO)} is signed with Coffer’s update key\\.$`));
  await installAndRestart(browser);
}

async function after(browser) {
  await openUpdates(browser);
  // Settings → About this vault shows the running version.
  const shown = await browser.execute(() => {
    const term = [...document.querySelectorAll('dt')].find((dt) => dt.innerText.trim() === 'Coffer');
    return term && term.nextElementSibling ? term.nextElementSibling.innerText.trim() : '';
  });
  assert.equal(shown, `Version ${TO}`, 'Settings → About does not show the new version');
  // An endpoint offering N+1, which is what runs now: up to date.
  const server = await serveRelease();
  try {
    await fill(browser, 'update-endpoint', server.endpoint);
    await fill(browser, 'update-ca', server.ca);
    await click(browser, 'update-save');
    await click(browser, 'update-check');
    await until(
      browser,
      async () =>
        (await byTestId(browser, 'update-dialog').isExisting()) ||
        (await byTestId(browser, 'update-error').isExisting()) ||
        /up to date/.test(
          await browser.execute(() => document.querySelector('[data-testid="update-status"]')?.innerText ?? ''),
        ),
      'the check gave no answer',
      60_000,
    );
    assert.equal(await text(browser, 'update-status'), `Coffer ${TO} is up to date.`);
  } finally {
    await server.close();
  }
  // The picture: the Updates section with its answer, and About with the running version.
  await browser.execute(() => document.querySelector('[data-testid="updates-settings"]').scrollIntoView({ block: 'start' }));
  await screenshot(browser, 'update-installed');
  // The app says which version runs: N is not newer than it.
  await verifyFile(browser, env('UPDATE_OLDER_BUNDLE'));
  const said = await text(browser, 'update-dialog-error');
  assert.match(said, new RegExp(`Coffer ${literal(FROM)}, which is not newer than the running ${literal(TO)}`));
  console.log(`   the restarted app shows version ${TO}, is up to date, and says: "${said}"`);
  await click(browser, 'update-dialog-close');
}

const phases = { online, file: fromFile, after };
if (!phases[phase]) throw new Error(`unknown phase ${phase}: online, file or after`);
const browser = await launch();
try {
  await unlockAndRead(browser);
  await phases[phase](browser);
  if (phase === 'after') await browser.deleteSession();
} catch (error) {
  await screenshot(browser, `update-installed-failed-${phase}`).catch(() => {});
  await browser.deleteSession().catch(() => {});
  throw error;
}
