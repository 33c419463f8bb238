// view-playground.js — one completion, start to end: the routing decision
// (complete's acknowledgement, or route alone: the backend, the policy's
// reasoning, the estimated cost, the ranking and its scores), the answer streamed as its chunks arrive
// (COMPLETION_CHUNK), and the result (COMPLETION_RESULT: provider, model,
// usage, cost, timings).

import { badge, button, card, empty, errorBox, field, fmt, h, json, replace, select } from './ui.js';

export default {
  id: 'playground',
  title: 'Completions playground',
  subtitle: 'Ask a model, watch the router decide and the answer stream.',
  mount(root, app) {
    let running = null; // {request_id, started, first, chunks}
    const prompt = h('textarea', { id: 'pg-prompt', rows: 5, placeholder: 'Ask something…', required: true });
    prompt.value = 'Explain in two sentences what a router policy does.';
    const system = h('input', { id: 'pg-system', placeholder: 'optional', autocomplete: 'off' });
    const model = select([{ value: '', label: 'auto (the router decides)' }], '', { id: 'pg-model' });
    const provider = select([{ value: '', label: 'auto (the router decides)' }], '', { id: 'pg-provider' });
    const priority = select(['medium', 'high', 'low'], 'medium', { id: 'pg-priority' });
    const taskType = select(['reasoning', 'coding', 'chat', 'summarization', 'analysis'], 'reasoning', { id: 'pg-task-type' });
    const maxTokens = h('input', { id: 'pg-max-tokens', type: 'number', min: 1, max: 100000, value: 256 });
    const temperature = h('input', { id: 'pg-temperature', type: 'number', min: 0, max: 2, step: 0.1, value: 0.7 });
    const stream = h('input', { id: 'pg-stream', type: 'checkbox', checked: true });
    const runBtn = h('button', { type: 'submit', class: 'btn btn-primary', id: 'pg-run', text: 'Run' });
    const cancelBtn = button('Cancel', () => cancel(), 'danger', { id: 'pg-cancel', disabled: true });
    const routeBtn = button('Route only', () => route(), 'ghost', { id: 'pg-route' });

    const answer = h('div', { class: 'answer-text', id: 'pg-answer' });
    const live = h('div', { class: 'answer-live dim small', id: 'pg-live' });
    const decision = h('div', { id: 'pg-decision' });
    const result = h('div', { id: 'pg-result' });
    answer.append(empty('The answer appears here as it streams.'));
    decision.append(empty('Run or route a prompt to see where it would go, and why.'));
    result.append(empty('Provider, model, tokens, cost and timings, once it ends.'));

    root.append(h('div', { class: 'split' },
      card('Prompt', {}, h('form', { class: 'form', id: 'pg-form', onsubmit: (e) => { e.preventDefault(); run(); } },
        field('Prompt', prompt), field('System', system),
        h('div', { class: 'form-row' }, field('Model', model), field('Provider', provider)),
        h('div', { class: 'form-row' }, field('Priority', priority), field('Task type', taskType)),
        h('div', { class: 'form-row' }, field('Max tokens', maxTokens), field('Temperature', temperature)),
        h('label', { class: 'check' }, stream, ' Stream the answer'),
        h('div', { class: 'form-actions' }, runBtn, routeBtn, cancelBtn))),
      h('div', { class: 'stack' },
        card('Answer', { id: 'pg-answer-card', actions: live }, answer),
        card('Routing decision', { id: 'pg-decision-card' }, decision),
        card('Result', { id: 'pg-result-card' }, result))));

    app.sock.request('providers.list').then((r) => {
      const ps = r.providers || [];
      const models = [...new Set(ps.flatMap((p) => p.models || []))];
      replace(model, h('option', { value: '', text: 'auto (the router decides)' }), models.map((m) => h('option', { value: m, text: m })));
      replace(provider, h('option', { value: '', text: 'auto (the router decides)' }),
        ps.map((p) => h('option', { value: p.name, text: `${p.name} (${p.provider}${p.cooling_down ? ', cooling down' : ''})` })));
    }).catch(() => {});

    function params() {
      const p = { prompt: prompt.value, priority: priority.value, task_type: taskType.value };
      if (system.value.trim()) p.system = system.value.trim();
      if (model.value) p.model = model.value;
      if (provider.value) p.provider = provider.value;
      if (maxTokens.value) p.max_tokens = Number(maxTokens.value);
      if (temperature.value !== '') p.temperature = Number(temperature.value);
      return p;
    }

    function drawDecision(d) {
      const scores = d.scores || {};
      const best = Math.max(1e-9, ...Object.values(scores).map(Number).filter((x) => isFinite(x)));
      const ranking = d.ranking || (d.provider ? [d.provider] : []);
      replace(decision,
        h('div', { class: 'decision-head' },
          h('div', null, h('div', { class: 'stat-label', text: 'Chosen backend' }), h('div', { class: 'decision-provider', id: 'pg-chosen', text: d.provider || '–' })),
          h('div', null, h('div', { class: 'stat-label', text: 'Estimated cost' }), h('div', { class: 'stat-value small-value', text: fmt.usd(d.estimated_cost) })),
          h('div', null, h('div', { class: 'stat-label', text: 'Confidence' }), h('div', { class: 'stat-value small-value', text: d.confidence !== undefined ? fmt.num2(d.confidence) : '–' })),
          h('div', null, h('div', { class: 'stat-label', text: 'Policy' }), h('div', { class: 'stat-value small-value', text: d.policy || '–' }))),
        h('div', { class: 'reasoning', id: 'pg-reasoning' }, h('span', { class: 'stat-label', text: 'Reasoning' }), h('p', { text: d.reasoning || '–' })),
        ranking.length ? h('ol', { class: 'ranking', id: 'pg-ranking' }, ranking.map((name, i) => {
          const sc = scores[name];
          const bar = h('div', { class: 'bar-fill' });
          bar.style.width = sc !== undefined ? Math.max(2, (100 * sc) / best) + '%' : '0%';
          return h('li', { class: i === 0 ? 'first' : '' }, h('span', { class: 'rank-name', text: name }),
            h('div', { class: 'bar' }, bar), h('span', { class: 'rank-score mono', text: sc !== undefined ? fmt.num2(sc) : '' }));
        })) : null);
    }

    async function route() {
      try {
        drawDecision(await app.sock.request('route', params()));
      } catch (e) {
        replace(decision, errorBox(e));
      }
    }

    function setRunning(on) {
      runBtn.disabled = on;
      cancelBtn.disabled = !on;
    }

    async function run() {
      if (running) return;
      const p = params();
      p.stream = stream.checked;
      replace(answer);
      answer.classList.add('streaming');
      replace(result, h('div', { class: 'dim', text: 'Running…' }));
      replace(live, 'waiting for the first token…');
      setRunning(true);
      running = { started: performance.now(), first: 0, chunks: 0, request_id: null };
      try {
        // The ack says where it goes and why: the decision this very
        // completion runs on (a separate route could differ: round robin).
        const ack = await app.sock.request('complete', p);
        if (running) running.request_id = ack.request_id;
        answer.dataset.request = ack.request_id;
        drawDecision(ack);
      } catch (e) {
        running = null;
        setRunning(false);
        answer.classList.remove('streaming');
        replace(result, errorBox(e));
        replace(live);
      }
    }

    async function cancel() {
      if (running && running.request_id) {
        try {
          await app.sock.request('complete.cancel', { request_id: running.request_id });
        } catch (e) {
          replace(result, errorBox(e));
        }
      }
    }

    function onChunk(ev) {
      const d = ev.data || {};
      if (!running || d.request_id !== running.request_id) return;
      if (!running.first) running.first = performance.now();
      running.chunks++;
      answer.append(d.chunk || '');
      replace(live, `${running.chunks} chunks · first after ${fmt.ms(running.first - running.started)} · ${fmt.ms(performance.now() - running.started)}`);
    }

    function onResult(ev) {
      const d = ev.data || {};
      if (!running || d.request_id !== running.request_id) return;
      const elapsed = performance.now() - running.started;
      answer.classList.remove('streaming');
      setRunning(false);
      if (d.result) {
        const r = d.result;
        if (!answer.textContent) answer.textContent = r.response || '';
        const u = r.usage || {};
        const t = r.timings || {};
        replace(result, h('div', { class: 'result-grid', id: 'pg-result-grid' },
          [['Provider', r.provider], ['Model', r.model], ['Input tokens', fmt.int(u.input_tokens)], ['Output tokens', fmt.int(u.output_tokens)],
            ['Cost', fmt.usd(r.cost)], ['Duration', fmt.ms(r.duration_ms)], ['Attempts', fmt.int(r.attempts)],
            ['Waited in the daemon', fmt.ms(t.received_to_start_ms)], ['Provider first chunk', fmt.ms(t.provider_first_chunk_ms)], ['Provider total', fmt.ms(t.provider_ms)]]
            .map(([k, v]) => h('div', { class: 'result-item' }, h('div', { class: 'stat-label', text: k }), h('div', { class: 'result-value', text: v === undefined ? '–' : v })))),
        r.local ? h('p', { class: 'dim small', text: 'Answered by the offline local provider: no model was called.' }) : null);
        replace(live, `${running.chunks} chunks · ${fmt.ms(elapsed)}`);
      } else {
        replace(result, errorBox({ code: d.reason || d.code, message: d.error }));
        replace(live, badge(d.reason === 'CANCELLED' ? 'cancelled' : 'failed', d.reason === 'CANCELLED' ? 'neutral' : 'bad'));
      }
      running = null;
    }

    const offs = [
      app.sock.on('COMPLETION_CHUNK', onChunk),
      app.sock.on('COMPLETION_RESULT', onResult),
      app.on('link', (state) => {
        if (state !== 'open' && running) {
          running = null;
          setRunning(false);
          replace(result, errorBox({ code: 'DISCONNECTED', message: 'the connection was lost: the daemon cancelled the completion' }));
        }
      }),
    ];
    return () => offs.forEach((off) => off());
  },
};
