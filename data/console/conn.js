// conn.js — the console's link to the daemon.
//
// Authentication is the daemon's own: its user on loopback needs nothing;
// anyone else enters the bearer token, kept for this tab only
// (sessionStorage) and sent as "Authorization: Bearer" on fetch() and as
// "?token=" on WebSockets, which browsers cannot give headers.
//
// Live state comes over the native protocol on the WebSocket at /ws: one
// JSON request per frame, replies matched by id, events pushed as they
// happen. A Socket reconnects by itself and subscribes again to what it
// was subscribed to.

const TOKEN_KEY = 'ensemble.token';

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// The daemon refused us: show the token prompt with its reason.
export class AuthError extends Error {}

// A request the daemon answered with an error {code, message, details}.
export class DaemonError extends Error {
  constructor(error, status) {
    super(error && error.message ? error.message : 'request failed');
    this.code = (error && error.code) || 'ERROR';
    this.details = error ? error.details : undefined;
    this.status = status;
  }
}

export async function fetchJSON(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const token = getToken();
  if (token) headers.Authorization = 'Bearer ' + token;
  const resp = await fetch(path, Object.assign({}, options, { headers, cache: 'no-store' }));
  let body = null;
  try {
    body = await resp.json();
  } catch (e) {
    body = null;
  }
  if (resp.status === 401) throw new AuthError(body && body.error ? body.error.message : 'unauthorized');
  if (!resp.ok) throw new DaemonError(body && body.error, resp.status);
  return body;
}

// Redis-style glob (the bus's patterns): * any run, ? one character,
// [abc] [^a] [a-z] classes, \x a literal x.
export function globToRegExp(glob) {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else if (c === '\\' && i + 1 < glob.length) re += '\\' + glob[++i];
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, end).replace(/\\/g, '\\\\');
      if (body[0] === '^') body = '^' + body.slice(1);
      re += '[' + body + ']';
      i = end;
    } else re += c.replace(/[.+^${}()|\]\\/]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

function socketURL() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = getToken();
  return `${scheme}//${location.host}/ws` + (token ? '?token=' + encodeURIComponent(token) : '');
}

// One WebSocket speaking the native protocol.
//   request(action, data, {agent, timeout_ms}) -> Promise of the reply's data
//   on(glob, fn(event)) -> a function that removes the handler
//   subscribe(topics) / unsubscribe(topics): kept across reconnections
//   onopen(socket): after every (re)connection, before queued requests
//   onstate(state): 'connecting' | 'open' | 'closed'
export class Socket {
  constructor(name) {
    this.name = name;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.handlers = [];
    this.topics = new Set();
    this.state = 'closed';
    this.closing = false;
    this.retryMs = 250;
    this.onopen = null;
    this.onstate = null;
    this.failures = 0;
  }

  connect() {
    this.closing = false;
    this.setState('connecting');
    const ws = new WebSocket(socketURL());
    this.ws = ws;
    ws.onopen = async () => {
      this.retryMs = 250;
      this.failures = 0;
      this.setState('open');
      const topics = [...this.topics];
      if (topics.length) this.send({ action: 'subscribe', data: { topics } });
      if (this.onopen) {
        try {
          await this.onopen(this);
        } catch (e) {
          console.warn(this.name, 'onopen', e);
        }
      }
    };
    ws.onmessage = (msg) => this.receive(msg.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const [, p] of this.pending) p.reject(new DaemonError({ code: 'DISCONNECTED', message: 'the connection to the daemon was lost' }));
      this.pending.clear();
      this.setState('closed');
      if (this.closing) return;
      this.failures++;
      setTimeout(() => {
        if (!this.closing && !this.ws) this.connect();
      }, this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    };
  }

  close() {
    this.closing = true;
    if (this.ws) this.ws.close();
    this.ws = null;
    this.setState('closed');
  }

  setState(state) {
    this.state = state;
    if (this.onstate) this.onstate(state, this);
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  request(action, data, opts = {}) {
    const id = 'c' + this.nextId++;
    const msg = { id, action };
    if (data !== undefined) msg.data = data;
    if (opts.agent) msg.agent = opts.agent;
    if (opts.timeout_ms) msg.timeout_ms = opts.timeout_ms;
    return new Promise((resolve, reject) => {
      if (!this.send(msg)) {
        reject(new DaemonError({ code: 'DISCONNECTED', message: 'not connected to the daemon' }));
        return;
      }
      this.pending.set(id, { resolve, reject, full: opts.full });
    });
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      return;
    }
    if (typeof msg.event === 'string') {
      for (const h of this.handlers.slice()) if (h.re.test(msg.event)) h.fn(msg);
      return;
    }
    const p = msg.id !== undefined ? this.pending.get(String(msg.id)) : undefined;
    if (!p) return;
    this.pending.delete(String(msg.id));
    if (msg.status === 'success') p.resolve(p.full ? msg : msg.data);
    else p.reject(new DaemonError(msg.error));
  }

  on(glob, fn) {
    const h = { re: globToRegExp(glob), fn };
    this.handlers.push(h);
    return () => {
      this.handlers = this.handlers.filter((x) => x !== h);
    };
  }

  async subscribe(topics) {
    const fresh = topics.filter((t) => !this.topics.has(t));
    fresh.forEach((t) => this.topics.add(t));
    if (fresh.length && this.state === 'open') await this.request('subscribe', { topics: fresh });
  }

  async unsubscribe(topics) {
    const held = topics.filter((t) => this.topics.has(t));
    held.forEach((t) => this.topics.delete(t));
    if (held.length && this.state === 'open') await this.request('unsubscribe', { topics: held });
  }
}
