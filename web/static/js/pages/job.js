// One job: status, deployment progress, allocations, versions, why copies
// are pending (nodes excluded per filter, nodes short of a resource), and
// scale, stop and purge. Follows the job with a blocking query.

import { send, watch } from '../api.js';
import { h, badge, table, kv, labeled, errorText, shortID, ago, announce } from '../ui.js';

export async function render(main, [id], signal) {
  const title = h('h1', {}, `Job ${id}`);
  const actions = h('section', { class: 'card', 'aria-label': 'Actions' });
  const info = h('section', { class: 'card', 'aria-labelledby': 'job-info' }, h('h2', { id: 'job-info' }, 'Status'));
  const progress = h('section', { class: 'card', 'aria-labelledby': 'job-dep' }, h('h2', { id: 'job-dep' }, 'Deployment'));
  const pending = h('section', { class: 'card', 'aria-labelledby': 'job-why' }, h('h2', { id: 'job-why' }, 'Why copies are pending'));
  const versions = h('section', { class: 'card', 'aria-labelledby': 'job-ver' }, h('h2', { id: 'job-ver' }, 'Versions'));
  const allocs = h('section', { class: 'card wide', 'aria-labelledby': 'job-allocs' }, h('h2', { id: 'job-allocs' }, 'Allocations'));
  const infoBody = h('div'); const progBody = h('div'); const whyBody = h('div'); const verBody = h('div'); const allocBody = h('div');
  info.append(infoBody); progress.append(progBody); pending.append(whyBody); versions.append(verBody); allocs.append(allocBody);
  main.append(title, h('div', { class: 'grid' }, actions, info, progress, pending, versions, allocs));

  let job = null;
  const msg = h('div', { role: 'status' });
  const count = h('input', { type: 'number', min: '0', step: '1', inputmode: 'numeric' });
  const scale = h('button', { type: 'submit' }, 'Scale');
  const stop = h('button', { type: 'button', class: 'danger' }, 'Stop');
  const purge = h('button', { type: 'button', class: 'danger' }, 'Purge');
  const scaleForm = h('form', { class: 'row-actions' }, labeled('Count', count), scale, stop, purge);
  actions.append(h('h2', {}, 'Actions'), scaleForm, msg);
  const act = async (what, fn) => {
    msg.replaceChildren();
    try {
      const r = await fn();
      msg.replaceChildren(h('p', {}, `${what}: done at index ${r.index}.`));
      announce(`${what} done`);
    } catch (e) {
      msg.replaceChildren(h('p', { class: 'err' }, errorText(e)));
    }
  };
  scaleForm.addEventListener('submit', (e) => {
    e.preventDefault();
    act(`Scaled to ${count.value}`, () => send('POST', `/v1/job/${encodeURIComponent(id)}/scale`, { count: Number(count.value) }));
  });
  confirmed(stop, 'Confirm stop', () => act('Stopped', () => send('DELETE', `/v1/job/${encodeURIComponent(id)}`)));
  confirmed(purge, 'Confirm purge', () => act('Purged', () => send('DELETE', `/v1/job/${encodeURIComponent(id)}`, undefined, { purge: 'true' })));

  watch(`/v1/job/${encodeURIComponent(id)}/status`, {}, signal, ({ data }) => {
    const first = job === null;
    job = data.job;
    if (first || document.activeElement !== count) count.value = job.count;
    infoBody.replaceChildren(kv([
      ['Status', badge(job.status)], ['Type', job.type], ['Priority', job.priority], ['Count', job.count],
      ['Version', job.version], ['Driver', job.driver], ['Resources', `${job.resources.cpu} m CPU, ${job.resources.memory_mb} MiB`],
      ['Submitted', ago(job.submit_time)], ['Stopped', job.stop ? 'yes' : 'no'],
    ]));
    const live = data.allocations.filter((a) => a.desired_status === 'run');
    const current = live.filter((a) => a.job_version === job.version);
    const running = current.filter((a) => a.client_status === 'running').length;
    const bar = h('div', { class: 'bar', role: 'progressbar', 'aria-label': 'Copies of the current version running', 'aria-valuemin': '0', 'aria-valuemax': String(job.count), 'aria-valuenow': String(running) }, h('span'));
    bar.firstChild.style.width = `${job.count ? Math.min(100, 100 * running / job.count) : 0}%`;
    progBody.replaceChildren(h('p', {}, `${running} of ${job.count} copies of version ${job.version} running`), bar,
      kv(Object.entries(data.summary || {}).map(([k, v]) => [k, String(v)])));
    whyBody.replaceChildren(...why(data));
    const byVersion = new Map();
    for (const a of data.allocations) {
      const v = byVersion.get(a.job_version) || { live: 0, all: 0 };
      v.all++; if (a.desired_status === 'run') v.live++;
      byVersion.set(a.job_version, v);
    }
    verBody.replaceChildren(table(['Version', 'Live allocations', 'All allocations'],
      [...byVersion.entries()].sort((a, b) => b[0] - a[0]).map(([v, c]) => [v === job.version ? h('strong', {}, `${v} (current)`) : v, c.live, c.all])));
    const shown = data.allocations.slice(-500).reverse();
    allocBody.replaceChildren(
      h('p', { class: 'muted' }, data.allocations.length > 500 ? `Newest 500 of ${data.allocations.length}` : `${data.allocations.length} allocations`),
      table(['ID', 'Name', 'Node', 'Desired', 'Client', 'Version', 'Modified'], shown.map((a) => [
        h('a', { href: `#/allocation/${a.id}`, class: 'mono' }, shortID(a.id)), a.name,
        h('a', { href: `#/node/${encodeURIComponent(a.node_id)}` }, a.node_name || shortID(a.node_id)),
        a.desired_status, badge(a.client_status), a.job_version, ago(a.modify_time)])));
  }, (e) => infoBody.replaceChildren(h('p', { class: 'err' }, errorText(e))));
}

function why(data) {
  const f = data.placement_failure;
  const out = [];
  if (!f) out.push(h('p', { class: 'muted' }, 'Nothing is pending for want of a node.'));
  else {
    out.push(h('p', {}, `${f.unplaced} ${f.unplaced === 1 ? 'copy' : 'copies'} could not be placed; ${f.nodes_evaluated} nodes evaluated. ${f.message || ''}`));
    const rows = [];
    for (const [k, v] of Object.entries(f.nodes_filtered || {})) rows.push([`excluded by ${k}`, v]);
    for (const [k, v] of Object.entries(f.nodes_exhausted || {})) rows.push([`short of ${k}`, v]);
    if (rows.length) out.push(table(['Reason', 'Nodes'], rows.sort((a, b) => b[1] - a[1])));
  }
  for (const r of data.reschedules || []) {
    out.push(h('p', {}, `${r.name}: reschedule attempt ${r.attempt} due ${ago(r.time)} (delay ${r.delay})`));
  }
  return out;
}

// confirmed makes a button ask once more (its label changes) before it
// acts; leaving it undoes the question. No modal dialog: keyboard and
// screen reader users stay where they are.
function confirmed(button, question, action) {
  const label = button.textContent;
  button.addEventListener('click', () => {
    if (button.dataset.armed) {
      delete button.dataset.armed;
      button.textContent = label;
      action();
      return;
    }
    button.dataset.armed = '1';
    button.textContent = question;
    announce(`${question}? Press again to confirm.`);
  });
  button.addEventListener('blur', () => { delete button.dataset.armed; button.textContent = label; });
}
