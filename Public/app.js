// SpikeServe web page: plain JavaScript, no build step, nothing loaded from elsewhere.
'use strict';

const $ = (id) => document.getElementById(id);
let models = [];
let imageBlob = null;

function authHeaders() {
  const token = localStorage.getItem('spikeserve-token');
  return token ? { Authorization: 'Bearer ' + token } : {};
}

async function api(path, options = {}) {
  const token = localStorage.getItem('spikeserve-token');
  const headers = Object.assign({}, options.headers || {});
  if (token) headers['Authorization'] = 'Bearer ' + token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = body.error ? body.error.message : response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return { body, response };
}

async function checkReady() {
  try {
    const r = await fetch('/readyz');
    $('ready').textContent = r.ok ? 'ready' : 'loading';
    $('ready').className = 'badge ' + (r.ok ? 'ok' : 'bad');
    if (!r.ok) setTimeout(checkReady, 1000);
  } catch (e) {
    $('ready').textContent = 'offline';
    $('ready').className = 'badge bad';
  }
}

async function loadModels() {
  try {
    const { body } = await api('/v1/models');
    models = body.models;
    const select = $('model');
    select.innerHTML = '';
    for (const m of models) {
      const option = document.createElement('option');
      option.value = m.name;
      option.textContent = `${m.name} (v${m.default_version})`;
      select.appendChild(option);
    }
    if (models.length) $('timesteps').value = models[0].default_timesteps || 4;
  } catch (e) {
    setStatus(e.message, true);
  }
}

function setStatus(text, error = false) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

function useFile(file) {
  if (!file) return;
  imageBlob = file;
  $('preview').src = URL.createObjectURL(file);
  $('preview').hidden = false;
  $('classify').disabled = false;
  setStatus(`${file.name || 'image'} (${file.size} bytes)`);
}

async function classify() {
  if (!imageBlob) return;
  const model = $('model').value;
  const params = new URLSearchParams({ timesteps: $('timesteps').value, top_k: $('topk').value, trace: 'true', seed: '0' });
  if ($('adaptive').checked) params.set('adaptive', 'true');
  const type = imageBlob.type === 'image/png' || imageBlob.type === 'image/jpeg' ? imageBlob.type : 'application/octet-stream';
  $('classify').disabled = true;
  setStatus('classifying…');
  try {
    const { body } = await api(`/v1/models/${encodeURIComponent(model)}/classify?${params}`, {
      method: 'POST', headers: { 'Content-Type': type }, body: imageBlob,
    });
    show(body);
    setStatus(`done in ${body.timings_ms.total.toFixed(1)} ms`);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    $('classify').disabled = false;
  }
}

function show(body) {
  const result = body.results[0];
  $('result-panel').hidden = false;
  $('prediction').textContent = result.decided === false
    ? `undecided at T=${body.timesteps}: the output potentials are equal; use more time steps`
    : result.predictions[0].label;
  const bars = $('bars');
  bars.innerHTML = '';
  for (const p of result.predictions) {
    const row = document.createElement('div');
    row.className = 'bar';
    row.innerHTML = `<span class="label"></span><div><div class="fill"></div></div><span class="score"></span>`;
    row.querySelector('.label').textContent = p.label;
    row.querySelector('.fill').style.width = (100 * p.score).toFixed(1) + '%';
    row.querySelector('.score').textContent = p.score.toFixed(3);
    bars.appendChild(row);
  }
  drawTrace(result.trace || [], result.predictions.map((p) => p.index));
  const rates = $('rates');
  rates.innerHTML = '';
  (result.spike_rates || []).forEach((rate, i) => {
    const row = document.createElement('div');
    row.className = 'bar';
    row.innerHTML = `<span>layer ${i + 1}</span><div><div class="fill"></div></div><span>${(100 * rate).toFixed(2)}%</span>`;
    row.querySelector('.fill').style.width = Math.min(100, 400 * rate).toFixed(1) + '%';
    rates.appendChild(row);
  });
  const steps = result.exit === 'settled'
    ? `stopped after ${result.timesteps_used} of ${body.timesteps} steps (settled)`
    : `T=${body.timesteps}`;
  $('meta').textContent = `model ${body.model} v${body.model_version}, ${steps}, ` +
    `${result.spike_count} spikes, ${result.synaptic_ops} synaptic ops, request ${body.request_id}`;
}

function drawTrace(trace, classes) {
  const canvas = $('trace');
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!trace.length) return;
  const colors = ['#3a6ee8', '#e8743a', '#2e9d5b', '#9b59b6', '#c0392b'];
  const pad = 24, w = canvas.width - 2 * pad, h = canvas.height - 2 * pad;
  ctx.strokeStyle = '#ccd';
  ctx.strokeRect(pad, pad, w, h);
  ctx.fillStyle = '#556';
  ctx.font = '11px sans-serif';
  ctx.fillText('step', canvas.width - pad - 20, canvas.height - 6);
  ctx.fillText('score', 2, pad - 8);
  classes.slice(0, colors.length).forEach((c, k) => {
    ctx.strokeStyle = colors[k];
    ctx.beginPath();
    trace.forEach((step, i) => {
      const x = pad + (trace.length === 1 ? w / 2 : (i / (trace.length - 1)) * w);
      const y = pad + h * (1 - step.scores[c]);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
    ctx.fillStyle = colors[k];
    ctx.fillText(String(c), pad + w + 4, pad + h * (1 - trace[trace.length - 1].scores[c]));
  });
}

$('file').addEventListener('change', (e) => useFile(e.target.files[0]));
$('drop').addEventListener('dragover', (e) => { e.preventDefault(); $('drop').classList.add('over'); });
$('drop').addEventListener('dragleave', () => $('drop').classList.remove('over'));
$('drop').addEventListener('drop', (e) => {
  e.preventDefault();
  $('drop').classList.remove('over');
  useFile(e.dataTransfer.files[0]);
});
$('classify').addEventListener('click', classify);

// ---- Fine-tuning jobs ----
let currentJob = null;
const history = [];

$('token').value = localStorage.getItem('spikeserve-token') || '';
$('token').addEventListener('change', () => {
  localStorage.setItem('spikeserve-token', $('token').value);
  loadVersions();
});

function jobStatus(text, error = false) {
  $('job-status').textContent = text;
  $('job-status').className = error ? 'error' : '';
}

async function startJob() {
  const body = {
    model: $('model').value,
    training_data: $('training-data').value,
    hyperparameters: { timesteps: +$('job-timesteps').value, epochs: +$('job-epochs').value, limit: +$('job-limit').value },
    force: $('job-force').checked,
  };
  try {
    const { body: job } = await api('/v1/fine_tuning/jobs', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    currentJob = job.id;
    history.length = 0;
    $('job-events').innerHTML = '';
    $('cancel-job').disabled = false;
    jobStatus(`${job.id}: ${job.status}`);
    follow(job.id);
  } catch (e) {
    jobStatus(e.message, true);
  }
}

// Follows the job's Server-Sent Events with fetch (EventSource cannot send the bearer token).
async function follow(id) {
  const response = await fetch(`/v1/fine_tuning/jobs/${id}/events?stream=true`, { headers: authHeaders() });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) type = line.slice(6).trim();
        if (line.startsWith('data:')) data += line.slice(5).trim();
      }
      if (data) onJobEvent(type, JSON.parse(data));
    }
  }
  const { body: job } = await api(`/v1/fine_tuning/jobs/${id}`);
  jobStatus(`${job.id}: ${job.status}` + (job.result ? ` (version ${job.result.model_version}, deployed: ${job.result.deployed})` : '') +
    (job.error ? ` — ${job.error.message}` : ''), job.status === 'failed');
  $('cancel-job').disabled = true;
  loadVersions();
  loadModels();
}

function onJobEvent(type, event) {
  if (type === 'done') return;
  const item = document.createElement('li');
  item.textContent = `[${event.type}] ${event.message}`;
  $('job-events').appendChild(item);
  if (event.type === 'metrics' && event.data && event.data.train_loss !== undefined) {
    history.push(event.data);
    drawJobChart();
  }
  jobStatus(`${currentJob}: ${event.message}`);
}

function drawJobChart() {
  const canvas = $('job-chart');
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const pad = 20, w = canvas.width - 2 * pad, h = canvas.height - 2 * pad;
  ctx.strokeStyle = '#ccd';
  ctx.strokeRect(pad, pad, w, h);
  const maxLoss = Math.max(...history.map((p) => p.train_loss), 1e-6);
  const series = [['train_loss', '#e8743a', (v) => v / maxLoss], ['train_accuracy', '#3a6ee8', (v) => v], ['val_accuracy', '#2e9d5b', (v) => v]];
  for (const [key, color, scale] of series) {
    ctx.strokeStyle = color;
    ctx.beginPath();
    history.forEach((p, i) => {
      if (p[key] === undefined) return;
      const x = pad + (history.length === 1 ? w / 2 : (i / (history.length - 1)) * w);
      const y = pad + h * (1 - scale(p[key]));
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      ctx.fillStyle = color;
      ctx.fillRect(x - 2, y - 2, 4, 4);
    });
    ctx.stroke();
  }
}

async function cancelJob() {
  if (!currentJob) return;
  try {
    await api(`/v1/fine_tuning/jobs/${currentJob}/cancel`, { method: 'POST' });
  } catch (e) {
    jobStatus(e.message, true);
  }
}

async function loadVersions() {
  const model = $('model').value;
  if (!model) return;
  try {
    const { body } = await api(`/v1/models/${encodeURIComponent(model)}/versions`);
    const rows = $('versions').querySelector('tbody');
    rows.innerHTML = '';
    for (const v of body.versions) {
      const row = document.createElement('tr');
      row.dataset.version = v.version;
      const accuracies = Object.entries(v.accuracies || {}).map(([k, a]) => `${k} ${(100 * a).toFixed(2)}%`).join(', ');
      row.innerHTML = `<td>${v.version}</td><td>${v.state}</td><td class="is-default">${v.default ? 'yes' : ''}</td><td></td><td></td>`;
      row.children[3].textContent = accuracies;
      if (!v.default && v.state === 'ready') {
        const button = document.createElement('button');
        button.textContent = 'Make default';
        button.className = 'make-default';
        button.addEventListener('click', () => setDefault(model, v.version));
        row.children[4].appendChild(button);
      }
      rows.appendChild(row);
    }
  } catch (e) {
    jobStatus(e.message, true);
  }
}

async function setDefault(model, version) {
  try {
    await api(`/v1/models/${encodeURIComponent(model)}/default`, {
      method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ version }),
    });
    jobStatus(`version ${version} is now the default`);
    loadVersions();
  } catch (e) {
    jobStatus(e.message, true);
  }
}

$('start-job').addEventListener('click', startJob);
$('cancel-job').addEventListener('click', cancelJob);
$('model').addEventListener('change', loadVersions);
checkReady();
loadModels().then(loadVersions);
