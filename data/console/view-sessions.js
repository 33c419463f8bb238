// view-sessions.js — sessions and a live view of one: its conversation so
// far, then every event of its stream (session.<id>.*) as it comes: tasks
// queued and started, the answer's chunks, tool calls and their results,
// the outcome.

import { badge, button, card, empty, errorBox, field, fmt, h, json, preview, replace, select, statusBadge, table, toast } from './ui.js';

export default {
  id: 'sessions',
  title: 'Sessions',
  subtitle: 'Long-running conversations and their live stream.',
  mount(root, app) {
    let sessions = [];
    let selected = null;
    let watching = null; // the topic pattern subscribed for the selected session
    const turns = new Map(); // task id -> {el, text, tools}
    const list = h('div', { id: 'sessions-list' });
    const side = h('div', { class: 'stack' });
    const main = h('div', { class: 'stack', id: 'session-main' });
    root.append(h('div', { class: 'split split-wide' }, side, main));

    // ---- the list and a new session
    const model = h('input', { id: 'new-model', placeholder: 'auto', autocomplete: 'off', list: 'model-list' });
    const system = h('input', { id: 'new-system', placeholder: 'optional system prompt', autocomplete: 'off' });
    const models = h('datalist', { id: 'model-list' });
    side.append(card('Sessions', { actions: button('Refresh', () => loadList(), 'ghost') }, list),
      card('New session', {}, h('form', {
        class: 'form', id: 'new-session-form',
        onsubmit: async (e) => {
          e.preventDefault();
          const data = {};
          if (model.value.trim()) data.model = model.value.trim();
          if (system.value.trim()) data.system = system.value.trim();
          try {
            const s = await app.sock.request('sessions.spawn', data);
            toast(`Session ${s.session_id} started`, 'ok');
            await loadList();
            pick(s.session_id);
          } catch (err) {
            toast(err.message, 'bad');
          }
        },
      }, field('Model', model, 'a model a provider serves, or empty to let the router choose'), models, field('System', system),
      h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn-primary', text: 'Start session' })))));

    app.sock.request('providers.list').then((r) => {
      const names = new Set();
      (r.providers || []).forEach((p) => (p.models || []).forEach((m) => names.add(m)));
      replace(models, [...names].map((m) => h('option', { value: m })));
    }).catch(() => {});

    async function loadList() {
      try {
        const r = await app.sock.request('sessions.list');
        sessions = (r.sessions || []).sort((a, b) => (b.updated_at || '').localeCompare(a.updated_at || ''));
        drawList();
      } catch (e) {
        replace(list, errorBox(e));
      }
    }

    function drawList() {
      replace(list, table([{ title: 'Session' }, { title: 'Status' }, { title: 'Tasks', class: 'num' }, { title: 'Updated' }],
        sessions.map((s) => h('tr', {
          class: ['clickable', s.session_id === selected && 'selected'], dataset: { session: s.session_id }, tabindex: 0,
          onclick: () => pick(s.session_id), onkeydown: (e) => e.key === 'Enter' && pick(s.session_id),
        },
        h('td', { class: 'mono small', text: s.session_id }),
        h('td', null, statusBadge(s.status)),
        h('td', { class: 'num', text: s.tasks_total }),
        h('td', { class: 'dim small', text: fmt.ago(s.updated_at) }))), { empty: 'No session yet: start one below.' }));
    }

    // ---- one session
    const head = h('div');
    const transcript = h('div', { class: 'transcript', id: 'transcript' });
    const log = h('ol', { class: 'event-log', id: 'session-events' });
    const task = h('textarea', { id: 'task-input', rows: 2, placeholder: 'A task for this session', required: true });
    const runForm = h('form', {
      class: 'form task-form', id: 'task-form',
      onsubmit: async (e) => {
        e.preventDefault();
        if (!selected || !task.value.trim()) return;
        try {
          await app.sock.request('sessions.execute', { session_id: selected, task: task.value.trim() });
          task.value = '';
        } catch (err) {
          toast(err.message, 'bad');
        }
      },
    }, task, h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'btn btn-primary', text: 'Run task' }),
      button('Stop session', async () => {
        try {
          await app.sock.request('sessions.stop', { session_id: selected });
        } catch (err) {
          toast(err.message, 'bad');
        }
      }, 'danger', { id: 'stop-session' })));
    main.append(card('Session', { id: 'session-card' }, head),
      card('Stream', { id: 'stream-card' }, transcript, runForm),
      card('Events', { id: 'session-events-card', actions: h('span', { class: 'dim small', text: 'session.<id>.*, newest last' }) }, log));

    async function pick(id) {
      if (watching) await app.sock.unsubscribe([watching]).catch(() => {});
      selected = id;
      turns.clear();
      replace(transcript);
      replace(log);
      drawList();
      watching = `session.${id}.*`;
      await app.sock.subscribe([watching]);
      try {
        const s = await app.sock.request('sessions.status', { session_id: id });
        drawHead(s);
        for (const m of s.history || []) transcript.append(bubble(m.role, m.content));
        if (s.status === 'running' && s.task) transcript.append(h('p', { class: 'dim small', text: 'A task is running: its answer continues below.' }));
        if (!(s.history || []).length) transcript.append(empty('Nothing said yet: run a task below.'));
        scroll();
      } catch (e) {
        replace(head, errorBox(e));
      }
    }

    function drawHead(s) {
      const m = s.metrics || {};
      replace(head,
        h('div', { class: 'session-title' }, h('code', { text: s.session_id }), statusBadge(s.status, { id: 'session-status' })),
        h('dl', { class: 'kv kv-wide' },
          h('dt', { text: 'Type' }), h('dd', { text: s.session_type || '–' }),
          h('dt', { text: 'Model' }), h('dd', { text: s.model || 'router decides' }),
          h('dt', { text: 'Tasks' }), h('dd', { text: `${fmt.int(m.tasks_completed)} completed, ${fmt.int(m.tasks_failed)} failed, ${fmt.int(s.queued_tasks)} waiting` }),
          h('dt', { text: 'Tokens' }), h('dd', { text: fmt.int(m.tokens_used) }),
          h('dt', { text: 'Average answer' }), h('dd', { text: fmt.ms(m.avg_response_ms) }),
          h('dt', { text: 'Created' }), h('dd', { text: fmt.ago(s.created_at), title: s.created_at })));
    }

    function bubble(role, text) {
      return h('div', { class: `msg msg-${role}` }, h('div', { class: 'msg-role', text: role }), h('div', { class: 'msg-text', text: text || '' }));
    }

    function scroll() {
      transcript.scrollTop = transcript.scrollHeight;
    }

    function turn(d) {
      const id = d.taskId || 'task';
      let t = turns.get(id);
      if (!t) {
        const text = h('div', { class: 'msg-text' });
        const tools = h('div', { class: 'tools' });
        const foot = h('div', { class: 'msg-foot' });
        const el = h('div', { class: 'msg msg-assistant streaming', dataset: { task: id } }, h('div', { class: 'msg-role', text: 'assistant' }), tools, text, foot);
        t = { el, text, tools, foot, calls: new Map() };
        turns.set(id, t);
        const placeholder = transcript.querySelector('.empty');
        if (placeholder) placeholder.remove();
        if (d.task) transcript.append(bubble('user', d.task));
        transcript.append(el);
      }
      return t;
    }

    function onEvent(ev) {
      const d = ev.data || {};
      const type = d.type || ev.event.split('.').pop();
      log.append(h('li', { dataset: { type } }, h('span', { class: 'dim small mono', text: fmt.clock(ev.timestamp) }), ' ',
        badge(type, type.startsWith('tool_call') ? 'info' : type === 'task_failed' ? 'bad' : type === 'task_completed' ? 'ok' : 'neutral'), ' ',
        h('span', { class: 'mono small', text: preview(type === 'stream_chunk' ? d.chunk : d.task || d.data || d.error || d.status || '', 100) })));
      while (log.children.length > 300) log.firstChild.remove();
      log.scrollTop = log.scrollHeight;
      switch (type) {
        case 'task_queued':
          transcript.append(h('div', { class: 'queued dim small', text: `queued (${d.queue_position} waiting): ${d.task}` }));
          break;
        case 'task_executing':
          turn(d);
          break;
        case 'stream_chunk': {
          const t = turn(d);
          t.text.append(d.chunk || '');
          break;
        }
        case 'tool_call_start':
        case 'tool_call_result': {
          const t = turn(d);
          const call = d.data || {};
          const key = call.id || call.tool_call_id || call.name || String(t.calls.size);
          let c = t.calls.get(key);
          if (!c) {
            c = h('div', { class: 'tool-call', dataset: { call: key } });
            t.calls.set(key, c);
            t.tools.append(c);
          }
          if (type === 'tool_call_start') {
            replace(c, h('div', { class: 'tool-head' }, badge('tool call', 'info'), h('strong', { class: 'mono', text: call.name || call.function || '?' })),
              call.arguments !== undefined ? json(typeof call.arguments === 'string' ? tryParse(call.arguments) : call.arguments, { class: 'json-inline' }) : json(call, { class: 'json-inline' }));
          } else {
            c.append(h('div', { class: 'tool-result' }, badge('result', call.error ? 'bad' : 'ok'), json(call.result !== undefined ? call.result : call, { class: 'json-inline' })));
          }
          break;
        }
        case 'task_completed': {
          const t = turn(d);
          const r = d.result || {};
          if (!t.text.textContent && r.response) t.text.textContent = r.response;
          t.el.classList.remove('streaming');
          replace(t.foot, `${r.provider || '?'} · ${r.model || ''} · ${fmt.int((r.usage || {}).output_tokens)} tokens · ${fmt.ms(r.duration_ms)} · ${fmt.usd(r.cost)}`);
          break;
        }
        case 'task_failed': {
          const t = turn(d);
          t.el.classList.remove('streaming');
          t.el.classList.add('msg-failed');
          replace(t.foot, badge(d.code || 'failed', 'bad'), ' ', d.error || '');
          break;
        }
        case 'session_status_update':
        case 'session_spawned':
          if (d.session) drawHead(d.session);
          break;
        default:
          break;
      }
      scroll();
    }

    function tryParse(text) {
      try {
        return JSON.parse(text);
      } catch (e) {
        return text;
      }
    }

    const offs = [
      app.sock.on('session.*', (ev) => {
        const id = ev.data && ev.data.sessionId;
        if (id === selected) onEvent(ev);
        const type = ev.data && ev.data.type;
        if (type === 'session_status_update' || type === 'session_spawned' || type === 'task_completed' || type === 'task_failed') loadList();
      }),
      app.on('reconnected', () => selected && pick(selected)),
    ];
    // Every session's lifecycle, to keep the list current.
    app.sock.subscribe(['session.*.session_status_update', 'session.*.session_spawned']);
    loadList().then(() => {
      const wanted = location.hash.split('/')[1];
      if (wanted) pick(decodeURIComponent(wanted));
      else if (sessions.length) pick(sessions[0].session_id);
      else replace(head, empty('No session selected.'));
    });
    return () => {
      offs.forEach((off) => off());
      const topics = ['session.*.session_status_update', 'session.*.session_spawned'];
      if (watching) topics.push(watching);
      app.sock.unsubscribe(topics).catch(() => {});
    };
  },
};
