// Scheduler: the architecture in use and its live figures, charted on
// canvas: polled from /v1/scheduler/status every second, and placements
// committed per second counted from the event stream's Plan events.

import { get, events, sleep } from '../api.js';
import { h, kv, errorText } from '../ui.js';
import { LineChart, fmt } from '../charts.js';

const ARCH = {
  monolithic: 'One scheduling loop on the leader with the global view of all pending work and all resources, over a priority queue. Conflicts cannot happen: one scheduler decides at a time.',
  'shared-state': 'Several schedulers work in parallel, each on its own snapshot of the whole cluster, and commit plans as optimistic transactions: the leader\'s plan applier checks each node of a plan against current state, commits what fits and returns conflicts, which the scheduler retries on a fresh snapshot (Omega).',
  'two-level': 'The leader\'s allocator divides resources among frameworks (Dominant Resource Fairness) and sends them resource offers; frameworks accept offers by launching tasks on them or decline them (Mesos). Offers held while a framework decides are the cost of the design.',
};

export async function render(main, _params, signal) {
  main.append(h('h1', {}, 'Scheduler'));
  const about = h('section', { class: 'card wide', 'aria-labelledby': 'sc-arch' }, h('h2', { id: 'sc-arch' }, 'Architecture'));
  const aboutBody = h('div');
  about.append(aboutBody);
  const charts = {
    rate: new LineChart({ title: 'Decisions per second', series: ['evaluations/s', 'placements/s'] }),
    committed: new LineChart({ title: 'Placements committed per second (event stream)', series: ['placed/s', 'stopped/s'] }),
    latency: new LineChart({ title: 'Scheduling latency', series: ['p50', 'p99'], unit: ' ms' }),
    queue: new LineChart({ title: 'Queue depth', series: ['jobs waiting'] }),
    busy: new LineChart({ title: 'Busyness', series: ['busy fraction'] }),
    conflict: new LineChart({ title: 'Conflict fraction', series: ['conflicts per commit'] }),
  };
  const pools = h('section', { class: 'card wide', 'aria-labelledby': 'sc-pools' }, h('h2', { id: 'sc-pools' }, 'Busyness per scheduler'));
  const poolBody = h('div');
  pools.append(poolBody);
  const grid = h('div', { class: 'grid charts' }, about, ...Object.values(charts).map((c) => c.el), pools);
  main.append(grid);
  let offers = null;

  // Counted from Plan events between polls.
  let placed = 0; let stopped = 0;
  events({ topic: 'Plan' }, signal, (evs) => {
    for (const e of evs) { placed += e.payload?.placed || 0; stopped += (e.payload?.stopped || 0) + (e.payload?.evicted || 0); }
  });

  let prev = null;
  while (!signal.aborted) {
    try {
      const { data: st } = await get('/v1/scheduler/status', {}, signal);
      const now = performance.now();
      aboutBody.replaceChildren(h('p', {}, h('strong', {}, st.architecture), ': ', ARCH[st.architecture] || ''), kv([
        ['Evaluations', fmt(st.evaluations)], ['Placements', fmt(st.placements)], ['Preemptions', fmt(st.preemptions)],
        ['Decisions/s since start', fmt(st.decisions_per_sec)],
        ...(st.plans_submitted ? [['Plans submitted', fmt(st.plans_submitted)], ['Conflicts', fmt(st.conflicts)], ['Retries', fmt(st.retries)]] : []),
        ...(st.offers_outstanding !== undefined ? [['Offers outstanding', fmt(st.offers_outstanding)], ['Offers sent', fmt(st.offers_sent)], ['Declines', fmt(st.declines)]] : []),
      ]));
      if (prev) {
        const dt = (now - prev.t) / 1000;
        charts.rate.push([(st.evaluations - prev.st.evaluations) / dt, (st.placements - prev.st.placements) / dt]);
        charts.committed.push([placed / dt, stopped / dt]);
        placed = 0; stopped = 0;
      }
      charts.latency.push([st.latency_p50_ms, st.latency_p99_ms]);
      charts.queue.push([st.queue_depth]);
      charts.busy.push([st.busy_fraction]);
      charts.conflict.push([st.conflict_fraction || 0]);
      if (st.offers_outstanding !== undefined || (st.frameworks && st.frameworks.length)) {
        if (!offers) {
          offers = new LineChart({ title: 'Offers outstanding (two-level)', series: ['offers'] });
          grid.insertBefore(offers.el, pools);
        }
        offers.push([st.offers_outstanding || 0]);
      }
      poolBody.replaceChildren(...busyBars(st));
      prev = { t: now, st };
    } catch (e) {
      if (signal.aborted) return;
      aboutBody.replaceChildren(h('p', { class: 'err' }, errorText(e)));
    }
    await sleep(1000, signal);
  }
}

function busyBars(st) {
  const rows = (st.schedulers && st.schedulers.length)
    ? st.schedulers.flatMap((p) => [[`${p.name} (${p.workers} workers, ${p.job_types.join(', ')})`, p.busy_fraction],
      ...(p.worker_busy || []).map((b, i) => [`  worker ${i}`, b])])
    : [[st.architecture, st.busy_fraction]];
  return rows.map(([name, f]) => {
    const bar = h('div', { class: 'bar', role: 'meter', 'aria-label': `${name} busy`, 'aria-valuemin': '0', 'aria-valuemax': '1', 'aria-valuenow': String(f || 0) }, h('span'));
    bar.firstChild.style.width = `${Math.round(100 * (f || 0))}%`;
    return h('div', {}, h('span', {}, `${name}: ${Math.round(100 * (f || 0))}%`), bar);
  });
}
