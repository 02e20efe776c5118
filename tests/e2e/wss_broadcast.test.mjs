// wss_broadcast.test.mjs: 500 wss:// connections of a WebSocket client nobody
// on this project wrote (the ws npm package, over Node's TLS) to
// broadcast_server --tls-cert/--tls-key, under each policy.
//
//  1. All 500 open over TLS (with a certificate made for the run).
//  2. Every connection receives every tick from the first one all of them
//     can see: 30 consecutive sequence numbers, none missing, none twice.
//  3. A text message one client sends is relayed to all 500.
//  4. A client that speaks plain WebSocket (ws://) to the TLS port is
//     refused, and the 500 notice nothing.
//  5. SIGTERM stops the server with exit code 0; every client is closed
//     with 1001.
//  6. Once more under ActorPolicy with --deflate (TlsDeflateServer): every
//     connection negotiates permessage-deflate (ws offers it by default), and
//     a 4 KiB text relayed to all 500 arrives whole, compressed once for all.
//
// Usage: node wss_broadcast.test.mjs --server PATH/broadcast_server [--threads N]
// Exits 0 on success, 1 on failure (or after a 200 s deadline).
import assert from 'node:assert/strict';

import { deadline, makeTestCertificate, npmModule, settings, startServer, waitFor } from './harness.mjs';

const CONNECTIONS = 500;
const TICKS = 30;

const config = settings();
const { WebSocket } = await npmModule('ws');
const certificate = makeTestCertificate();

let server = null;
let clients = [];
const cleanup = async () => {
  for (const c of clients) c.socket.terminate();
  server?.child.kill('SIGKILL');
  certificate.remove();
};
deadline(200, cleanup);

// One wss connection that records the tick numbers and texts it receives.
function open(url) {
  const client = { seqs: [], texts: [], closeCode: null, opened: false };
  client.socket = new WebSocket(url, { rejectUnauthorized: false });  // the test's own certificate
  client.socket.on('open', () => { client.opened = true; });
  client.socket.on('message', (data) => {
    const text = data.toString();
    const message = JSON.parse(text);
    if (typeof message.seq === 'number') client.seqs.push(message.seq);
    else client.texts.push(message);
  });
  client.socket.on('close', (code) => { client.closeCode = code; });
  client.socket.on('error', () => {});
  return client;
}

let exitCode = 0;
for (const [policy, deflate] of [['actor', false], ['mutex', false], ['actor', true]]) {
  try {
    server = await startServer(config.server, ['--policy', policy, '--threads', config.threads,
                                               '--rate', '50', ...certificate.serverArgs,
                                               ...(deflate ? ['--deflate'] : [])]);
    assert.match(server.output(), /, tls/, 'the server says it speaks TLS');
    const url = `wss://127.0.0.1:${server.port}/`;

    // In batches of 100, so that no TLS handshake waits behind 499 others
    // in this one Node thread (on a busy machine that could pass the
    // server's handshake_timeout, which would then rightly drop it).
    clients = [];
    for (let first = 0; first < CONNECTIONS; first += 100) {
      const batch = Array.from({ length: 100 }, () => open(url));
      clients.push(...batch);
      await waitFor(`wss connections ${first}-${first + 99} to open`,
                    () => batch.every((c) => c.opened || c.closeCode !== null), 30000);
      const failed = batch.filter((c) => !c.opened).length;
      assert.equal(failed, 0, `${failed} of wss connections ${first}-${first + 99} failed to open`);
    }

    // From the first tick every connection has seen, TICKS consecutive ones.
    await waitFor('a tick on every connection', () => clients.every((c) => c.seqs.length > 0), 10000);
    const from = Math.max(...clients.map((c) => c.seqs[0]));
    await waitFor(`ticks ${from}..${from + TICKS - 1} on every connection`,
                  () => clients.every((c) => c.seqs.at(-1) >= from + TICKS - 1), 20000);
    for (const [i, c] of clients.entries()) {
      const seen = c.seqs.filter((s) => s >= from && s < from + TICKS);
      assert.deepEqual(seen, Array.from({ length: TICKS }, (_, k) => from + k),
                       `connection ${i} under ${policy} missed or repeated a tick`);
      // And in order, with nothing missing anywhere in what it got.
      for (let k = 1; k < c.seqs.length; k++) {
        assert.equal(c.seqs[k], c.seqs[k - 1] + 1, `connection ${i}: tick ${c.seqs[k - 1]} then ${c.seqs[k]}`);
      }
    }

    // A relayed text reaches all 500 (with --deflate, 4 KiB: past the
    // 256-byte threshold, so compressed), then a short marker relayed after
    // it. A connection delivers in order, so once a client has the marker it
    // must have had the text before it: a lost text shows as a marker alone,
    // and a client merely running behind (decrypting 25,000 ticks/s in Node
    // on a busy machine can take seconds) is waited for, not failed.
    const note = deflate ? 'z'.repeat(4096) : 'hello';
    clients[0].socket.send(JSON.stringify({ from: 'client 0', policy, note }));
    clients[0].socket.send(JSON.stringify({ from: 'client 0', marker: true }));
    await waitFor('the relayed marker on every connection',
                  () => clients.every((c) => c.texts.some((t) => t.marker)), 60000);
    for (const [i, c] of clients.entries()) {
      assert.equal(c.texts.length, 2, `connection ${i} got ${c.texts.length} relayed texts`);
      assert.equal(c.texts[0].note, note, `connection ${i}: the text before the marker`);
    }
    const negotiated = clients.filter((c) => c.socket.extensions.includes('permessage-deflate')).length;
    assert.equal(negotiated, deflate ? CONNECTIONS : 0, 'connections with permessage-deflate');

    // Plain ws:// to the TLS port: refused, and nobody else notices.
    const plain = new WebSocket(`ws://127.0.0.1:${server.port}/`);
    const refused = await new Promise((resolve) => {
      plain.on('open', () => resolve(false));
      plain.on('error', () => resolve(true));
      plain.on('close', () => resolve(true));
    });
    assert.ok(refused, 'a plain ws:// client was served on the TLS port');
    const before = clients.map((c) => c.seqs.length);
    await waitFor('more ticks on every connection', () => clients.every((c, i) => c.seqs.length > before[i] + 2));
    assert.ok(clients.every((c) => c.closeCode === null), 'a wss connection closed');

    const code = await server.stop();
    assert.equal(code, 0, `broadcast_server exited ${code}; output:\n${server.output()}`);
    await waitFor('every client closed', () => clients.every((c) => c.closeCode !== null));
    const codes = new Set(clients.map((c) => c.closeCode));
    assert.deepEqual([...codes], [1001], `close codes: ${[...codes].join(', ')}`);
    server = null;
    clients = [];
    console.log(`wss_broadcast: ok (policy ${policy}${deflate ? ', permessage-deflate' : ''}, ${CONNECTIONS} wss connections, ticks ${from}..${from + TICKS - 1})`);
  } catch (error) {
    console.error(`FAIL (policy ${policy}): ${error.stack ?? error}`);
    if (server) console.error(`broadcast_server output:\n${server.output()}`);
    exitCode = 1;
    break;
  }
}
await cleanup();
process.exit(exitCode);
