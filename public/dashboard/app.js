// The sollol dashboard: plain ES module, no build step. Talks to the gateway's own API with
// the API key the user typed (kept in sessionStorage: this tab only, gone when it closes).
const KEY_NAME = 'sollol-api-key';
const jobs = new Map(); // job_id -> latest view
let selected = null;
let eventsAbort = null;
const nodeHistory = new Map(); // url -> [{t, documents}]
const HISTORY_MS = 5 * 60 * 1000;

const $ = (id) => document.getElementById(id);

function headers(extra = {}) {
  const key = sessionStorage.getItem(KEY_NAME);
  return key ? { ...extra, authorization: `Bearer ${key}` } : extra;
}

class NeedsKey extends Error {}

async function api(path, init = {}) {
  const response = await fetch(path, { ...init, headers: headers(init.headers) });
  if (response.status === 401) throw new NeedsKey('API key required');
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
  return body;
}

function askForKey(message) {
  $('key-form').hidden = false;
  $('key-error').textContent = message || '';
  $('connection').textContent = 'API key needed';
  $('api-key').focus();
}

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_NAME, $('api-key').value.trim());
  $('api-key').value = '';
  $('key-form').hidden = true;
  start();
});
$('forget-key').addEventListener('click', () => {
  sessionStorage.removeItem(KEY_NAME);
  location.reload();
});

function fmt(n) { return Number(n).toLocaleString('en-US'); }
function shortId(id) { return id.slice(0, 8); }
function done(view) { return view.progress.completed_items + view.progress.failed_items; }
function isActive(status) { return status === 'pending' || status === 'running'; }

function applyEvent(name, data) {
  const old = jobs.get(data.job_id);
  let view;
  if (name === 'status') view = data;
  else if (old) view = { ...old, status: data.status, progress: { total_items: data.total_items, completed_items: data.completed_items, failed_items: data.failed_items, percent: data.percent } };
  else return;
  jobs.set(view.job_id, view);
  renderJob(view);
  if (selected === view.job_id) renderDetail(view);
}

function renderJob(view) {
  const tbody = $('jobs').tBodies[0];
  let row = document.getElementById(`job-${view.job_id}`);
  if (!row) {
    row = document.createElement('tr');
    row.id = `job-${view.job_id}`;
    row.className = 'job';
    row.dataset.jobId = view.job_id;
    row.innerHTML = '<td class="id"><code></code></td><td class="status"></td><td><div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100"><div class="fill"></div></div></td><td class="done"></td><td class="failed"></td><td class="created muted"></td><td><button type="button" class="cancel">Cancel</button></td>';
    row.querySelector('code').textContent = shortId(view.job_id);
    row.addEventListener('click', (event) => {
      if (event.target.closest('button')) return;
      select(view.job_id);
    });
    row.querySelector('.cancel').addEventListener('click', () => cancel(view.job_id));
    tbody.prepend(row);
  }
  $('no-jobs').hidden = true;
  const p = view.progress;
  const pct = p.total_items > 0 ? (100 * (p.completed_items + p.failed_items)) / p.total_items : 0;
  const status = row.querySelector('.status');
  status.textContent = view.status;
  status.className = `status status-${view.status}`;
  row.dataset.status = view.status;
  const bar = row.querySelector('.bar');
  bar.setAttribute('aria-valuenow', pct.toFixed(1));
  bar.querySelector('.fill').style.width = `${pct}%`;
  row.querySelector('.done').textContent = `${fmt(done(view))} / ${fmt(p.total_items)}`;
  row.querySelector('.failed').textContent = fmt(p.failed_items);
  row.querySelector('.created').textContent = view.created_at ? new Date(view.created_at).toLocaleTimeString() : '';
  row.querySelector('.cancel').hidden = !isActive(view.status);
}

async function cancel(id) {
  try {
    await api(`/api/batch/jobs/${id}`, { method: 'DELETE' });
  } catch (error) {
    alert(`Cancel failed: ${error.message}`);
  }
}

async function retry(id) {
  try {
    const answer = await api(`/api/batch/jobs/${id}/retry`, { method: 'POST' });
    select(answer.job_id);
  } catch (error) {
    alert(`Retry failed: ${error.message}`);
  }
}

function select(id) {
  selected = id;
  $('detail').hidden = false;
  $('detail-id').textContent = id;
  const view = jobs.get(id);
  if (view) renderDetail(view);
  void loadErrors(id);
}

function renderDetail(view) {
  const p = view.progress;
  const rows = [
    ['status', view.status], ['model', view.model], ['total', fmt(p.total_items)],
    ['completed', fmt(p.completed_items)], ['failed', fmt(p.failed_items)], ['percent', `${p.percent}%`],
    ['created', view.created_at], ['started', view.started_at ?? '-'], ['finished', view.completed_at ?? '-'],
    ['duration', `${view.duration_seconds ?? 0} s`],
  ];
  if (view.retry_of) rows.push(['retry of', view.retry_of]);
  const dl = document.createElement('dl');
  for (const [k, v] of rows) {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = String(v);
    dd.dataset.field = k;
    dl.append(dt, dd);
  }
  $('detail-body').replaceChildren(dl);
  $('detail-cancel').hidden = !isActive(view.status);
  $('detail-retry').hidden = isActive(view.status) || (p.failed_items === 0 && view.status === 'completed');
}

/** Error counts by code and the first errors: job-level errors, then failed items from result pages. */
async function loadErrors(id) {
  const counts = new Map();
  const first = [];
  try {
    const view = await api(`/api/batch/jobs/${id}`);
    jobs.set(id, view);
    renderDetail(view);
    for (const e of view.errors ?? []) {
      counts.set(e.code, (counts.get(e.code) ?? 0) + 1);
      first.push(`job: ${e.code}: ${e.error}`);
    }
    if (view.progress.failed_items > 0) {
      const total = view.progress.total_items;
      for (let offset = 0; offset < total && offset < 20000; offset += 2000) {
        const response = await fetch(`/api/batch/results/${id}?format=ndjson&encoding_format=base64&partial=true&offset=${offset}&limit=2000`, { headers: headers() });
        if (!response.ok) break;
        const lines = (await response.text()).split('\n');
        for (const line of lines.slice(1)) {
          if (!line.includes('"error"')) continue;
          const item = JSON.parse(line);
          counts.set(item.code, (counts.get(item.code) ?? 0) + 1);
          if (first.length < 10) first.push(`#${item.index}: ${item.code}: ${item.error}`);
        }
      }
    }
  } catch (error) {
    first.push(`could not read errors: ${error.message}`);
  }
  if (selected !== id) return;
  const tbody = $('error-codes').tBodies[0];
  tbody.replaceChildren(...[...counts].map(([code, n]) => {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td><code></code></td><td></td>';
    tr.querySelector('code').textContent = code;
    tr.lastChild.textContent = fmt(n);
    return tr;
  }));
  $('first-errors').replaceChildren(...first.map((text) => {
    const li = document.createElement('li');
    li.textContent = text;
    return li;
  }));
}

$('detail-cancel').addEventListener('click', () => selected && cancel(selected));
$('detail-retry').addEventListener('click', () => selected && retry(selected));
$('detail-close').addEventListener('click', () => { selected = null; $('detail').hidden = true; });

/** Server-Sent Events read with fetch (EventSource cannot send the API key header). */
async function followEvents() {
  eventsAbort?.abort();
  const abort = new AbortController();
  eventsAbort = abort;
  for (let delay = 500; !abort.signal.aborted; delay = Math.min(delay * 2, 10000)) {
    try {
      const response = await fetch('/api/batch/events', { headers: headers({ accept: 'text/event-stream' }), signal: abort.signal });
      if (response.status === 401) return askForKey(sessionStorage.getItem(KEY_NAME) ? 'That key was refused' : '');
      if (!response.ok) throw new Error(`events: ${response.status}`);
      $('connection').textContent = 'live';
      delay = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done: finished } = await reader.read();
        if (finished) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let name = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) name = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (data) applyEvent(name, JSON.parse(data));
        }
      }
    } catch (error) {
      if (abort.signal.aborted) return;
      $('connection').textContent = `reconnecting (${error.message})`;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

async function refreshStats() {
  try {
    const stats = await api('/api/stats');
    renderNodes(stats.backends ?? []);
    renderCache(stats.cache ?? {});
  } catch (error) {
    if (error instanceof NeedsKey) return;
    $('nodes').textContent = `stats unavailable: ${error.message}`;
  }
}

function renderNodes(nodes) {
  const now = Date.now();
  const container = $('nodes');
  if (nodes.length === 0) container.textContent = 'No nodes.';
  for (const node of nodes) {
    const history = nodeHistory.get(node.url) ?? [];
    history.push({ t: now, documents: node.documents ?? 0 });
    while (history.length > 2 && history[0].t < now - HISTORY_MS) history.shift();
    nodeHistory.set(node.url, history);
    let div = container.querySelector(`[data-url="${CSS.escape(node.url)}"]`);
    if (!div) {
      if (!container.querySelector('.node')) container.textContent = '';
      div = document.createElement('div');
      div.className = 'node';
      div.dataset.url = node.url;
      div.innerHTML = '<code class="url"></code><span class="health"></span><span class="circuit"></span><span class="inflight"></span><span class="rate"></span><canvas width="200" height="36" aria-label="documents per second, last minutes"></canvas>';
      div.querySelector('.url').textContent = node.url;
      container.append(div);
    }
    const rates = ratesOf(history);
    const health = div.querySelector('.health');
    health.textContent = node.healthy ? 'healthy' : 'unhealthy';
    health.className = `health ${node.healthy ? 'healthy' : 'unhealthy'}`;
    div.querySelector('.circuit').textContent = `circuit ${node.circuit}`;
    div.querySelector('.inflight').textContent = `in flight ${node.in_flight}/${node.max_in_flight}`;
    div.querySelector('.rate').textContent = `${Math.round(rates.at(-1) ?? 0)} docs/s`;
    drawChart(div.querySelector('canvas'), rates);
  }
}

function ratesOf(history) {
  const rates = [];
  for (let i = 1; i < history.length; i++) {
    const dt = (history[i].t - history[i - 1].t) / 1000;
    rates.push(dt > 0 ? Math.max(0, history[i].documents - history[i - 1].documents) / dt : 0);
  }
  return rates;
}

function drawChart(canvas, rates) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (rates.length < 2) return;
  const max = Math.max(1, ...rates);
  ctx.strokeStyle = '#2f7de1';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  rates.forEach((r, i) => {
    const x = (i / (rates.length - 1)) * (canvas.width - 2) + 1;
    const y = canvas.height - 2 - (r / max) * (canvas.height - 4);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

function renderCache(cache) {
  const lookups = (cache.hits ?? 0) + (cache.misses ?? 0);
  const rows = [
    ['enabled', cache.enabled ? 'yes' : 'no'], ['entries', fmt(cache.entries ?? 0)],
    ['size', `${((cache.bytes ?? 0) / 1048576).toFixed(1)} MiB of ${((cache.max_bytes ?? 0) / 1048576).toFixed(0)} MiB`],
    ['hits', fmt(cache.hits ?? 0)], ['misses', fmt(cache.misses ?? 0)],
    ['hit rate', lookups > 0 ? `${((100 * cache.hits) / lookups).toFixed(1)}%` : '-'],
  ];
  $('cache').replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    return [dt, dd];
  }));
}

let statsTimer = null;
async function start() {
  $('forget-key').hidden = !sessionStorage.getItem(KEY_NAME);
  try {
    const list = await api('/api/batch/jobs?limit=100');
    for (const view of list.jobs.reverse()) applyEvent('status', view);
  } catch (error) {
    if (error instanceof NeedsKey) return askForKey(sessionStorage.getItem(KEY_NAME) ? 'That key was refused' : '');
    $('connection').textContent = error.message;
  }
  void followEvents();
  await refreshStats();
  clearInterval(statsTimer);
  statsTimer = setInterval(refreshStats, 2000);
}

void start();
