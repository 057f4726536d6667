// Canvas drawings: line charts of live figures, the node heat map and
// the peers' slot map. Canvases are sized for the device's pixel ratio.

import { h } from './ui.js';

function fit(canvas, width, height) {
  const r = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * r);
  canvas.height = Math.round(height * r);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext('2d');
  ctx.setTransform(r, 0, 0, r, 0, 0);
  return ctx;
}

const COLORS = ['#2457c5', '#c53030', '#1f8a4c', '#b7791f', '#6b46c1', '#2b6cb0', '#97266d', '#4a5568'];

// LineChart keeps the last `points` values of each series and redraws on
// push. Its text alternative (aria-label) says the latest values.
export class LineChart {
  constructor({ title, series, unit = '', points = 120, width = 420, height = 160 }) {
    this.title = title;
    this.series = series;
    this.unit = unit;
    this.points = points;
    this.data = series.map(() => []);
    this.canvas = h('canvas', { role: 'img', 'aria-label': title });
    this.width = width;
    this.height = height;
    this.ctx = fit(this.canvas, width, height);
    this.el = h('figure', { class: 'card' }, h('figcaption', {}, h('h2', {}, title)), this.canvas,
      h('div', { class: 'legend' }, series.map((s, i) => {
        const sw = h('i');
        sw.style.background = COLORS[i % COLORS.length];
        return h('span', {}, sw, s);
      })));
    this.draw();
  }

  push(values) {
    values.forEach((v, i) => {
      const d = this.data[i];
      d.push(Number.isFinite(v) ? v : null);
      if (d.length > this.points) d.shift();
    });
    this.draw();
    this.canvas.setAttribute('aria-label', `${this.title}: ${this.series.map((s, i) => `${s} ${fmt(values[i])}${this.unit}`).join(', ')}`);
  }

  draw() {
    const { ctx, width: w, height: hgt } = this;
    const pad = { l: 44, r: 8, t: 8, b: 18 };
    ctx.clearRect(0, 0, w, hgt);
    let max = 0;
    for (const d of this.data) for (const v of d) if (v !== null && v > max) max = v;
    max = niceMax(max);
    ctx.strokeStyle = '#d9dde5';
    ctx.fillStyle = '#5b6475';
    ctx.font = '11px system-ui, sans-serif';
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = pad.t + (hgt - pad.t - pad.b) * (1 - i / 4);
      ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(w - pad.r, y); ctx.stroke();
      ctx.fillText(fmt(max * i / 4), 4, y + 4);
    }
    const step = (w - pad.l - pad.r) / Math.max(1, this.points - 1);
    this.data.forEach((d, si) => {
      ctx.strokeStyle = COLORS[si % COLORS.length];
      ctx.lineWidth = 2;
      ctx.beginPath();
      let started = false;
      const offset = this.points - d.length;
      d.forEach((v, i) => {
        if (v === null) { started = false; return; }
        const x = pad.l + (offset + i) * step;
        const y = pad.t + (hgt - pad.t - pad.b) * (1 - (max ? v / max : 0));
        if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
      });
      ctx.stroke();
    });
  }
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

export function fmt(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (Number.isInteger(v)) return v.toLocaleString('en');
  if (a >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(1);
  if (a === 0) return '0';
  return String(Number(v.toPrecision(2)));
}

// usageColor maps a fraction 0..1 to green, yellow, red; NaN is grey.
export function usageColor(f) {
  if (!Number.isFinite(f)) return '#b8bfcc';
  const x = Math.max(0, Math.min(1, f));
  const hue = 130 - 130 * x;
  return `hsl(${hue}, 65%, ${48 - 10 * x}%)`;
}

// CellMap draws n cells in a square-ish grid, each colored by color(i);
// hovering or moving with the arrow keys names the cell (label(i)) and
// Enter or a click opens it (open(i)). At 10,000 cells a cell is 6 px,
// drawn with one fillRect each.
export class CellMap {
  constructor({ label, n, color, describe, open, width = 860, maxCell = 18 }) {
    this.n = n;
    this.color = color;
    this.describe = describe;
    this.open = open;
    this.cols = Math.max(1, Math.ceil(Math.sqrt(n * 2.2)));
    this.cell = Math.max(2, Math.min(maxCell, Math.floor(width / this.cols)));
    this.cols = Math.max(1, Math.floor(width / this.cell));
    this.rows = Math.max(1, Math.ceil(n / this.cols));
    this.canvas = h('canvas', { tabindex: '0', role: 'img', 'aria-label': label });
    this.tip = h('div', { class: 'tip', hidden: true });
    this.el = h('div', { class: 'heat-wrap' }, this.canvas, this.tip);
    this.ctx = fit(this.canvas, this.cols * this.cell, this.rows * this.cell);
    this.focus = -1;
    this.canvas.addEventListener('mousemove', (e) => this.hover(this.at(e)));
    this.canvas.addEventListener('mouseleave', () => { this.tip.hidden = true; });
    this.canvas.addEventListener('click', (e) => { const i = this.at(e); if (i >= 0 && this.open) this.open(i); });
    this.canvas.addEventListener('keydown', (e) => this.key(e));
    this.draw();
  }

  at(e) {
    const r = this.canvas.getBoundingClientRect();
    const c = Math.floor((e.clientX - r.left) / this.cell);
    const row = Math.floor((e.clientY - r.top) / this.cell);
    const i = row * this.cols + c;
    return c >= 0 && c < this.cols && i >= 0 && i < this.n ? i : -1;
  }

  draw() {
    const { ctx, cell } = this;
    ctx.clearRect(0, 0, this.cols * cell, this.rows * cell);
    const gap = cell > 4 ? 1 : 0;
    for (let i = 0; i < this.n; i++) {
      ctx.fillStyle = this.color(i);
      ctx.fillRect((i % this.cols) * cell, Math.floor(i / this.cols) * cell, cell - gap, cell - gap);
    }
    if (this.focus >= 0) {
      ctx.strokeStyle = '#f0b429';
      ctx.lineWidth = 2;
      ctx.strokeRect((this.focus % this.cols) * cell - 1, Math.floor(this.focus / this.cols) * cell - 1, cell + 1, cell + 1);
    }
  }

  hover(i) {
    if (i < 0) { this.tip.hidden = true; return; }
    this.tip.textContent = this.describe(i);
    this.tip.hidden = false;
    this.tip.style.left = `${Math.min((i % this.cols) * this.cell + 12, this.cols * this.cell - 160)}px`;
    this.tip.style.top = `${Math.floor(i / this.cols) * this.cell + 12}px`;
  }

  key(e) {
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: this.cols, ArrowUp: -this.cols, Home: -Infinity, End: Infinity };
    if (e.key === 'Enter' && this.focus >= 0 && this.open) { this.open(this.focus); e.preventDefault(); return; }
    if (!(e.key in moves) || this.n === 0) return;
    e.preventDefault();
    this.focus = Math.max(0, Math.min(this.n - 1, (this.focus < 0 ? 0 : this.focus + moves[e.key])));
    this.draw();
    this.hover(this.focus);
    this.canvas.setAttribute('aria-label', this.describe(this.focus));
  }
}
