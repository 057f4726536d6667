// Peers: served by `gantry peer --http-addr`. The slot map (16,384 slots
// colored by owner), primaries and replicas, link state, failovers and
// ops/s, read from /v1/peer/status every second.

import { get, sleep } from '../api.js';
import { h, badge, table, errorText, announce } from '../ui.js';
import { CellMap, LineChart, fmt } from '../charts.js';

const PALETTE = ['#2457c5', '#1f8a4c', '#b7791f', '#6b46c1', '#c53030', '#2b6cb0', '#97266d', '#4a5568', '#0f766e', '#a16207', '#be185d', '#4338ca'];
const SLOTS = 16384;

export async function render(main, _params, signal, { peerMode }) {
  main.append(h('h1', {}, 'Peers'));
  if (!peerMode) {
    main.append(h('section', { class: 'card' },
      h('p', {}, 'Peers are the decentralized side of gantry: Redis Cluster nodes with no server. Each peer serves this page itself when started with an HTTP address:'),
      h('pre', { class: 'mono' }, 'gantry peer --cluster --port 7000 --http-addr 127.0.0.1:17000'),
      h('p', {}, 'then open http://127.0.0.1:17000/ui/ to see its slot map, primaries and replicas, link state, failovers and ops/s.')));
    return;
  }
  const summary = h('div', { class: 'stats' });
  const mapBox = h('div');
  const legend = h('div', { class: 'legend' });
  const peersBox = h('div');
  const ops = new LineChart({ title: 'Commands per second (this peer)', series: ['ops/s'] });
  main.append(h('div', { class: 'grid' },
    h('section', { class: 'card wide', 'aria-labelledby': 'pe-sum' }, h('h2', { id: 'pe-sum' }, 'Cluster'), summary),
    h('section', { class: 'card wide', 'aria-labelledby': 'pe-map' }, h('h2', { id: 'pe-map' }, 'Slot map: 16,384 slots by owner'), mapBox, legend),
    h('section', { class: 'card wide', 'aria-labelledby': 'pe-list' }, h('h2', { id: 'pe-list' }, 'Primaries and replicas'), peersBox),
    ops.el));
  let prev = null;
  let mapKey = '';
  while (!signal.aborted) {
    try {
      const { data: st } = await get('/v1/peer/status', {}, signal);
      const dt = prev ? (st.time - prev.time) / 1000 : 0;
      const rate = dt > 0 ? (st.commands - prev.commands) / dt : null;
      if (rate !== null) ops.push([rate]);
      summary.replaceChildren(
        h('div', {}, h('div', { class: 'stat' }, st.cluster ? badge(st.ok ? 'ok' : 'fail') : 'standalone'), 'cluster state'),
        h('div', {}, h('div', { class: 'stat' }, fmt(st.slots_assigned)), 'slots assigned'),
        h('div', {}, h('div', { class: 'stat' }, fmt(st.slots_pfail)), 'slots of suspected owners'),
        h('div', {}, h('div', { class: 'stat' }, fmt(st.slots_fail)), 'slots of failed owners'),
        h('div', {}, h('div', { class: 'stat' }, fmt(st.size)), 'primaries'),
        h('div', {}, h('div', { class: 'stat' }, fmt(st.failovers)), 'failovers seen'),
        h('div', {}, h('div', { class: 'stat' }, fmt(rate)), 'ops/s'));
      const primaries = st.peers.filter((p) => p.role === 'primary');
      const color = new Map(primaries.map((p, i) => [p.id, PALETTE[i % PALETTE.length]]));
      const owner = new Int16Array(SLOTS).fill(-1);
      primaries.forEach((p, i) => { for (const [a, b] of p.slots || []) for (let s = a; s <= b; s++) owner[s] = i; });
      const key = Array.from(primaries, (p) => `${p.id}:${p.link}:${JSON.stringify(p.slots)}`).join('|');
      if (key !== mapKey) {
        mapKey = key;
        const map = new CellMap({
          label: `Slot map of ${SLOTS} slots owned by ${primaries.length} primaries; focus it and use the arrow keys to read each slot`,
          n: SLOTS, width: 1024, maxCell: 8,
          color: (s) => (owner[s] < 0 ? '#e6e9ef' : (primaries[owner[s]].link === 'connected' ? PALETTE[owner[s] % PALETTE.length] : '#c53030')),
          describe: (s) => `slot ${s}: ${owner[s] < 0 ? 'unassigned' : `${primaries[owner[s]].addr} (${primaries[owner[s]].id.slice(0, 8)}, ${primaries[owner[s]].link})`}`,
        });
        mapBox.replaceChildren(map.el);
        legend.replaceChildren(...primaries.map((p) => {
          const i = h('i'); i.style.background = color.get(p.id); return h('span', {}, i, `${p.addr} (${countSlots(p)} slots)`);
        }), (() => { const i = h('i'); i.style.background = '#e6e9ef'; return h('span', {}, i, 'unassigned'); })());
        announce('Slot map changed');
      }
      const prevOffset = new Map((prev?.peers || []).map((p) => [p.id, p.offset]));
      peersBox.replaceChildren(table(['ID', 'Address', 'Role', 'Primary', 'Link', 'Config epoch', 'Replication offset', 'Offset/s', 'Failure reports', 'Slots'],
        st.peers.map((p) => [h('span', { class: 'mono' }, `${p.id.slice(0, 12)}${p.self ? ' (this peer)' : ''}`), p.addr, p.role,
          p.primary ? h('span', { class: 'mono' }, p.primary.slice(0, 12)) : '-', badge(p.link), p.config_epoch, fmt(p.offset),
          dt > 0 && prevOffset.has(p.id) ? fmt((p.offset - prevOffset.get(p.id)) / dt) : '-', p.failure_reports, countSlots(p)])));
      prev = st;
    } catch (e) {
      if (signal.aborted) return;
      summary.replaceChildren(h('p', { class: 'err' }, errorText(e)));
    }
    await sleep(1000, signal);
  }
}

function countSlots(p) {
  let n = 0;
  for (const [a, b] of p.slots || []) n += b - a + 1;
  return n;
}
