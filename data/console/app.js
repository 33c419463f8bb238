// app.js — the console's shell: authentication, the live link to the
// daemon, the recent history of its counters, and the views.
//
// Each view module exports {id, title, mount(root, app)}; mount returns a
// function that undoes it. Views learn of changes through app.on():
//   'stats'   (point)  a new point, once a second (stats.watch)
//   'history' ()       the whole history was (re)loaded
//   'health'  (health) a fresh health object
//   'agents'  (event)  an agent came or went
//   'link'    (state)  the main socket's state

import { AuthError, DaemonError, Socket, fetchJSON, getToken, setToken } from './conn.js';
import { button, clear, fmt, h, replace, statusBadge } from './ui.js';
import overview from './view-overview.js';
import agents from './view-agents.js';
import sessions from './view-sessions.js';
import playground from './view-playground.js';
import providers from './view-providers.js';
import events from './view-events.js';
import charts from './view-charts.js';

const VIEWS = [overview, agents, sessions, playground, providers, events, charts];

export const SERIES = ['requests_per_s', 'deliveries_per_s', 'published_per_s', 'errors_per_s', 'completions_per_s',
  'completion_latency_ms', 'connections', 'completions_running'];
const CAPACITY = 600;

// The last ten minutes, one point a second, as the daemon keeps them.
class StatsHistory {
  constructor() {
    this.t = [];
    this.series = Object.fromEntries(SERIES.map((k) => [k, []]));
    this.totals = null;
    this.last = null;
  }

  load(history) {
    this.t = history.t.slice();
    for (const k of SERIES) this.series[k] = (history[k] || []).slice();
  }

  push(point) {
    if (this.t.length && point.t <= this.t[this.t.length - 1]) return;
    this.t.push(point.t);
    for (const k of SERIES) this.series[k].push(point[k] === undefined ? null : point[k]);
    if (this.t.length > CAPACITY) {
      this.t.shift();
      for (const k of SERIES) this.series[k].shift();
    }
    this.totals = point.totals || this.totals;
    this.last = point;
  }
}

class App {
  constructor() {
    this.listeners = new Map();
    this.stats = new StatsHistory();
    this.health = null;
    this.healthAt = 0;
    this.current = null;
    this.unmount = null;
    this.sock = null;
  }

  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }

  emit(name, arg) {
    for (const fn of [...(this.listeners.get(name) || [])]) {
      try {
        fn(arg);
      } catch (e) {
        console.error(name, e);
      }
    }
  }

  // The daemon's answer to a plain request tells whether we are served.
  async probe() {
    try {
      await fetchJSON('/api/stats/history?seconds=1');
      return null;
    } catch (e) {
      return e;
    }
  }

  async start() {
    const problem = await this.probe();
    if (problem instanceof AuthError) return this.askToken(problem.message, Boolean(getToken()));
    if (problem) return this.unreachable(problem);
    document.getElementById('auth').hidden = true;
    this.connect();
    window.addEventListener('hashchange', () => this.route());
    this.route();
  }

  askToken(reason, refused) {
    const box = document.getElementById('auth');
    const input = h('input', { type: 'password', id: 'token-input', autocomplete: 'off', placeholder: 'token', required: true, 'aria-label': 'token' });
    const form = h('form', { class: 'auth-form', id: 'token-form' },
      h('h1', { text: 'Sign in to Ensemble' }),
      h('p', { text: refused ? 'The daemon refused that token.' : 'The daemon did not let this browser in: enter the token from its http-token-file. (Without a token set, it serves only its own user on loopback.)' }),
      h('p', { class: 'auth-reason', text: reason }),
      input,
      h('button', { type: 'submit', class: 'btn btn-primary', text: 'Connect' }),
      h('p', { class: 'auth-note', text: 'The token is kept for this tab only (session storage).' }));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      setToken(input.value.trim());
      this.start();
    });
    replace(box, form);
    box.hidden = false;
    document.body.classList.add('locked');
    input.focus();
  }

  unreachable(err) {
    const box = document.getElementById('auth');
    replace(box, h('div', { class: 'auth-form' },
      h('h1', { text: 'The daemon does not answer' }),
      h('p', { class: 'auth-reason', text: err.message || String(err) }),
      button('Try again', () => this.start(), 'primary')));
    box.hidden = false;
  }

  connect() {
    document.body.classList.remove('locked');
    const sock = new Socket('main');
    this.sock = sock;
    sock.onstate = (state) => {
      this.setLink(state);
      this.emit('link', state);
      // Refused again and again: the token may be gone; ask once more.
      if (state === 'closed' && sock.failures >= 2) {
        this.probe().then((p) => {
          if (p instanceof AuthError) {
            sock.close();
            this.askToken(p.message, Boolean(getToken()));
          }
        });
      }
    };
    sock.onopen = async () => {
      const r = await sock.request('stats.watch', {});
      this.stats.load(r.history);
      this.emit('history');
      await this.refreshHealth();
      this.emit('reconnected');
    };
    sock.on('ensemble.stats', (ev) => {
      this.stats.push(ev.data);
      this.emit('stats', ev.data);
      this.updateHeader();
    });
    sock.on('ensemble.agent.*', (ev) => {
      this.emit('agents', ev);
      this.refreshHealthSoon();
    });
    sock.on('ensemble.budget.*', () => this.emit('budget'));
    sock.subscribe(['ensemble.agent.*', 'ensemble.budget.*']);
    sock.connect();
  }

  setLink(state) {
    const el = document.getElementById('link');
    el.className = 'link link-' + state;
    el.textContent = state === 'open' ? 'live' : state === 'connecting' ? 'connecting…' : 'reconnecting…';
    el.title = state === 'open' ? 'Connected to the daemon over WebSocket' : 'Not connected to the daemon';
  }

  async refreshHealth() {
    try {
      this.health = await this.sock.request('health');
      this.healthAt = Date.now();
      this.emit('health', this.health);
      this.updateHeader();
    } catch (e) {
      if (!(e instanceof DaemonError && e.code === 'DISCONNECTED')) console.warn('health', e);
    }
    return this.health;
  }

  refreshHealthSoon() {
    clearTimeout(this.healthTimer);
    this.healthTimer = setTimeout(() => this.refreshHealth(), 200);
  }

  uptime() {
    return this.health ? this.health.uptime_s + (Date.now() - this.healthAt) / 1000 : null;
  }

  updateHeader() {
    const hh = this.health;
    if (!hh) return;
    replace(document.getElementById('health-badge'), statusBadge(hh.status, { id: 'health-status' }));
    replace(document.getElementById('node-info'),
      h('span', { text: `node ${hh.node_id}` }), h('span', { class: 'sep', text: '·' }),
      h('span', { text: `v${hh.version}` }), h('span', { class: 'sep', text: '·' }),
      h('span', { text: `up ${fmt.duration(this.uptime())}` }));
  }

  route() {
    const id = (location.hash || '#overview').slice(1).split('/')[0];
    const view = VIEWS.find((v) => v.id === id) || VIEWS[0];
    if (this.unmount) this.unmount();
    this.unmount = null;
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === view.id);
    const main = document.getElementById('main');
    clear(main);
    const root = h('div', { class: 'view', id: 'view-' + view.id, dataset: { view: view.id } });
    main.append(h('div', { class: 'view-head' }, h('h1', { text: view.title }), view.subtitle ? h('p', { text: view.subtitle }) : null), root);
    document.title = `${view.title} · Ensemble`;
    this.current = view;
    this.unmount = view.mount(root, this) || null;
  }
}

const app = new App();
window.ensembleConsole = app; // for the curious, in the browser's console
app.start();
