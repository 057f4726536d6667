// The app: a router over location.hash, the token form and the banner.
// Each page is a module exporting render(main, params, signal); signal
// aborts when the user leaves the page, ending its watches and streams.

import { token, setToken } from './api.js';
import { h } from './ui.js';

const routes = [
  [/^\/overview$/, 'overview', () => import('./pages/overview.js')],
  [/^\/jobs$/, 'jobs', () => import('./pages/jobs.js')],
  [/^\/job\/(.+)$/, 'jobs', () => import('./pages/job.js')],
  [/^\/allocations$/, 'allocations', () => import('./pages/allocs.js')],
  [/^\/allocation\/(.+)$/, 'allocations', () => import('./pages/alloc.js')],
  [/^\/nodes$/, 'nodes', () => import('./pages/nodes.js')],
  [/^\/node\/(.+)$/, 'nodes', () => import('./pages/node.js')],
  [/^\/scheduler$/, 'scheduler', () => import('./pages/scheduler.js')],
  [/^\/peers$/, 'peers', () => import('./pages/peers.js')],
];

let current = null;
let peerMode = false;

function banner(text, error) {
  const b = document.getElementById('banner');
  b.hidden = !text;
  b.textContent = text || '';
  b.className = error ? 'error' : '';
}

async function route() {
  if (current) current.abort();
  current = new AbortController();
  const signal = current.signal;
  const [path, qs] = (location.hash.replace(/^#/, '') || (peerMode ? '/peers' : '/overview')).split('?');
  const main = document.getElementById('main');
  for (const [re, nav, load] of routes) {
    const m = path.match(re);
    const query = new URLSearchParams(qs || '');
    if (!m) continue;
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.page === nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    banner('');
    try {
      const page = await load();
      if (signal.aborted) return;
      main.replaceChildren();
      await page.render(main, m.slice(1).map(decodeURIComponent), signal, { peerMode, query });
      document.title = `${main.querySelector('h1')?.textContent || nav} · gantry`;
    } catch (e) {
      if (signal.aborted) return;
      main.replaceChildren(h('h1', {}, 'Something went wrong'), h('p', { class: 'err' }, e.message));
    }
    return;
  }
  main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, 'No page here. '), h('a', { href: '#/overview' }, 'Overview'));
}

function tokenForm() {
  const form = document.getElementById('token-form');
  const input = document.getElementById('token-input');
  input.value = token();
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    banner(input.value.trim() ? 'Token saved in this browser.' : 'Token cleared.');
    route();
  });
  document.getElementById('token-clear').addEventListener('click', () => {
    input.value = '';
    setToken('');
    banner('Token cleared.');
    route();
  });
  window.addEventListener('gantry:denied', (e) => {
    banner(`Access denied: ${e.detail}. Enter an ACL token with the rights this page needs.`, true);
  });
}

async function detectPeer() {
  // A peer started with --http-addr serves this UI and /v1/peer/status;
  // a server answers that path 404.
  try {
    const resp = await fetch('/v1/peer/status');
    peerMode = resp.ok;
  } catch { peerMode = false; }
  if (peerMode) {
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.page !== 'peers') a.parentElement.hidden = true;
    }
    document.getElementById('token-form').hidden = true;
  }
}

tokenForm();
await detectPeer();
window.addEventListener('hashchange', route);
route();
