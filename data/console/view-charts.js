// view-charts.js — the last minutes as the daemon recorded them (one point
// a second, stats.history), then live: each new point as it is taken.

import { LineChart } from './chart.js';
import { card, fmt, h, replace } from './ui.js';

const CHARTS = [
  { key: 'requests_per_s', title: 'Requests per second', color: '#4f46e5', format: fmt.num, unit: '/s' },
  { key: 'deliveries_per_s', title: 'Event deliveries per second', color: '#0891b2', format: fmt.num, unit: '/s' },
  { key: 'completion_latency_ms', title: 'Completion latency', color: '#d97706', format: fmt.ms, unit: '', note: 'mean of the completions that ended in each second' },
  { key: 'connections', title: 'Open connections', color: '#16a34a', format: fmt.int, unit: '' },
];

const WINDOWS = [['1 min', 60000], ['5 min', 300000], ['10 min', 600000]];

export default {
  id: 'charts',
  title: 'Charts',
  subtitle: 'The last minutes, kept by the daemon, one point a second.',
  mount(root, app) {
    let windowMs = Number(sessionStorage.getItem('ensemble.window')) || 600000;
    const buttons = WINDOWS.map(([label, ms]) => h('button', {
      type: 'button', class: ['seg', ms === windowMs && 'active'], text: label, dataset: { window: ms },
      onclick: () => {
        windowMs = ms;
        sessionStorage.setItem('ensemble.window', String(ms));
        buttons.forEach((b) => b.classList.toggle('active', Number(b.dataset.window) === ms));
        charts.forEach((c) => c.chart.setWindow(ms));
        summarise();
      },
    }));
    const points = h('span', { class: 'dim small', id: 'chart-points' });
    root.append(h('div', { class: 'toolbar chart-toolbar' }, h('div', { class: 'segmented', role: 'group', 'aria-label': 'time window' }, buttons), points));
    const grid = h('div', { class: 'grid-2 charts' });
    root.append(grid);
    const charts = CHARTS.map((c) => {
      const chart = new LineChart({ color: c.color, format: c.format, windowMs, label: c.title });
      const now = h('span', { class: 'chart-now' });
      const summary = h('div', { class: 'chart-summary dim small' });
      grid.append(card(c.title, { id: 'chart-' + c.key, actions: now }, chart.el, summary, c.note ? h('div', { class: 'dim small', text: c.note }) : null));
      return Object.assign({ chart, now, summary }, c);
    });

    function summarise() {
      const t = app.stats.t;
      for (const c of charts) {
        const v = app.stats.series[c.key];
        const from = t.length ? t[t.length - 1] - windowMs : 0;
        const seen = v.filter((x, i) => x !== null && t[i] >= from);
        const last = v.length ? v[v.length - 1] : null;
        c.now.textContent = last === null ? 'no data' : c.format(last);
        if (!seen.length) replace(c.summary, 'no data in this window');
        else {
          const sum = seen.reduce((a, b) => a + b, 0);
          replace(c.summary, `min ${c.format(Math.min(...seen))} · mean ${c.format(sum / seen.length)} · max ${c.format(Math.max(...seen))}`);
        }
      }
      points.textContent = `${fmt.int(t.length)} points, newest ${t.length ? fmt.clock(t[t.length - 1]) : '–'}`;
      points.dataset.count = t.length;
    }

    function redraw() {
      for (const c of charts) c.chart.setData(app.stats.t, app.stats.series[c.key]);
      summarise();
    }

    const offs = [app.on('stats', redraw), app.on('history', redraw)];
    redraw();
    return () => {
      offs.forEach((off) => off());
      charts.forEach((c) => c.chart.destroy());
    };
  },
};
