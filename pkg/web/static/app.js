'use strict';
// The clustermgr dashboard: every figure comes from the REST API of the
// replica that served this page, with the signed-in user's token; actions
// are the same API calls the CLI makes.

const POLL_MS = 1000;
const HISTORY = 120; // points of the lag and health chart (about 2 minutes)
const SCOPES = { read: 1, operate: 2, admin: 3 };

const state = {
  token: sessionStorage.getItem('clustermgr-token') || '',
  who: null,
  timer: 0,
  busy: false,
  history: new Map(), // cluster/shard -> [{t, lag, healthy, nodes}]
};

const $ = (id) => document.getElementById(id);

function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

class Problem extends Error {
  constructor(status, p) {
    super(p.detail || p.title || ('HTTP ' + status));
    this.status = status;
    this.problem = p;
  }
}

async function api(method, path, body) {
  const init = { method, headers: { Authorization: 'Bearer ' + state.token }, cache: 'no-store' };
  if (method !== 'GET') {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body || {});
  }
  const r = await fetch(path, init);
  if (r.status === 204) return null;
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
  if (!r.ok) throw new Problem(r.status, data || {});
  return data;
}

const canOperate = () => state.who && SCOPES[state.who.scope] >= SCOPES.operate;

function badge(s) {
  const v = s || 'unknown';
  return `<span class="badge s-${esc(v.replace(/[^a-z-]/g, ''))}">${esc(v)}</span>`;
}

function fmtBytes(n) {
  if (n == null) return '';
  if (n < 1024) return n + ' B';
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
  return n.toFixed(1) + ' ' + u[i];
}

function fmtTime(t) {
  if (!t) return '';
  const d = new Date(t);
  return isNaN(d) ? '' : d.toLocaleString();
}

function say(msg, isError) {
  const s = $('status');
  s.textContent = msg;
  s.className = isError ? 'error' : '';
}

// ---- shard facts -----------------------------------------------------

function severity(sh) {
  switch (sh.state) {
    case 'no-primary': return 0;
    case 'failing-over': return 1;
    case 'degraded': return 2;
    case 'switching-over': return 3;
    case 'paused': return 4;
    case 'healthy': return 5;
  }
  return 2;
}

function worstLag(sh) {
  let bytes = 0, secs = 0;
  for (const n of sh.nodes || []) {
    if (n.role === 'primary' || !n.status) continue;
    bytes = Math.max(bytes, n.status.lag_bytes || 0);
    secs = Math.max(secs, n.status.lag_seconds || 0);
  }
  return { bytes, secs };
}

function syncStandbys(sh) {
  const out = [];
  for (const n of sh.nodes || []) {
    if (n.status && (n.status.sync_state === 'sync' || n.status.sync_state === 'quorum')) out.push(n.name);
  }
  return out.length ? out : (sh.sync_set || []);
}

function record(sh) {
  const key = sh.cluster + '/' + sh.name;
  let h = state.history.get(key);
  if (!h) { h = []; state.history.set(key, h); }
  const nodes = sh.nodes || [];
  h.push({ t: Date.now(), lag: worstLag(sh).bytes, healthy: nodes.filter((n) => n.status && n.status.health === 'healthy').length, nodes: nodes.length });
  if (h.length > HISTORY) h.splice(0, h.length - HISTORY);
}

// ---- header and banner ---------------------------------------------------

function showManager(m) {
  $('replica').textContent = m ? `replica ${m.node_id} (${m.state.toLowerCase()}) · leader ${m.leader_id || 'none'} · term ${m.term}` : '';
  const b = $('banner');
  if (m && !m.leader_id) {
    b.textContent = `Replica ${m.node_id} has no leader: what you see may be stale, and changes are refused until a leader is elected.`;
    b.hidden = false;
  } else {
    b.hidden = true;
  }
}

// manager reads this replica's view of the group and shows it at once,
// also when the reads the leader serves fail for want of a leader.
async function manager() {
  const m = await api('GET', '/v1/manager');
  showManager(m);
  return m;
}

function showWho() {
  const w = $('who');
  if (!state.who) { w.innerHTML = ''; return; }
  w.innerHTML = `signed in as <strong>${esc(state.who.token)}</strong> (${esc(state.who.scope)})<button type="button" class="secondary" id="signout">Sign out</button>`;
  $('signout').addEventListener('click', () => {
    sessionStorage.removeItem('clustermgr-token');
    state.token = '';
    state.who = null;
    location.hash = '#/';
    render();
  });
}

function unreachable(e) {
  const b = $('banner');
  b.textContent = 'The manager does not answer: ' + e.message;
  b.hidden = false;
}

// ---- sign in --------------------------------------------------------------

function signIn(msg) {
  clearTimeout(state.timer);
  showWho();
  $('app').innerHTML = `<section class="signin"><h1>Sign in</h1>
    <p>Paste an API token (<code>clustermgr token create NAME --scope read|operate|admin</code>). It stays in this browser tab only.</p>
    <form id="signin-form"><label for="token">API token</label>
    <input id="token" type="password" autocomplete="off" required>
    <button type="submit">Sign in</button></form>
    <p id="signin-error" role="alert" class="error-text">${esc(msg || '')}</p></section>`;
  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    state.token = $('token').value.trim();
    try {
      state.who = await api('GET', '/v1/whoami');
      sessionStorage.setItem('clustermgr-token', state.token);
      render();
    } catch (e) {
      state.token = '';
      $('signin-error').textContent = e.status === 401 ? 'That token is not valid.' : e.message;
    }
  });
  $('token').focus();
}

// ---- overview -------------------------------------------------------------

async function overview() {
  const t0 = performance.now();
  const [m, list] = await Promise.all([manager(), api('GET', '/v1/clusters')]);
  const shards = [];
  for (const c of list.clusters) {
    for (const sh of c.shards || []) {
      sh.paused = !c.auto_failover;
      shards.push(sh);
      record(sh);
    }
  }
  shards.sort((a, b) => severity(a) - severity(b) || a.cluster.localeCompare(b.cluster) || a.name.localeCompare(b.name));
  const problems = shards.filter((s) => severity(s) < 5).length;
  const rows = shards.map((sh) => {
    const lag = worstLag(sh);
    return `<tr><td><a href="#/c/${encodeURIComponent(sh.cluster)}/s/${encodeURIComponent(sh.name)}">${esc(sh.cluster)} / ${esc(sh.name)}</a></td>
      <td>${badge(sh.state)}${sh.paused ? ' <span class="muted">failover paused</span>' : ''}</td><td>${esc(sh.primary)}</td>
      <td>${esc(syncStandbys(sh).join(', '))}</td><td>${lag.bytes ? esc(fmtBytes(lag.bytes)) : '0'}${lag.secs ? ' · ' + lag.secs.toFixed(1) + ' s' : ''}</td>
      <td>${sh.operation ? `<a href="#/c/${encodeURIComponent(sh.cluster)}/s/${encodeURIComponent(sh.name)}">${esc(sh.operation)}</a>` : ''}</td></tr>`;
  });
  const members = (m.members || []).map((mb) => `<tr><td>${esc(mb.id)}</td><td>${mb.leader ? badge('leader') : (mb.voter ? 'voter' : 'non-voter')}</td><td>${esc(mb.api_addr)}</td><td>${esc(mb.raft_addr)}</td></tr>`);
  $('app').innerHTML = `<h1>Fleet</h1>
    <p class="facts"><span>${shards.length} shards in ${list.clusters.length} clusters</span><span id="problem-count">${problems ? problems + ' need attention' : 'all healthy'}</span></p>
    <h2>Shards</h2><div class="scroll"><table id="shards"><thead><tr><th scope="col">Shard</th><th scope="col">State</th><th scope="col">Primary</th><th scope="col">Synchronous standby</th><th scope="col">Worst lag</th><th scope="col">Operation</th></tr></thead>
    <tbody>${rows.join('') || '<tr><td colspan="6">No shards yet.</td></tr>'}</tbody></table></div>
    <h2>Manager group</h2><p class="muted">term ${esc(m.term)} · commit index ${esc(m.commit_index)} · applied ${esc(m.applied_index)}</p>
    <div class="scroll"><table id="members"><thead><tr><th scope="col">Member</th><th scope="col">Role</th><th scope="col">API</th><th scope="col">Raft</th></tr></thead><tbody>${members.join('')}</tbody></table></div>`;
  document.body.dataset.overviewMs = String(Math.round(performance.now() - t0));
}

// ---- shard page -----------------------------------------------------------

function chart(key) {
  const h = state.history.get(key) || [];
  if (h.length < 2) return '<p class="muted">The chart fills while this page is open.</p>';
  const W = 600, H = 80, max = Math.max(1, ...h.map((p) => p.lag));
  const x = (i) => (i / (HISTORY - 1)) * W;
  const pts = h.map((p, i) => `${x(i).toFixed(1)},${(H - 14 - (p.lag / max) * (H - 24)).toFixed(1)}`).join(' ');
  const bars = h.map((p, i) => `<rect x="${x(i).toFixed(1)}" y="${H - 8}" width="${(W / HISTORY).toFixed(1)}" height="8" fill="${p.healthy === p.nodes ? '#2e7d32' : '#c62828'}"/>`).join('');
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="Worst replication lag over the last ${h.length} seconds, at most ${esc(fmtBytes(max))}; the strip below is red while a node is not healthy">
    <polyline fill="none" stroke="#0b57d0" stroke-width="2" points="${pts}"/>${bars}</svg>
    <p class="muted">Worst lag (line, up to ${esc(fmtBytes(max))}) and node health (strip: green while every node is healthy).</p>`;
}

function nodeRows(sh) {
  const byAddr = new Map((sh.nodes || []).map((n) => [n.host + ':' + n.port, n.name]));
  return (sh.nodes || []).map((n) => {
    const s = n.status || {};
    const from = s.streaming_from ? (byAddr.get(s.streaming_from) || s.streaming_from) : '';
    let acts = '';
    if (canOperate() && n.role !== 'primary') {
      acts = `<button type="button" class="secondary" id="rejoin-${esc(n.name)}" data-act="rejoin" data-node="${esc(n.name)}">Rejoin ${esc(n.name)}</button>
        <button type="button" class="secondary" id="reinit-${esc(n.name)}" data-act="reinit" data-node="${esc(n.name)}">Reinit ${esc(n.name)}</button>`;
    }
    const role = esc(n.role) + (n.maintenance ? '<br><span class="muted">in maintenance' + (n.maintenance_reason ? ': ' + esc(n.maintenance_reason) : '') + '</span>' : '');
    const pending = (s.pending_restart || []).length ? ' restart pending: ' + esc(s.pending_restart.join(', ')) : '';
    return `<tr><td>${esc(n.name)}<br><span class="muted">${esc(n.host)}:${esc(n.port)}</span></td><td>${role}</td><td>${badge(s.health)}</td>
      <td>${esc(s.timeline ?? '')}</td><td>${esc(s.current_lsn || '')}</td><td>${n.role === 'primary' ? '' : esc(s.receive_lsn || '')}</td><td>${n.role === 'primary' ? '' : esc(s.replay_lsn || '')}</td>
      <td>${n.role === 'primary' ? '' : esc(fmtBytes(s.lag_bytes || 0))}</td><td>${n.role === 'primary' ? '' : esc((s.lag_seconds || 0).toFixed(1)) + ' s'}</td>
      <td>${from ? esc(s.sync_state || '') + ', streaming from ' + esc(from) : (n.role === 'primary' ? '' : 'not streaming')}</td>
      <td class="wrap">${esc(s.error || '')}${s.archive_error ? ' archive: ' + esc(s.archive_error) : ''}${pending}</td><td>${acts}</td></tr>`;
  }).join('');
}

function decisionHTML(d) {
  if (!d) return '<p class="muted">No decision yet.</p>';
  const cands = (d.candidates || []).map((c) => `<tr><td>${esc(c.node)}</td><td>${c.chosen ? 'chosen' : esc(c.rejected || '')}</td><td>${esc(c.lsn)}</td><td>${esc(c.timeline)}</td><td>${esc(c.priority)}</td><td>${esc(fmtBytes(c.lag_bytes))}</td></tr>`).join('');
  return `<p><strong>${esc(d.kind)}</strong>${d.node ? ' ' + esc(d.node) : ''} · ${esc(fmtTime(d.at))}</p><p class="wrap">${esc(d.reason)}</p>
    ${cands ? `<div class="scroll"><table id="candidates"><thead><tr><th scope="col">Candidate</th><th scope="col">Outcome</th><th scope="col">LSN</th><th scope="col">Timeline</th><th scope="col">Priority</th><th scope="col">Lag</th></tr></thead><tbody>${cands}</tbody></table></div>` : ''}`;
}

function operationHTML(op) {
  if (!op) return '<p class="muted">No operation on this shard yet.</p>';
  const steps = (op.steps || []).map((s) => `<li class="step-${esc(s.state)}">${esc(s.name)}: ${esc(s.state)}${s.detail ? ' — ' + esc(s.detail) : ''} <span class="muted">${esc(fmtTime(s.at))}</span></li>`).join('');
  const running = op.state === 'running' || op.state === 'pending';
  return `<p id="operation-summary"><strong>${esc(op.kind)}</strong> ${badge(op.state)} ${op.target ? 'to ' + esc(op.target) : ''} <span class="muted">${esc(op.id)} · ${esc(fmtTime(op.created_at))}</span></p>
    <p><progress max="100" value="${esc(op.progress || 0)}" aria-label="Progress of ${esc(op.kind)}">${esc(op.progress || 0)}%</progress> ${esc(op.progress || 0)}%</p>
    ${op.error ? `<p class="wrap">Error: ${esc(op.error)}</p>` : ''}<ol class="steps">${steps}</ol>
    ${running && canOperate() ? `<button type="button" class="danger" id="cancel-operation" data-act="cancel" data-op="${esc(op.id)}">Cancel ${esc(op.kind)}</button>` : ''}`;
}

async function shardPage(cluster, shard) {
  const base = `/v1/clusters/${encodeURIComponent(cluster)}/shards/${encodeURIComponent(shard)}`;
  const [m, sh, cl, ev, ops] = await Promise.all([
    manager(), api('GET', base), api('GET', `/v1/clusters/${encodeURIComponent(cluster)}`),
    api('GET', `/v1/events?cluster=${encodeURIComponent(cluster)}&limit=500`), api('GET', '/v1/operations'),
  ]);
  record(sh);
  const mine = (ops.operations || []).filter((o) => o.cluster === cluster && o.shard === shard);
  mine.sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  const op = (sh.operation && mine.find((o) => o.id === sh.operation)) || mine[0];
  const events = (ev.events || []).filter((e) => !e.shard || e.shard === shard).slice(-30).reverse();
  const standbys = (sh.nodes || []).filter((n) => n.role !== 'primary');
  const paused = !cl.auto_failover;
  let actions = '';
  if (canOperate()) {
    actions = `<div class="actions" id="actions"><label for="target">Switch over to</label>
      <select id="target"><option value="">the best standby</option>${standbys.map((n) => `<option value="${esc(n.name)}">${esc(n.name)}</option>`).join('')}</select>
      <button type="button" data-act="switchover" id="switchover">Switchover</button>
      <button type="button" class="secondary" id="pause-resume" data-act="${paused ? 'resume' : 'pause'}">${paused ? 'Resume automatic failover' : 'Pause automatic failover'}</button>
      <button type="button" class="secondary" id="backup" data-act="backup">Backup now</button></div>`;
  }
  const focused = document.activeElement && document.activeElement.id;
  const target = $('target') ? $('target').value : '';
  $('app').innerHTML = `<p><a href="#/">← Fleet</a></p><h1>${esc(cluster)} / ${esc(shard)} ${badge(sh.state)}</h1>
    <div class="facts"><div>primary <strong id="primary">${esc(sh.primary)}</strong></div><div>synchronous ${esc(sh.settings.synchronous)}${syncStandbys(sh).length ? ': ' + esc(syncStandbys(sh).join(', ')) : ''}</div>
    <div>epoch ${esc(sh.epoch)}</div><div>automatic failover ${paused ? '<strong>paused</strong>' : 'on'}</div>${sh.settings.backup_schedule ? `<div>backups ${esc(sh.settings.backup_schedule)}</div>` : ''}</div>
    ${actions}
    <h2>Nodes</h2><div class="scroll"><table id="nodes"><thead><tr><th scope="col">Node</th><th scope="col">Role</th><th scope="col">Health</th><th scope="col">Timeline</th><th scope="col">Current LSN</th><th scope="col">Received</th><th scope="col">Replayed</th><th scope="col">Lag</th><th scope="col">Lag (s)</th><th scope="col">Replication</th><th scope="col">Problem</th><th scope="col"><span class="muted">Actions</span></th></tr></thead><tbody>${nodeRows(sh)}</tbody></table></div>
    <h2>History</h2>${chart(cluster + '/' + shard)}
    <h2>Last decision</h2><div id="decision">${decisionHTML(sh.last_decision)}</div>
    <h2>Operation</h2><div id="operation">${operationHTML(op)}</div>
    <h2>Events</h2><ul class="events" id="events">${events.map((e) => `<li><span class="muted">${esc(fmtTime(e.at))}</span> <strong>${esc(e.kind)}</strong>${e.node ? ' ' + esc(e.node) : ''}: ${esc(e.message)}</li>`).join('') || '<li>No events.</li>'}</ul>`;
  if ($('target')) $('target').value = target;
  if (focused && $(focused)) $(focused).focus();
  for (const b of document.querySelectorAll('button[data-act]')) {
    b.addEventListener('click', () => act(b.dataset.act, cluster, shard, b.dataset));
  }
}

// ---- actions --------------------------------------------------------------

function confirmDialog(html) {
  const d = $('confirm');
  $('confirm-body').innerHTML = html;
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.returnValue = '';
    d.showModal();
    $('confirm-yes').focus();
  });
}

async function act(kind, cluster, shard, data) {
  const c = encodeURIComponent(cluster), s = encodeURIComponent(shard);
  const base = `/v1/clusters/${c}/shards/${s}`;
  let req, what;
  switch (kind) {
    case 'switchover': {
      const to = $('target').value;
      what = `Switch <strong>${esc(cluster)} / ${esc(shard)}</strong> over to <strong>${esc(to || 'the best standby')}</strong>? Writes pause for about a second.`;
      req = ['POST', base + '/switchover', to ? { to } : {}];
      break;
    }
    case 'pause': what = `Pause automatic failover of every shard of cluster <strong>${esc(cluster)}</strong>?`; req = ['PATCH', `/v1/clusters/${c}`, { auto_failover: false }]; break;
    case 'resume': what = `Resume automatic failover of cluster <strong>${esc(cluster)}</strong>?`; req = ['PATCH', `/v1/clusters/${c}`, { auto_failover: true }]; break;
    case 'backup': what = `Take a base backup of <strong>${esc(cluster)} / ${esc(shard)}</strong> now?`; req = ['POST', base + '/backups', {}]; break;
    case 'rejoin': what = `Rejoin <strong>${esc(data.node)}</strong> as a standby of the primary (rewinding it if needed)?`; req = ['POST', `${base}/nodes/${encodeURIComponent(data.node)}/rejoin`, {}]; break;
    case 'reinit': what = `Rebuild <strong>${esc(data.node)}</strong> from the primary? Its data directory is replaced.`; req = ['POST', `${base}/nodes/${encodeURIComponent(data.node)}/reinit`, {}]; break;
    case 'cancel': what = `Cancel operation <strong>${esc(data.op)}</strong> at its next safe point?`; req = ['DELETE', `/v1/operations/${encodeURIComponent(data.op)}`]; break;
    default: return;
  }
  if (!(await confirmDialog(`<p>${what}</p>`))) return;
  try {
    const out = await api(req[0], req[1], req[2]);
    say(out && out.id ? `${out.kind} started: operation ${out.id}` : 'Done.', false);
  } catch (e) {
    say(`Refused (${e.status}): ${e.message}`, true);
  }
  refresh();
}

// ---- routing and polling ----------------------------------------------------

async function refresh() {
  clearTimeout(state.timer);
  if (!state.token) { signIn(); return; }
  if (state.busy) return;
  state.busy = true;
  try {
    if (!state.who) state.who = await api('GET', '/v1/whoami');
    showWho();
    const m = location.hash.match(/^#\/c\/([^/]+)\/s\/([^/]+)$/);
    if (m) await shardPage(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
    else await overview();
  } catch (e) {
    if (e.status === 401) {
      sessionStorage.removeItem('clustermgr-token');
      state.token = '';
      state.who = null;
      state.busy = false;
      signIn('The token was refused; sign in again.');
      return;
    }
    if (e instanceof Problem) say(e.message, true); else unreachable(e);
  } finally {
    state.busy = false;
  }
  if (!$('confirm').open) state.timer = setTimeout(refresh, POLL_MS);
  else $('confirm').addEventListener('close', () => { state.timer = setTimeout(refresh, POLL_MS); }, { once: true });
}

function render() {
  say('', false);
  refresh();
}

window.addEventListener('hashchange', render);
document.addEventListener('DOMContentLoaded', render);
