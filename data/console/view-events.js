// view-events.js — a live tail of the bus through a WebSocket of its own,
// subscribed to one Redis-style glob (the daemon filters, so a narrow glob
// costs nothing for the rest), and a form to publish an event.

import { Socket, globToRegExp } from './conn.js';
import { badge, button, card, errorBox, fmt, h, json, parseJSONInput, preview, replace, toast } from './ui.js';

const MAX_ROWS = 500;

export default {
  id: 'events',
  title: 'Events',
  subtitle: 'Everything published on the bus, as it happens.',
  mount(root, app) {
    const sock = new Socket('tail');
    let glob = sessionStorage.getItem('ensemble.tail') || '*';
    let paused = false;
    let count = 0;
    let heldWhilePaused = 0;
    const filter = h('input', { id: 'tail-glob', value: glob, autocomplete: 'off', spellcheck: 'false', 'aria-label': 'glob filter' });
    const state = h('span', { class: 'dim small', id: 'tail-state' });
    const counter = h('span', { class: 'dim small', id: 'tail-count', text: '0 events' });
    const rows = h('tbody', { id: 'tail-rows' });
    const pauseBtn = button('Pause', () => togglePause(), 'ghost', { id: 'tail-pause' });

    const topic = h('input', { id: 'pub-topic', value: 'console.test', autocomplete: 'off', required: true });
    const data = h('textarea', { id: 'pub-data', rows: 3, class: 'mono', spellcheck: 'false' });
    data.value = '{"hello": "from the console"}';

    root.append(
      card('Tail', {
        id: 'tail-card',
        actions: h('div', { class: 'toolbar' }, state, counter, pauseBtn, button('Clear', () => { replace(rows); count = 0; counter.textContent = '0 events'; }, 'ghost', { id: 'tail-clear' })),
      },
      h('form', {
        class: 'tail-filter', id: 'tail-form',
        onsubmit: (e) => {
          e.preventDefault();
          apply(filter.value.trim() || '*');
        },
      }, h('span', { class: 'field-label', text: 'Topics matching' }), filter, h('button', { type: 'submit', class: 'btn', text: 'Apply' }),
      h('span', { class: 'dim small', text: '* any run, ? one character, [abc] a class — e.g. session.*, ensemble.agent.*' })),
      h('div', { class: 'table-scroll tail-scroll' },
        h('table', { class: 'table tail' },
          h('thead', null, h('tr', null, ['Time', 'Topic', 'From', 'To', 'Seq', 'Data'].map((t) => h('th', { text: t })))),
          rows))),
      card('Publish an event', { id: 'publish-card' },
        h('form', {
          class: 'form', id: 'publish-form',
          onsubmit: async (e) => {
            e.preventDefault();
            let payload;
            try {
              payload = parseJSONInput(data.value);
            } catch (err) {
              return toast('The data is not JSON: ' + err.message, 'bad');
            }
            try {
              const r = await app.sock.request('publish', { topic: topic.value.trim(), data: payload });
              toast(`Published on ${topic.value.trim()}: ${r.delivered !== undefined ? r.delivered + ' deliveries' : 'done'}`, 'ok');
            } catch (err) {
              toast(err.message, 'bad');
            }
          },
        }, h('div', { class: 'form-row' }, h('label', { class: 'field' }, h('span', { class: 'field-label', text: 'Topic' }), topic)),
        h('label', { class: 'field' }, h('span', { class: 'field-label', text: 'Data (JSON)' }), data),
        h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn-primary', text: 'Publish' })))));

    function apply(next) {
      try {
        globToRegExp(next);
      } catch (e) {
        return toast('Not a pattern: ' + e.message, 'bad');
      }
      const old = glob;
      glob = next;
      sessionStorage.setItem('ensemble.tail', glob);
      if (sock.state === 'open') {
        sock.unsubscribe([old]).then(() => sock.subscribe([glob])).then(() => showState(), (err) => replace(state, errorBox(err)));
      } else {
        sock.topics = new Set([glob]);
      }
    }

    function showState() {
      replace(state, sock.state === 'open' ? badge(`live: ${glob}`, 'ok', { id: 'tail-live' }) : badge(sock.state === 'connecting' ? 'connecting…' : 'reconnecting…', 'warn'));
    }

    function togglePause() {
      paused = !paused;
      pauseBtn.textContent = paused ? 'Resume' : 'Pause';
      if (!paused && heldWhilePaused) {
        toast(`${heldWhilePaused} event(s) arrived while paused and were not shown`, 'info');
        heldWhilePaused = 0;
      }
    }

    function row(ev) {
      const detail = h('tr', { class: 'tail-detail', hidden: true }, h('td', { colspan: 6 }, json(ev.data)));
      const dropped = ev.event === 'ensemble.dropped';
      const r = h('tr', {
        class: ['clickable', dropped && 'row-warn'], dataset: { topic: ev.event },
        title: 'Show the whole event', onclick: () => { detail.hidden = !detail.hidden; },
      },
      h('td', { class: 'mono small nowrap', text: fmt.clock(ev.timestamp || Date.now()) }),
      h('td', null, h('span', { class: 'topic', text: ev.event })),
      h('td', { class: 'mono small', text: ev.from || '' }),
      h('td', { class: 'mono small', text: ev.to || '' }),
      h('td', { class: 'num small', text: ev.seq !== undefined ? ev.seq : '' }),
      h('td', { class: 'mono small data-preview', text: dropped ? `${ev.data.count} event(s) dropped: this tail read too slowly` : preview(ev.data) }));
      return [r, detail];
    }

    sock.topics = new Set([glob]);
    sock.onstate = () => showState();
    sock.on('*', (ev) => {
      count++;
      counter.textContent = `${fmt.int(count)} events`;
      if (paused) {
        heldWhilePaused++;
        return;
      }
      rows.prepend(...row(ev));
      while (rows.children.length > MAX_ROWS * 2) rows.lastChild.remove();
    });
    sock.connect();
    showState();
    return () => sock.close();
  },
};
