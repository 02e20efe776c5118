#!/usr/bin/env node
// ws_server.js: the Node.js variant of the end-to-end broadcast benchmark,
// on the npm package `ws` (its own broadcast pattern: a loop over
// wss.clients calling client.send()). Sends every connection a tick
// {"seq":N,"sent_ns":T} at --rate ticks per second and, like every variant,
// skips a connection whose queued bytes (ws's bufferedAmount) would pass
// --max-buffered-bytes.
//
// Usage: node ws_server.js [--address 127.0.0.1] [--port 0] [--threads T (ignored)]
//          [--rate 10] [--max-buffered-bytes 1048576] [--start-after-connections 0]
// Prints "ws_server: listening on port N (...)" when ready; stops on SIGINT
// or SIGTERM and prints "stopped; sent S, dropped D".
'use strict';

const { WebSocketServer } = require('ws');

function usage(message) {
  process.stderr.write(`ws_server: ${message}\n` +
    'usage: node ws_server.js [--address A] [--port P] [--threads T] [--rate R] ' +
    '[--max-buffered-bytes B] [--start-after-connections N]\n');
  process.exit(2);
}

// The same flags as the C++ servers, parsed by hand: --name value or --name=value.
function parseArguments(argv) {
  const args = {
    address: '127.0.0.1', port: 0, threads: 1, rate: 10, maxBufferedBytes: 1048576,
    startAfterConnections: 0,
  };
  const names = {
    '--address': ['address', String],
    '--port': ['port', Number],
    '--threads': ['threads', Number],
    '--rate': ['rate', Number],
    '--max-buffered-bytes': ['maxBufferedBytes', Number],
    '--start-after-connections': ['startAfterConnections', Number],
  };
  for (let i = 0; i < argv.length; ++i) {
    let [name, value] = argv[i].split(/=(.*)/s);
    if (name === '--help' || name === '-h') usage('help');
    if (!(name in names)) usage(`unknown argument ${argv[i]}`);
    if (value === undefined) {
      if (i + 1 >= argv.length) usage(`${name} needs a value`);
      value = argv[++i];
    }
    const [key, type] = names[name];
    const parsed = type(value);
    if (type === Number && !(Number.isFinite(parsed) && parsed >= 0)) usage(`bad ${name} ${value}`);
    args[key] = parsed;
  }
  if (args.port > 65535) usage(`bad --port ${args.port}`);
  return args;
}

const args = parseArguments(process.argv.slice(2));

// CLOCK_REALTIME in ns: the monotonic hrtime plus its offset to the wall
// clock, taken once (performance.timeOrigin has microsecond precision).
const realtimeOffsetNs =
  BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)) - process.hrtime.bigint();
const realtimeNs = () => process.hrtime.bigint() + realtimeOffsetNs;

let sent = 0;
let dropped = 0;
let stopping = false;
let timer = null;

const wss = new WebSocketServer({
  host: args.address,
  port: args.port,
  perMessageDeflate: false,
  clientTracking: true,
});

wss.on('error', (error) => {
  process.stderr.write(`ws_server: cannot listen on ${args.address}:${args.port}: ${error.message}\n`);
  process.exit(1);
});

// One tick to every client, then the next one at the next multiple of the
// period. Behind schedule, the next one runs at once; behind by more than a
// period, the schedule restarts from now (no catch-up burst beyond one tick).
// Node's timers have 1 ms granularity and fire up to 1 ms late, so a strict
// "restart when late at all" would lose ticks at any rate; the C++ ticker
// waits with microsecond precision and falls behind only under overload.
// Ticks before --start-after-connections clients are open are skipped.
let started = false;
let seq = 0;
let next = 0;
const periodMs = args.rate > 0 ? 1000 / args.rate : 0;
function tick() {
  timer = null;
  if (stopping) return;
  const text = `{"seq":${seq},"sent_ns":${realtimeNs()}}`;
  seq += 1;
  if (!started) started = wss.clients.size >= args.startAfterConnections;
  for (const client of started ? wss.clients : []) {
    if (client.readyState !== 1) { // OPEN
      dropped += 1;
      continue;
    }
    const buffered = client.bufferedAmount;
    if (buffered !== 0 && buffered + text.length > args.maxBufferedBytes) {
      dropped += 1;
      continue;
    }
    client.send(text);
    sent += 1;
  }
  next += periodMs;
  const now = performance.now();
  if (next < now - periodMs) next = now;
  if (next <= now) {
    timer = setImmediate(tick);
  } else {
    timer = setTimeout(tick, next - now);
  }
}

wss.on('listening', () => {
  process.stdout.write(`ws_server: listening on port ${wss.address().port} (node ${process.version}, ` +
    `rate ${args.rate} Hz, max-buffered-bytes ${args.maxBufferedBytes})\n`);
  if (periodMs > 0) {
    next = performance.now();
    tick();
  }
});

// Stop: no more ticks or accepts, 1001 to everyone, at most 2 s for the
// close handshakes, then exit.
function stop() {
  if (stopping) return;
  stopping = true;
  if (timer !== null) {
    clearTimeout(timer);
    clearImmediate(timer);
  }
  for (const client of wss.clients) client.close(1001, 'server shutdown');
  const finish = () => {
    process.stdout.write(`ws_server: stopped; sent ${sent}, dropped ${dropped}\n`);
    process.exit(0);
  };
  const deadline = setTimeout(finish, 2000);
  wss.close(() => {
    clearTimeout(deadline);
    finish();
  });
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
