// Jobs: run a job from a pasted document, and the list, filtered and
// paged by the server (?prefix=, ?status=, ?offset=, ?limit=).

import { get, send, watch } from '../api.js';
import { h, badge, labeled, errorText, VirtualList, ago, announce } from '../ui.js';

const EXAMPLE = `name: hello
type: service
count: 2
resources:
  cpu: 50
  memory_mb: 32
driver: exec
config:
  command: /bin/sh
  args: ["-c", "while true; do echo hello from $GANTRY_ALLOC_INDEX; sleep 1; done"]
`;

export async function render(main, _params, signal, { query }) {
  main.append(h('h1', {}, 'Jobs'));
  main.append(runForm());

  const prefix = h('input', { type: 'search', placeholder: 'job ID prefix', value: query.get('prefix') || '' });
  const status = h('select', {}, ['', 'running', 'pending', 'dead'].map((s) => h('option', { value: s, selected: s === (query.get('status') || '') }, s || 'any')));
  const list = new VirtualList({
    label: 'Jobs',
    template: '2fr 1fr 1fr 1fr 2fr 1fr 1fr',
    columns: [
      { title: 'ID', value: (j) => j.id },
      { title: 'Type', value: (j) => j.type },
      { title: 'Status', value: (j) => badge(j.status) },
      { title: 'Count', value: (j) => j.count },
      { title: 'Allocations', value: (j) => Object.entries(j.summary || {}).map(([k, v]) => `${k} ${v}`).join(', ') || '-' },
      { title: 'Version', value: (j) => j.version },
      { title: 'Submitted', value: (j) => ago(j.submit_time) },
    ],
    href: (j) => `#/job/${encodeURIComponent(j.id)}`,
    fetchPage: async (offset, limit) => {
      const r = await get('/v1/jobs', { prefix: prefix.value, status: status.value, offset, limit }, signal);
      return { rows: r.data, total: r.total };
    },
  });
  let timer;
  const refilter = () => { clearTimeout(timer); timer = setTimeout(() => list.reload(), 200); };
  prefix.addEventListener('input', refilter);
  status.addEventListener('change', refilter);
  main.append(h('section', { class: 'card', 'aria-label': 'Job list' },
    h('div', { class: 'filters', role: 'search' }, labeled('ID prefix', prefix), labeled('Status', status)), list.root));
  // Reload when jobs or their allocations change (a blocking query).
  watch('/v1/jobs', { limit: 1 }, signal, () => list.reload());
}

function runForm() {
  const text = h('textarea', { spellcheck: 'false', 'aria-describedby': 'run-help' });
  text.value = EXAMPLE;
  const out = h('div', { role: 'status' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Run');
  const form = h('form', {},
    labeled('Job document (YAML or JSON)', text),
    h('p', { id: 'run-help', class: 'muted' }, 'The same document gantry job run reads. The server checks it and answers with every problem and its line.'),
    h('div', { class: 'row-actions' }, button), out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    button.disabled = true;
    out.replaceChildren();
    try {
      const job = await send('POST', '/v1/jobs/parse', { job_spec: text.value });
      const r = await send('PUT', '/v1/jobs', { job });
      announce(`Job ${r.job_id} registered, version ${r.version}`);
      location.hash = `#/job/${encodeURIComponent(r.job_id)}`;
    } catch (err) {
      out.replaceChildren(h('p', { class: 'err' }, errorText(err)));
    } finally {
      button.disabled = false;
    }
  });
  return h('details', { class: 'card' }, h('summary', {}, 'Run a job'), form);
}
