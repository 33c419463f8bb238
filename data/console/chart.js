// chart.js — time series on a canvas: a line over the last minutes with
// its axes, grid and a hover read-out; as a sparkline without them.

import { h } from './ui.js';

// 1, 2, 5 x 10^n at or above @v: a grid step whose multiples read well
// (whole numbers from 1 up, so counts never show 2.5 rounded to 3).
function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v - 1e-12) return m * p;
  return 10 * p;
}

function cssVar(el, name, fallback) {
  const v = getComputedStyle(el).getPropertyValue(name).trim();
  return v || fallback;
}

export class LineChart {
  // opts: {color, format(v) -> text, windowMs, axes (default true), gapMs,
  //        label (for the read-out), height}
  constructor(opts = {}) {
    this.opts = Object.assign({ windowMs: 600000, axes: true, gapMs: 2500, format: (v) => String(v), label: '' }, opts);
    this.t = [];
    this.v = [];
    this.hover = -1;
    this.canvas = h('canvas', { 'aria-hidden': 'true' });
    this.tip = h('div', { class: 'chart-tip', hidden: true });
    this.el = h('div', { class: ['chart', this.opts.axes ? null : 'chart-spark'], role: 'img', 'aria-label': this.opts.label }, this.canvas, this.tip);
    if (this.opts.height) this.el.style.height = this.opts.height + 'px';
    this.resizer = new ResizeObserver(() => this.draw());
    this.resizer.observe(this.el);
    if (this.opts.axes) {
      this.canvas.addEventListener('mousemove', (e) => this.onMove(e));
      this.canvas.addEventListener('mouseleave', () => {
        this.hover = -1;
        this.tip.hidden = true;
        this.draw();
      });
    }
  }

  destroy() {
    this.resizer.disconnect();
  }

  setData(t, v) {
    this.t = t;
    this.v = v;
    this.draw();
  }

  setWindow(ms) {
    this.opts.windowMs = ms;
    this.draw();
  }

  // The window, but no wider than the data held (at least a minute): a
  // daemon up for twenty seconds fills its chart instead of a sliver.
  range() {
    const end = this.t.length ? this.t[this.t.length - 1] : Date.now();
    const held = this.t.length ? end - this.t[0] : 0;
    return [end - Math.min(this.opts.windowMs, Math.max(60000, held)), end];
  }

  geometry() {
    const w = this.el.clientWidth;
    const hgt = this.el.clientHeight;
    const pad = this.opts.axes ? { l: 52, r: 12, t: 10, b: 24 } : { l: 1, r: 3, t: 3, b: 2 };
    return { w, hgt, pad, pw: Math.max(1, w - pad.l - pad.r), ph: Math.max(1, hgt - pad.t - pad.b) };
  }

  visibleMax(t0) {
    let max = 0;
    for (let i = 0; i < this.t.length; i++) if (this.t[i] >= t0 && this.v[i] !== null && this.v[i] > max) max = this.v[i];
    return max;
  }

  draw() {
    const g = this.geometry();
    if (g.w <= 0 || g.hgt <= 0) return;
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(g.w * dpr) || this.canvas.height !== Math.round(g.hgt * dpr)) {
      this.canvas.width = Math.round(g.w * dpr);
      this.canvas.height = Math.round(g.hgt * dpr);
      this.canvas.style.width = g.w + 'px';
      this.canvas.style.height = g.hgt + 'px';
    }
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, g.w, g.hgt);
    const [t0, t1] = this.range();
    const ymax = 4 * niceCeil((this.visibleMax(t0) * 1.1) / 4);
    const x = (t) => g.pad.l + ((t - t0) / (t1 - t0)) * g.pw;
    const y = (v) => g.pad.t + g.ph - (v / ymax) * g.ph;
    const color = this.opts.color || cssVar(this.el, '--accent', '#4f46e5');
    const grid = cssVar(this.el, '--grid', '#e5e7eb');
    const muted = cssVar(this.el, '--muted', '#6b7280');

    if (this.opts.axes) {
      ctx.font = '11px system-ui, sans-serif';
      ctx.fillStyle = muted;
      ctx.strokeStyle = grid;
      ctx.lineWidth = 1;
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      for (let i = 0; i <= 4; i++) {
        const v = (ymax * i) / 4;
        const yy = Math.round(y(v)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(g.pad.l, yy);
        ctx.lineTo(g.w - g.pad.r, yy);
        ctx.stroke();
        ctx.fillText(this.opts.format(v), g.pad.l - 6, yy);
      }
      const span = t1 - t0;
      const step = span > 300000 ? 120000 : span > 120000 ? 60000 : 15000;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'top';
      for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
        const xx = x(t);
        if (xx < g.pad.l + 20 || xx > g.w - g.pad.r - 20) continue;
        const d = new Date(t);
        const label = step >= 60000 ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', hour12: false })
          : d.toLocaleTimeString(undefined, { hour12: false });
        ctx.fillText(label, xx, g.pad.t + g.ph + 6);
      }
    }

    // The line, broken where a value is missing or samples are far apart.
    const runs = [];
    let run = [];
    for (let i = 0; i < this.t.length; i++) {
      const gap = i > 0 && this.t[i] - this.t[i - 1] > this.opts.gapMs;
      if (this.v[i] === null || this.v[i] === undefined || gap) {
        if (run.length) runs.push(run);
        run = [];
      }
      if (this.v[i] !== null && this.v[i] !== undefined && this.t[i] >= t0 - this.opts.gapMs) run.push(i);
    }
    if (run.length) runs.push(run);
    ctx.save();
    ctx.beginPath();
    ctx.rect(g.pad.l, 0, g.pw, g.hgt);
    ctx.clip();
    for (const r of runs) {
      const grad = ctx.createLinearGradient(0, g.pad.t, 0, g.pad.t + g.ph);
      grad.addColorStop(0, color + '55');
      grad.addColorStop(1, color + '05');
      ctx.beginPath();
      ctx.moveTo(x(this.t[r[0]]), y(0));
      for (const i of r) ctx.lineTo(x(this.t[i]), y(this.v[i]));
      ctx.lineTo(x(this.t[r[r.length - 1]]), y(0));
      ctx.closePath();
      ctx.fillStyle = grad;
      ctx.fill();
      ctx.beginPath();
      r.forEach((i, k) => (k ? ctx.lineTo(x(this.t[i]), y(this.v[i])) : ctx.moveTo(x(this.t[i]), y(this.v[i]))));
      ctx.strokeStyle = color;
      ctx.lineWidth = this.opts.axes ? 2 : 1.5;
      ctx.lineJoin = 'round';
      ctx.stroke();
      if (r.length === 1) {
        ctx.fillStyle = color;
        ctx.beginPath();
        ctx.arc(x(this.t[r[0]]), y(this.v[r[0]]), 2.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    ctx.restore();

    const last = this.hover >= 0 ? this.hover : -1;
    if (last >= 0 && this.v[last] !== null && this.v[last] !== undefined) {
      const xx = x(this.t[last]);
      ctx.strokeStyle = muted;
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(xx, g.pad.t);
      ctx.lineTo(xx, g.pad.t + g.ph);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.arc(xx, y(this.v[last]), 4, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  onMove(e) {
    if (!this.t.length) return;
    const g = this.geometry();
    const [t0, t1] = this.range();
    const rect = this.canvas.getBoundingClientRect();
    const t = t0 + ((e.clientX - rect.left - g.pad.l) / g.pw) * (t1 - t0);
    let best = -1;
    let dist = Infinity;
    for (let i = 0; i < this.t.length; i++) {
      const d = Math.abs(this.t[i] - t);
      if (d < dist && this.t[i] >= t0) {
        dist = d;
        best = i;
      }
    }
    this.hover = best;
    if (best >= 0) {
      const v = this.v[best];
      this.tip.textContent = `${new Date(this.t[best]).toLocaleTimeString(undefined, { hour12: false })}  ${v === null ? 'no data' : this.opts.format(v)}`;
      this.tip.hidden = false;
      const left = Math.min(Math.max(e.clientX - rect.left + 12, 0), g.w - 150);
      this.tip.style.left = left + 'px';
      this.tip.style.top = '4px';
    }
    this.draw();
  }
}
