// chat_cluster.test.mjs: two chat servers joined over Redis or NATS are one
// chat, seen in a real browser.
//
// Starts a broker of its own (redis-server or nats-server, on an ephemeral
// port, never a system service) and two chat_servers joined to it
// (--redis or --nats, node ids 1 and 2). alice opens the page on server 1,
// bob on server 2, both join "lobby": both pages list both members, and
// what each says reaches the other. carol joins "garden" on server 2 and
// sees nothing of the lobby. bob closes his page: alice's list drops him.
//
// Usage: node chat_cluster.test.mjs --server PATH --broker redis|nats
//        [--redis-server PATH] [--nats-server PATH] [--policy actor|mutex]
// Exits 0 on success, 1 on failure (or after a 120 s deadline).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { deadline, npmModule, settings, startServer } from './harness.mjs';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const config = settings();
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 && at + 1 < args.length ? args[at + 1] : fallback;
};
const broker = option('--broker', 'redis');
const { chromium } = await npmModule('playwright-core');

// A port the kernel says is free now (the broker binds it right after).
const freePort = () => new Promise((resolve, reject) => {
  const probe = net.createServer();
  probe.once('error', reject);
  probe.listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});

// Resolves once something accepts connections on 127.0.0.1:port.
const accepting = (port) => new Promise((resolve) => {
  const socket = net.connect(port, '127.0.0.1');
  socket.once('connect', () => { socket.destroy(); resolve(true); });
  socket.once('error', () => resolve(false));
});

let brokerProcess = null;
const servers = [];
let browser = null;
const pageErrors = [];
const profile = mkdtempSync(path.join(os.tmpdir(), 'wsreg-chat-cluster-chromium-'));
const cleanup = async () => {
  await browser?.close().catch(() => {});
  for (const server of servers) server.child.kill('SIGKILL');
  brokerProcess?.kill('SIGKILL');
  rmSync(profile, { recursive: true, force: true });
};
deadline(110, cleanup);

try {
  const port = await freePort();
  const brokerArgs = broker === 'redis'
    ? [option('--redis-server', '/usr/bin/redis-server'),
       ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', os.tmpdir()]]
    : [option('--nats-server', '/usr/sbin/nats-server'), ['-a', '127.0.0.1', '-p', String(port)]];
  brokerProcess = spawn(brokerArgs[0], brokerArgs[1], { stdio: 'ignore' });
  let up = false;
  for (const until = Date.now() + 10000; !up && Date.now() < until;) {
    up = await accepting(port);
    if (!up) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(up, `${broker} did not start on port ${port}`);
  const url = `${broker}://127.0.0.1:${port}`;

  for (const node of [1, 2]) {
    servers.push(await startServer(config.server, ['--policy', config.policy, `--${broker}`, url,
                                                   '--node-id', String(node)]));
  }

  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 960, height: 540 },
  });

  async function joinAs(nick, room, server) {
    const page = await browser.newPage();
    page.on('pageerror', (error) => pageErrors.push(`${nick}'s page: ${error.message}`));
    await page.goto(`http://127.0.0.1:${server.port}/`);
    await page.locator('#status', { hasText: /^connected$/ }).waitFor();
    await page.fill('#nick', nick);
    await page.fill('#room', room);
    await page.click('#join');
    await page.locator('#send:enabled').waitFor();
    return page;
  }
  const members = (page) => page.locator('#members li').allTextContents();
  const lines = (page) => page.locator('#messages li').allTextContents();
  const texts = async (page) => (await lines(page)).map((l) => l.replace(/^\d\d:\d\d:\d\d\s*/, ''));
  // The member list as the page shows it, once it shows `expected`.
  const listsExactly = async (page, expected) => {
    for (const until = Date.now() + 15000; Date.now() < until;) {
      const now = await members(page);
      if (JSON.stringify(now) === JSON.stringify(expected)) return;
      await page.waitForTimeout(50);
    }
    assert.deepEqual(await members(page), expected, 'the member list');
  };

  const alice = await joinAs('alice', 'lobby', servers[0]);
  const bob = await joinAs('bob', 'lobby', servers[1]);
  const carol = await joinAs('carol', 'garden', servers[1]);

  // One member list across both servers.
  await listsExactly(alice, ['alice', 'bob']);
  await listsExactly(bob, ['alice', 'bob']);

  await alice.fill('#text', 'hello from server 1');
  await alice.click('#send');
  await bob.locator('#messages li', { hasText: 'hello from server 1' }).waitFor();
  assert.ok((await texts(bob)).includes('alice: hello from server 1'), 'bob sees who said it');
  await bob.fill('#text', 'hi from server 2');
  await bob.click('#send');
  await alice.locator('#messages li', { hasText: 'hi from server 2' }).waitFor();
  await bob.locator('#messages li', { hasText: 'hi from server 2' }).waitFor();
  // Each line once on each page: a node never delivers its own publish twice.
  for (const page of [alice, bob]) {
    const all = await texts(page);
    assert.equal(all.filter((t) => t === 'alice: hello from server 1').length, 1);
    assert.equal(all.filter((t) => t === 'bob: hi from server 2').length, 1);
  }

  // carol, in another room on server 2, sees nothing of the lobby.
  await carol.fill('#text', 'carol was here');
  await carol.click('#send');
  await carol.locator('#messages li', { hasText: 'carol was here' }).waitFor();
  const carolLines = (await lines(carol)).join('\n');
  for (const word of ['alice', 'bob', 'hello']) {
    assert.ok(!carolLines.includes(word), `carol's page shows "${word}":\n${carolLines}`);
  }
  assert.deepEqual(await members(carol), ['carol']);

  // bob leaves (closes his page): alice, on the other server, sees him go.
  await bob.close();
  await listsExactly(alice, ['alice']);
  assert.deepEqual(pageErrors, [], 'no JavaScript error on any page');

  for (const server of servers) assert.equal(await server.stop(), 0, 'chat_server exits 0 on SIGTERM');
  servers.length = 0;
  console.log(`PASS: two chat servers over ${broker} are one chat`);
  await cleanup();
  process.exit(0);
} catch (error) {
  console.error(`FAIL: ${error.stack ?? error}`);
  for (const server of servers) console.error(`--- server output:\n${server.output()}`);
  await cleanup();
  process.exit(1);
}
