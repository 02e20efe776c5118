// tests/e2e/harness.mjs: what both end-to-end tests share: arguments, the
// npm modules, an overall deadline, and the chat_server child process.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/// The test's settings: `--server PATH` (or $CHAT_SERVER), the chat_server
/// binary; `--artifacts DIR` (or $E2E_ARTIFACTS), where screenshots go;
/// `--policy actor|mutex` and `--threads N`, passed to the server.
export function settings() {
  if (Number(process.versions.node.split('.')[0]) < 20) {
    fail(`Node.js ${process.versions.node} is too old: playwright-core 1.65 needs 20 or later`);
  }
  const args = process.argv.slice(2);
  const option = (name, fallback) => {
    const at = args.indexOf(name);
    return at >= 0 && at + 1 < args.length ? args[at + 1] : fallback;
  };
  const server = option('--server', process.env.CHAT_SERVER);
  if (!server) fail('no chat_server: pass --server PATH or set CHAT_SERVER');
  if (!existsSync(server)) fail(`chat_server not found at ${server}: build it first`);
  return {
    server,
    artifacts: option('--artifacts',
                      process.env.E2E_ARTIFACTS ?? path.join(os.tmpdir(), 'wsreg-e2e-artifacts')),
    policy: option('--policy', 'actor'),
    threads: option('--threads', '1'),
    tls: args.includes('--tls'),
  };
}

/// A self-signed certificate for CN=localhost / 127.0.0.1, valid one day, made
/// with the openssl command line in a temporary directory: { cert, key,
/// serverArgs (--tls-cert/--tls-key for an example), remove() }.
export function makeTestCertificate() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wsreg-e2e-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
                             '-days', '1', '-nodes', '-subj', '/CN=localhost',
                             '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
                             '-keyout', key, '-out', cert], { stdio: 'ignore' });
  } catch (error) {
    fail(`openssl could not make a test certificate (${error.message}): scripts/install-deps.sh installs openssl`);
  }
  return { cert, key, serverArgs: ['--tls-cert', cert, '--tls-key', key],
           remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/// Prints why and exits 1.
export function fail(why) {
  console.error(`FAIL: ${why}`);
  process.exit(1);
}

/// Imports an npm module from tests/e2e/node_modules, or fails saying how to
/// install it (static imports would die with a bare ERR_MODULE_NOT_FOUND).
export async function npmModule(name) {
  if (!existsSync(path.join(here, 'node_modules', name, 'package.json'))) {
    fail(`tests/e2e/node_modules/${name} is missing: run \`make test\` ` +
         '(it runs scripts/install-npm-deps.sh, which runs npm ci in tests/e2e)');
  }
  return import(name);
}

/// Fails the test if it is still running `seconds` from now, after
/// `cleanup()` (say, killing the server and the browser).
export function deadline(seconds, cleanup) {
  const timer = setTimeout(async () => {
    console.error(`FAIL: deadline of ${seconds} s passed`);
    try {
      await cleanup();
    } finally {
      process.exit(1);
    }
  }, seconds * 1000);
  timer.unref();
}

/// Resolves when `predicate()` is true, polling every 10 ms; rejects with
/// `what` after `ms`.
export async function waitFor(what, predicate, ms = 10000) {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/// Starts `chat_server --port PORT ...extra` (PORT 0: an ephemeral one) and
/// resolves, once it printed "listening on port N", to { port, child,
/// output(), stop() }. stop() sends SIGTERM and resolves to the exit code
/// (null if killed by a signal).
export function startServer(binary, extra = [], port = 0) {
  const child = spawn(binary, ['--port', String(port), '--address', '127.0.0.1', ...extra],
                      { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`chat_server printed no port within 10 s; output:\n${output}`));
    }, 10000);
    const read = (chunk) => {
      output += chunk;
      const match = /listening on port (\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ port: Number(match[1]), child, output: () => output, stop });
      }
    };
    child.stdout.setEncoding('utf8').on('data', read);
    child.stderr.setEncoding('utf8').on('data', (chunk) => { output += chunk; });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`chat_server exited (${code ?? signal}) before listening:\n${output}`));
    });
  });
}
