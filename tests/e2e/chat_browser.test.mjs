// chat_browser.test.mjs: the chat example as people use it, in a real browser.
//
// Starts chat_server, opens its page three times in Debian's Chromium
// (through playwright-core, which never downloads a browser of its own):
// alice and bob join "lobby", carol joins "garden". alice says something and
// bob's page shows it; both pages list both members; carol's page shows
// nothing of the lobby. Saves a screenshot of bob's page, then stops the
// server with SIGTERM and checks that it exits 0.
//
// Usage: node chat_browser.test.mjs --server PATH [--artifacts DIR] [--policy actor|mutex]
// Exits 0 on success, 1 on failure (or after a 90 s deadline).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { deadline, npmModule, settings, sleep, startServer } from './harness.mjs';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const config = settings();
const { chromium } = await npmModule('playwright-core');

let server = null;
let browser = null;
const pageErrors = [];
const profile = mkdtempSync(path.join(os.tmpdir(), 'wsreg-chat-chromium-'));
const cleanup = async () => {
  await browser?.close().catch(() => {});
  server?.child.kill('SIGKILL');
  rmSync(profile, { recursive: true, force: true });
};
deadline(90, cleanup);

try {
  server = await startServer(config.server, ['--policy', config.policy]);
  const url = `http://127.0.0.1:${server.port}/`;

  // A persistent context is how playwright takes a user-data-dir: a fresh
  // temporary one, so no profile, cache or extension of this machine counts.
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 960, height: 540 },
  });

  async function joinAs(nick, room) {
    const page = await browser.newPage();
    page.on('pageerror', (error) => pageErrors.push(`${nick}'s page: ${error.message}`));
    await page.goto(url);
    await page.locator('#status', { hasText: /^connected$/ }).waitFor();
    await page.fill('#nick', nick);
    await page.fill('#room', room);
    await page.click('#join');
    await page.locator('#send:enabled').waitFor();  // enabled once the server confirmed
    return page;
  }
  const members = (page) => page.locator('#members li').allTextContents();
  const lines = (page) => page.locator('#messages li').allTextContents();

  const alice = await joinAs('alice', 'lobby');
  const bob = await joinAs('bob', 'lobby');
  const carol = await joinAs('carol', 'garden');

  // Both lobby pages list both members (alice learns of bob from the list
  // published on his join).
  for (const page of [alice, bob]) {
    await page.locator('#members li', { hasText: 'bob' }).waitFor();
    assert.deepEqual(await members(page), ['alice', 'bob']);
  }

  await alice.fill('#text', 'hello from alice');
  await alice.click('#send');
  await bob.locator('#messages li', { hasText: 'hello from alice' }).waitFor();
  assert.ok((await lines(bob)).includes('alice: hello from alice'), 'bob sees who said it');
  await bob.fill('#text', 'hi alice, bob here');
  await bob.click('#send');
  await alice.locator('#messages li', { hasText: 'hi alice, bob here' }).waitFor();
  await bob.locator('#messages li', { hasText: 'hi alice, bob here' }).waitFor();

  // carol, in another room, sees nothing of it: no message, no join, one member.
  await sleep(300);
  const carolLines = (await lines(carol)).join('\n');
  for (const word of ['alice', 'bob', 'hello']) {
    assert.ok(!carolLines.includes(word), `carol's page shows "${word}":\n${carolLines}`);
  }
  assert.deepEqual(await members(carol), ['carol']);
  assert.deepEqual(pageErrors, [], 'no JavaScript error on any page');

  // A browser-side look at the page a person sees: the conversation and
  // both members.
  mkdirSync(config.artifacts, { recursive: true });
  const shot = path.join(config.artifacts, 'chat.png');
  await bob.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);

  await browser.close();
  browser = null;
  const code = await server.stop();
  assert.equal(code, 0, `chat_server exited ${code} after SIGTERM; output:\n${server.output()}`);
  assert.match(server.output(), /chat_server: stopped/);
  console.log(`chat_browser: ok (policy ${config.policy})`);
} catch (error) {
  console.error(`FAIL: ${error.stack ?? error}`);
  if (server) console.error(`chat_server output:\n${server.output()}`);
  await cleanup();
  process.exit(1);
}
rmSync(profile, { recursive: true, force: true });
process.exit(0);
