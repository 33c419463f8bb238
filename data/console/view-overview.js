// view-overview.js — health, uptime, plugins (failed and refused ones with
// their reason), connections and counters. Counters move with every stats
// point; the rest is the health object, fetched again when agents come or go.

import { LineChart } from './chart.js';
import { badge, button, card, empty, fmt, h, replace, stat, statusBadge, table } from './ui.js';

const KIND_ORDER = ['transport', 'agent', 'router', 'provider'];

export default {
  id: 'overview',
  title: 'Overview',
  subtitle: 'How the daemon is doing right now.',
  mount(root, app) {
    const stats = h('div', { class: 'stats-row', id: 'overview-stats' });
    const traffic = h('div', { class: 'spark-row' });
    const counters = h('div', { id: 'overview-counters' });
    const plugins = h('div', { id: 'overview-plugins' });
    const failed = h('div', { id: 'overview-failed' });
    const paths = h('div', { class: 'paths' });
    const sparks = [
      { key: 'requests_per_s', label: 'Requests/s', color: '#4f46e5', format: fmt.num },
      { key: 'deliveries_per_s', label: 'Deliveries/s', color: '#0891b2', format: fmt.num },
      { key: 'connections', label: 'Connections', color: '#16a34a', format: fmt.int },
    ].map((s) => {
      const chart = new LineChart({ axes: false, color: s.color, windowMs: 120000, label: s.label, height: 44 });
      const value = h('span', { class: 'spark-value' });
      traffic.append(h('div', { class: 'spark' }, h('div', { class: 'spark-head' }, h('span', { text: s.label }), value), chart.el));
      return Object.assign(s, { chart, value });
    });

    root.append(stats,
      h('div', { class: 'grid-2' },
        card('Traffic, last two minutes', {}, traffic),
        card('Counters', {}, counters)),
      failed,
      card('Plugins', { actions: button('Refresh', () => app.refreshHealth(), 'ghost') }, plugins),
      paths);

    function drawSparks() {
      for (const s of sparks) {
        const v = app.stats.series[s.key];
        s.chart.setData(app.stats.t, v);
        s.value.textContent = v.length ? s.format(v[v.length - 1]) : '–';
      }
    }

    function drawStats() {
      const hh = app.health;
      if (!hh) return replace(stats, empty('Waiting for the daemon…'));
      const last = app.stats.last;
      const comp = hh.completions || {};
      const totals = (last && last.totals) || {};
      replace(stats,
        stat('Status', statusBadge(hh.status), hh.failed_plugins && hh.failed_plugins.length ? `${hh.failed_plugins.length} plugin(s) not running` : 'all plugins running'),
        stat('Uptime', fmt.duration(app.uptime()), 'since ' + new Date(hh.started_at).toLocaleString()),
        stat('Connections', fmt.int(last ? last.connections : hh.connections), `${fmt.int(hh.subscriptions)} subscriptions`, { id: 'stat-connections' }),
        stat('Agents', fmt.int(hh.agents), `${fmt.int(hh.pending_requests)} requests pending`),
        stat('Sessions', fmt.int(hh.active_sessions), `active of ${fmt.int(hh.sessions)}`),
        stat('Completions', fmt.int(totals.completions !== undefined ? totals.completions : comp.completed),
          `${fmt.int(totals.completions_failed !== undefined ? totals.completions_failed : comp.failed)} failed · ${fmt.int(last ? last.completions_running : comp.running)} running`));
    }

    function drawCounters() {
      const hh = app.health;
      if (!hh) return;
      const c = Object.assign({}, hh.counters || {});
      const t = app.stats.last && app.stats.last.totals;
      if (t) {
        c.requests = t.requests;
        c.errors = t.errors;
        c.events_published = t.events_published;
        c.events_delivered = t.events_delivered;
      }
      const comp = hh.completions || {};
      const rows = [
        ['Requests', c.requests], ['Errors answered', c.errors], ['Events published', c.events_published],
        ['Event deliveries', c.events_delivered], ['Agent requests', c.agent_requests], ['Agent timeouts', c.agent_timeouts],
        ['Completion fallbacks', comp.fallbacks], ['Tokens in / out', `${fmt.int(comp.input_tokens)} / ${fmt.int(comp.output_tokens)}`],
      ];
      replace(counters, h('dl', { class: 'kv' }, rows.map(([k, v]) => [h('dt', { text: k }), h('dd', { text: typeof v === 'string' ? v : fmt.int(v) })])));
    }

    function drawPlugins() {
      const hh = app.health;
      if (!hh) return;
      const list = (hh.plugins || []).slice().sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || a.id.localeCompare(b.id));
      const rows = list.map((p) => h('tr', { dataset: { plugin: p.id } },
        h('td', null, badge('running', 'ok')),
        h('td', null, h('strong', { text: p.id })),
        h('td', null, badge(p.kind, 'kind-' + p.kind)),
        h('td', { class: 'num', text: p.version }),
        h('td', { text: p.description }),
        h('td', { class: 'dim mono small', text: p.file, title: p.file })));
      replace(plugins, table([{ title: '' }, { title: 'Plugin' }, { title: 'Kind' }, { title: 'Version', class: 'num' }, { title: 'What it does' }, { title: 'File' }], rows));
      const f = hh.failed_plugins || [];
      if (!f.length && !hh.plugins_refused) return replace(failed);
      replace(failed, card(`Plugins that do not run (${f.length})`, { class: 'card-bad', id: 'failed-plugins' },
        f.length ? h('ul', { class: 'failures' }, f.map((x) => h('li', { dataset: { plugin: x.id || x.file } },
          h('div', null, badge(/^init failed/.test(x.reason || '') ? 'failed' : 'refused', 'bad'), ' ',
            // no id: its descriptor could not be read; name it by its file
            h('strong', { text: x.id || (x.file || '?').split('/').pop().replace(/\.so$/, '') }),
            x.id ? null : h('span', { class: 'dim small', text: ' (no valid descriptor)' }), ' ',
            h('span', { class: 'dim mono small', text: x.file })),
          h('div', { class: 'reason', text: x.reason })))) : null,
        hh.plugins_refused ? h('p', { class: 'dim small', text: `${hh.plugins_refused} refusal(s) since start, all logged with their reason.` }) : null));
      replace(paths, h('span', { text: 'Sockets ' }), h('code', { text: hh.socket_dir }), h('span', { text: ' · State ' }), h('code', { text: hh.state_dir }));
    }

    function all() {
      drawStats();
      drawCounters();
      drawPlugins();
      drawSparks();
    }

    const offs = [
      app.on('health', all),
      app.on('history', drawSparks),
      app.on('stats', () => {
        drawStats();
        drawCounters();
        drawSparks();
      }),
    ];
    all();
    if (app.sock && app.sock.state === 'open') app.refreshHealth();
    return () => {
      offs.forEach((off) => off());
      sparks.forEach((s) => s.chart.destroy());
    };
  },
};
