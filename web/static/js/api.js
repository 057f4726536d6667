// The HTTP API as the pages use it: JSON reads (blocking queries with
// ?index=), writes, and streams read with fetch (NDJSON lines, log text).
// Every request carries the ACL token from localStorage as X-Gantry-Token.

const TOKEN_KEY = 'gantry.token';

export function token() { return localStorage.getItem(TOKEN_KEY) || ''; }

export function setToken(t) {
  if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY);
}

export class APIError extends Error {
  constructor(status, message, fields) {
    super(message);
    this.status = status;
    this.fields = fields || [];
  }
}

function headers(extra) {
  const h = Object.assign({}, extra);
  const t = token();
  if (t) h['X-Gantry-Token'] = t;
  return h;
}

function url(path, params) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) { if (v.length) u.searchParams.set(k, v.join(',')); } else u.searchParams.set(k, String(v));
  }
  return u.pathname + u.search;
}

async function failure(resp) {
  let msg = resp.statusText, fields;
  try {
    const body = await resp.json();
    msg = body.error || msg;
    fields = body.fields;
  } catch { /* not JSON */ }
  if (resp.status === 401 || resp.status === 403) {
    window.dispatchEvent(new CustomEvent('gantry:denied', { detail: msg }));
  }
  return new APIError(resp.status, msg, fields);
}

// get reads a JSON endpoint; it returns {data, index, total}.
export async function get(path, params, signal) {
  const resp = await fetch(url(path, params), { headers: headers(), signal });
  if (!resp.ok) throw await failure(resp);
  return {
    data: await resp.json(),
    index: Number(resp.headers.get('X-Gantry-Index') || 0),
    total: Number(resp.headers.get('X-Gantry-Total') || -1),
  };
}

// send writes (PUT, POST, DELETE) with an optional JSON body.
export async function send(method, path, body, params) {
  const init = { method, headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const resp = await fetch(url(path, params), init);
  if (!resp.ok) throw await failure(resp);
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

// watch runs a blocking query over and over, calling fn with each new
// answer, until signal aborts; at most one answer per minInterval ms, so
// a busy cluster (thousands of changes a second) costs a page one read a
// second. Errors are passed to onError and retried after a pause.
export async function watch(path, params, signal, fn, onError, minInterval = 1000) {
  let index = 0;
  while (!signal.aborted) {
    try {
      const started = performance.now();
      const r = await get(path, Object.assign({}, params, index ? { index, wait: '60s' } : {}), signal);
      if (r.index !== index) { index = r.index; fn(r); }
      const left = minInterval - (performance.now() - started);
      if (left > 0) await sleep(left, signal);
    } catch (e) {
      if (signal.aborted) return;
      if (onError) onError(e);
      index = 0;
      await sleep(2000, signal);
    }
  }
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

// chunks yields the response body of a streaming GET as text.
export async function* chunks(path, params, signal) {
  const resp = await fetch(url(path, params), { headers: headers(), signal });
  if (!resp.ok) throw await failure(resp);
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

// lines yields each JSON line of an NDJSON stream.
export async function* lines(path, params, signal) {
  let buf = '';
  for await (const text of chunks(path, params, signal)) {
    buf += text;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) yield JSON.parse(line);
    }
  }
}

// flatten returns a stream line's events, each with the line's index
// and its group's topic, type and namespace.
function flatten(line) {
  const out = [];
  for (const g of line.groups) {
    for (const e of g.events) {
      out.push({ topic: g.topic, type: g.type, key: e.key, namespace: g.namespace, index: line.index, payload: e.payload });
    }
  }
  return out;
}

// events follows /v1/event/stream, calling fn for each batch of events
// (a line's groups flattened: each event with the line's index and its
// group's topic, type and namespace); it reconnects, resuming after the
// last index seen, until signal aborts. onGap is told when the server
// could not resume (events were lost).
export async function events(params, signal, fn, onGap) {
  let index = null;
  while (!signal.aborted) {
    try {
      const p = Object.assign({}, params);
      if (index !== null) p.index = index;
      for await (const line of lines('/v1/event/stream', p, signal)) {
        if (line.error) {
          if (onGap) onGap(line);
          index = line.code === 'index_too_old' ? null : index;
          break;
        }
        index = line.index;
        if (line.groups) fn(flatten(line), line.index);
      }
    } catch (e) {
      if (signal.aborted) return;
    }
    await sleep(1000, signal);
  }
}
