// The dashboard page: one EventSource (/events) feeds the board. The first
// message is the whole board; then each changed feature arrives whole and
// is patched into the page in place: cards are kept by id and moved between
// lane columns, never rebuilt, so nothing flickers and nothing reloads.
// Every text from the server goes into the page as text (textContent); the
// only HTML inserted is the server's escaped Markdown rendering.
'use strict';

const LANES = [
  ['planned', 'Planned'], ['claimed', 'Claimed'], ['in_progress', 'In progress'],
  ['for_review', 'For review'], ['approved', 'Approved'], ['done', 'Done'],
  ['blocked', 'Blocked'], ['canceled', 'Canceled'],
];

const sections = new Map(); // slug -> {root, cols: Map(lane -> el), cards: Map(id -> el)}
let order = [];
let detail = {slug: null, tab: 'timeline'};

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

function age(iso) {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  let s = Math.max(0, Math.floor((Date.now() - t) / 1000));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm';
  if (s < 86400) return Math.floor(s / 3600) + 'h';
  return Math.floor(s / 86400) + 'd';
}

function featureSection(slug) {
  let s = sections.get(slug);
  if (s) return s;
  const root = el('section', {class: 'feature', 'data-feature-slug': slug, id: 'f-' + slug});
  const head = el('header', {class: 'feature-head'});
  const title = el('a', {class: 'feature-title', href: '#/f/' + encodeURIComponent(slug)});
  const meta = el('span', {class: 'feature-meta muted'});
  head.append(title, meta);
  const errors = el('div', {class: 'errors'});
  const board = el('div', {class: 'board'});
  const none = el('p', {class: 'no-wps muted', text: 'No work packages yet.'});
  const cols = new Map();
  for (const [lane, label] of LANES) {
    const col = el('div', {class: 'lane', 'data-lane': lane},
      el('h3', {}, el('span', {class: 'lane-name', text: label}), el('span', {class: 'count', text: '0'})),
      el('div', {class: 'cards'}));
    cols.set(lane, col);
    board.append(col);
  }
  root.append(head, errors, none, board);
  s = {root, title, meta, errors, cols, cards: new Map()};
  sections.set(slug, s);
  return s;
}

function card(f, wp) {
  const c = el('article', {class: 'card', 'data-wp-id': wp.id, 'data-lane': wp.lane, title: wp.file});
  fillCard(c, wp);
  return c;
}

function fillCard(c, wp) {
  c.dataset.lane = wp.lane;
  c.dataset.since = wp.since || '';
  c.replaceChildren();
  c.append(el('div', {class: 'card-top'},
    el('span', {class: 'wp-id', text: wp.id}),
    wp.agent ? el('span', {class: 'agent', text: wp.agent}) : null,
    el('span', {class: 'age muted', text: wp.since ? age(wp.since) + ' in lane' : ''})));
  c.append(el('div', {class: 'card-title', text: wp.title || '(untitled)'}));
  const foot = el('div', {class: 'card-foot'});
  if (wp.dependencies && wp.dependencies.length) {
    foot.append(el('span', {class: 'deps', text: 'needs ' + wp.dependencies.join(', ')}));
  }
  if (wp.review && wp.review.status) {
    const txt = wp.review.status + (wp.review.by ? ' · ' + wp.review.by : '');
    foot.append(el('span', {class: 'review', 'data-review': wp.review.status, text: txt}));
  }
  if (foot.childNodes.length) c.append(foot);
}

function applyFeature(f) {
  const s = featureSection(f.slug);
  s.data = f;
  s.title.textContent = f.name === f.slug ? f.slug : f.slug.slice(0, 3) + ' · ' + f.name;
  const total = f.wps.length;
  const done = f.counts.done || 0;
  s.meta.textContent = `${done}/${total} done · lanes from ${f.source}` + (f.events ? ` (${f.events} events)` : '');
  s.errors.replaceChildren(...f.errors.map(e => el('div', {class: 'error-card', role: 'alert', 'data-file': e.file},
    el('strong', {text: 'Cannot read ' + e.file + (e.line ? ':' + e.line : '')}),
    el('div', {text: e.message}))));
  const seen = new Set();
  for (const wp of f.wps) {
    seen.add(wp.id);
    let c = s.cards.get(wp.id);
    if (c) fillCard(c, wp); else { c = card(f, wp); s.cards.set(wp.id, c); }
    const target = s.cols.get(wp.lane) || s.cols.get('planned');
    target.querySelector('.cards').append(c); // moves an existing card
  }
  for (const [id, c] of s.cards) if (!seen.has(id)) { c.remove(); s.cards.delete(id); }
  for (const [lane, col] of s.cols) {
    const n = col.querySelector('.cards').childElementCount;
    col.querySelector('.count').textContent = String(n);
    col.classList.toggle('folded', n === 0);
  }
  s.root.classList.toggle('has-errors', f.errors.length > 0);
  s.root.classList.toggle('empty', f.wps.length === 0);
  if (detail.slug === f.slug && detail.tab === 'timeline') loadDetail();
}

function applyBoard(b) {
  document.getElementById('project-name').textContent = b.project_name || b.project_path;
  document.title = 'Spec Kitty · ' + (b.project_name || '');
  const box = document.getElementById('features');
  const loading = document.getElementById('loading');
  if (loading) loading.remove();
  const slugs = b.features.map(f => f.slug);
  for (const [slug, s] of sections) if (!slugs.includes(slug)) { s.root.remove(); sections.delete(slug); }
  for (const f of b.features) applyFeature(f);
  order = slugs;
  for (const slug of order) box.append(sections.get(slug).root);
  if (!order.length) box.replaceChildren(el('p', {class: 'muted', text: 'No features yet: create one with `spec-kitty specify NAME`.'}));
  renderNav();
  renderSync(b.sync);
  route();
}

function renderNav() {
  const nav = document.getElementById('feature-nav');
  nav.replaceChildren(...order.map(slug => {
    const s = sections.get(slug);
    const bad = s && s.data && s.data.errors.length;
    return el('a', {href: '#/f/' + encodeURIComponent(slug), 'data-slug': slug, class: bad ? 'bad' : null, text: slug.slice(0, 3)});
  }));
}

function renderSync(v) {
  const box = document.getElementById('sync');
  if (!v) return;
  box.dataset.daemon = v.daemon;
  const parts = [el('strong', {text: 'Sync'})];
  const item = (k, val, cls) => el('span', {class: 'stat ' + (cls || ''), 'data-key': k}, el('span', {class: 'k', text: k}), el('span', {class: 'v', text: String(val)}));
  if (v.daemon !== 'running') {
    parts.push(el('span', {class: 'daemon-state', text: v.daemon === 'not running' ? 'no daemon running' : 'daemon ' + v.daemon}));
    if (v.message) parts.push(el('span', {class: 'muted', text: v.message}));
    if (v.spool_backlog) parts.push(item('spooled', v.spool_backlog));
  } else {
    const conn = v.connection || {};
    parts.push(el('span', {class: 'conn', 'data-conn': conn.state || 'unknown', text: conn.state || 'unknown'}));
    parts.push(item('queued', v.queued), item('sent', v.sent), item('held', v.held, v.held ? 'warn' : ''),
      item('parked', v.parked_total, v.parked_total ? 'bad' : ''));
    if (v.spool_backlog) parts.push(item('spooled', v.spool_backlog));
    if (v.auth && !v.auth.logged_in) parts.push(el('span', {class: 'muted', text: v.auth.hint || 'not logged in'}));
    if (conn.last_error) parts.push(el('span', {class: 'last-error', text: 'last error: ' + conn.last_error}));
    if (v.parked && v.parked.length) {
      parts.push(el('details', {class: 'parked'}, el('summary', {text: 'parked events'}),
        el('ul', {}, ...v.parked.map(p => el('li', {text: `${p.event_type} ${p.event_id}: ${p.reason}`})))));
    }
  }
  box.replaceChildren(...parts);
}

function route() {
  const m = location.hash.match(/^#\/f\/([^/]+)(?:\/(\w+))?/);
  const slug = m ? decodeURIComponent(m[1]) : null;
  const det = document.getElementById('detail');
  if (slug && sections.has(slug)) {
    document.body.dataset.view = 'detail';
    detail.slug = slug;
    detail.tab = m[2] || 'timeline';
    for (const [s, sec] of sections) sec.root.hidden = s !== slug;
    det.hidden = false;
    sections.get(slug).root.after(det);
    for (const b of det.querySelectorAll('[data-tab]')) b.classList.toggle('active', b.dataset.tab === detail.tab);
    loadDetail();
  } else {
    document.body.dataset.view = 'overview';
    detail.slug = null;
    det.hidden = true;
    for (const sec of sections.values()) sec.root.hidden = false;
  }
}

async function loadDetail() {
  const {slug, tab} = detail;
  const body = document.getElementById('detail-body');
  try {
    if (tab === 'timeline') {
      const r = await fetch('/api/feature/' + encodeURIComponent(slug));
      const d = await r.json();
      if (detail.slug !== slug || detail.tab !== tab) return;
      const rows = d.timeline.slice().reverse().map(t => el('li', {class: 'event' + (t.force ? ' forced' : ''), 'data-wp-id': t.wp_id},
        el('time', {datetime: t.at || '', text: (t.at || '').replace('T', ' ').slice(0, 19)}),
        el('span', {class: 'wp-id', text: t.wp_id}),
        el('span', {class: 'move', text: (t.from ? t.from + ' → ' : '→ ') + (t.to || '?')}),
        el('span', {class: 'actor', text: t.actor || ''}),
        t.force ? el('span', {class: 'badge', text: 'forced'}) : null,
        t.verdict ? el('span', {class: 'badge', text: t.verdict + (t.reviewer ? ' by ' + t.reviewer : '')}) : null,
        t.reason ? el('span', {class: 'reason muted', text: t.reason}) : null));
      body.replaceChildren(el('p', {class: 'muted', text: `${d.timeline.length} entries from the ${d.timeline_source}, newest first`}),
        el('ol', {class: 'timeline'}, ...rows));
    } else {
      const r = await fetch(`/api/doc/${encodeURIComponent(slug)}/${tab}`);
      const d = await r.json();
      if (detail.slug !== slug || detail.tab !== tab) return;
      if (!r.ok || d.error) { body.replaceChildren(el('div', {class: 'error-card', text: d.error || 'not found'})); return; }
      const doc = el('article', {class: 'doc'});
      doc.innerHTML = d.html; // escaped by the server's renderer; CSP forbids inline script
      body.replaceChildren(el('p', {class: 'muted', text: d.file}), doc);
    }
  } catch (e) {
    body.replaceChildren(el('div', {class: 'error-card', text: 'Cannot load: ' + e}));
  }
}

function connect() {
  const live = document.getElementById('live');
  // The server this page came from: a stream that reconnects after it
  // stopped must not attach to another project's dashboard on the same
  // port (that server refuses the stream, which closes it for good).
  const meta = document.querySelector('meta[name=dashboard-instance]');
  const es = new EventSource('/events?instance=' + encodeURIComponent(meta ? meta.content : ''));
  es.onopen = () => { live.dataset.state = 'live'; live.textContent = 'live'; };
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) {
      live.dataset.state = 'stopped'; live.textContent = 'stopped: reload for the current dashboard';
    } else {
      live.dataset.state = 'reconnecting'; live.textContent = 'reconnecting…';
    }
  };
  es.addEventListener('board', e => applyBoard(JSON.parse(e.data)));
  es.addEventListener('feature', e => { applyFeature(JSON.parse(e.data)); renderNav(); });
  es.addEventListener('sync', e => renderSync(JSON.parse(e.data)));
}

document.addEventListener('DOMContentLoaded', () => {
  for (const b of document.querySelectorAll('[data-tab]')) {
    b.addEventListener('click', () => { location.hash = `#/f/${encodeURIComponent(detail.slug)}/${b.dataset.tab}`; });
  }
  window.addEventListener('hashchange', route);
  setInterval(() => {
    for (const c of document.querySelectorAll('.card[data-since]')) {
      const a = c.querySelector('.age');
      if (a && c.dataset.since) a.textContent = age(c.dataset.since) + ' in lane';
    }
  }, 30000);
  // ?static: one snapshot, no live stream (screenshots, printing).
  if (new URLSearchParams(location.search).has('static')) {
    fetch('/api/board').then(r => r.json()).then(b => {
      applyBoard(b);
      const live = document.getElementById('live');
      live.dataset.state = 'static';
      live.textContent = 'snapshot';
    });
  } else {
    connect();
  }
});
