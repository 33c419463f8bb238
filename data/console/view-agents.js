// view-agents.js — the registered agents, what each one can do and keeps
// (its key/value state), and a form to send one a request.

import { DaemonError } from './conn.js';
import { badge, button, card, empty, errorBox, field, fmt, h, json, parseJSONInput, replace, table } from './ui.js';

export default {
  id: 'agents',
  title: 'Agents',
  subtitle: 'Registered agents, their state, and a request to any of them.',
  mount(root, app) {
    let agents = [];
    let selected = null;
    let drawnFor = null; // the agent the form below was made for
    let info = null; // its card, redrawn when the list changes
    let pickAction = () => {}; // fills the form for one of its actions
    const list = h('div', { id: 'agents-list' });
    const detail = h('div', { id: 'agent-detail' });
    root.append(h('div', { class: 'split' },
      card('Registered agents', { actions: button('Refresh', () => load(), 'ghost') }, list),
      detail));

    async function load() {
      try {
        const r = await app.sock.request('agents.list');
        agents = r.agents || [];
        drawList();
        if (!selected && agents.length) select(agents[0].name);
        else if (selected) drawDetail();
        // the form and its answer stay: only the agent's card changes
      } catch (e) {
        replace(list, errorBox(e));
      }
    }

    function drawList() {
      const rows = agents.map((a) => h('tr', {
        class: ['clickable', a.name === selected && 'selected'], dataset: { agent: a.name }, tabindex: 0,
        onclick: () => select(a.name), onkeydown: (e) => e.key === 'Enter' && select(a.name),
      },
      h('td', null, h('span', { class: ['dot', a.connected ? 'dot-ok' : 'dot-off'], title: a.connected ? 'connected' : 'not connected' })),
      h('td', null, h('strong', { text: a.name })),
      h('td', null, badge(a.kind, 'kind-' + a.kind)),
      h('td', { class: 'num', text: (a.actions || []).length }),
      h('td', { class: 'dim', text: a.owner || '' })));
      replace(list, table([{ title: '' }, { title: 'Name' }, { title: 'Kind' }, { title: 'Actions', class: 'num' }, { title: 'Served by' }], rows, { empty: 'No agent is registered.' }));
    }

    function select(name) {
      selected = name;
      drawList();
      drawDetail();
    }

    function infoCard(a) {
      return card(a.name, { actions: badge(a.connected ? 'connected' : 'not connected', a.connected ? 'ok' : 'warn') },
        a.description ? h('p', { text: a.description }) : null,
        h('dl', { class: 'kv' },
          h('dt', { text: 'Kind' }), h('dd', { text: a.kind }),
          h('dt', { text: 'Served by' }), h('dd', { text: a.owner || '–' }),
          h('dt', { text: 'Registered' }), h('dd', { text: fmt.ago(a.registered_at), title: a.registered_at }),
          a.persistent !== undefined ? [h('dt', { text: 'Persistent' }), h('dd', { text: a.persistent ? 'yes' : 'no' })] : null),
        h('h3', { text: 'Actions' }),
        h('div', { class: 'chips' }, (a.actions || []).length ? a.actions.map((x) => h('button', { type: 'button', class: 'chip', text: x, title: (toolOf(a, x) || {}).description || '', dataset: { action: x }, onclick: () => pickAction(x) }))
          : h('span', { class: 'dim', text: 'It did not list its actions.' })));
    }

    function drawDetail() {
      const a = agents.find((x) => x.name === selected);
      if (!a) {
        drawnFor = null;
        return replace(detail, card('Agent', {}, empty('Pick an agent on the left.')));
      }
      if (drawnFor === a.name && info) {
        const fresh = infoCard(a);
        info.replaceWith(fresh);
        info = fresh;
        return;
      }
      drawnFor = a.name;
      const action = h('input', { id: 'req-action', list: 'req-actions', value: (a.actions || [])[0] || '', required: true, autocomplete: 'off' });
      const data = h('textarea', { id: 'req-data', rows: 6, spellcheck: 'false', class: 'mono' });
      data.value = '{}';
      const timeout = h('input', { id: 'req-timeout', type: 'number', min: 1, max: 3600000, value: 10000 });
      const answer = h('div', { id: 'req-answer', class: 'answer' });
      const state = h('div', { id: 'agent-state' });
      const about = h('div', { class: 'tool-about', id: 'req-tool' });
      data.addEventListener('input', () => { data.dataset.touched = '1'; });
      // An action's description and input schema (agents declare them as
      // tools); untouched data becomes a skeleton of its required fields.
      pickAction = (name) => {
        if (action.value !== name) action.value = name;
        const tool = toolOf(a, name);
        replace(about, tool && tool.description ? h('p', { class: 'dim small', text: tool.description }) : null,
          tool && tool.input_schema ? h('details', null, h('summary', { class: 'small', text: 'input schema' }), json(tool.input_schema, { class: 'json-inline' })) : null);
        if (data.dataset.touched !== '1') data.value = JSON.stringify(skeleton(tool && tool.input_schema), null, 2);
      };
      action.addEventListener('input', () => pickAction(action.value.trim()));
      const send = async (e) => {
        e.preventDefault();
        let payload;
        try {
          payload = parseJSONInput(data.value);
        } catch (err) {
          return replace(answer, errorBox({ code: 'INVALID_JSON', message: 'the data is not JSON: ' + err.message }));
        }
        const t0 = performance.now();
        replace(answer, h('div', { class: 'dim', text: 'Waiting for the answer…' }));
        try {
          const reply = await app.sock.request(action.value.trim(), payload, { agent: a.name, timeout_ms: Number(timeout.value) || undefined, full: true });
          replace(answer, h('div', { class: 'answer-head' }, badge('success', 'ok'), h('span', { class: 'dim', text: `${fmt.ms(performance.now() - t0)} round trip · ${fmt.ms(reply.processing_time_ms)} in the daemon` })),
            json(reply.data));
        } catch (err) {
          replace(answer, h('div', { class: 'answer-head' }, badge('error', 'bad'), h('span', { class: 'dim', text: fmt.ms(performance.now() - t0) })),
            errorBox(err), err instanceof DaemonError && err.details ? json(err.details) : null);
        }
      };
      info = infoCard(a);
      replace(detail,
        info,
        card('Send a request', {},
          h('form', { class: 'form', id: 'request-form', onsubmit: send },
            h('datalist', { id: 'req-actions' }, (a.actions || []).map((x) => h('option', { value: x }))),
            h('div', { class: 'form-row' }, field('Action', action), field('Timeout (ms)', timeout)),
            about,
            field('Data (JSON)', data),
            h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn-primary', text: 'Send' }))),
          answer),
        card('State (key/value)', { actions: button('Reload', () => loadState(a.name, state), 'ghost') }, state));
      if (action.value) pickAction(action.value);
      loadState(a.name, state);
    }

    function toolOf(a, name) {
      return (a.tools || []).find((t) => t.name === name) || null;
    }

    // {} with each required property at an empty value of its type.
    function skeleton(schema) {
      const out = {};
      if (!schema || typeof schema !== 'object') return out;
      for (const k of schema.required || []) {
        const p = (schema.properties || {})[k] || {};
        const t = Array.isArray(p.type) ? p.type[0] : p.type;
        out[k] = t === 'integer' || t === 'number' ? 0 : t === 'boolean' ? false : t === 'array' ? [] : t === 'object' ? {} : t === 'null' ? null : '';
      }
      return out;
    }

    async function loadState(name, el) {
      try {
        const r = await app.sock.request('kv.list', { agent: name });
        const keys = (r.keys || []).slice(0, 50);
        if (!keys.length) return replace(el, empty('Nothing stored for this agent.'));
        const values = await Promise.all(keys.map((k) => app.sock.request('kv.get', { agent: name, key: k }).catch((e) => ({ error: e.message }))));
        replace(el, table([{ title: 'Key' }, { title: 'Value' }],
          keys.map((k, i) => h('tr', null, h('td', { class: 'mono', text: k }), h('td', null, json(values[i].value !== undefined ? values[i].value : values[i], { class: 'json-inline' }))))),
        r.keys.length > keys.length ? h('p', { class: 'dim small', text: `and ${r.keys.length - keys.length} more` }) : null);
      } catch (e) {
        replace(el, errorBox(e));
      }
    }

    const offs = [app.on('agents', load), app.on('reconnected', load)];
    load();
    return () => offs.forEach((off) => off());
  },
};
