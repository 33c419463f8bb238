// ws-client.mjs — drives ensembled's WebSocket transport with the npm `ws`
// client (the one Neolith and most Node services use).
//
//   node ws-client.mjs neolith ws://127.0.0.1:PORT/ [TOKEN]
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

async function neolith() {
  const c = new Conn(url);
  await c.open();

  const hello = await c.next(() => true, 'the greeting');
  check('connect_health_check_response', hello.type === 'health_check_response' && hello.payload?.status === 'healthy' &&
        typeof hello.payload.timestamp === 'string' && typeof hello.payload.uptime === 'number', { hello });

  c.send({ type: 'ping' });
  const pong = await c.type('pong');
  check('ping_pong', typeof pong.payload?.timestamp === 'string', { pong });

  c.send({ type: 'health_check' });
  const hc = await c.type('health_check_response');
  check('health_check', hc.payload.status === 'healthy' && hc.healthy === true, { hc });

  c.send({ type: 'spawn_session', payload: { orchestratorId: 'orc-1', sessionType: 'code', model: 'local' } });
  const spawned = await c.type('session_spawned');
  const sid = spawned.payload?.sessionId;
  check('spawn_session', typeof sid === 'string' && sid.length > 0 && spawned.payload.status === 'idle' &&
        spawned.payload.session?.orchestrator_id === 'orc-1' && spawned.payload.session?.session_type === 'code',
        { spawned });

  c.send({ type: 'execute_task', payload: { sessionId: sid, task: 'stream this answer please' } });
  const seen = [];
  const chunks = [];
  let done;
  for (;;) {
    const m = await c.next((x) => x.sessionId === sid || x.data?.sessionId === sid || x.type === 'error', 'task events');
    seen.push(m.type);
    if (m.type === 'stream_chunk') {
      if (m.data?.sessionId !== sid || typeof m.data?.chunk !== 'string' || typeof m.data?.metadata !== 'object') {
        check('stream_chunk_shape', false, { m });
      }
      chunks.push(m.data.chunk);
    }
    if (m.type === 'task_completed' || m.type === 'task_failed' || m.type === 'error') {
      done = m;
      break;
    }
  }
  const order = ['task_executing', 'stream_start', 'stream_chunk', 'stream_end', 'task_completed'];
  const positions = order.map((t) => seen.indexOf(t));
  check('execute_task_streams', done.type === 'task_completed' && positions.every((p, i) => p >= 0 && (i === 0 || p > positions[i - 1])) &&
        chunks.length > 0 && chunks.join('') === done.result?.response && done.payload?.result?.response === done.result.response &&
        typeof done.taskId === 'string', { seen, done, chunks });

  c.send({ type: 'session_status', payload: { sessionId: sid } });
  const st = await c.next((m) => m.type === 'session_status_update' && m.payload?.session?.tasks_total !== undefined, 'status');
  check('session_status', st.payload.sessionId === sid && st.payload.status === 'idle' && st.payload.session.tasks_total === 1 &&
        st.payload.session.messages === 2, { st });

  // spawn with a task: runs at once, and this connection watches it
  c.send({ type: 'spawn_session', payload: { orchestratorId: 'orc-2', task: { id: 't1', description: 'a second task' } } });
  const spawned2 = await c.type('session_spawned');
  const sid2 = spawned2.payload.sessionId;
  const done2 = await c.next((m) => (m.type === 'task_completed' || m.type === 'task_failed') && m.sessionId === sid2, 'task 2');
  check('spawn_session_with_task', done2.type === 'task_completed' && done2.result.response.includes('a second task'), { done2 });

  c.send({ type: 'list_sessions' });
  const list = await c.type('sessions_list');
  const ids = (list.payload?.sessions || []).map((s) => s.session_id);
  check('list_sessions', ids.includes(sid) && ids.includes(sid2) && list.payload.total >= 2 && Array.isArray(list.sessions), { list });

  c.send({ type: 'daemon_status' });
  // A periodic update sent before both sessions existed may come first.
  const ds = await c.next((m) => m.type === 'daemon_status_update' && m.payload?.metrics?.totalSessions >= 2,
                          'daemon_status_update');
  const p = ds.payload || {};
  check('daemon_status', p.status === 'healthy' && typeof p.uptime === 'number' && typeof p.activeSessions === 'number' &&
        typeof p.queuedTasks === 'number' && typeof p.metrics === 'object' && p.metrics.totalSessions >= 2 &&
        typeof p.subsystems === 'object' && p.subsystems['transport-websocket']?.status === 'running', { ds });

  c.send({ type: 'stop_session', payload: { sessionId: sid } });
  const stopped = await c.next((m) => m.type === 'session_status_update' && m.payload?.status === 'stopped', 'stopped');
  check('stop_session', stopped.payload.sessionId === sid, { stopped });

  c.send({ type: 'execute_task', payload: { sessionId: sid, task: 'again' } });
  const e0 = await c.type('error');
  check('error_stopped_session', e0.code === 'SESSION_STOPPED' && e0.sessionId === sid, { e0 });

  // errors: the connection stays usable after each
  c.send({ type: 'no_such_type', payload: {} });
  const e1 = await c.type('error');
  check('error_unknown_type', typeof e1.error === 'string' && e1.error.includes('no_such_type'), { e1 });
  c.send('{"type": "ping", ');
  const e2 = await c.type('error');
  check('error_malformed_json', e2.code === 'INVALID_JSON' && typeof e2.error === 'string', { e2 });
  c.send({ type: 'execute_task', payload: { task: 'no session' } });
  const e3 = await c.type('error');
  check('error_missing_session_id', e3.code === 'INVALID_PARAMETERS' && e3.error.includes('sessionId'), { e3 });
  c.send({ type: 'execute_task', payload: { sessionId: sid2 } });
  const e4 = await c.type('error');
  check('error_missing_task', e4.code === 'INVALID_PARAMETERS' && e4.sessionId === sid2, { e4 });
  c.send({ type: 'session_status', payload: { sessionId: 'sess_nope' } });
  const e5 = await c.type('error');
  check('error_unknown_session', e5.code === 'SESSION_NOT_FOUND' && e5.sessionId === 'sess_nope', { e5 });
  c.send([1, 2, 3]);
  const e6 = await c.type('error');
  check('error_not_an_object', e6.code === 'INVALID_REQUEST', { e6 });
  c.send({ type: 'ping' });
  await c.type('pong');
  check('usable_after_errors', true);

  // periodic status (the test sets ws-status-interval-ms low)
  if (process.env.WS_EXPECT_PERIODIC) {
    c.queue = c.queue.filter((m) => m.type !== 'daemon_status_update');
    const periodic = await c.type('daemon_status_update');
    check('periodic_daemon_status_update', periodic.payload?.status === 'healthy', { periodic });
  }
  c.close();
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

const modes = { neolith, native, rhetor };
try {
  if (!modes[mode]) throw new Error(`unknown mode ${mode}`);
  await modes[mode]();
} catch (e) {
  report('exception', false, { error: String(e.stack || e) });
}
console.log(JSON.stringify({ done: true, failed }));
process.exit(failed ? 1 : 0);
