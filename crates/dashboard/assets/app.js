// The zkaudit SOC dashboard. Every number links to the events behind it,
// and an event is verified here, in the browser, against the signed
// checkpoint (verify.js). All text from the ledger goes in as textContent.
import { verifyEvent } from './verify.js';

const TOKEN = 'zkaudit.token';
const PINNED = 'zkaudit.pinnedKey';
const state = { from: '', to: '', integrity: null, stream: null, treeSize: null };

// ---- small helpers -------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'on') for (const [ev, f] of Object.entries(v)) el.addEventListener(ev, f);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const fmt = (n) => (n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US', { maximumFractionDigits: 2 }));
// A measured value as the packs give it (Prolog text): numbers rounded to
// what a person reads, anything else as is.
const measure = (v) => (/^-?[0-9.]+(e[-+]?[0-9]+)?$/.test(v) ? Number(v).toLocaleString('en-US', { maximumFractionDigits: 4 }) : v);
// An event rate given per second, per hour or per day, whichever reads best.
const rate = (perSecond) => (perSecond >= 1 ? `${fmt(perSecond)}/s` : perSecond * 3600 >= 1 ? `${fmt(perSecond * 3600)}/h` : `${fmt(perSecond * 86400)}/day`);
const iso = (ns) => new Date(Number(BigInt(ns) / 1000000n)).toISOString();
const ago = (ns) => {
  const s = Math.max(0, Math.round((Date.now() - Number(BigInt(ns) / 1000000n)) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
};

class Unauthorized extends Error {}

async function api(path, opts = {}) {
  const token = sessionStorage.getItem(TOKEN);
  const headers = { ...(opts.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(path, { ...opts, headers });
  if (r.status === 401 || r.status === 403) {
    let msg = `${r.status} ${r.statusText}`;
    try { msg = `${r.status}: ${(await r.json()).error}`; } catch (_) { /* not JSON */ }
    throw new Unauthorized(msg);
  }
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try { msg = `${r.status}: ${(await r.json()).error}`; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

const json = async (path, opts) => (await api(path, opts)).json();

function windowQuery() {
  const p = new URLSearchParams();
  if (state.from) p.set('from', new Date(state.from).toISOString());
  if (state.to) p.set('to', new Date(state.to).toISOString());
  const s = p.toString();
  return s ? `?${s}` : '';
}

function eventLink(i, text) {
  return h('a', { href: `#event-${i}`, class: 'leaf', on: { click: (e) => { e.preventDefault(); openEvent(i); } } }, text ?? `#${i}`);
}

function body(id) {
  return document.querySelector(`#${id} .body`);
}

async function fill(id, render) {
  const el = body(id);
  el.setAttribute('aria-busy', 'true');
  try {
    const content = await render();
    el.replaceChildren(...[content].flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  } catch (e) {
    if (e instanceof Unauthorized) return showLogin(e.message);
    el.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Could not load: ${e.message}`));
  } finally {
    el.setAttribute('aria-busy', 'false');
  }
}

function table(caption, head, rows) {
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

function stat(label, value, extra = {}) {
  return h('div', { class: 'stat', ...extra }, h('span', { class: 'label' }, label), h('span', { class: 'value' }, value));
}

// ---- panels ---------------------------------------------------------------

async function renderIntegrity() {
  const i = await json('/v1/dashboard/integrity');
  state.integrity = i;
  const pinned = localStorage.getItem(PINNED);
  const keyNote = pinned === null ? 'not pinned: the page trusts the key the server names'
    : pinned === i.key.vkey ? 'pinned in this browser' : 'DIFFERS from the key pinned in this browser';
  const full = i.full_check;
  const cons = i.consistency;
  return [
    h('div', { class: 'stats' },
      stat('Tree size', fmt(i.tree_size), { 'data-testid': 'tree-size' }),
      stat('Checkpoint signature', i.checkpoint_verified ? 'verified' : 'FAILED', { class: i.checkpoint_verified ? 'stat ok' : 'stat bad' }),
      stat('zkaudit_integrity(log)', full ? (full.holds ? `holds (${fmt(full.tree_size)} entries, ${ago(full.checked_at_ns)})` : `FAILED: ${full.error}`) : 'not run yet',
        { class: full ? (full.holds ? 'stat ok' : 'stat bad') : 'stat', 'data-testid': 'full-check' }),
      stat('Last consistency check', cons ? `${cons.verified ? 'verified' : 'FAILED'} ${fmt(cons.old_size)} → ${fmt(cons.new_size)}, ${ago(cons.checked_at_ns)}` : 'none yet (the tree has not grown since this server first looked)')),
    h('dl', {},
      h('dt', {}, 'Origin'), h('dd', {}, i.origin),
      h('dt', {}, 'Root hash'), h('dd', { class: 'mono' }, i.root_hash),
      h('dt', {}, 'Key'), h('dd', { class: 'mono' }, `${i.key.name}+${i.key.id}`, ' ', h('small', {}, `(${keyNote})`))),
    h('div', { class: 'actions' },
      h('button', { type: 'button', on: { click: runFullCheck } }, 'Run zkaudit_integrity(log) now'),
      h('button', { type: 'button', on: { click: () => { localStorage.setItem(PINNED, i.key.vkey); refresh(); } } }, 'Pin this key'),
      pinned !== null ? h('button', { type: 'button', on: { click: () => { localStorage.removeItem(PINNED); refresh(); } } }, 'Forget pinned key') : null),
    h('details', {}, h('summary', {}, 'Signed checkpoint'), h('pre', {}, i.checkpoint)),
  ];
}

async function runFullCheck(e) {
  e.target.disabled = true;
  e.target.textContent = 'Checking every entry and tile…';
  try { await json('/v1/dashboard/integrity/check', { method: 'POST' }); } finally { fill('integrity', renderIntegrity); }
}

async function renderCompliance() {
  const c = await json(`/v1/dashboard/compliance${windowQuery()}`);
  const select = document.getElementById('report-pack');
  if (!select.options.length) for (const p of c.packs) select.append(h('option', { value: p.name }, `${p.name}: ${p.title}`));
  return h('div', { class: 'tiles' }, c.packs.map((p) => {
    const verdict = p.fail ? 'fail' : p.pass ? 'pass' : 'no_evidence';
    return h('article', { class: `tile ${verdict}`, 'data-pack': p.name },
      h('h3', {}, p.title, ' ', h('small', {}, `${p.name} ${p.version}`)),
      h('p', { class: 'summary' }, `${p.pass} pass · ${p.fail} fail · ${p.no_evidence} no evidence`),
      h('ul', {}, p.rules.map((r) => h('li', { class: r.verdict, 'data-rule': r.id },
        h('span', { class: 'verdict' }, r.verdict.replace('_', ' ').toUpperCase()), ' ',
        h('strong', {}, r.id), ': ', r.description, ` (${r.events} events)`,
        r.measures.length ? h('div', { class: 'measures' }, r.measures.map(([n, v]) => h('span', { class: 'measure', 'data-measure': n }, `${n.replace(/_/g, ' ')}: `, h('strong', {}, measure(v))))) : null,
        r.violations.length ? h('ul', { class: 'violations' }, r.violations.map(([i, why]) => h('li', {}, eventLink(i), ' ', h('code', {}, why)))) : null,
        !r.violations.length && r.evidence.length ? h('details', {}, h('summary', {}, 'Evidence'), h('p', {}, r.evidence.map((i) => [eventLink(i), ' ']))) : null))));
  }));
}

function chart(a) {
  const W = 720, H = 160, n = Math.max(1, a.buckets);
  const totals = new Array(n).fill(0);
  for (const s of a.series) s.counts.forEach((c, b) => { totals[b] += c; });
  const max = Math.max(1, ...totals);
  const bw = W / n;
  const top = a.series.slice(0, 6);
  const colors = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#dc2626', '#0891b2'];
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `Events per bucket of ${a.bucket_ns / 1e9} s from ${iso(a.window.from_ns)} to ${iso(a.window.to_ns)}: ${fmt(a.total)} in all, at most ${fmt(max)} in one bucket. The table below gives the figures.`);
  const stack = new Array(n).fill(0);
  top.forEach((s, k) => {
    s.counts.forEach((c, b) => {
      if (!c) return;
      const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      const hgt = (c / max) * (H - 10);
      stack[b] += hgt;
      r.setAttribute('x', b * bw);
      r.setAttribute('y', H - stack[b]);
      r.setAttribute('width', Math.max(1, bw - 1));
      r.setAttribute('height', hgt);
      r.setAttribute('fill', colors[k]);
      svg.append(r);
    });
  });
  const legend = h('ul', { class: 'legend', 'aria-hidden': 'true' }, top.map((s, k) => h('li', {}, h('span', { class: 'swatch', style: `background:${colors[k]}` }), `${s.layer}/${s.type}`)));
  return [svg, legend];
}

async function renderActivity() {
  const a = await json(`/v1/dashboard/activity${windowQuery()}`);
  if (!state.from && !state.to) setRangeInputs(a.window);
  return [
    h('div', { class: 'stats' },
      stat('Events in window', fmt(a.total), { 'data-testid': 'activity-total' }),
      stat('Rate', rate(a.total / ((a.window.to_ns - a.window.from_ns) / 1e9))),
      stat('Last event', a.last_event_bucket_ns ? `${iso(a.last_event_bucket_ns)} (bucket start)` : '—'),
      stat('Collector gaps', fmt(a.gaps.reduce((s, g) => s + g.gaps, 0)), { 'data-testid': 'gap-count' })),
    chart(a),
    table('Events by layer and type (the chart\'s figures)', ['Layer', 'Type', 'Events', 'Rate', 'Last bucket'],
      a.series.map((s) => [s.layer, s.type, fmt(s.total), rate(s.per_second), s.last_bucket_ns ? iso(s.last_bucket_ns) : '—'])),
    a.gaps.length
      ? table('Collector health: where collectors were blind', ['Collector', 'Gaps', 'Lost', 'Reasons', 'Last gap', 'Events'],
        a.gaps.map((g) => [g.collector, fmt(g.gaps), fmt(g.lost), Object.entries(g.reasons).map(([r, n]) => `${r} ×${n}`).join(', '), iso(g.last_gap_ns), h('span', {}, g.events.slice(0, 20).map((i) => [eventLink(i), ' ']))]))
      : h('p', {}, 'No collector recorded a gap in this window.'),
  ];
}

async function renderProofs() {
  const p = await json('/v1/dashboard/proofs');
  return [
    h('div', { class: 'stats' },
      stat('Queued', fmt(p.queued), { 'data-testid': 'jobs-queued' }), stat('Running', fmt(p.running)),
      stat('Succeeded', fmt(p.succeeded)), stat('Failed', fmt(p.failed)),
      stat('Timed out', fmt(p.timed_out)), stat('Cancelled', fmt(p.cancelled), { 'data-testid': 'jobs-cancelled' }),
      stat('Throughput', p.cycles_per_second ? `${fmt(p.cycles_per_second)} cycles/s` : 'no recent proof'),
      stat('Estimated wait', p.estimated_wait_seconds === null ? '—' : `${fmt(p.estimated_wait_seconds)} s`),
      stat('Receipts recorded', fmt(p.receipts_recorded), { 'data-testid': 'receipts' })),
    p.latest.length
      ? table('Latest proofs (each verified before it was recorded)', ['Event', 'Time', 'Plan', 'Cycles', 'Prove ms'],
        p.latest.slice(0, 20).map((r) => [eventLink(r.leaf_index), r.timestamp, r.plan_id ?? '—', fmt(r.total_cycles), fmt(r.prove_millis)]))
      : h('p', {}, 'No proof is recorded in this ledger yet.'),
  ];
}

async function renderFindings() {
  const f = await json(`/v1/dashboard/findings${windowQuery()}`);
  if (!f.ever) {
    return h('p', { class: 'no-source', 'data-testid': 'findings-none' },
      'No source: no finding is recorded in this ledger (type "finding", OCSF Detection Finding 2004). Run zkaudit detect --ledger DIR to look for anomalies; until then this panel has nothing to read, which is not the same as zero findings.');
  }
  return [
    h('div', { class: 'stats' }, Object.entries(f.by_severity).map(([s, n]) => stat(s, fmt(n)))),
    table(`${fmt(f.total)} findings in the window`, ['Finding', 'Time', 'Severity', 'What', 'Evidence'],
      f.findings.map((x) => [eventLink(x.leaf_index), x.timestamp, x.severity, x.title ?? '—', h('span', {}, x.evidence.map((i) => [eventLink(i), ' ']))])),
  ];
}

async function renderLineage(digest) {
  const g = await json(`/v1/dashboard/lineage?digest=${encodeURIComponent(digest)}`);
  const events = g.nodes.map((n, k) => ({ ...n, k })).filter((n) => n.kind === 'event');
  if (!events.length) return h('p', {}, `No recorded event reads, writes or names ${digest}.`);
  // Lay out by hops from the digest asked about (breadth first): column 0
  // is the digest, column 1 the events that wrote, read or name it, and so on.
  const adj = g.nodes.map(() => []);
  for (const e of g.edges) { adj[e.from].push(e.to); adj[e.to].push(e.from); }
  const col = new Map([[0, 0]]);
  const queue = [0];
  while (queue.length) {
    const n = queue.shift();
    for (const m of adj[n]) if (!col.has(m)) { col.set(m, col.get(n) + 1); queue.push(m); }
  }
  const cols = [...new Set([...col.values()])].sort((a, b) => a - b);
  const rows = new Map();
  const pos = new Map();
  for (const [node, c] of col) {
    const r = rows.get(c) ?? 0;
    rows.set(c, r + 1);
    pos.set(node, { x: 20 + cols.indexOf(c) * 190, y: 20 + r * 46 });
  }
  const W = 40 + cols.length * 190, H = 40 + Math.max(...rows.values()) * 46;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `Lineage of ${digest}: ${events.length} events; the list below names them.`);
  for (const e of g.edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const l = document.createElementNS(ns, 'line');
    Object.entries({ x1: a.x + 150, y1: a.y + 14, x2: b.x, y2: b.y + 14, class: `edge ${e.role}` }).forEach(([k, v]) => l.setAttribute(k, v));
    svg.append(l);
  }
  g.nodes.forEach((n, k) => {
    const p = pos.get(k);
    if (!p) return;
    const grp = document.createElementNS(ns, 'g');
    const r = document.createElementNS(ns, 'rect');
    Object.entries({ x: p.x, y: p.y, width: 150, height: 28, rx: 4, class: n.kind === 'event' ? 'node event' : k === 0 ? 'node digest root' : 'node digest' }).forEach(([a, v]) => r.setAttribute(a, v));
    const t = document.createElementNS(ns, 'text');
    t.setAttribute('x', p.x + 6);
    t.setAttribute('y', p.y + 18);
    t.textContent = n.kind === 'event' ? `#${n.leaf_index} ${n.type}` : `${n.digest.slice(7, 19)}…`;
    grp.append(r, t);
    if (n.kind === 'event') {
      grp.setAttribute('tabindex', '0');
      grp.addEventListener('click', () => openEvent(n.leaf_index));
      grp.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') openEvent(n.leaf_index); });
    }
    svg.append(grp);
  });
  return [
    svg,
    g.truncated ? h('p', { class: 'error' }, 'The graph was cut at 200 events.') : null,
    table('Events in the lineage', ['Event', 'Type', 'Layer', 'Time', 'About'],
      events.map((n) => [eventLink(n.leaf_index), n.type, n.layer, n.timestamp, n.label])),
  ];
}

async function openEvent(i) {
  document.getElementById('event-index').value = i;
  const status = document.getElementById('verify-status');
  status.className = '';
  status.textContent = `Verifying event ${i} in this browser…`;
  document.getElementById('event').scrollIntoView({ block: 'start' });
  await fill('event', async () => {
    const v = await json(`/v1/dashboard/events/${i}`);
    const bundle = await (await api(`/${v.bundle.path}`)).arrayBuffer();
    const pinned = localStorage.getItem(PINNED);
    const vkey = pinned ?? state.integrity?.key.vkey ?? (await json('/v1/dashboard/integrity')).key.vkey;
    const r = await verifyEvent(v, bundle, vkey);
    if (r.ok) {
      status.className = 'ok';
      status.textContent = `verified against checkpoint ${r.treeSize} signed by ${r.keyName}+${r.keyId}${pinned ? '' : ' (key from the server, not pinned)'}`;
    } else {
      status.className = 'bad';
      status.textContent = `failed: ${r.reason}`;
    }
    let pretty = v.entry;
    try { pretty = JSON.stringify(JSON.parse(r.ok ? r.entry : v.entry), null, 2); } catch (_) { /* shown as is */ }
    let digest = null;
    try { digest = JSON.parse(v.entry).output; } catch (_) { /* no lineage link */ }
    return [
      h('dl', {},
        h('dt', {}, 'Leaf index'), h('dd', {}, String(v.leaf_index)),
        h('dt', {}, 'Tree size'), h('dd', {}, fmt(v.tree_size)),
        h('dt', {}, 'Entry bundle'), h('dd', { class: 'mono' }, `/${v.bundle.path} (entry ${v.bundle.position} of ${v.bundle.count})`),
        h('dt', {}, 'Leaf hash (computed here)'), h('dd', { class: 'mono' }, r.ok ? r.leafHash : '—'),
        h('dt', {}, 'Root hash'), h('dd', { class: 'mono' }, v.root_hash)),
      h('h3', {}, r.ok ? 'Canonical JSON (RFC 8785), as verified' : 'Canonical JSON, as the server sent it (not verified)'),
      h('pre', { 'data-testid': 'event-json' }, pretty),
      digest ? h('button', { type: 'button', on: { click: () => traceDigest(digest) } }, 'Trace its output in the lineage explorer') : null,
      h('details', {}, h('summary', {}, `Inclusion proof (${v.hashes.length} hashes, RFC 9162 §2.1.3)`), h('pre', {}, v.hashes.join('\n'))),
    ];
  });
  if (!document.querySelector('#event .body').children.length) status.textContent = '';
}

function traceDigest(d) {
  document.getElementById('lineage-digest').value = d;
  fill('lineage', () => renderLineage(d));
  document.getElementById('lineage').scrollIntoView({ block: 'start' });
}

// ---- page -----------------------------------------------------------------

function setRangeInputs(w) {
  const local = (ns) => { const d = new Date(Number(BigInt(ns) / 1000000n)); return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19); };
  document.getElementById('from').value = local(w.from_ns);
  document.getElementById('to').value = local(w.to_ns);
}

function refresh() {
  fill('integrity', renderIntegrity);
  fill('compliance', renderCompliance);
  fill('activity', renderActivity);
  fill('proofs', renderProofs);
  fill('findings', renderFindings);
}

async function live() {
  const live = document.getElementById('live');
  while (sessionStorage.getItem(TOKEN)) {
    try {
      const r = await api('/v1/dashboard/stream', { headers: { Accept: 'text/event-stream' } });
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      live.textContent = 'Live';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const msg = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const data = msg.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('\n');
          if (!data) continue;
          const cp = JSON.parse(data);
          if (state.treeSize !== null && cp.tree_size !== state.treeSize) {
            live.textContent = `Live: tree size ${cp.tree_size.toLocaleString('en-US')}, updated ${new Date().toLocaleTimeString()}`;
            refresh();
          }
          state.treeSize = cp.tree_size;
        }
      }
    } catch (e) {
      if (e instanceof Unauthorized) return showLogin(e.message);
      live.textContent = 'Live updates interrupted; retrying…';
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function showLogin(reason) {
  document.getElementById('main').hidden = true;
  document.getElementById('range').hidden = true;
  document.getElementById('signout').hidden = true;
  document.getElementById('login').hidden = false;
  document.getElementById('login-reason').textContent = reason ? `Not signed in (${reason}).` : 'This dashboard needs an API token.';
  document.getElementById('token').focus();
}

async function start() {
  try {
    await json('/v1/dashboard/integrity');
  } catch (e) {
    return showLogin(e instanceof Unauthorized ? e.message : `server: ${e.message}`);
  }
  document.getElementById('login').hidden = true;
  document.getElementById('main').hidden = false;
  document.getElementById('range').hidden = false;
  document.getElementById('signout').hidden = false;
  refresh();
  live();
}

document.getElementById('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN, document.getElementById('token').value.trim());
  start();
});
document.getElementById('signout').addEventListener('click', () => { sessionStorage.removeItem(TOKEN); showLogin(''); });
document.getElementById('range').addEventListener('submit', (e) => {
  e.preventDefault();
  state.from = document.getElementById('from').value;
  state.to = document.getElementById('to').value;
  refresh();
});
document.getElementById('range-reset').addEventListener('click', () => { state.from = ''; state.to = ''; refresh(); });
document.getElementById('event-form').addEventListener('submit', (e) => { e.preventDefault(); openEvent(Number(document.getElementById('event-index').value)); });
document.getElementById('lineage-form').addEventListener('submit', (e) => { e.preventDefault(); traceDigest(document.getElementById('lineage-digest').value.trim()); });
for (const button of document.querySelectorAll('.report-download')) {
  button.addEventListener('click', async () => {
    const pack = document.getElementById('report-pack').value;
    const ext = button.dataset.format;
    const q = windowQuery();
    const label = button.textContent;
    button.disabled = true;
    button.textContent = 'Preparing…';
    try {
      const r = await api(`/v1/dashboard/report.${ext}?pack=${encodeURIComponent(pack)}${q ? `&${q.slice(1)}` : ''}`);
      const url = URL.createObjectURL(await r.blob());
      const a = h('a', { href: url, download: `zkaudit-${pack}-report.${ext}` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      document.getElementById('report-status').textContent = '';
    } catch (e) {
      if (e instanceof Unauthorized) return showLogin(e.message);
      document.getElementById('report-status').textContent = `The ${ext.toUpperCase()} report could not be made: ${e.message}`;
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  });
}

start();
