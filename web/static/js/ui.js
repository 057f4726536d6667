// Small DOM helpers and the virtualised list every long list uses.

// h builds an element: h('a', {href: '#/x', class: 'c'}, 'text', child).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function badge(status) {
  return h('span', { class: `badge s-${status || 'none'}` }, status || '-');
}

export function shortID(id) { return id && id.length > 12 && id[8] === '-' ? id.slice(0, 8) : id; }

export function ago(ns) {
  if (!ns) return '-';
  const s = Math.round((Date.now() - ns / 1e6) / 1000);
  if (s < 0) return 'now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function time(ns) { return ns ? new Date(ns / 1e6).toLocaleString() : '-'; }

export function kv(pairs) {
  const dl = h('dl', { class: 'kv' });
  for (const [k, v] of pairs) dl.append(h('dt', {}, k), h('dd', {}, v));
  return dl;
}

export function table(columns, rows) {
  return h('table', {},
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

export function errorText(e) {
  const lines = [e.message];
  for (const f of e.fields || []) lines.push(`  ${f.field}: ${f.rule}`);
  return lines.join('\n');
}

export function announce(msg) {
  const live = document.getElementById('live');
  if (live) live.textContent = msg;
}

// labeled wraps a control with its visible label.
export function labeled(text, control) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, text), control);
}

// VirtualList shows rows fetched a page at a time from the server
// (fetchPage(offset, limit) -> {rows, total}) and renders only those in
// view, so a list of 100,000 costs what a screenful does. Rows are links;
// the list is one tab stop: arrow keys, Page Up/Down, Home and End move
// the active row and Enter opens it.
export class VirtualList {
  constructor({ label, columns, template, fetchPage, href, rowHeight = 28, pageSize = 200 }) {
    this.columns = columns;
    this.fetchPage = fetchPage;
    this.href = href;
    this.rowHeight = rowHeight;
    this.pageSize = pageSize;
    this.pages = new Map();
    this.total = 0;
    this.active = 0;
    this.generation = 0;
    this.el = h('div', { class: 'vlist', tabindex: '0', role: 'listbox', 'aria-label': label });
    this.head = h('div', { class: 'head', 'aria-hidden': 'true' }, columns.map((c) => h('span', {}, c.title)));
    this.head.style.gridTemplateColumns = template;
    this.template = template;
    this.spacer = h('div', { class: 'spacer' });
    this.status = h('p', { class: 'muted', role: 'status' });
    this.el.append(this.head, this.spacer);
    this.el.addEventListener('scroll', () => this.render());
    this.el.addEventListener('keydown', (e) => this.key(e));
    this.root = h('div', {}, this.el, this.status);
  }

  // reload drops what was fetched (filters changed, or the data did).
  async reload() {
    this.generation++;
    this.pages.clear();
    await this.load(0);
    this.active = Math.min(this.active, Math.max(0, this.total - 1));
    this.render();
  }

  // load fetches a page once; its rows land in pages.get(page).rows.
  load(page) {
    let entry = this.pages.get(page);
    if (entry) return entry.promise;
    const gen = this.generation;
    entry = { rows: null };
    entry.promise = this.fetchPage(page * this.pageSize, this.pageSize).then((r) => {
      if (gen !== this.generation) return;
      entry.rows = r.rows;
      this.total = r.total;
      this.status.textContent = `${r.total.toLocaleString()} ${r.total === 1 ? 'row' : 'rows'}`;
    }).catch((e) => {
      if (gen !== this.generation) return;
      this.status.textContent = errorText(e);
      this.pages.delete(page);
    });
    this.pages.set(page, entry);
    return entry.promise;
  }

  range() {
    const top = this.el.scrollTop;
    const height = this.el.clientHeight || 600;
    return [Math.max(0, Math.floor(top / this.rowHeight) - 5),
      Math.min(this.total, Math.ceil((top + height) / this.rowHeight) + 5)];
  }

  render() {
    this.spacer.style.height = `${this.total * this.rowHeight + 24}px`;
    const [first, last] = this.range();
    for (let pg = Math.floor(first / this.pageSize); pg <= Math.floor(Math.max(first, last - 1) / this.pageSize); pg++) {
      if (!this.pages.has(pg)) this.load(pg).then(() => this.draw());
    }
    this.draw();
  }

  draw() {
    const [first, last] = this.range();
    const rh = this.rowHeight;
    const rows = [];
    for (let i = first; i < last; i++) {
      const entry = this.pages.get(Math.floor(i / this.pageSize));
      const row = entry && entry.rows && entry.rows[i % this.pageSize];
      if (!row) continue;
      const a = h('a', { class: `row${i === this.active ? ' active' : ''}`, href: this.href(row), tabindex: '-1', role: 'option', 'data-i': i, 'aria-selected': i === this.active ? 'true' : 'false' },
        this.columns.map((c) => h('span', {}, c.value(row))));
      a.style.top = `${i * rh + 24}px`;
      a.style.height = `${rh}px`;
      a.style.gridTemplateColumns = this.template;
      rows.push(a);
    }
    this.spacer.replaceChildren(...rows);
  }

  activeRow() {
    const entry = this.pages.get(Math.floor(this.active / this.pageSize));
    return entry && entry.rows && entry.rows[this.active % this.pageSize];
  }

  key(e) {
    const view = Math.max(1, Math.floor(this.el.clientHeight / this.rowHeight) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: view, PageUp: -view, Home: -Infinity, End: Infinity };
    if (e.key === 'Enter') {
      const row = this.activeRow();
      if (row) location.hash = this.href(row);
      e.preventDefault();
      return;
    }
    if (!(e.key in moves) || this.total === 0) return;
    e.preventDefault();
    this.active = Math.max(0, Math.min(this.total - 1, this.active + moves[e.key]));
    const y = this.active * this.rowHeight;
    if (y < this.el.scrollTop) this.el.scrollTop = y;
    else if (y + this.rowHeight * 2 > this.el.scrollTop + this.el.clientHeight) this.el.scrollTop = y - this.el.clientHeight + this.rowHeight * 2;
    this.render();
    announce(`row ${this.active + 1} of ${this.total}`);
  }
}
