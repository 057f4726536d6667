// One allocation: status, task state and events (followed with a
// blocking query), and its task's log, live (fetch streaming with
// follow=true).

import { watch, chunks } from '../api.js';
import { h, badge, kv, table, labeled, errorText, time, ago } from '../ui.js';

export async function render(main, [id], signal) {
  const title = h('h1', {}, `Allocation ${id}`);
  const info = h('div'); const events = h('div');
  main.append(title, h('div', { class: 'grid' },
    h('section', { class: 'card', 'aria-labelledby': 'al-st' }, h('h2', { id: 'al-st' }, 'Status'), info),
    h('section', { class: 'card', 'aria-labelledby': 'al-ev' }, h('h2', { id: 'al-ev' }, 'Task events'), events),
    logsCard(id, signal)));
  watch(`/v1/allocation/${encodeURIComponent(id)}`, {}, signal, ({ data: a }) => {
    title.textContent = `Allocation ${a.name}`;
    const ts = a.task_state || {};
    info.replaceChildren(kv([
      ['ID', h('span', { class: 'mono' }, a.id)],
      ['Job', h('a', { href: `#/job/${encodeURIComponent(a.job_id)}` }, `${a.job_id} (version ${a.job_version})`)],
      ['Node', h('a', { href: `#/node/${encodeURIComponent(a.node_id)}` }, a.node_name || a.node_id)],
      ['Desired', `${a.desired_status}${a.desired_description ? ` (${a.desired_description})` : ''}`],
      ['Client', h('span', {}, badge(a.client_status), a.client_description ? ` ${a.client_description}` : '')],
      ['Task', `${ts.state || '-'}${ts.pid ? `, pid ${ts.pid}` : ''}${ts.restarts ? `, ${ts.restarts} restarts` : ''}${ts.finished_at ? `, exit code ${ts.exit_code}` : ''}`],
      ['Resources', `${a.resources.cpu} m CPU, ${a.resources.memory_mb} MiB`],
      ['Created', `${time(a.create_time)} (${ago(a.create_time)})`],
      ['Replaces', a.previous_allocation ? h('a', { href: `#/allocation/${a.previous_allocation}` }, a.previous_allocation) : '-'],
    ]));
    events.replaceChildren(table(['Time', 'Type', 'Message'], (ts.events || []).slice().reverse().map((e) => [time(e.time), e.type, e.message || ''])));
  }, (e) => info.replaceChildren(h('p', { class: 'err' }, errorText(e))));
}

// logsCard follows the task's log; switching stdout/stderr or pausing
// starts a new request.
function logsCard(id, pageSignal) {
  const which = h('select', { id: 'log-type' }, h('option', { value: 'stdout' }, 'stdout'), h('option', { value: 'stderr' }, 'stderr'));
  const follow = h('input', { type: 'checkbox', id: 'log-follow', checked: true });
  const pre = h('pre', { class: 'logs', tabindex: '0', 'aria-label': 'Task log', 'aria-live': 'off' });
  const status = h('p', { class: 'muted', role: 'status' });
  let ctl = null;
  const MAX = 1 << 20; // keep the last MiB on screen
  const start = async () => {
    if (ctl) ctl.abort();
    ctl = new AbortController();
    const signal = AbortSignal.any([ctl.signal, pageSignal]);
    pre.textContent = '';
    status.textContent = follow.checked ? 'Following…' : '';
    try {
      for await (const text of chunks(`/v1/allocation/${encodeURIComponent(id)}/logs`, { type: which.value, follow: follow.checked ? 'true' : '' }, signal)) {
        const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.append(text);
        if (pre.textContent.length > MAX) pre.textContent = pre.textContent.slice(-MAX / 2);
        if (stick) pre.scrollTop = pre.scrollHeight;
      }
      status.textContent = 'End of log.';
    } catch (e) {
      if (!signal.aborted) status.textContent = errorText(e);
    }
  };
  which.addEventListener('change', start);
  follow.addEventListener('change', start);
  start();
  return h('section', { class: 'card wide', 'aria-labelledby': 'al-logs' }, h('h2', { id: 'al-logs' }, 'Logs'),
    h('div', { class: 'filters' }, labeled('Stream', which), h('label', { for: 'log-follow' }, follow, ' Follow')), pre, status);
}
