// Helpers shared by the e2e specs and the benchmark: start the app over WebDriver, find
// elements by test id, take screenshots.
import { remote } from 'webdriverio';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const APP = process.env.E2E_APP;
export const DRIVER_PORT = Number(process.env.E2E_DRIVER_PORT || 4444);
export const SCREENSHOTS = process.env.E2E_SCREENSHOTS || '';
export const PIN = '4711-correct';

if (!APP) throw new Error('E2E_APP must point at the built coffer-app binary (tests/e2e/run.sh sets it)');

/** Launches the app (a new process) and returns the WebDriver session. */
export async function launch() {
  const browser = await remote({
    hostname: '127.0.0.1',
    port: DRIVER_PORT,
    logLevel: 'error',
    connectionRetryTimeout: 120_000,
    connectionRetryCount: 0,
    capabilities: {
      'wdio:enforceWebDriverClassic': true,
      'tauri:options': { application: APP },
    },
  });
  await browser.setTimeout({ implicit: 0 });
  return browser;
}

export const byTestId = (browser, id) => browser.$(`[data-testid="${id}"]`);

export async function waitForTestId(browser, id, timeout = 20_000) {
  // A screen change (lock, unlock) can replace the element while it is being looked up.
  for (let attempt = 0; ; attempt++) {
    try {
      const el = await byTestId(browser, id);
      await el.waitForDisplayed({ timeout, timeoutMsg: `[data-testid="${id}"] did not appear within ${timeout} ms` });
      return el;
    } catch (error) {
      if (attempt >= 3 || !/stale/i.test(String(error))) throw error;
      await browser.pause(200);
    }
  }
}

export async function click(browser, id) {
  // The UI re-renders often; a reference can go stale between finding and clicking it.
  for (let attempt = 0; ; attempt++) {
    const el = await waitForTestId(browser, id);
    try {
      await el.click();
      return el;
    } catch (error) {
      if (attempt >= 2 || !/stale/i.test(String(error))) throw error;
    }
  }
}

/** Types into an input found by CSS selector (clearing it first). */
export async function type(browser, selector, text) {
  const el = await browser.$(selector);
  await el.waitForDisplayed({ timeout: 10_000 });
  await el.clearValue();
  await el.setValue(text);
  return el;
}

export async function text(browser, id) {
  await waitForTestId(browser, id);
  // Read in the page: immune to stale references after a re-render.
  return browser.execute(
    (sel) => (document.querySelector(sel) ? document.querySelector(sel).innerText : ''),
    `[data-testid="${id}"]`,
  );
}

export async function screenshot(browser, name) {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  // No toasts in the pictures; let transitions and fonts settle.
  await browser.execute(() => document.querySelectorAll('[data-testid="toast"] button').forEach((b) => b.click()));
  await browser.pause(300);
  // Wait until the page has painted twice since: on a loaded machine the capture can
  // otherwise show a frame from before the last change.
  await browser.executeAsync((done) => requestAnimationFrame(() => requestAnimationFrame(() => done())));
  await browser.pause(200);
  await browser.saveScreenshot(join(SCREENSHOTS, `${name}.png`));
}

/** Waits until `fn` returns a truthy value. */
export async function until(browser, fn, message, timeout = 15_000) {
  await browser.waitUntil(fn, { timeout, interval: 150, timeoutMsg: message });
}

export async function rowNames(browser) {
  const rows = await browser.$$('[data-testid="secret-row"]');
  const names = [];
  for (const row of rows) names.push(await row.getAttribute('data-name'));
  return names;
}
