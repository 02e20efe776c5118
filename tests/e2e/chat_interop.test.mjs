// chat_interop.test.mjs: the chat protocol through a WebSocket client nobody
// on this project wrote (the ws npm package), at 500 connections.
//
//  1. 500 connections join 10 rooms of 50; every member's last member list
//     names exactly the 50 members of its room.
//  2. Each says one numbered message: every message arrives exactly once at
//     every member of its room, and nowhere else.
//  3. Invalid messages (bad JSON, wrong shapes, oversize fields, a room not
//     joined, a binary frame, ...) each get one error frame, change nothing,
//     reach nobody else, and leave the connection usable.
//  4. A connection that closes is announced to its room ("left" and a list
//     without it) and to nobody else.
//  5. A nickname in the URL (/?nick=N) is checked in the handshake: a bad
//     one is refused with HTTP 400 and a body, before anything is
//     registered; a good one is the connection's fixed nick, so its joins
//     may leave "nick" out and a join with another nick is a nick_mismatch.
//  6. SIGTERM stops the server with exit code 0.
//
// Usage: node chat_interop.test.mjs --server PATH [--policy actor|mutex] [--threads N]
// Exits 0 on success, 1 on failure (or after a 100 s deadline).
import assert from 'node:assert/strict';

import { deadline, npmModule, settings, sleep, startServer, waitFor } from './harness.mjs';

const CONNECTIONS = 500;
const ROOMS = 10;
const PER_ROOM = CONNECTIONS / ROOMS;

const config = settings();
const { WebSocket } = await npmModule('ws');

const roomOf = (i) => `room-${i % ROOMS}`;
const nickOf = (i) => `user-${i}`;
const membersOf = (room) => Array.from({ length: CONNECTIONS }, (_, i) => i)
  .filter((i) => roomOf(i) === room).map(nickOf).sort();

// One ws connection that records every frame it receives.
class Client {
  static async open(url) {
    const client = new Client(new WebSocket(url));
    await new Promise((resolve, reject) => {
      client.socket.once('open', resolve);
      client.socket.once('error', reject);
    });
    return client;
  }

  constructor(socket) {
    this.socket = socket;
    this.frames = [];  // parsed JSON, in arrival order
    this.closed = false;
    socket.on('message', (data, isBinary) => {
      this.frames.push(isBinary ? { type: '<binary>' } : JSON.parse(data.toString('utf8')));
    });
    socket.on('close', () => { this.closed = true; });
  }

  send(message) {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  of(type) { return this.frames.filter((f) => f.type === type); }
  lastMembers() { return this.of('members').at(-1)?.members; }

  // Sends `message` and resolves to the next frame that arrives.
  async ask(message, options) {
    const before = this.frames.length;
    if (options?.binary) this.socket.send(message, { binary: true });
    else this.send(message);
    await waitFor(`an answer to ${JSON.stringify(message).slice(0, 60)}`, () => this.frames.length > before);
    return this.frames[before];
  }
}

let server = null;
const clients = [];
const cleanup = async () => {
  for (const c of clients) c.socket.terminate();
  server?.child.kill('SIGKILL');
};
deadline(100, cleanup);

try {
  server = await startServer(config.server, ['--policy', config.policy, '--threads', config.threads]);
  const url = `ws://127.0.0.1:${server.port}/`;

  // 1. Connect (100 at a time) and join; wait until every member list has settled.
  for (let i = 0; i < CONNECTIONS; i += 100) {
    clients.push(...await Promise.all(
      Array.from({ length: 100 }, () => Client.open(url))));
  }
  clients.forEach((c, i) => c.send({ type: 'join', room: roomOf(i), nick: nickOf(i) }));
  await waitFor('every member list to name 50 members',
                () => clients.every((c) => c.lastMembers()?.length === PER_ROOM), 30000);
  await sleep(200);  // anything still on its way would show below
  clients.forEach((c, i) => {
    assert.deepEqual(c.lastMembers(), membersOf(roomOf(i)), `${nickOf(i)}'s last member list`);
    assert.ok(c.frames.every((f) => f.room === roomOf(i)), `${nickOf(i)} got another room's frame`);
    assert.equal(c.of('error').length, 0, `${nickOf(i)} got an error`);
    assert.ok(c.of('joined').some((f) => f.nick === nickOf(i)), `${nickOf(i)} saw its own join`);
  });
  const members = await clients[0].ask({ type: 'members', room: 'room-0' });
  assert.deepEqual(members, { type: 'members', room: 'room-0', members: membersOf('room-0') });
  console.log(`joined: ${CONNECTIONS} connections in ${ROOMS} rooms`);

  // 2. One numbered message each; each arrives once at each member of its room.
  const counts = clients.map((c) => c.frames.length);
  clients.forEach((c, i) => c.send({ type: 'say', room: roomOf(i), text: `message ${i}` }));
  await waitFor('every member to receive its room\'s 50 messages',
                () => clients.every((c) => c.of('message').length >= PER_ROOM), 30000);
  await sleep(500);  // duplicates or strays would arrive in this time
  clients.forEach((c, i) => {
    const got = c.frames.slice(counts[i]);
    assert.ok(got.every((f) => f.type === 'message' && f.room === roomOf(i)),
              `${nickOf(i)} got a frame that is not a message of its room`);
    const seen = got.map((f) => `${f.nick}: ${f.text}`).sort();
    const expected = clients.map((_, j) => j).filter((j) => roomOf(j) === roomOf(i))
      .map((j) => `${nickOf(j)}: message ${j}`).sort();
    assert.deepEqual(seen, expected, `${nickOf(i)}'s messages`);
  });
  console.log(`said: ${CONNECTIONS} messages, each at its ${PER_ROOM} members exactly once`);

  // 3. Invalid messages: one error frame each, nothing else changes.
  const probe = clients[0];  // user-0 in room-0
  const invalid = [
    ['{not json', 'malformed_json'],
    ['[1, 2, 3]', 'not_an_object'],
    ['"a string"', 'not_an_object'],
    ['{}', 'unknown_type'],
    [{ type: 'dance' }, 'unknown_type'],
    [{ type: 42, room: 'room-0' }, 'unknown_type'],
    [{ type: 'join', nick: 'x' }, 'bad_room'],
    [{ type: 'join', room: 5, nick: 'x' }, 'bad_room'],
    [{ type: 'join', room: '', nick: 'x' }, 'bad_room'],
    [{ type: 'join', room: 'r'.repeat(65), nick: 'x' }, 'bad_room'],
    [{ type: 'join', room: 'r' }, 'bad_nick'],
    [{ type: 'join', room: 'r', nick: 'n'.repeat(33) }, 'bad_nick'],
    [{ type: 'join', room: 'r', nick: 'é'.repeat(17) }, 'bad_nick'],  // 34 bytes
    [{ type: 'join', room: 'r', nick: 'tab\there' }, 'bad_nick'],
    [{ type: 'join', room: 'room-0', nick: 'user-0' }, 'already_in_room'],
    [{ type: 'join', room: 'room-9', nick: 'impostor' }, 'nick_mismatch'],
    [{ type: 'say', room: 'room-0' }, 'bad_text'],
    [{ type: 'say', room: 'room-0', text: '' }, 'bad_text'],
    [{ type: 'say', room: 'room-0', text: ['x'] }, 'bad_text'],
    [{ type: 'say', room: 'room-0', text: 'x'.repeat(2001) }, 'bad_text'],
    [{ type: 'say', room: 'room-1', text: 'sneaking in' }, 'not_in_room'],
    [{ type: 'leave', room: 'room-1' }, 'not_in_room'],
    [{ type: 'members' }, 'bad_room'],
  ];
  const quiet = clients.map((c) => c.frames.length);
  for (const [message, code] of invalid) {
    const answer = await probe.ask(message);
    assert.deepEqual(answer, { type: 'error', error: code }, `answer to ${JSON.stringify(message)}`);
  }
  assert.deepEqual(await probe.ask(Buffer.from([0xde, 0xad, 0xbe, 0xef]), { binary: true }),
                   { type: 'error', error: 'binary_frame' });
  // Still usable, still in room-0 with its nick; the rooms did not change.
  assert.deepEqual(await probe.ask({ type: 'members', room: 'room-0' }),
                   { type: 'members', room: 'room-0', members: membersOf('room-0') });
  assert.deepEqual(await probe.ask({ type: 'members', room: 'r' }),
                   { type: 'members', room: 'r', members: [] });
  await sleep(300);
  clients.forEach((c, i) => {
    if (i !== 0) assert.equal(c.frames.length, quiet[i], `${nickOf(i)} heard of user-0's mistakes`);
  });
  assert.ok(!probe.closed, 'the probe connection stayed open');
  // The limits are inclusive: a 32-byte nick and a 2000-byte text are fine,
  // and a 17th room is one too many.
  const limits = await Client.open(url);
  clients.push(limits);
  for (let r = 0; r < 16; ++r) {
    const room = `limits-${r}`;
    assert.deepEqual(await limits.ask({ type: 'join', room, nick: 'é'.repeat(16) }),
                     { type: 'joined', room, nick: 'é'.repeat(16) });
    // The member list follows "joined": wait for it before the next ask.
    await waitFor(`the member list of ${room}`, () => limits.of('members').at(-1)?.room === room);
  }
  assert.deepEqual(await limits.ask({ type: 'join', room: 'limits-16', nick: 'é'.repeat(16) }),
                   { type: 'error', error: 'too_many_rooms' });
  const long = 'ü'.repeat(1000);  // 2000 bytes
  assert.deepEqual(await limits.ask({ type: 'say', room: 'limits-0', text: long }),
                   { type: 'message', room: 'limits-0', nick: 'é'.repeat(16), text: long });
  console.log(`invalid: ${invalid.length + 1} kinds of bad message, one error frame each`);

  // 4. user-1 closes: room-1 hears it left, no one else hears anything.
  const heard = clients.map((c) => c.frames.length);
  clients[1].socket.close();
  const room1 = clients.filter((_, i) => i !== 1 && i < CONNECTIONS && roomOf(i) === 'room-1');
  const expectedList = membersOf('room-1').filter((n) => n !== 'user-1');
  await waitFor('room-1 to hear that user-1 left', () => room1.every(
    (c) => c.of('left').some((f) => f.nick === 'user-1') &&
           c.lastMembers().length === PER_ROOM - 1), 10000);
  await sleep(300);
  clients.forEach((c, i) => {
    if (i === 1) return;
    const got = c.frames.slice(heard[i]);
    if (i < CONNECTIONS && roomOf(i) === 'room-1') {
      assert.deepEqual(got, [{ type: 'left', room: 'room-1', nick: 'user-1' },
                             { type: 'members', room: 'room-1', members: expectedList }],
                       `${nickOf(i)} on user-1's leaving`);
    } else {
      assert.deepEqual(got, [], `connection ${i} heard of user-1's leaving`);
    }
  });
  console.log('left: a closed connection is announced to its room only');

  // 5. ?nick= in the handshake.
  const refusal = (query) => new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url}?${query}`);
    socket.once('open', () => reject(new Error(`?${query} was admitted`)));
    socket.once('unexpected-response', (request, response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk) => { body += chunk; });
      response.on('end', () => resolve({ status: response.statusCode, body }));
    });
    socket.once('error', () => {});  // follows the unexpected response
  });
  const badNick = 'bad nick: 1 to 32 bytes of UTF-8, no control characters\n';
  for (const query of ['nick=', `nick=${'n'.repeat(33)}`, 'nick=tab%09here', 'nick=%FF%FE']) {
    assert.deepEqual(await refusal(query), { status: 400, body: badNick }, `?${query}`);
  }
  const quietNow = clients.map((c) => c.frames.length);
  const ann = await Client.open(`${url}?nick=${encodeURIComponent('ann é')}`);
  clients.push(ann);
  assert.deepEqual(await ann.ask({ type: 'join', room: 'nick-room' }),
                   { type: 'joined', room: 'nick-room', nick: 'ann é' });
  await waitFor('the member list of nick-room', () => ann.of('members').at(-1)?.room === 'nick-room');
  assert.deepEqual(ann.lastMembers(), ['ann é']);
  assert.deepEqual(await ann.ask({ type: 'join', room: 'other', nick: 'bob' }),
                   { type: 'error', error: 'nick_mismatch' });
  assert.deepEqual(await ann.ask({ type: 'say', room: 'nick-room', text: 'hi' }),
                   { type: 'message', room: 'nick-room', nick: 'ann é', text: 'hi' });
  clients.forEach((c, i) => {
    if (i < quietNow.length) assert.equal(c.frames.length, quietNow[i], `connection ${i} heard of ann`);
  });
  console.log('nick: bad ?nick= refused with 400, a good one is the connection\'s nick');

  // 6. Stop.
  for (const c of clients) c.socket.close();
  const code = await server.stop();
  assert.equal(code, 0, `chat_server exited ${code} after SIGTERM; output:\n${server.output()}`);
  console.log(`chat_interop: ok (policy ${config.policy}, threads ${config.threads})`);
} catch (error) {
  console.error(`FAIL: ${error.stack ?? error}`);
  if (server) console.error(`chat_server output:\n${server.output()}`);
  await cleanup();
  process.exit(1);
}
process.exit(0);
