// view-providers.js — today's spend against the daily budget, and each
// provider backend: observed latency, error rate, calls, tokens, cost and
// cooldown. Read again whenever a completion ends (the stats point's totals
// say so) or the budget is exceeded; cooldowns count down in between.

import { badge, button, card, empty, errorBox, fmt, h, replace, s, table } from './ui.js';

export default {
  id: 'providers',
  title: 'Providers and budget',
  subtitle: "Where completions go, what they cost, and how each backend behaves.",
  mount(root, app) {
    const budget = h('div', { id: 'budget' });
    const backends = h('div', { id: 'backends' });
    let providers = [];
    let loadedAt = 0;
    root.append(card("Today's budget", { id: 'budget-card' }, budget),
      card('Backends', { id: 'backends-card', actions: button('Refresh', () => load(), 'ghost') }, backends));

    function gauge(pct) {
      const r = 52;
      const c = 2 * Math.PI * r;
      const used = Math.max(0, Math.min(100, pct));
      const kind = used >= 90 ? 'bad' : used >= 70 ? 'warn' : 'ok';
      return s('svg', { viewBox: '0 0 120 120', class: `gauge gauge-${kind}`, role: 'img', 'aria-label': `${fmt.pct(pct)} of the budget used` },
        s('circle', { cx: 60, cy: 60, r, class: 'gauge-track' }),
        s('circle', { cx: 60, cy: 60, r, class: 'gauge-fill', 'stroke-dasharray': `${(used / 100) * c} ${c}`, transform: 'rotate(-90 60 60)' }),
        s('text', { x: 60, y: 58, 'text-anchor': 'middle', class: 'gauge-pct' }, fmt.pct(pct)),
        s('text', { x: 60, y: 76, 'text-anchor': 'middle', class: 'gauge-label' }, 'used'));
    }

    function drawBudget(b) {
      if (!b.daily_budget) {
        return replace(budget, h('div', { class: 'budget' },
          h('div', null, h('div', { class: 'stat-label', text: 'Spent today' }), h('div', { class: 'stat-value', id: 'budget-spent', text: fmt.usd(b.current_spend) })),
          h('p', { class: 'dim', text: 'No daily budget is set (daily-budget = 0): spending is not limited.' })));
      }
      const bar = h('div', { class: 'bar-fill' });
      bar.style.width = Math.min(100, b.utilization_pct || 0) + '%';
      replace(budget, h('div', { class: 'budget' },
        gauge(b.utilization_pct || 0),
        h('div', { class: 'budget-figures' },
          h('div', { class: 'budget-main' }, h('span', { class: 'stat-value', id: 'budget-spent', text: fmt.usd(b.current_spend) }), h('span', { class: 'dim', text: ` of ${fmt.usd(b.daily_budget)} today` })),
          h('div', { class: 'bar bar-wide' }, bar),
          h('dl', { class: 'kv' },
            h('dt', { text: 'Remaining' }), h('dd', { text: fmt.usd(b.remaining) }),
            h('dt', { text: 'Reserved now' }), h('dd', { text: fmt.usd(b.reserved) }),
            h('dt', { text: 'Day (UTC)' }), h('dd', { text: b.day }),
            h('dt', { text: 'Shared' }), h('dd', { text: b.shared ? 'yes, with every daemon on the same Redis' : 'no, this daemon alone' })))));
    }

    function cooldown(p) {
      const left = (p.cooldown_remaining_ms || 0) - (Date.now() - loadedAt);
      if (p.cooling_down && left > 0) return badge(`cooling down ${Math.ceil(left / 1000)} s`, 'warn', { dataset: { cooldown: p.name } });
      if (p.running) return badge(`${p.running} running`, 'info');
      return badge('ready', 'ok');
    }

    function latencyCell(p) {
      const bar = h('div', { class: 'bar-fill' });
      const worst = Math.max(1, ...providers.map((x) => x.latency_ms || 0));
      bar.style.width = Math.max(2, (100 * (p.latency_ms || 0)) / worst) + '%';
      return h('td', { class: 'latency' }, h('div', { class: 'num', text: fmt.ms(p.latency_ms) }), h('div', { class: 'bar' }, bar),
        h('div', { class: 'dim small', text: `configured ${fmt.ms(p.configured_latency_ms)}` }));
    }

    function drawBackends() {
      const rows = providers.map((p) => h('tr', { dataset: { backend: p.name } },
        h('td', null, h('strong', { text: p.name }), h('div', { class: 'dim small', text: p.provider + (p.local ? ' · local' : '') })),
        h('td', { class: 'small', text: (p.models || []).join(', ') }),
        h('td', { class: 'num', text: fmt.num2(p.quality) }),
        latencyCell(p),
        h('td', { class: ['num', p.error_rate > 0.2 && 'text-bad'], text: fmt.pct((p.error_rate || 0) * 100) }),
        h('td', { class: 'num', text: `${fmt.int(p.calls)} / ${fmt.int(p.failures)}` }),
        h('td', { class: 'num small', text: `${fmt.int(p.input_tokens)} / ${fmt.int(p.output_tokens)}` }),
        h('td', { class: 'num', text: fmt.usd(p.cost) }),
        h('td', { class: 'num small', text: `${fmt.usd(p.cost_per_1k_input)} / ${fmt.usd(p.cost_per_1k_output)}` }),
        h('td', null, cooldown(p))));
      replace(backends, table([{ title: 'Backend' }, { title: 'Models' }, { title: 'Quality', class: 'num' }, { title: 'Latency' },
        { title: 'Errors', class: 'num' }, { title: 'Calls / failed', class: 'num' }, { title: 'Tokens in / out', class: 'num' },
        { title: 'Cost', class: 'num' }, { title: 'Per 1k in / out', class: 'num' }, { title: 'State' }], rows, { empty: 'No provider backend is configured.' }));
    }

    // The completions ended as of the last read (from the stats totals):
    // a point that says otherwise means the figures moved.
    let seen = null;
    const endedOf = (t) => (t ? (t.completions || 0) + (t.completions_failed || 0) : null);

    async function load() {
      seen = endedOf(app.stats.totals);
      try {
        const [p, b] = await Promise.all([app.sock.request('providers.list'), app.sock.request('budget')]);
        providers = p.providers || [];
        loadedAt = Date.now();
        drawBudget(b);
        drawBackends();
      } catch (e) {
        replace(backends, errorBox(e));
      }
    }

    const offs = [
      app.on('stats', (point) => {
        if (endedOf(point.totals) !== seen) load();
        else if (providers.some((x) => x.cooling_down)) drawBackends();
      }),
      app.on('budget', load),
      app.on('reconnected', load),
    ];
    budget.append(empty('Loading…'));
    load();
    return () => offs.forEach((off) => off());
  },
};
