// chat_browser.test.mjs: the chat example as people use it, in a real browser.
//
// Starts chat_server, opens its page in Debian's Chromium (through
// playwright-core, which never downloads a browser of its own): alice and
// bob join "lobby", carol joins "garden". alice says something and bob's
// page shows it, with its time; only the sayer's page marks it as its own;
// both pages list both members; carol's page shows nothing of the lobby.
// dave joins the lobby from a phone-width page (390 x 844): every control is
// on screen and nothing scrolls sideways. Then the server is stopped with
// SIGTERM (it must exit 0) and started again on the same port: every page
// reconnects by itself, rejoins its room, and the conversation goes on.
// Saves screenshots of bob's page and of the narrow page, and finally stops
// the server again.
//
// Usage: node chat_browser.test.mjs --server PATH [--artifacts DIR] [--policy actor|mutex]
// Exits 0 on success, 1 on failure (or after a 120 s deadline).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { deadline, makeTestCertificate, npmModule, settings, startServer } from './harness.mjs';

const PHONE = { width: 390, height: 844 };

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const config = settings();
const { chromium } = await npmModule('playwright-core');
// --tls: the page over https:// and the chat over wss://, with a certificate
// made for this run (which Chromium is told to accept).
const certificate = config.tls ? makeTestCertificate() : null;
const serverArgs = ['--policy', config.policy, ...(certificate?.serverArgs ?? [])];
if (certificate) CHROMIUM_ARGS.push('--ignore-certificate-errors');

let server = null;
let browser = null;
const pageErrors = [];
const profile = mkdtempSync(path.join(os.tmpdir(), 'wsreg-chat-chromium-'));
const cleanup = async () => {
  await browser?.close().catch(() => {});
  server?.child.kill('SIGKILL');
  rmSync(profile, { recursive: true, force: true });
  certificate?.remove();
};
deadline(110, cleanup);

try {
  server = await startServer(config.server, serverArgs);
  const url = `${certificate ? 'https' : 'http'}://127.0.0.1:${server.port}/`;

  // A persistent context is how playwright takes a user-data-dir: a fresh
  // temporary one, so no profile, cache or extension of this machine counts.
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 960, height: 540 },
    ignoreHTTPSErrors: certificate !== null,
  });

  async function joinAs(nick, room, viewport = null) {
    const page = await browser.newPage();
    if (viewport) await page.setViewportSize(viewport);
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
  // A line as a person reads it, without its time: "alice: hello".
  const texts = async (page) => (await lines(page)).map((l) => l.replace(/^\d\d:\d\d:\d\d\s*/, ''));
  const mine = (page) => page.locator('#messages li.mine').allTextContents();

  const alice = await joinAs('alice', 'lobby');
  // The page speaks wss:// when it was loaded over https:// (and ws:// else).
  assert.equal(await alice.evaluate(() => location.protocol), certificate ? 'https:' : 'http:');
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
  assert.ok((await texts(bob)).includes('alice: hello from alice'), 'bob sees who said it');
  // Every line carries the time it arrived.
  const bobLines = await lines(bob);
  assert.ok(bobLines.every((l) => /^\d\d:\d\d:\d\d/.test(l)), `a line without a time:\n${bobLines.join('\n')}`);
  await bob.fill('#text', 'hi alice, bob here');
  await bob.click('#send');
  await alice.locator('#messages li', { hasText: 'hi alice, bob here' }).waitFor();
  await bob.locator('#messages li', { hasText: 'hi alice, bob here' }).waitFor();
  // Each page marks its own messages, and only those.
  assert.equal((await mine(alice)).length, 1);
  assert.match((await mine(alice))[0], /alice: hello from alice$/);
  assert.equal((await mine(bob)).length, 1);
  assert.match((await mine(bob))[0], /bob: hi alice, bob here$/);

  // carol, in another room, sees nothing of it: no message, no join, one
  // member. Her own message, sent after theirs had arrived, comes back
  // through the same server: anything of theirs would have reached her first.
  await carol.fill('#text', 'carol was here');
  await carol.click('#send');
  await carol.locator('#messages li', { hasText: 'carol was here' }).waitFor();
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

  // Phone width: dave joins the lobby from a 390 px wide page. Every control
  // is inside the viewport, and the page does not scroll sideways.
  const dave = await joinAs('dave', 'lobby', PHONE);
  await dave.locator('#members li', { hasText: 'dave' }).waitFor();
  await dave.fill('#text', 'dave on a phone');
  await dave.click('#send');
  await dave.locator('#messages li.mine', { hasText: 'dave on a phone' }).waitFor();
  for (const selector of ['#status', '#nick', '#room', '#join', '#text', '#send',
                          '#members', '#messages', '#room-title']) {
    const box = await dave.locator(selector).boundingBox();
    assert.ok(box, `${selector} is not shown at ${PHONE.width} px`);
    assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= PHONE.width + 0.5 &&
              box.y + box.height <= PHONE.height + 0.5,
              `${selector} is off screen at ${PHONE.width} x ${PHONE.height}: ${JSON.stringify(box)}`);
    assert.ok(box.width > 0 && box.height > 0, `${selector} has no size: ${JSON.stringify(box)}`);
  }
  const scrollWidth = await dave.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scrollWidth <= PHONE.width, `the page is ${scrollWidth} px wide at ${PHONE.width} px`);
  const narrowShot = path.join(config.artifacts, 'chat-390.png');
  await dave.screenshot({ path: narrowShot });
  console.log(`screenshot: ${narrowShot}`);

  // The server goes away: it stops cleanly, and the pages say so.
  const port = server.port;
  const code = await server.stop();
  assert.equal(code, 0, `chat_server exited ${code} after SIGTERM; output:\n${server.output()}`);
  assert.match(server.output(), /chat_server: stopped/);
  server = null;
  for (const page of [alice, bob, carol, dave]) {
    await page.locator('#status', { hasText: /reconnect/ }).waitFor();
    await page.locator('#send:disabled').waitFor();
  }

  // It comes back on the same port: every page reconnects by itself (with
  // backoff, so within a few seconds) and rejoins its room with its nick.
  server = await startServer(config.server, serverArgs, port);
  for (const page of [alice, bob, carol, dave]) {
    await page.locator('#status', { hasText: /^connected$/ }).waitFor({ timeout: 20000 });
    await page.locator('#send:enabled').waitFor({ timeout: 10000 });
  }
  for (const page of [alice, bob, dave]) {
    await page.locator('#members li', { hasText: 'dave' }).waitFor();
    await page.locator('#members li', { hasText: 'alice' }).waitFor();
    await page.locator('#members li', { hasText: 'bob' }).waitFor();
    assert.deepEqual(await members(page), ['alice', 'bob', 'dave']);
  }
  assert.deepEqual(await members(carol), ['carol']);
  await alice.fill('#text', 'still here after the restart');
  await alice.click('#send');
  for (const page of [bob, dave]) {
    await page.locator('#messages li', { hasText: 'still here after the restart' }).waitFor();
  }
  await alice.locator('#messages li.mine', { hasText: 'still here after the restart' }).waitFor();
  assert.ok((await texts(alice)).some((l) => l.startsWith('reconnected; rejoining #lobby')),
            'alice\'s page says it rejoined');
  assert.deepEqual(pageErrors, [], 'no JavaScript error on any page');

  await browser.close();
  browser = null;
  const again = await server.stop();
  assert.equal(again, 0, `restarted chat_server exited ${again}; output:\n${server.output()}`);
  console.log(`chat_browser: ok (policy ${config.policy}${certificate ? ', https and wss' : ''})`);
} catch (error) {
  console.error(`FAIL: ${error.stack ?? error}`);
  if (server) console.error(`chat_server output:\n${server.output()}`);
  await cleanup();
  process.exit(1);
}
rmSync(profile, { recursive: true, force: true });
certificate?.remove();
process.exit(0);
