// ws-client.mjs — drives ensembled's WebSocket transport with the npm `ws`
// client (Neolith's own clients are neolith-client.mjs).
//
//   node ws-client.mjs native  ws://127.0.0.1:PORT/ws [TOKEN]
//   node ws-client.mjs rhetor  ws://127.0.0.1:PORT/ws/socket/ID [TOKEN]
//
// Prints one JSON line per checked step ({"step", "ok", ...}) and a last line
// {"done": true, "failed": N}; exits 1 when a step failed.  The Python test
// (tests/integration/test_websocket.py) runs it and reads those lines.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');

const [mode, url, token] = process.argv.slice(2);
const TIMEOUT = Number(process.env.WS_CLIENT_TIMEOUT_MS || 10000);
let failed = 0;

function report(step, ok, extra = {}) {
  if (!ok) failed++;
  console.log(JSON.stringify({ step, ok, ...extra }));
}

function check(step, cond, extra = {}) {
  report(step, Boolean(cond), cond ? {} : extra);
}

/* A connection that queues incoming JSON messages and lets a step wait for
 * the next one matching a predicate. */
class Conn {
  constructor(target) {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    this.ws = new WebSocket(target, { headers, perMessageDeflate: false });
    this.queue = [];
    this.waiters = [];
    this.closed = null;
    this.ws.on('message', (data, isBinary) => {
      let msg;
      try {
        msg = JSON.parse(data.toString());
      } catch (e) {
        msg = { unparsable: data.toString(), isBinary };
      }
      this.queue.push(msg);
      this.wake();
    });
    this.ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
    this.ws.on('error', (e) => {
      this.error = e;
      this.wake();
    });
  }

  open() {
    return new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  wake() {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((w) => w());
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  /* The next message for which pred is true; the ones before it are kept
   * in `skipped`. */
  async next(pred = () => true, what = 'a message') {
    const deadline = Date.now() + TIMEOUT;
    for (;;) {
      const i = this.queue.findIndex(pred);
      if (i >= 0) return this.queue.splice(i, 1)[0];
      if (this.closed) throw new Error(`closed (${this.closed.code}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; queue: ${JSON.stringify(this.queue).slice(0, 800)}`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  type(t) {
    return this.next((m) => m.type === t, t);
  }

  close() {
    this.ws.close(1000);
  }
}

async function native() {
  const a = new Conn(url);
  const b = new Conn(url);
  await Promise.all([a.open(), b.open()]);

  a.send({ id: '1', action: 'ping' });
  const r1 = await a.next((m) => m.id === '1', 'reply 1');
  check('native_request_reply', r1.status === 'success' && typeof r1.timestamp === 'string', { r1 });

  a.send({ id: '2', action: 'health' });
  const r2 = await a.next((m) => m.id === '2', 'reply 2');
  const plugins = (r2.data?.plugins || []).map((p) => p.id);
  check('native_health', r2.status === 'success' && plugins.includes('transport-websocket'), { plugins });

  a.send({ id: '3', action: 'subscribe', data: { topics: ['news.*'] } });
  await a.next((m) => m.id === '3', 'subscribed');
  b.send({ id: '4', action: 'publish', data: { topic: 'news.tech', data: { headline: 'ws works', n: 0.1 } } });
  const r4 = await b.next((m) => m.id === '4', 'published');
  const ev = await a.next((m) => m.event === 'news.tech', 'the event');
  check('native_subscribe_publish', r4.status === 'success' && ev.data.headline === 'ws works' && ev.data.n === 0.1 &&
        typeof ev.seq === 'number' && typeof ev.from === 'string', { r4, ev });

  // an external agent over WebSocket
  a.send({ id: '5', action: 'agents.register', data: { name: 'wsagent', actions: ['echo'] } });
  const r5 = await a.next((m) => m.id === '5', 'registered');
  b.send({ id: '6', agent: 'wsagent', action: 'echo', data: { say: 'hi' } });
  const q = await a.next((m) => m.action === 'echo' && !m.status, 'the pushed request');
  a.send({ reply_to: q.id, status: 'success', data: { echoed: q.data.say } });
  const r6 = await b.next((m) => m.id === '6', 'agent reply');
  check('native_agent', r5.status === 'success' && r6.status === 'success' && r6.data.echoed === 'hi', { r5, q, r6 });

  // bad input: an error on the same connection, which stays open
  a.send('{"id": "7", "action": ');
  const r7 = await a.next((m) => m.status === 'error', 'malformed JSON error');
  a.send({ id: '8', action: 'no.such.verb' });
  const r8 = await a.next((m) => m.id === '8', 'unknown action');
  a.send({ id: '9', action: 'ping' });
  const r9 = await a.next((m) => m.id === '9', 'reply 9');
  check('native_bad_input', r7.error?.code === 'INVALID_JSON' && r8.error?.code === 'UNKNOWN_ACTION' && r9.status === 'success',
        { r7, r8, r9 });

  // completions stream to the requester as events
  a.send({ id: '10', action: 'complete', data: { prompt: 'stream over ws', stream: true } });
  const ack = await a.next((m) => m.id === '10', 'complete ack');
  const result = await a.next((m) => m.event === 'COMPLETION_RESULT', 'completion result');
  check('native_completion', ack.data?.status === 'queued' && result.data.result.provider === 'local', { ack, result });

  a.close();
  b.close();
}

async function rhetor() {
  const c = new Conn(url);
  await c.open();
  c.send({ type: 'write', content: 'hello specialist' });
  const read = await c.next((m) => m.type === 'read' || m.type === 'error', 'read');
  check('rhetor_write_read', read.type === 'read' && read.content.includes('hello specialist') && Array.isArray(read.headers),
        { read });
  c.send('not json');
  const e1 = await c.type('error');
  c.send({ type: 'bogus' });
  const e2 = await c.type('error');
  c.send({ type: 'write' });
  const e3 = await c.type('error');
  check('rhetor_errors', e1.code === 'INVALID_JSON' && e2.code === 'INVALID_REQUEST' && e3.code === 'INVALID_PARAMETERS',
        { e1, e2, e3 });
  c.close();
}

const modes = { native, rhetor };
try {
  if (!modes[mode]) throw new Error(`unknown mode ${mode}`);
  await modes[mode]();
} catch (e) {
  report('exception', false, { error: String(e.stack || e) });
}
console.log(JSON.stringify({ done: true, failed }));
process.exit(failed ? 1 : 0);
