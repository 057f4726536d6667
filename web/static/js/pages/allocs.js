// Allocations: every allocation, filtered and paged by the server.

import { get, watch } from '../api.js';
import { h, badge, labeled, VirtualList, shortID, ago } from '../ui.js';

export async function render(main, _params, signal, { query }) {
  main.append(h('h1', {}, 'Allocations'));
  const prefix = h('input', { type: 'search', placeholder: 'ID or name prefix', value: query.get('prefix') || '' });
  const status = h('select', {}, ['', 'pending', 'running', 'complete', 'failed', 'lost'].map((s) => h('option', { value: s, selected: s === (query.get('status') || '') }, s || 'any')));
  const list = new VirtualList({
    label: 'Allocations',
    template: '1fr 2fr 2fr 1fr 1fr 1fr',
    columns: [
      { title: 'ID', value: (a) => h('span', { class: 'mono' }, shortID(a.id)) },
      { title: 'Name', value: (a) => a.name },
      { title: 'Node', value: (a) => a.node_name || shortID(a.node_id) },
      { title: 'Desired', value: (a) => a.desired_status },
      { title: 'Client', value: (a) => badge(a.client_status) },
      { title: 'Modified', value: (a) => ago(a.modify_time) },
    ],
    href: (a) => `#/allocation/${a.id}`,
    fetchPage: async (offset, limit) => {
      const r = await get('/v1/allocations', { prefix: prefix.value, status: status.value, offset, limit }, signal);
      return { rows: r.data, total: r.total };
    },
  });
  let timer;
  const refilter = () => { clearTimeout(timer); timer = setTimeout(() => list.reload(), 200); };
  prefix.addEventListener('input', refilter);
  status.addEventListener('change', refilter);
  main.append(h('section', { class: 'card', 'aria-label': 'Allocation list' },
    h('div', { class: 'filters', role: 'search' }, labeled('Prefix', prefix), labeled('Client status', status)), list.root));
  watch('/v1/allocations', { limit: 1 }, signal, () => list.reload());
}
