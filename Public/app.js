// SpikeServe web page: plain JavaScript, no build step, nothing loaded from elsewhere.
'use strict';

const $ = (id) => document.getElementById(id);
let models = [];
let imageBlob = null;

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
  $('prediction').textContent = result.predictions[0].label;
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
  $('meta').textContent = `model ${body.model} v${body.model_version}, T=${body.timesteps}, ` +
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
checkReady();
loadModels();
