// One node: status, capacity and use, labels, attributes, its
// allocations, and drain on/off.

import { get, send, watch } from '../api.js';
import { h, badge, kv, table, errorText, shortID, ago, announce } from '../ui.js';
import { nodeState } from './nodes.js';

export async function render(main, [id], signal) {
  const title = h('h1', {}, `Node ${id}`);
  const info = h('div'); const labels = h('div'); const attrs = h('div'); const allocs = h('div');
  const msg = h('div', { role: 'status' });
  const drain = h('button', { type: 'button' }, 'Drain');
  main.append(title, h('div', { class: 'grid' },
    h('section', { class: 'card', 'aria-labelledby': 'nd-st' }, h('h2', { id: 'nd-st' }, 'Status'), info, h('div', { class: 'row-actions' }, drain), msg),
    h('section', { class: 'card', 'aria-labelledby': 'nd-lb' }, h('h2', { id: 'nd-lb' }, 'Labels'), labels),
    h('section', { class: 'card', 'aria-labelledby': 'nd-at' }, h('h2', { id: 'nd-at' }, 'Attributes'), attrs),
    h('section', { class: 'card wide', 'aria-labelledby': 'nd-al' }, h('h2', { id: 'nd-al' }, 'Allocations'), allocs)));
  let node = null;
  drain.addEventListener('click', async () => {
    if (!node) return;
    const enable = !node.drain;
    try {
      const r = await send('POST', `/v1/node/${encodeURIComponent(node.id)}/drain`, { enable });
      msg.replaceChildren(h('p', {}, `Drain ${enable ? 'on' : 'off'} at index ${r.index}.`));
      announce(`Drain ${enable ? 'on' : 'off'}`);
    } catch (e) {
      msg.replaceChildren(h('p', { class: 'err' }, errorText(e)));
    }
  });
  watch(`/v1/node/${encodeURIComponent(id)}`, {}, signal, async ({ data: n }) => {
    node = n;
    title.textContent = `Node ${n.name}`;
    drain.textContent = n.drain ? 'Stop draining' : 'Drain';
    drain.setAttribute('aria-pressed', n.drain ? 'true' : 'false');
    let used = null;
    try {
      const u = (await get(`/v1/node/${encodeURIComponent(n.id)}/allocations`, {}, signal)).data;
      used = u.filter((a) => a.desired_status === 'run' && !['complete', 'failed', 'lost'].includes(a.client_status));
      allocs.replaceChildren(table(['ID', 'Name', 'Job', 'Desired', 'Client', 'Modified'], u.slice(-500).reverse().map((a) => [
        h('a', { href: `#/allocation/${a.id}`, class: 'mono' }, shortID(a.id)), a.name,
        h('a', { href: `#/job/${encodeURIComponent(a.job_id)}` }, a.job_id), a.desired_status, badge(a.client_status), ago(a.modify_time)])));
    } catch (e) {
      allocs.replaceChildren(h('p', { class: 'err' }, errorText(e)));
    }
    const cpu = used ? used.reduce((s, a) => s + a.resources.cpu, 0) : 0;
    const mem = used ? used.reduce((s, a) => s + a.resources.memory_mb, 0) : 0;
    info.replaceChildren(kv([
      ['ID', h('span', { class: 'mono' }, n.id)], ['Status', badge(nodeState(n))],
      ['Eligible', n.ineligible ? `no: ${n.ineligible}` : (n.drain ? 'no: draining' : 'yes')],
      ['Datacenter', n.datacenter || '-'], ['Agent', n.http_addr || '-'],
      ['CPU', `${cpu} of ${n.capacity.cpu} m in use`], ['Memory', `${mem} of ${n.capacity.memory_mb} MiB in use`],
      ['Status since', ago(n.status_updated_at)],
    ]));
    labels.replaceChildren(table(['Label', 'Value'], Object.entries(n.labels || {}).sort()));
    attrs.replaceChildren(table(['Attribute', 'Value'], Object.entries(n.attributes || {}).sort()));
  }, (e) => info.replaceChildren(h('p', { class: 'err' }, errorText(e))));
}
