// What the update tests need, made at test time and only on loopback: a throw-away update
// signing key (the app trusts it through COFFER_UPDATE_KEY_FILE, a debug-build-only
// override that tests/e2e/run.sh sets) and another key, real .deb bundles made by dpkg-deb
// and signed by `tauri signer sign`, a test CA with a certificate for 127.0.0.1, and an
// HTTPS server on a free 127.0.0.1 port serving manifests (latest.json) and bundles. The
// manifests are written by packaging/latest_json.py, the writer packaging/build.sh uses for
// releases, so the app's updater is tested against exactly the format a release publishes.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const TAURI = join(ROOT, 'ui/node_modules/.bin/tauri');

function run(command, args, options = {}) {
  return execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...options });
}

/** A test CA (`ca.pem`) under `dir` and a certificate for 127.0.0.1 signed by it, valid for
 * a day: the app trusts the CA through its "CA certificate" setting. Also used by
 * tests/install/app-update.mjs for the installed app. */
export function testCertificate(dir) {
  mkdirSync(dir, { recursive: true });
  const ca = join(dir, 'ca.pem');
  run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=Coffer test CA', '-keyout', join(dir, 'ca.key'), '-out', ca,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1',
    '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr')]);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  run('openssl', ['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', ca, '-CAkey', join(dir, 'ca.key'),
    '-CAcreateserial', '-days', '1', '-extfile', join(dir, 'server.ext'), '-out', join(dir, 'server.pem')]);
  return { ca, key: join(dir, 'server.key'), cert: join(dir, 'server.pem') };
}

/** Makes keys, bundles, CA and server under `dir`; the app's key file is `keyPath`.pub. */
export async function updateFixture(dir, keyPath) {
  mkdirSync(dir, { recursive: true });
  const otherKey = join(dir, 'other.key');
  run(TAURI, ['signer', 'generate', '--ci', '-p', '', '-w', keyPath, '--force']);
  run(TAURI, ['signer', 'generate', '--ci', '-p', '', '-w', otherKey, '--force']);
  const sign = (file, key = keyPath) =>
    run(TAURI, ['signer', 'sign', file], {
      env: { ...process.env, TAURI_SIGNING_PRIVATE_KEY_PATH: key, TAURI_SIGNING_PRIVATE_KEY_PASSWORD: '' },
    });
  const deb = (version, name) => {
    const tree = join(dir, `tree-${version}`);
    mkdirSync(join(tree, 'DEBIAN'), { recursive: true });
    mkdirSync(join(tree, 'usr/share/doc/coffer'), { recursive: true });
    writeFileSync(join(tree, 'usr/share/doc/coffer/marker'), version);
    writeFileSync(
      join(tree, 'DEBIAN/control'),
      `Package: coffer\nVersion: ${version}\nArchitecture: all\nMaintainer: Test <test@coffer.invalid>\nDescription: e2e update bundle\n`,
    );
    const file = join(dir, name);
    run('dpkg-deb', ['--build', '--root-owner-group', tree, file]);
    return file;
  };

  const bundles = {
    newer: deb('0.1.1', 'coffer_0.1.1_amd64.deb'),
    older: deb('0.0.9', 'coffer_0.0.9_amd64.deb'),
  };
  sign(bundles.newer);
  sign(bundles.older);
  // One flipped byte, after signing.
  bundles.flipped = join(dir, 'flipped_0.1.1_amd64.deb');
  const bytes = readFileSync(bundles.newer);
  bytes[Math.floor(bytes.length / 2)] ^= 0x01;
  writeFileSync(bundles.flipped, bytes);
  copyFileSync(`${bundles.newer}.sig`, `${bundles.flipped}.sig`);
  // The same bytes, signed by a key the app does not trust.
  bundles.otherKey = join(dir, 'otherkey_0.1.1_amd64.deb');
  copyFileSync(bundles.newer, bundles.otherKey);
  sign(bundles.otherKey, otherKey);

  const { ca, key: serverKey, cert: serverCert } = testCertificate(dir);

  // One release folder per manifest, holding its signed bundle, as a release publishes it.
  const releases = {
    latest: ['0.1.1', bundles.newer, 'Coffer 0.1.1\n\n- Faster search\n- Fixes the clipboard timer on Wayland'],
    tampered: ['0.1.1', bundles.flipped, 'Coffer 0.1.1'],
    'other-key': ['0.1.1', bundles.otherKey, 'Coffer 0.1.1'],
    // An old, genuinely signed bundle announced as new: only its own version counts.
    replayed: ['0.2.0', bundles.older, 'Coffer 0.2.0'],
  };
  for (const [name, [, file]] of Object.entries(releases)) {
    const folder = join(dir, 'releases', name);
    mkdirSync(folder, { recursive: true });
    copyFileSync(file, join(folder, basename(file)));
    copyFileSync(`${file}.sig`, join(folder, `${basename(file)}.sig`));
  }
  // latest.json of each release, by packaging/latest_json.py once the server's port is known.
  const routes = {};
  const writeManifests = (base) => {
    for (const [name, [version, , notes]] of Object.entries(releases)) {
      const json = run('python3', [join(ROOT, 'packaging/latest_json.py'), version, join(dir, 'releases', name)], {
        env: { ...process.env, COFFER_RELEASE_URL: `${base}/files/${name}`, COFFER_RELEASE_NOTES: notes },
      });
      routes[name === 'latest' ? '/latest.json' : `/${name}/latest.json`] = JSON.parse(json);
    }
  };
  const server = createServer(
    { key: readFileSync(serverKey), cert: readFileSync(serverCert) },
    (request, response) => {
      const path = new URL(request.url, 'https://127.0.0.1').pathname;
      const json = routes[path];
      if (json) {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify(json));
        return;
      }
      const file = path.match(/^\/files\/([a-z-]+)\/([^/]+)$/);
      if (file && releases[file[1]]) {
        try {
          const body = readFileSync(join(dir, 'releases', file[1], file[2]));
          response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
          response.end(body);
          return;
        } catch {
          // fall through to 404
        }
      }
      response.writeHead(404);
      response.end();
    },
  );
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `https://127.0.0.1:${server.address().port}`;
  writeManifests(base);
  return { base, ca, bundles, close: () =>
      new Promise((resolve) => {
        // The updater keeps connections alive; close them, or the test process never ends.
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
