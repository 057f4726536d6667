// Nodes: every node, filtered and paged by the server.

import { get, watch } from '../api.js';
import { h, badge, labeled, VirtualList, shortID } from '../ui.js';

export async function render(main, _params, signal, { query }) {
  main.append(h('h1', {}, 'Nodes'));
  const prefix = h('input', { type: 'search', placeholder: 'name or ID prefix', value: query.get('prefix') || '' });
  const status = h('select', {}, ['', 'ready', 'down', 'draining', 'ineligible'].map((s) => h('option', { value: s, selected: s === (query.get('status') || '') }, s || 'any')));
  const list = new VirtualList({
    label: 'Nodes',
    template: '2fr 1fr 1fr 1fr 1fr 2fr',
    columns: [
      { title: 'Name', value: (n) => n.name },
      { title: 'ID', value: (n) => h('span', { class: 'mono' }, shortID(n.id)) },
      { title: 'Status', value: (n) => badge(nodeState(n)) },
      { title: 'CPU', value: (n) => `${n.capacity.cpu} m` },
      { title: 'Memory', value: (n) => `${n.capacity.memory_mb} MiB` },
      { title: 'Address', value: (n) => n.http_addr || '-' },
    ],
    href: (n) => `#/node/${encodeURIComponent(n.id)}`,
    fetchPage: async (offset, limit) => {
      const r = await get('/v1/nodes', { prefix: prefix.value, status: status.value, offset, limit }, signal);
      return { rows: r.data, total: r.total };
    },
  });
  let timer;
  const refilter = () => { clearTimeout(timer); timer = setTimeout(() => list.reload(), 200); };
  prefix.addEventListener('input', refilter);
  status.addEventListener('change', refilter);
  main.append(h('section', { class: 'card', 'aria-label': 'Node list' },
    h('div', { class: 'filters', role: 'search' }, labeled('Prefix', prefix), labeled('Status', status)), list.root));
  watch('/v1/nodes', { limit: 1 }, signal, () => list.reload());
}

export function nodeState(n) {
  if (n.status !== 'ready') return n.status;
  if (n.drain) return 'draining';
  if (n.ineligible) return 'ineligible';
  return 'ready';
}
