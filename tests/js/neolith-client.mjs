// neolith-client.mjs — Neolith (wundr's orchestrator-daemon) conformance:
// clients that behave as wundr's own do, written here from what those do
// (packages/@wundr/orchestrator-daemon: src/__tests__/helpers/ws-test-client.ts,
// scripts/test-e2e.ts, src/types/index.ts), with the npm `ws` package:
//
//   Buffering  as WsTestClient: every message is buffered, and also resolves
//              every waiter of its type (without leaving the buffer);
//              waitForMessage(type) takes the first buffered one of that type.
//   NextReply  as the e2e script: sendMessage() resolves with the very next
//              message of any type; waitForMessage(predicate).
//
//   node neolith-client.mjs MODE ws://127.0.0.1:PORT [ARG]
//     greeting        the first frame is the greeting, exactly (both clients)
//     e2e N           the e2e script's sequence N times on fresh connections
//     types           every WSResponse the daemon sends, field by field
//     duplicates      stop answers once; two spawns give two sessions
//     subscriptions   who gets which messages: watchers, other connections
//     errors          wundr's error texts; the connection stays usable
//     queue           execute_task while the spawn's task runs (a slow backend)
//     quiet MS        nothing unasked for MS ms (no periodic status)
//     periodic        a daemon_status_update arrives unasked (the setting on)
//     wundr [MODEL]   WsTestClient's own calls (send, waitForMessage(type)) over
//                     every WSMessage type of types/index.ts, one verdict each,
//                     every WSResponse received checked field by field
//
// Prints one JSON line per checked step ({"step", "ok", ...}) and a last line
// {"done": true, "failed": N}; test_websocket.py runs it and reads them.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');

const [mode, url, arg] = process.argv.slice(2);
let failed = 0;

function report(step, ok, extra = {}) {
  if (!ok) failed++;
  console.log(JSON.stringify({ step, ok, ...extra }));
}

function check(step, cond, extra = {}) {
  report(step, Boolean(cond), cond ? {} : extra);
}

// ------------------------------------------------------------------ clients

/* WsTestClient's semantics. */
class Buffering {
  async connect(target) {
    this.received = [];
    this.waiters = [];
    this.ws = new WebSocket(target);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('Connection timeout after 5000ms')), 5000);
      this.ws.on('open', () => {
        clearTimeout(timer);
        resolve();
      });
      this.ws.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      this.ws.on('message', (data) => {
        let msg;
        try {
          msg = JSON.parse(data.toString());
        } catch {
          return; // non-JSON: ignored
        }
        this.received.push(msg);
        for (let i = this.waiters.length - 1; i >= 0; i--) {
          const w = this.waiters[i];
          if (!w.type || w.type === msg.type) {
            clearTimeout(w.timer);
            this.waiters.splice(i, 1);
            w.resolve(msg);
          }
        }
      });
    });
  }

  send(message) {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  waitForMessage(type, timeout = 5000) {
    if (type) {
      const i = this.received.findIndex((m) => m.type === type);
      if (i !== -1) return Promise.resolve(this.received.splice(i, 1)[0]);
    } else if (this.received.length > 0) {
      return Promise.resolve(this.received.shift());
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.findIndex((w) => w.timer === timer);
        if (i !== -1) this.waiters.splice(i, 1);
        reject(new Error(`Timeout waiting for message${type ? ` of type "${type}"` : ''} after ${timeout}ms`));
      }, timeout);
      this.waiters.push({ resolve, reject, type, timer });
    });
  }

  drain() {
    const all = this.received;
    this.received = [];
    return all;
  }

  // ---- the harness's own, on top of WsTestClient's semantics ----

  /* waitForMessage(type), then the message leaves the buffer (a waiter
   * resolved by it left it there). */
  async take(type, timeout) {
    const m = await this.waitForMessage(type, timeout);
    const i = this.received.indexOf(m);
    if (i !== -1) this.received.splice(i, 1);
    return m;
  }

  /* A ping's pong: everything the daemon said before it is buffered. */
  async settle() {
    this.send({ type: 'ping' });
    await this.take('pong');
  }

  close() {
    this.ws.close();
  }
}

/* The e2e script's semantics. */
class NextReply {
  connect(target) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('Connection timeout')), 5000);
      this.ws = new WebSocket(target);
      this.ws.on('open', () => {
        clearTimeout(timer);
        resolve();
      });
      this.ws.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  sendMessage(message) {
    return new Promise((resolve, reject) => {
      const timeout = setTimeout(() => reject(new Error('Response timeout')), 10000);
      const handler = (data) => {
        clearTimeout(timeout);
        this.ws.off('message', handler);
        try {
          resolve(JSON.parse(data.toString()));
        } catch (error) {
          reject(error);
        }
      };
      this.ws.on('message', handler);
      this.ws.send(JSON.stringify(message));
    });
  }

  waitForMessage(predicate, timeout = 10000) {
    return new Promise((resolve, reject) => {
      const timeoutId = setTimeout(() => {
        this.ws.off('message', handler);
        reject(new Error('Message timeout'));
      }, timeout);
      const handler = (data) => {
        try {
          const response = JSON.parse(data.toString());
          if (predicate(response)) {
            clearTimeout(timeoutId);
            this.ws.off('message', handler);
            resolve(response);
          }
        } catch {
          // ignored, as the script does
        }
      };
      this.ws.on('message', handler);
    });
  }

  close() {
    this.ws.close();
  }
}

// ------------------------------------------------------------------ wundr's types

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const SESSION_STATUS = ['initializing', 'running', 'paused', 'completed', 'failed', 'terminated'];
const TASK_STATUS = ['pending', 'in_progress', 'completed', 'failed', 'cancelled'];
const TASK_TYPE = ['code', 'research', 'analysis', 'custom', 'general'];
const PRIORITY = ['low', 'medium', 'high', 'critical'];

/* Problems with @obj's keys: all of @required, nothing beyond @optional. */
function keys(where, obj, required, optional = []) {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return [`${where}: not an object`];
  const out = [];
  for (const k of required) if (!(k in obj)) out.push(`${where}.${k} missing`);
  for (const k of Object.keys(obj)) if (!required.includes(k) && !optional.includes(k)) out.push(`${where}.${k} extra`);
  return out;
}

function num(where, v) {
  return typeof v === 'number' && Number.isFinite(v) ? [] : [`${where} not a number: ${JSON.stringify(v)}`];
}

function str(where, v) {
  return typeof v === 'string' ? [] : [`${where} not a string: ${JSON.stringify(v)}`];
}

function date(where, v) {
  return typeof v === 'string' && ISO.test(v) ? [] : [`${where} not a JS date string: ${JSON.stringify(v)}`];
}

function oneOf(where, v, values) {
  return values.includes(v) ? [] : [`${where} ${JSON.stringify(v)} not one of ${values}`];
}

function taskProblems(w, t) {
  const p = keys(w, t, ['id', 'type', 'description', 'priority', 'status', 'createdAt', 'updatedAt'], ['assignedTo', 'metadata']);
  if (p.length) return p;
  return [...str(`${w}.id`, t.id), ...oneOf(`${w}.type`, t.type, TASK_TYPE), ...str(`${w}.description`, t.description),
    ...oneOf(`${w}.priority`, t.priority, PRIORITY), ...oneOf(`${w}.status`, t.status, TASK_STATUS),
    ...date(`${w}.createdAt`, t.createdAt), ...date(`${w}.updatedAt`, t.updatedAt),
    ...('assignedTo' in t ? str(`${w}.assignedTo`, t.assignedTo) : []),
    ...('metadata' in t && (typeof t.metadata !== 'object' || t.metadata === null) ? [`${w}.metadata not an object`] : [])];
}

function sessionProblems(w, s) {
  const p = keys(w, s, ['id', 'orchestratorId', 'task', 'type', 'status', 'startedAt', 'memoryContext', 'metrics'], ['endedAt']);
  if (p.length) return p;
  const out = [...str(`${w}.id`, s.id), ...str(`${w}.orchestratorId`, s.orchestratorId), ...taskProblems(`${w}.task`, s.task),
    ...oneOf(`${w}.type`, s.type, ['claude-code', 'claude-flow', 'ruflo']), ...oneOf(`${w}.status`, s.status, SESSION_STATUS),
    ...date(`${w}.startedAt`, s.startedAt), ...('endedAt' in s ? date(`${w}.endedAt`, s.endedAt) : [])];
  const mc = s.memoryContext;
  out.push(...keys(`${w}.memoryContext`, mc, ['scratchpad', 'episodic', 'semantic']));
  if (mc && Array.isArray(mc.episodic) && Array.isArray(mc.semantic)) {
    for (const [i, e] of [...mc.episodic, ...mc.semantic].entries()) {
      const ew = `${w}.memoryContext[${i}]`;
      out.push(...keys(ew, e, ['id', 'content', 'timestamp', 'type'], ['metadata']), ...str(`${ew}.content`, e.content),
        ...date(`${ew}.timestamp`, e.timestamp), ...oneOf(`${ew}.type`, e.type, ['interaction', 'observation', 'decision', 'knowledge']));
    }
  } else {
    out.push(`${w}.memoryContext lists missing`);
  }
  const m = s.metrics;
  out.push(...keys(`${w}.metrics`, m, ['tokensUsed', 'duration', 'tasksCompleted', 'errorsEncountered', 'averageResponseTime']));
  if (m) for (const k of Object.keys(m)) out.push(...num(`${w}.metrics.${k}`, m[k]));
  if (s.status === 'running' && 'endedAt' in s) out.push(`${w}.endedAt while running`);
  return out;
}

function statusProblems(w, st) {
  const p = keys(w, st, ['status', 'uptime', 'activeSessions', 'queuedTasks', 'metrics', 'subsystems']);
  if (p.length) return p;
  const out = [...oneOf(`${w}.status`, st.status, ['initializing', 'running', 'degraded', 'stopped']), ...num(`${w}.uptime`, st.uptime),
    ...num(`${w}.activeSessions`, st.activeSessions), ...num(`${w}.queuedTasks`, st.queuedTasks)];
  out.push(...keys(`${w}.metrics`, st.metrics, ['totalSessionsSpawned', 'totalTasksProcessed', 'totalTokensUsed',
    'averageSessionDuration', 'activeSessions', 'successRate']));
  for (const [k, v] of Object.entries(st.metrics || {})) out.push(...num(`${w}.metrics.${k}`, v));
  if (typeof st.subsystems !== 'object' || st.subsystems === null) out.push(`${w}.subsystems not an object`);
  for (const [name, sub] of Object.entries(st.subsystems || {})) {
    out.push(...keys(`${w}.subsystems.${name}`, sub, ['status', 'lastCheck'], ['errors']),
      ...oneOf(`${w}.subsystems.${name}.status`, sub.status, ['running', 'degraded', 'error', 'stopped']),
      ...date(`${w}.subsystems.${name}.lastCheck`, sub.lastCheck));
  }
  return out;
}

function toolProblems(w, d, start) {
  const p = keys(w, d, ['sessionId', 'toolName', 'status', 'timestamp'], ['toolInput', 'result', 'error']);
  if (p.length) return p;
  return [...str(`${w}.toolName`, d.toolName), ...oneOf(`${w}.status`, d.status, start ? ['started'] : ['completed', 'failed']),
    ...date(`${w}.timestamp`, d.timestamp)];
}

/* Every WSResponse variant of types/index.ts: its problems, [] when it fits. */
function problems(m) {
  switch (m.type) {
    case 'error':
      return [...keys('error', m, ['type', 'error'], ['sessionId', 'code']), ...str('error.error', m.error)];
    case 'pong':
      return keys('pong', m, ['type']);
    case 'session_spawned':
    case 'session_status_update':
      return [...keys(m.type, m, ['type', 'session', 'sessionId']), ...sessionProblems(`${m.type}.session`, m.session),
        ...(m.sessionId === m.session?.id ? [] : [`${m.type}.sessionId is not session.id`])];
    case 'daemon_status_update':
      return [...keys(m.type, m, ['type', 'status']), ...statusProblems('status', m.status)];
    case 'health_check_response':
      return [...keys(m.type, m, ['type', 'healthy']), ...(typeof m.healthy === 'boolean' ? [] : ['healthy not a boolean'])];
    case 'stream_start':
    case 'stream_end':
      return [...keys(m.type, m, ['type', 'sessionId'], ['metadata']), ...str(`${m.type}.sessionId`, m.sessionId)];
    case 'stream_chunk': {
      const out = [...keys(m.type, m, ['type', 'data']), ...keys('stream_chunk.data', m.data, ['sessionId', 'chunk'], ['metadata'])];
      if (m.data?.metadata) {
        out.push(...keys('stream_chunk.data.metadata', m.data.metadata, [], ['type', 'index', 'total']));
        if ('type' in m.data.metadata) out.push(...oneOf('stream_chunk metadata.type', m.data.metadata.type, ['text', 'thinking', 'tool_use']));
      }
      return out;
    }
    case 'tool_call_start':
    case 'tool_call_result':
      return [...keys(m.type, m, ['type', 'data']), ...toolProblems(`${m.type}.data`, m.data, m.type === 'tool_call_start')];
    case 'task_executing':
      return [...keys(m.type, m, ['type', 'sessionId', 'taskId']), ...str('taskId', m.taskId)];
    case 'task_completed':
      return [...keys(m.type, m, ['type', 'sessionId', 'taskId'], ['result']), ...str('taskId', m.taskId)];
    case 'task_failed':
      return [...keys(m.type, m, ['type', 'sessionId', 'taskId', 'error']), ...str('error', m.error)];
    case 'sessions_list':
      return [...keys(m.type, m, ['type', 'sessions']),
        ...(Array.isArray(m.sessions) ? m.sessions.flatMap((s, i) => sessionProblems(`sessions[${i}]`, s)) : ['sessions not a list'])];
    default:
      return [`unknown type ${m.type}`];
  }
}

const GREETING = '{"type":"health_check_response","healthy":true}';

// ------------------------------------------------------------------ modes

async function greeting() {
  // the first frame, as bytes, before anything is sent
  const raw = await new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => reject(new Error('no greeting')), 5000);
    ws.on('message', (data) => {
      clearTimeout(timer);
      ws.close();
      resolve(data.toString());
    });
    ws.on('error', reject);
  });
  check('greeting_bytes', raw === GREETING, { raw });
  const a = new Buffering();
  await a.connect(url);
  const first = await a.waitForMessage();
  check('greeting_buffered', JSON.stringify(first) === GREETING, { first });
  a.close();
  // the e2e client: its first request's answer is the answer, not the greeting
  const b = new NextReply();
  await b.connect(url);
  const hello = await b.sendMessage({ type: 'ping' });
  check('greeting_not_taken_as_reply', hello.type === 'pong', { hello });
  b.close();
}

/* One run of the e2e script's steps; returns the name of the first step
 * that failed, or null; @late counts runs where a second health_check_response
 * (the greeting, late) came after the first request. */
async function e2eOnce(stats) {
  const c = new NextReply();
  await c.connect(url);
  const counter = { health: 0, first: null };
  c.ws.on('message', (d) => {
    const text = d.toString();
    if (counter.first === null) counter.first = text;
    if (text.startsWith('{"type":"health_check_response"')) counter.health++;
  });
  try {
    return await e2eSteps(c);
  } finally {
    // the greeting came after the first request was sent: it was taken for
    // the answer (a second health_check_response follows)
    if (counter.health > 1) stats.late++;
    c.close();
  }
}

async function e2eSteps(c) {
  const health = await c.sendMessage({ type: 'health_check' });
  if (!(health.type === 'health_check_response' && health.healthy)) return 'health_check';
  const ds = await c.sendMessage({ type: 'daemon_status' });
  if (ds.type !== 'daemon_status_update') return `daemon_status (got ${ds.type})`;
  const st = ds.status;
  if (!(st.status === 'running' && typeof st.uptime === 'number' && typeof st.activeSessions === 'number' && st.metrics !== undefined)) {
    return 'daemon_status fields';
  }
  const sp = await c.sendMessage({
    type: 'spawn_session',
    payload: {
      orchestratorId: 'test-orchestrator',
      task: { type: 'custom', description: 'Test task for E2E validation', priority: 'high', status: 'pending' },
      sessionType: 'claude-code',
    },
  });
  if (sp.type !== 'session_spawned') return `spawn_session (got ${sp.type})`;
  const sessionId = sp.session.id;
  if (typeof sessionId !== 'string' || typeof sp.session.status !== 'string') return 'spawn_session fields';
  c.ws.send(JSON.stringify({
    type: 'execute_task',
    payload: { sessionId, task: 'Say hello and confirm you received this test message. Keep your response brief.', streamResponse: true },
  }));
  await c.waitForMessage((msg) => msg.type === 'stream_start' && msg.sessionId === sessionId, 45000);
  const chunks = [];
  const streamHandler = (data) => {
    const r = JSON.parse(data.toString());
    if (r.type === 'stream_chunk' && r.data.sessionId === sessionId) chunks.push(r.data.chunk);
  };
  c.ws.on('message', streamHandler);
  await c.waitForMessage((msg) => msg.type === 'stream_end' && msg.sessionId === sessionId, 45000);
  c.ws.off('message', streamHandler);
  const text = chunks.join('').toLowerCase();
  if (!(text.length > 0 && (text.includes('hello') || text.includes('received') || text.includes('test')))) return 'execute_task text';
  const stop = await c.sendMessage({ type: 'stop_session', payload: { sessionId } });
  if (stop.type !== 'session_status_update') return `stop_session (got ${stop.type})`;
  if (!(stop.session.status === 'terminated' || stop.session.status === 'completed')) return 'stop_session status';
  return null;
}

async function e2e() {
  const runs = Number(arg || 30);
  const stats = { late: 0 };
  const failures = {};
  for (let i = 0; i < runs; i++) {
    let step;
    try {
      step = await e2eOnce(stats);
    } catch (e) {
      step = `exception: ${e.message}`;
    }
    if (step) failures[step] = (failures[step] || 0) + 1;
  }
  const n = Object.values(failures).reduce((a, b) => a + b, 0);
  report('e2e', n === 0, { runs, failed_runs: n, failures, greeting_late: stats.late });
}

async function types() {
  const c = new Buffering();
  await c.connect(url);
  const seen = {};
  const bad = [];
  const note = (m) => {
    seen[m.type] = (seen[m.type] || 0) + 1;
    for (const p of problems(m)) bad.push(p);
  };
  note(await c.take('health_check_response'));
  c.send({ type: 'ping' });
  note(await c.take('pong'));
  c.send({ type: 'health_check' });
  note(await c.take('health_check_response'));
  c.send({ type: 'daemon_status' });
  const ds = await c.take('daemon_status_update');
  note(ds);
  check('daemon_status_update_values', ds.status.status === 'running' && ds.status.subsystems.websocket?.status === 'running' &&
        ds.status.metrics.successRate === 1 && Number.isInteger(ds.status.uptime), { ds });
  const meta = { type: 'code', description: 'look it up', priority: 'critical', assignedTo: 'agent-7', metadata: { ticket: 42 } };
  c.send({ type: 'spawn_session', payload: { orchestratorId: 'orc-types', task: meta, sessionType: 'claude-flow', model: arg || undefined } });
  const spawned = await c.take('session_spawned');
  note(spawned);
  const s = spawned.session;
  check('session_spawned_values', s.orchestratorId === 'orc-types' && s.type === 'claude-flow' && s.status === 'running' &&
        s.task.status === 'in_progress' && s.task.type === 'code' && s.task.priority === 'critical' &&
        s.task.assignedTo === 'agent-7' && s.task.metadata?.ticket === 42 && s.task.description === 'look it up' &&
        /^task_\d+$/.test(s.task.id) && !('endedAt' in s) && spawned.sessionId === s.id, { spawned });
  c.send({ type: 'execute_task', payload: { sessionId: s.id, task: { description: 'stream a second answer' }, context: { from: 'types' } } });
  const executing = await c.take('task_executing');
  note(executing);
  const done = await c.take('task_completed');
  note(done);
  const update = await c.take('session_status_update');
  note(update);
  await c.settle();
  for (const m of c.drain()) note(m);
  check('task_ids', executing.taskId === done.taskId && /^task_\d+$/.test(done.taskId) && done.taskId !== s.task.id &&
        typeof done.result?.response === 'string' && update.session.status === 'completed', { executing, done, update });
  c.send({ type: 'session_status', payload: { sessionId: s.id } });
  const st = await c.take('session_status_update');
  note(st);
  check('session_status_values', st.session.status === 'completed' && st.session.task.status === 'completed' &&
        typeof st.session.endedAt === 'string' && st.session.metrics.tasksCompleted === 2 && st.session.metrics.tokensUsed > 0 &&
        st.session.memoryContext.episodic.length === 2 && st.session.task.metadata?.executionContext?.from === 'types' &&
        st.session.memoryContext.episodic[1].content.startsWith('Task: stream a second answer\nResult: '), { st });
  c.send({ type: 'list_sessions' });
  const list = await c.take('sessions_list');
  note(list);
  check('sessions_list_values', list.sessions.some((x) => x.id === s.id), { list });
  c.send({ type: 'stop_session', payload: { sessionId: s.id } });
  const stopped = await c.take('session_status_update');
  note(stopped);
  check('stop_values', stopped.session.status === 'terminated' && typeof stopped.session.endedAt === 'string', { stopped });
  c.send({ type: 'execute_task', payload: { sessionId: s.id, task: 'after the stop' } });
  note(await c.take('task_executing'));
  const failedTask = await c.take('task_failed');
  note(failedTask);
  check('task_failed_values', failedTask.error === `Session ${s.id} is not running (status: terminated)`, { failedTask });
  c.send({ type: 'nope' });
  note(await c.take('error'));
  await c.settle();
  for (const m of c.drain()) note(m);
  check('field_by_field', bad.length === 0, { problems: bad.slice(0, 30) });
  report('types_seen', true, { seen });
  c.close();
}

async function duplicates() {
  const c = new Buffering();
  await c.connect(url);
  await c.take('health_check_response');
  // both answers are in before anything is taken: two different sessions
  c.send({ type: 'spawn_session', payload: { orchestratorId: 'dup', task: 'first' } });
  c.send({ type: 'spawn_session', payload: { orchestratorId: 'dup', task: 'second' } });
  await c.settle();
  const one = await c.waitForMessage('session_spawned');
  const two = await c.waitForMessage('session_spawned');
  check('two_spawns_two_sessions', one.session.id !== two.session.id, { one, two });
  // stop: one session_status_update, nothing else about it
  c.send({ type: 'stop_session', payload: { sessionId: one.session.id } });
  await c.settle();
  const after = c.drain();
  const updates = after.filter((m) => m.type === 'session_status_update');
  check('stop_answers_once', updates.length === 1 && updates[0].session.id === one.session.id &&
        updates[0].session.status === 'terminated' && after.length === 1, { after });
  // with a task run in between: its end, then the stop; nothing else
  c.send({ type: 'execute_task', payload: { sessionId: two.session.id, task: 'then stop' } });
  await c.take('task_completed');
  await c.settle();
  c.send({ type: 'stop_session', payload: { sessionId: two.session.id } });
  await c.settle();
  const rest = c.drain().filter((m) => m.type === 'session_status_update');
  check('task_end_then_stop', rest.length === 2 && rest[0].session.status === 'completed' && rest[1].session.status === 'terminated',
        { rest });
  c.close();
}

async function subscriptions() {
  const a = new Buffering();
  const b = new Buffering();
  await a.connect(url);
  await b.connect(url);
  await a.take('health_check_response');
  await b.take('health_check_response');
  a.send({ type: 'spawn_session', payload: { orchestratorId: 'subs', task: 'spawned by a' } });
  const spawned = await a.take('session_spawned');
  const sid = spawned.session.id;
  // b hears of the spawn, and of the end of its task (wundr's broadcasts); a of neither
  const told = await b.take('session_status_update');
  const ended = await b.take('session_status_update');
  check('broadcast_to_others', told.session.id === sid && told.session.status === 'running' && ended.session.id === sid &&
        ended.session.status === 'completed', { told, ended });
  await a.settle();
  const aSpawn = a.drain();
  check('spawner_told_once', aSpawn.length === 0, { aSpawn });
  a.send({ type: 'execute_task', payload: { sessionId: sid, task: 'watched by a' } });
  const done = await a.take('task_completed');
  const update = await a.take('session_status_update');
  check('watcher_gets_task_and_update', done.sessionId === sid && update.session.status === 'completed', { done, update });
  // b gets the end of the task as a broadcast, but no stream
  const end = await b.take('session_status_update');
  await b.settle();
  const bLeft = b.drain();
  check('others_get_no_stream', end.session.id === sid && bLeft.length === 0, { end, bLeft });
  // a stops: a gets one answer, b the broadcast; a then hears nothing more of it
  await a.settle();
  a.drain();
  a.send({ type: 'stop_session', payload: { sessionId: sid } });
  const stopA = await a.take('session_status_update');
  const stopB = await b.take('session_status_update');
  check('stop_broadcast', stopA.session.status === 'terminated' && stopB.session.status === 'terminated' && stopB.session.id === sid,
        { stopA, stopB });
  await a.settle();
  const aLeft = a.drain();
  check('nothing_after_stop', aLeft.length === 0, { aLeft });
  a.close();
  b.close();
}

async function errors() {
  const c = new Buffering();
  await c.connect(url);
  await c.take('health_check_response');
  const cases = [
    ['not json', 'Invalid message format'],
    ['[1,2]', 'Invalid message format'],
    ['{"payload":{}}', 'Invalid message format'],
    ['{"type":5}', 'Invalid message format'],
    ['{"type":"pong"}', 'Unknown message type'],
    ['{"type":"nope","payload":{}}', 'Unknown message type'],
    ['{"type":"execute_task"}', 'Invalid message format'],
    ['{"type":"execute_task","payload":{"task":"no session"}}', 'Invalid message format'],
    ['{"type":"execute_task","payload":{"sessionId":"s","task":{"type":"code"}}}', 'Invalid message format'],
    ['{"type":"session_status","payload":"x"}', 'Invalid message format'],
    ['{"type":"stop_session","payload":{"sessionId":7}}', 'Invalid message format'],
    ['{"type":"spawn_session"}', 'Invalid message format'],
    ['{"type":"session_status","payload":{"sessionId":"sess_nope"}}', 'Session not found: sess_nope'],
    ['{"type":"stop_session","payload":{"sessionId":"sess_nope"}}', 'Session not found: sess_nope'],
    ['{"type":"spawn_session","payload":{"task":{"description":"x","type":5}}}', null],
  ];
  for (const [text, expected] of cases) {
    c.send(text);
    await c.settle();
    const got = c.drain();
    const e = got[0] || {};
    const ok = got.length === 1 && e.type === 'error' && (expected === null ? typeof e.error === 'string' : e.error === expected) &&
      !('sessionId' in e) && !('requestType' in e) && problems(e).length === 0;
    check(`error ${text}`, ok, { got, expected });
  }
  c.send({ type: 'execute_task', payload: { sessionId: 'sess_nope', task: 'lost' } });
  await c.settle();
  const got = c.drain();
  check('execute_unknown_session', got.length === 2 && got[0].type === 'task_executing' && got[0].sessionId === 'sess_nope' &&
        got[1].type === 'task_failed' && got[1].error === 'Session not found: sess_nope' && got[1].taskId === got[0].taskId &&
        problems(got[1]).length === 0, { got });
  c.close();
}

async function queue() {
  const c = new Buffering();
  await c.connect(url);
  await c.take('health_check_response');
  c.send({ type: 'spawn_session', payload: { orchestratorId: 'q', task: 'the slow one', model: arg } });
  const spawned = await c.take('session_spawned');
  const sid = spawned.session.id;
  c.send({ type: 'execute_task', payload: { sessionId: sid, task: 'right after' } });
  const executing = await c.take('task_executing', 15000);
  c.send({ type: 'execute_task', payload: { sessionId: sid, task: 'and another' } });
  const executing2 = await c.take('task_executing', 15000);
  report('queued', true); // the test lets the tasks go now
  const first = await c.take('task_completed', 15000);
  const second = await c.take('task_completed', 15000);
  await c.settle();
  const errs = c.drain().filter((m) => m.type === 'error' || m.type === 'task_failed');
  check('execute_while_running_queues', first.taskId === executing.taskId && second.taskId === executing2.taskId &&
        first.taskId !== second.taskId && errs.length === 0, { executing, executing2, first, second, errs });
  c.close();
}

async function quiet() {
  const c = new Buffering();
  await c.connect(url);
  await c.take('health_check_response');
  const ms = Number(arg || 500);
  await new Promise((resolve) => setTimeout(resolve, ms)); // the test is that nothing comes in this time
  const got = c.drain();
  check('no_unasked_messages', got.length === 0, { got });
  c.close();
}

async function periodic() {
  const c = new Buffering();
  await c.connect(url);
  await c.take('health_check_response');
  const ds = await c.take('daemon_status_update', 10000);
  check('periodic_daemon_status_update', problems(ds).length === 0 && ds.status.status === 'running', { ds });
  c.close();
}

/* Every WSMessage type of types/index.ts through WsTestClient's own calls
 * only (send, waitForMessage(type), drain), as a wundr test would write
 * them: one verdict per message type, and every WSResponse that came back
 * checked field by field. */
async function wundr() {
  const c = new Buffering();
  await c.connect(url);
  const verdicts = {};
  const seen = {};
  const bad = [];
  const counted = new WeakSet(); // a message a waiter resolved stays buffered (WsTestClient): count it once
  const got = (m) => {
    if (!counted.has(m)) {
      counted.add(m);
      seen[m.type] = (seen[m.type] || 0) + 1;
      bad.push(...problems(m));
    }
    return m;
  };
  const verdict = async (type, fn) => {
    try {
      verdicts[type] = Boolean(await fn());
    } catch (e) {
      verdicts[type] = false;
      report(`wundr ${type} exception`, false, { error: String(e) });
    }
    check(`wundr ${type}`, verdicts[type]);
  };
  got(await c.waitForMessage('health_check_response')); // the greeting
  await verdict('ping', async () => {
    c.send({ type: 'ping' });
    return got(await c.waitForMessage('pong')).type === 'pong';
  });
  await verdict('health_check', async () => {
    c.send({ type: 'health_check' });
    return got(await c.waitForMessage('health_check_response')).healthy === true;
  });
  await verdict('daemon_status', async () => {
    c.send({ type: 'daemon_status' });
    const m = got(await c.waitForMessage('daemon_status_update'));
    return m.status.status === 'running' && statusProblems('status', m.status).length === 0;
  });
  let session;
  await verdict('spawn_session', async () => {
    c.send({ type: 'spawn_session', payload: { orchestratorId: 'wundr', task: { type: 'research', description: 'Find the spec',
      priority: 'low' }, sessionType: 'claude-code', model: arg || undefined } });
    const m = got(await c.waitForMessage('session_spawned'));
    session = m.session; // response.session, as wundr's clients read it
    return typeof session?.id === 'string' && session.orchestratorId === 'wundr' && session.task.type === 'research' &&
      session.task.description === 'Find the spec' && sessionProblems('session', session).length === 0;
  });
  await verdict('execute_task', async () => {
    c.send({ type: 'execute_task', payload: { sessionId: session.id, task: 'Say hello to the test', streamResponse: true } });
    const executing = got(await c.waitForMessage('task_executing'));
    const start = got(await c.waitForMessage('stream_start'));
    const end = got(await c.waitForMessage('stream_end'));
    const done = got(await c.waitForMessage('task_completed'));
    const update = got(await c.waitForMessage('session_status_update'));
    const chunks = c.drain().filter((m) => m.type === 'stream_chunk').map(got);
    return executing.sessionId === session.id && start.sessionId === session.id && end.sessionId === session.id &&
      chunks.length > 0 && chunks.every((m) => m.data.sessionId === session.id) &&
      chunks.map((m) => m.data.chunk).join('').includes('Say hello to the test') && done.taskId === executing.taskId &&
      update.session.id === session.id && update.session.status === 'completed';
  });
  await verdict('session_status', async () => {
    c.send({ type: 'session_status', payload: { sessionId: session.id } });
    const m = got(await c.waitForMessage('session_status_update'));
    return m.session.id === session.id && m.session.metrics.tasksCompleted === 2;
  });
  await verdict('list_sessions', async () => {
    c.send({ type: 'list_sessions' });
    const m = got(await c.waitForMessage('sessions_list'));
    return Array.isArray(m.sessions) && m.sessions.some((s) => s.id === session.id);
  });
  await verdict('stop_session', async () => {
    c.drain().forEach(got); // what waiters left in the buffer: the stop's answer must be the only message after it
    c.send({ type: 'stop_session', payload: { sessionId: session.id } });
    const m = got(await c.waitForMessage('session_status_update'));
    c.send({ type: 'ping' });
    await c.waitForMessage('pong');
    const extra = c.drain().filter((x) => x !== m && x.type !== 'pong'); // m itself may stay buffered
    return m.session.id === session.id && m.session.status === 'terminated' && typeof m.session.endedAt === 'string' &&
      extra.length === 0;
  });
  await verdict('pong', async () => {
    // a client's pong is not a request: wundr answers Unknown message type; the connection stays usable
    c.send({ type: 'pong' });
    const m = got(await c.waitForMessage('error'));
    c.send({ type: 'execute_task', payload: { sessionId: session.id, task: 'after the stop' } });
    got(await c.waitForMessage('task_executing'));
    const failed = got(await c.waitForMessage('task_failed'));
    return m.error === 'Unknown message type' && failed.error === `Session ${session.id} is not running (status: terminated)`;
  });
  for (const m of c.drain()) got(m);
  check('wundr_field_by_field', bad.length === 0, { problems: bad.slice(0, 30) });
  const passed = Object.values(verdicts).filter(Boolean).length;
  report('wundr_summary', passed === Object.keys(verdicts).length, { passed, total: Object.keys(verdicts).length, verdicts, seen });
  c.close();
}

const modes = { greeting, e2e, types, duplicates, subscriptions, errors, queue, quiet, periodic, wundr };
try {
  if (!modes[mode]) throw new Error(`unknown mode ${mode}`);
  await modes[mode]();
} catch (e) {
  report('exception', false, { error: String(e.stack || e) });
}
console.log(JSON.stringify({ done: true, failed }));
process.exit(failed ? 1 : 0);
