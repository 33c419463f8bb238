// ws-bench.mjs — WebSocket event fan-out: ensembled's native /ws protocol
// against a Node `ws` server doing the same work, in one run.
//
// Work measured: N WebSocket subscribers subscribe to "bench.*" (native
// envelope {"id","action":"subscribe","data":{"topics":[...]}}); one publisher
// on the Unix socket publishes {"topic":"bench.tick","data":{...}} as fast as
// replies allow (a window of publishes in flight); every publish is fanned out
// to all N subscribers as an event envelope {"event","data","from","seq",
// "timestamp"}.  Result: events delivered per second, summed over the
// subscribers.  The Node server (this file with --serve) implements that
// envelope, glob subscriptions, a Unix-socket publisher endpoint and a drop
// policy for slow consumers, in its own process (as ensembled is).
//
// Usage (bench-http.sh runs it):
//   NODE_PATH=tests/js/node_modules node tests/bench/ws-bench.mjs \
//     --ensembled ws://127.0.0.1:PORT/ws --socket SOCK/ensemble.sock \
//     [--ensembled-pid PID] [--subscribers 16] [--seconds 5] [--window 256] [--workers 2]
//   Either side alone: --only ensembled | --only node.
// BENCH_PIN_SERVER / BENCH_PIN_LOAD: "taskset -c N" prefixes for the Node
// server and for the client processes.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'js', 'package.json'));
const WebSocket = require('ws');
const { WebSocketServer } = WebSocket;

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) {
      const key = argv[i].slice(2);
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) out[key] = true;
      else { out[key] = next; i++; }
    }
  }
  return out;
}

const opt = args(process.argv.slice(2));
const TOPIC_PATTERN = 'bench.*';
const TOPIC = 'bench.tick';
const PAD = 'x'.repeat(64);

function prefixCmd(envName, cmd, argv) {
  const prefix = (process.env[envName] || '').trim();
  if (!prefix) return [cmd, argv];
  const parts = prefix.split(/\s+/);
  return [parts[0], [...parts.slice(1), cmd, ...argv]];
}

// ------------------------------------------------------------ Node server

function globRegex(pattern) {
  const re = pattern.replace(/[.+^${}()|[\]\\?]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${re}$`);
}

function serve() {
  const maxBuffered = 4 * 1024 * 1024; // like a bounded outbound queue: drop events past it
  const clients = new Set();
  let nextClient = 0;
  let seq = 0;
  let dropped = 0;
  const reply = (id, data) => JSON.stringify({ id, status: 'success', data, timestamp: new Date().toISOString(),
                                               processing_time_ms: 0 });
  const error = (id, code, message) => JSON.stringify({ id, status: 'error', error: { code, message, details: {} } });

  function handle(client, text, send) {
    let msg;
    try { msg = JSON.parse(text); } catch { send(error(null, 'INVALID_JSON', 'malformed JSON')); return; }
    const d = msg.data || {};
    switch (msg.action) {
      case 'subscribe':
        for (const t of d.topics || []) client.patterns.push(globRegex(t));
        send(reply(msg.id, { subscribed: d.topics || [] }));
        break;
      case 'ping':
        send(reply(msg.id, { pong: true }));
        break;
      case 'publish': {
        if (typeof d.topic !== 'string') { send(error(msg.id, 'INVALID_PARAMETERS', 'topic')); return; }
        const event = JSON.stringify({ event: d.topic, data: d.data ?? null, from: client.id, seq: ++seq,
                                       timestamp: new Date().toISOString() });
        let delivered = 0;
        for (const c of clients) {
          if (!c.ws || !c.patterns.some((re) => re.test(d.topic))) continue;
          if (c.ws.bufferedAmount > maxBuffered) { dropped++; continue; }
          c.ws.send(event);
          delivered++;
        }
        send(reply(msg.id, { delivered }));
        break;
      }
      default:
        send(error(msg.id, 'UNKNOWN_ACTION', `unknown action ${msg.action}`));
    }
  }

  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws', perMessageDeflate: false });
  wss.on('connection', (ws) => {
    const client = { id: `c${++nextClient}`, ws, patterns: [] };
    clients.add(client);
    ws.on('message', (data) => handle(client, data.toString(), (t) => ws.send(t)));
    ws.on('close', () => clients.delete(client));
  });
  const sockPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ws-bench-')), 'node.sock');
  const unix = net.createServer((sock) => {
    const client = { id: `c${++nextClient}`, ws: null, patterns: [] };
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk) => {
      buf += chunk;
      let nl;
      const out = [];
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line) handle(client, line, (t) => out.push(t));
      }
      if (out.length) sock.write(out.join('\n') + '\n');
    });
    sock.on('error', () => {});
  });
  unix.listen(sockPath);
  wss.on('listening', () => {
    process.stdout.write(JSON.stringify({ url: `ws://127.0.0.1:${wss.address().port}/ws`, socket: sockPath, pid: process.pid }) + '\n');
  });
  const stop = () => { try { fs.rmSync(path.dirname(sockPath), { recursive: true }); } catch {} process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
}

// ------------------------------------------------------------ subscriber worker

async function subscribeWorker() {
  const url = opt.url;
  const n = Number(opt.n);
  let count = 0;
  let dropped = 0;
  let last = 0;
  const sockets = [];
  await Promise.all(Array.from({ length: n }, (_, i) => new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    sockets.push(ws);
    let subscribed = false;
    ws.on('error', reject);
    ws.on('message', (data) => {
      if (!subscribed) {
        const msg = JSON.parse(data.toString());
        if (msg.id === `sub${i}`) {
          if (msg.status !== 'success') reject(new Error(`subscribe failed: ${data}`));
          subscribed = true;
          resolve();
        }
        return; // a greeting or anything before the reply
      }
      // Counting only: parsing every event would measure this client.
      const s = data.length < 64 ? data.toString() : data.subarray(0, 48).toString();
      if (s.startsWith('{"event":"ensemble.dropped"')) {
        dropped += JSON.parse(data.toString()).data.count;
        return;
      }
      count++;
      last = Date.now();
    });
    ws.on('open', () => ws.send(JSON.stringify({ id: `sub${i}`, action: 'subscribe', data: { topics: [TOPIC_PATTERN] } })));
  })));
  process.send({ ready: true });
  process.on('message', (m) => {
    if (m.report) process.send({ count, dropped, last });
    if (m.quit) { for (const ws of sockets) ws.terminate(); process.exit(0); }
  });
}

// ------------------------------------------------------------ one trial

function startWorkers(url, subscribers, nworkers) {
  const workers = [];
  const per = Math.ceil(subscribers / nworkers);
  for (let left = subscribers; left > 0; left -= per) {
    const [cmd, argv] = prefixCmd('BENCH_PIN_LOAD', process.execPath,
      [fileURLToPath(import.meta.url), '--subscribe', '--url', url, '--n', String(Math.min(per, left))]);
    const child = spawn(cmd, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    workers.push(child);
  }
  return Promise.all(workers.map((w) => new Promise((resolve, reject) => {
    w.once('message', (m) => (m.ready ? resolve() : reject(new Error('worker failed'))));
    w.once('exit', (code) => reject(new Error(`subscriber worker exited with ${code}`)));
  }))).then(() => workers);
}

function report(workers) {
  return Promise.all(workers.map((w) => new Promise((resolve) => {
    w.once('message', resolve);
    w.send({ report: true });
  }))).then((rs) => ({ count: rs.reduce((a, r) => a + r.count, 0), dropped: rs.reduce((a, r) => a + r.dropped, 0),
                       last: Math.max(...rs.map((r) => r.last)) }));
}

function publisher(sockPath, seconds, window) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(sockPath);
    let buf = '';
    let sent = 0;
    let answered = 0;
    let delivered = 0;
    let errors = 0;
    let stopping = false;
    let start;
    const pump = () => {
      if (stopping) return;
      const lines = [];
      while (sent - answered < window) {
        sent++;
        lines.push(`{"id":${sent},"action":"publish","data":{"topic":"${TOPIC}","data":{"i":${sent},"pad":"${PAD}"}}}`);
      }
      if (lines.length) sock.write(lines.join('\n') + '\n');
    };
    sock.setEncoding('utf8');
    sock.on('error', reject);
    sock.on('connect', () => {
      start = Date.now();
      setTimeout(() => { stopping = true; if (answered === sent) done(); }, seconds * 1000);
      pump();
    });
    const done = () => { sock.end(); resolve({ start, sent, delivered, errors, end: Date.now() }); };
    sock.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        if (msg.event) continue; // the daemon's own events, if any
        answered++;
        if (msg.status === 'success') delivered += msg.data.delivered ?? 0;
        else errors++;
      }
      if (stopping) { if (answered === sent) done(); } else pump();
    });
  });
}

// CPU seconds (user + system) a process has used so far, or null.
function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100)
  } catch { return null; }
}

async function trial(name, url, sockPath, subscribers, seconds, window, nworkers, serverPid) {
  const workers = await startWorkers(url, subscribers, nworkers);
  try {
    const cpu0 = serverPid ? cpuSeconds(serverPid) : null;
    const pub = await publisher(sockPath, seconds, window);
    // Wait for the fan-out to drain: counts stop moving, or reach what was promised.
    let r = await report(workers);
    let stableSince = Date.now();
    let prev = r.count;
    while (r.count + r.dropped < pub.delivered && Date.now() - stableSince < 1500) {
      await new Promise((res) => setTimeout(res, 100));
      r = await report(workers);
      if (r.count !== prev) { prev = r.count; stableSince = Date.now(); }
    }
    const elapsed = Math.max(r.last, pub.end) - pub.start;
    const cpu1 = serverPid ? cpuSeconds(serverPid) : null;
    const cpu = cpu0 !== null && cpu1 !== null ? `, server CPU ${Math.round((100 * (cpu1 - cpu0)) / (elapsed / 1000))}%` : '';
    const rate = r.count / (elapsed / 1000);
    const lost = pub.delivered - r.count - r.dropped;
    console.log(`  ${name.padEnd(22)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} events/s   ` +
                `(${pub.sent.toLocaleString('en-US')} publishes = ${Math.round(pub.sent / (elapsed / 1000)).toLocaleString('en-US')}/s, ` +
                `${r.count.toLocaleString('en-US')} received in ${(elapsed / 1000).toFixed(2)} s` +
                `${r.dropped ? `, ${r.dropped} dropped (slow consumer)` : ''}${lost > 0 ? `, ${lost} missing` : ''}` +
                `${pub.errors ? `, ${pub.errors} publish errors` : ''}${cpu})`);
    return rate;
  } finally {
    for (const w of workers) { try { w.send({ quit: true }); } catch {} }
  }
}

async function main() {
  const subscribers = Number(opt.subscribers || 16);
  const seconds = Number(opt.seconds || 5);
  const window = Number(opt.window || 256);
  const nworkers = Number(opt.workers || 2);
  const only = opt.only;
  let rateE = null;
  let rateN = null;

  console.log(`  ${subscribers} subscribers in ${nworkers} client processes, one Unix-socket publisher, ` +
              `${window} publishes in flight, ${seconds} s each`);
  if (only !== 'node') {
    if (!opt.ensembled || !opt.socket) throw new Error('--ensembled URL and --socket PATH are needed');
    rateE = await trial('ensembled /ws', opt.ensembled, opt.socket, subscribers, seconds, window, nworkers,
                        opt['ensembled-pid'] ? Number(opt['ensembled-pid']) : null);
  }
  if (only !== 'ensembled') {
    const [cmd, argv] = prefixCmd('BENCH_PIN_SERVER', process.execPath, [fileURLToPath(import.meta.url), '--serve']);
    const server = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const info = await new Promise((resolve, reject) => {
        let out = '';
        server.stdout.on('data', (c) => { out += c; if (out.includes('\n')) resolve(JSON.parse(out)); });
        server.once('exit', (code) => reject(new Error(`node server exited with ${code}`)));
      });
      rateN = await trial('Node ws server', info.url, info.socket, subscribers, seconds, window, nworkers,
                         info.pid);
    } finally {
      server.kill('SIGTERM');
    }
  }
  if (rateE !== null && rateN !== null) {
    const ratio = rateE / rateN;
    console.log(`  ensembled ${Math.round(rateE).toLocaleString('en-US')} events/s, Node ws ` +
                `${Math.round(rateN).toLocaleString('en-US')} events/s: ratio ${ratio.toFixed(2)}x (target >= 1.0x) ` +
                `${ratio >= 1.0 ? 'PASS' : 'BELOW TARGET'}`);
  }
  process.exit(0);
}

if (opt.serve) serve();
else if (opt.subscribe) subscribeWorker().catch((e) => { console.error(e.message); process.exit(1); });
else main().catch((e) => { console.error(`ws-bench: ${e.stack || e}`); process.exit(1); });
