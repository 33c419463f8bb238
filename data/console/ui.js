// ui.js — building the page: elements from data (never HTML from strings,
// so nothing the daemon sends can become markup), formatters, and the few
// widgets every view uses.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, v);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'style') Object.assign(el.style, v); // CSSOM: allowed by the page's CSP
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

// ------------------------------------------------------------ formatting

const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const nf2 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const intf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

export const fmt = {
  int: (v) => (v === null || v === undefined ? '–' : intf.format(v)),
  num: (v) => (v === null || v === undefined ? '–' : Math.abs(v) >= 100 ? intf.format(v) : nf.format(v)),
  num2: (v) => (v === null || v === undefined ? '–' : nf2.format(v)),
  pct: (v) => (v === null || v === undefined ? '–' : nf.format(v) + '%'),
  ms(v) {
    if (v === null || v === undefined) return '–';
    if (v >= 10000) return nf.format(v / 1000) + ' s';
    if (v >= 1000) return nf2.format(v / 1000) + ' s';
    return (v >= 10 ? intf.format(v) : nf.format(v)) + ' ms';
  },
  usd(v) {
    if (v === null || v === undefined) return '–';
    if (v === 0) return '$0';
    if (Math.abs(v) < 0.01) return '$' + v.toPrecision(2);
    return '$' + nf2.format(v);
  },
  duration(seconds) {
    if (seconds === null || seconds === undefined) return '–';
    seconds = Math.max(0, Math.floor(seconds));
    const d = Math.floor(seconds / 86400);
    const hh = Math.floor((seconds % 86400) / 3600);
    const mm = Math.floor((seconds % 3600) / 60);
    const ss = seconds % 60;
    if (d) return `${d}d ${hh}h ${mm}m`;
    if (hh) return `${hh}h ${mm}m ${ss}s`;
    if (mm) return `${mm}m ${ss}s`;
    return `${ss}s`;
  },
  clock(t) {
    const d = t instanceof Date ? t : new Date(t);
    return d.toLocaleTimeString(undefined, { hour12: false });
  },
  ago(iso) {
    if (!iso) return '–';
    const s = (Date.now() - Date.parse(iso)) / 1000;
    if (!isFinite(s)) return iso;
    if (s < 5) return 'just now';
    if (s < 60) return Math.floor(s) + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return new Date(iso).toLocaleString();
  },
};

// ------------------------------------------------------------ widgets

export function badge(text, kind = 'neutral', attrs = {}) {
  return h('span', Object.assign({ class: `badge badge-${kind}`, text }, attrs));
}

const STATUS_KINDS = {
  healthy: 'ok', running: 'info', idle: 'neutral', completed: 'ok', ready: 'ok', success: 'ok',
  degraded: 'warn', queued: 'warn', busy: 'info', executing: 'info', stopping: 'warn', interrupted: 'warn',
  failed: 'bad', error: 'bad', stopped: 'neutral', cancelled: 'neutral',
};

export function statusBadge(status, attrs) {
  return badge(status || 'unknown', STATUS_KINDS[status] || 'neutral', attrs);
}

export function card(title, opts = {}, ...body) {
  return h('section', { class: ['card', opts.class], id: opts.id },
    title ? h('header', { class: 'card-head' }, h('h2', { text: title }), opts.actions || null) : null,
    h('div', { class: 'card-body' }, body));
}

export function stat(label, value, sub, attrs = {}) {
  return h('div', Object.assign({ class: 'stat' }, attrs),
    h('div', { class: 'stat-label', text: label }),
    h('div', { class: 'stat-value' }, value),
    sub !== undefined ? h('div', { class: 'stat-sub' }, sub) : null);
}

export function empty(text) {
  return h('div', { class: 'empty', text });
}

export function errorBox(err) {
  const code = err && err.code ? err.code + ': ' : '';
  return h('div', { class: 'error-box', role: 'alert', text: code + (err && err.message ? err.message : String(err)) });
}

export function button(text, onclick, kind = '', attrs = {}) {
  return h('button', Object.assign({ type: 'button', class: ['btn', kind && 'btn-' + kind], text, onclick }, attrs));
}

export function field(label, control, hint) {
  return h('label', { class: 'field' }, h('span', { class: 'field-label', text: label }), control,
    hint ? h('span', { class: 'field-hint', text: hint }) : null);
}

export function table(columns, rows, opts = {}) {
  return h('table', { class: ['table', opts.class] },
    h('thead', null, h('tr', null, columns.map((c) => h('th', { class: c.class, text: c.title })))),
    h('tbody', null, rows.length ? rows : h('tr', null, h('td', { class: 'empty-row', colspan: columns.length, text: opts.empty || 'nothing yet' }))));
}

// JSON, coloured by type, built from text nodes.
export function json(value, opts = {}) {
  const pre = h('pre', { class: ['json', opts.class] });
  render(pre, value, 0);
  return pre;
}

function render(out, v, depth) {
  const pad = '  '.repeat(depth);
  if (v === null) out.append(h('span', { class: 'j-null', text: 'null' }));
  else if (Array.isArray(v)) {
    if (!v.length) return out.append('[]');
    out.append('[\n');
    v.forEach((x, i) => {
      out.append(pad + '  ');
      render(out, x, depth + 1);
      out.append(i < v.length - 1 ? ',\n' : '\n');
    });
    out.append(pad + ']');
  } else if (typeof v === 'object') {
    const keys = Object.keys(v);
    if (!keys.length) return out.append('{}');
    out.append('{\n');
    keys.forEach((k, i) => {
      out.append(pad + '  ', h('span', { class: 'j-key', text: JSON.stringify(k) }), ': ');
      render(out, v[k], depth + 1);
      out.append(i < keys.length - 1 ? ',\n' : '\n');
    });
    out.append(pad + '}');
  } else if (typeof v === 'string') out.append(h('span', { class: 'j-str', text: JSON.stringify(v) }));
  else if (typeof v === 'number') out.append(h('span', { class: 'j-num', text: String(v) }));
  else if (typeof v === 'boolean') out.append(h('span', { class: 'j-bool', text: String(v) }));
  else out.append(String(v));
}

// One line of JSON, cut to @max characters.
export function preview(value, max = 160) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    text = String(value);
  }
  if (text === undefined) text = 'undefined';
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

// Parses a JSON textarea; an empty one is {}.
export function parseJSONInput(text) {
  const t = text.trim();
  if (!t) return {};
  return JSON.parse(t);
}

export function select(options, value, attrs = {}) {
  return h('select', attrs, options.map((o) => {
    const opt = typeof o === 'string' ? { value: o, label: o } : o;
    return h('option', { value: opt.value, text: opt.label, selected: opt.value === value });
  }));
}

let toastHost = null;
export function toast(text, kind = 'info') {
  if (!toastHost) {
    toastHost = h('div', { class: 'toasts', 'aria-live': 'polite' });
    document.body.append(toastHost);
  }
  const t = h('div', { class: `toast toast-${kind}`, text });
  toastHost.append(t);
  setTimeout(() => t.remove(), 4000);
}
