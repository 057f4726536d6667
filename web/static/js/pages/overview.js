// Overview: servers and the leader, jobs by status, every node's usage as
// a heat map (readable at 10,000 nodes: a 6 px cell each) and the latest
// events from the stream.

import { get, watch, events } from '../api.js';
import { h, badge, table, errorText, shortID } from '../ui.js';
import { CellMap, usageColor, fmt } from '../charts.js';

export async function render(main, _params, signal) {
  main.append(h('h1', {}, 'Overview'));
  const servers = h('section', { class: 'card', 'aria-labelledby': 'ov-servers' }, h('h2', { id: 'ov-servers' }, 'Servers'));
  const jobs = h('section', { class: 'card', 'aria-labelledby': 'ov-jobs' }, h('h2', { id: 'ov-jobs' }, 'Jobs by status'));
  const nodes = h('section', { class: 'card wide', 'aria-labelledby': 'ov-nodes' }, h('h2', { id: 'ov-nodes' }, 'Nodes: capacity in use'));
  const recent = h('section', { class: 'card wide', 'aria-labelledby': 'ov-events' }, h('h2', { id: 'ov-events' }, 'Recent events'));
  main.append(h('div', { class: 'grid' }, servers, jobs, nodes, recent));

  serversCard(servers, signal);
  jobsCard(jobs, signal);
  nodesCard(nodes, signal);
  eventsCard(recent, signal);
}

async function serversCard(el, signal) {
  const body = h('div');
  el.append(body);
  const load = async () => {
    try {
      const { data } = await get('/v1/operator/raft/configuration', {}, signal);
      body.replaceChildren(table(['Name', 'Role', 'Raft', 'API', 'Status'], data.peers.map((p) => [
        p.name || p.id, p.leader ? badge('leader') : (p.voter ? 'follower' : 'non-voter'), h('span', { class: 'mono' }, p.raft_addr),
        h('span', { class: 'mono' }, p.http_addr || '-'), badge(p.status || '-')])));
    } catch (e) {
      if (!signal.aborted) body.replaceChildren(h('p', { class: 'err' }, errorText(e)));
    }
  };
  await load();
  const t = setInterval(load, 5000);
  signal.addEventListener('abort', () => clearInterval(t));
}

async function jobsCard(el, signal) {
  const body = h('div', { class: 'stats' });
  el.append(body, h('p', {}, h('a', { href: '#/jobs' }, 'All jobs')));
  // The list watch wakes on any job or allocation change; counts come
  // from the totals of filtered one-row pages.
  watch('/v1/jobs', { limit: 1 }, signal, async (r) => {
    const counts = await Promise.all(['running', 'pending', 'dead'].map((s) => get('/v1/jobs', { status: s, limit: 1 }, signal).then((x) => [s, x.total])));
    body.replaceChildren(h('div', {}, h('div', { class: 'stat' }, fmt(r.total)), 'jobs'),
      ...counts.map(([s, n]) => h('div', {}, h('div', { class: 'stat' }, h('a', { href: `#/jobs?status=${s}` }, fmt(n))), badge(s))));
  }, (e) => body.replaceChildren(h('p', { class: 'err' }, errorText(e))));
}

const MODES = { max: 'Busier of CPU and memory', cpu: 'CPU', memory: 'Memory' };

async function nodesCard(el, signal) {
  const mode = h('select', { id: 'heat-mode' }, Object.entries(MODES).map(([k, v]) => h('option', { value: k }, v)));
  const summary = h('div', { class: 'stats' });
  const legend = h('div', { class: 'legend' }, ...[0, 0.25, 0.5, 0.75, 1].map((f) => {
    const i = h('i'); i.style.background = usageColor(f); return h('span', {}, i, `${f * 100}%`);
  }), (() => { const i = h('i'); i.style.background = usageColor(NaN); return h('span', {}, i, 'down or not eligible'); })());
  const mapBox = h('div');
  el.append(h('div', { class: 'filters' }, h('label', { for: 'heat-mode' }, 'Color by', mode)), summary, mapBox, legend);
  let usage = null;
  let map = null;
  let first = true;
  const draw = () => {
    if (!usage) return;
    const u = usage;
    const n = u.ids.length;
    const frac = (i) => {
      if (u.status[i] !== 'ready') return NaN;
      const c = u.cpu[i] ? u.cpu_used[i] / u.cpu[i] : 0;
      const m = u.memory_mb[i] ? u.memory_mb_used[i] / u.memory_mb[i] : 0;
      return mode.value === 'cpu' ? c : mode.value === 'memory' ? m : Math.max(c, m);
    };
    let cpu = 0; let cpuUsed = 0; let ready = 0; let allocs = 0;
    for (let i = 0; i < n; i++) {
      cpu += u.cpu[i]; cpuUsed += u.cpu_used[i]; allocs += u.allocs[i];
      if (u.status[i] === 'ready') ready++;
    }
    summary.replaceChildren(
      h('div', {}, h('div', { class: 'stat' }, fmt(n)), 'nodes'),
      h('div', {}, h('div', { class: 'stat' }, fmt(ready)), badge('ready')),
      h('div', {}, h('div', { class: 'stat' }, fmt(n - ready)), 'not ready'),
      h('div', {}, h('div', { class: 'stat' }, `${cpu ? Math.round(100 * cpuUsed / cpu) : 0}%`), 'CPU in use'),
      h('div', {}, h('div', { class: 'stat' }, fmt(allocs)), 'live allocations'));
    const colors = new Array(n);
    for (let i = 0; i < n; i++) colors[i] = usageColor(frac(i));
    const describe = (i) => `${u.names[i]} (${u.status[i]}): CPU ${u.cpu_used[i]}/${u.cpu[i]} m, memory ${u.memory_mb_used[i]}/${u.memory_mb[i]} MiB, ${u.allocs[i]} allocations`;
    const open = (i) => { location.hash = `#/node/${encodeURIComponent(u.ids[i])}`; };
    if (map && map.n === n) {
      // Same nodes: repaint in place, keeping the keyboard's place.
      Object.assign(map, { color: (i) => colors[i], describe, open });
      map.draw();
    } else {
      map = new CellMap({
        label: `Heat map of ${n} nodes; focus it and use the arrow keys to read each node, Enter to open it`,
        n,
        width: Math.max(320, Math.min(1300, el.clientWidth - 24)),
        color: (i) => colors[i],
        describe,
        open,
      });
      mapBox.replaceChildren(map.el);
    }
    if (first) {
      first = false;
      // Time to first render of the overview's heat map, read by the
      // browser tests (docs/ui.md).
      document.documentElement.dataset.overviewRendered = String(Math.round(performance.now()));
      document.documentElement.dataset.overviewNodes = String(n);
    }
  };
  mode.addEventListener('change', draw);
  watch('/v1/nodes/usage', {}, signal, (r) => { usage = r.data; draw(); },
    (e) => mapBox.replaceChildren(h('p', { class: 'err' }, errorText(e))), 2000);
}

async function eventsCard(el, signal) {
  const list = h('ol', { class: 'events mono', reversed: true });
  const status = h('p', { class: 'muted' }, 'Waiting for changes…');
  el.append(status, list);
  const max = 100;
  events({}, signal, (evs) => {
    status.textContent = '';
    for (const e of evs.slice(-max)) {
      list.prepend(h('li', {}, `${e.index} `, h('strong', {}, e.topic), ` ${e.type} `, link(e)));
    }
    while (list.children.length > max) list.lastChild.remove();
  }, (gap) => { status.textContent = `Stream interrupted: ${gap.error}`; });
}

function link(e) {
  const kind = { Job: 'job', Deployment: 'job', Plan: 'job', Allocation: 'allocation', Node: 'node' }[e.topic];
  if (!kind || e.type.endsWith('Deleted') || e.type === 'JobPurged') return shortID(e.key);
  return h('a', { href: `#/${kind}/${encodeURIComponent(e.key)}` }, shortID(e.key));
}


