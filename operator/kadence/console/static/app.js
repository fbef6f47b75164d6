// The Kadence console's pages: rendered from the server's JSON, refreshed on every change the
// cluster's watches report (server-sent events from /api/events). No build step.
"use strict";

const main = document.getElementById("main");
const state = { session: null, sections: {}, trials: {}, timer: null };

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function fmt(value, digits = 3) {
  return typeof value === "number" ? (Number.isInteger(value) ? String(value) : value.toFixed(digits)) : esc(value ?? "–");
}
function when(text) { return text ? esc(text.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC")) : "–"; }
function ready(item) {
  const why = item.ready === "True" ? "" : ` ${esc(item.reason)}${item.message ? ": " + esc(item.message) : ""}`;
  return `<span class="ready-${esc(item.ready)}">Ready=${esc(item.ready)}${why}</span>`;
}
function table(headers, rows) {
  if (!rows.length) return `<p class="muted">none</p>`;
  return `<table><tr>${headers.map(h => `<th>${esc(h)}</th>`).join("")}</tr>${rows.map(r => `<tr>${r.map(c => `<td>${c}</td>`).join("")}</tr>`).join("")}</table>`;
}
async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}
function chart(id, spec) {
  const el = document.getElementById(id);
  if (el && spec) vegaEmbed(el, spec, { actions: false, renderer: "svg" }).catch(e => { el.textContent = `chart: ${e}`; });
}
function slug(text) { return String(text).replace(/[^a-zA-Z0-9_-]/g, "-"); }

// Re-render a section only when its data changed: charts and inline reports keep their state.
function section(id, data, render, after) {
  const key = JSON.stringify(data);
  let el = document.getElementById(id);
  if (!el) { el = document.createElement("section"); el.id = id; main.appendChild(el); }
  if (state.sections[id] === key) return;
  state.sections[id] = key;
  el.innerHTML = render(data);
  if (after) after(data);
}

// ------------------------------------------------------------------ home

async function home() {
  const data = await getJSON("/api/overview");
  document.title = "Kadence console";
  if (!document.getElementById("models-title")) main.innerHTML = `<h1 id="models-title">Models</h1>`;
  section("models", data, d => {
    const errors = Object.entries(d.errors).map(([k, m]) => `<p class="breached">watching ${esc(k)}: ${esc(m)}</p>`).join("");
    if (!d.models.length) return errors + `<p class="muted">No models yet: apply a TrainingRun, a ModelVersion or an InferenceService.</p>`;
    return errors + `<div class="cards">${d.models.map(card).join("")}</div>`;
  });
}

function card(m) {
  const metric = m.metric ? `${esc(m.metric.metric)} ${fmt(m.metric.value)} (threshold ${fmt(m.metric.threshold)})` : "not monitored";
  const retrain = m.lastRetrain ? `${when(m.lastRetrain.time)}: ${esc(m.lastRetrain.trigger)} → ${esc(m.lastRetrain.outcome)}` : "none";
  const problems = m.notReady.map(r => `<li>${esc(r.kind)} ${esc(r.name)}: ${ready(r)}</li>`).join("");
  return `<section class="card model-card" data-model="${esc(m.model)}" data-namespace="${esc(m.namespace)}">
    <h2><a href="/models/${encodeURIComponent(m.namespace)}/${encodeURIComponent(m.model)}">${esc(m.model)}</a>
      <span class="muted">${esc(m.namespace)}</span></h2>
    <table>
      <tr><th>serving</th><td class="stable">${esc(m.stable || "–")} <span class="muted">${esc(m.phase || "")}</span></td></tr>
      <tr><th>canary</th><td class="canary">${m.canary ? `${esc(m.canary)} at ${fmt(m.canaryWeight)}%` : "none"}</td></tr>
      <tr><th>quality</th><td class="${m.metric && m.metric.breached ? "breached" : ""}">${metric}</td></tr>
      <tr><th>drift</th><td>${esc(m.drift || "–")}</td></tr>
      <tr><th>last retrain</th><td>${retrain}</td></tr>
      <tr><th>versions</th><td>${m.versions}</td></tr>
    </table>
    ${problems ? `<p><b>Not ready</b></p><ul class="not-ready">${problems}</ul>` : `<p class="ready-True">every object Ready</p>`}
  </section>`;
}

// ------------------------------------------------------------------ one model

async function model(namespace, name) {
  let data;
  try { data = await getJSON(`/api/models/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`); }
  catch (e) { main.innerHTML = `<h1>${esc(name)}</h1><p class="breached">${esc(e.message)}</p>`; state.sections = {}; return; }
  document.title = `${name} · Kadence console`;
  if (!document.getElementById("model-header")) main.innerHTML = "";
  const s = data.summary;
  section("model-header", { s, writes: data.writes }, ({ s }) => `
    <h1>${esc(s.model)} <span class="muted">${esc(s.namespace)}</span></h1>
    <p>Serving <b id="served-version">${esc(s.stable || "nothing yet")}</b>${s.inferenceService ? ` on InferenceService ${esc(s.inferenceService)}` : ""}
      ${s.canary ? ` · canary <b id="canary-version">${esc(s.canary)}</b> at ${fmt(s.canaryWeight)}%` : ""}
      ${s.metric ? ` · ${esc(s.metric.metric)} ${fmt(s.metric.value)} against ${fmt(s.metric.threshold)}` : ""}</p>`);
  section("actions", { actions: data.actions, writes: data.writes, user: state.session.user }, renderActions);
  section("lineage", data.lineage, l => `<h2>Lineage</h2><div id="chart-lineage" class="chart"></div>
    ${l.chains.map(c => `<p class="lineage-chain">${esc(c)}</p>`).join("")}`, l => chart("chart-lineage", l.chart));
  section("services", data.services, renderServices);
  section("policies", data.policies, renderPolicies, ps => ps.forEach(p => {
    chart(`chart-metric-${slug(p.name)}`, p.metricChart); chart(`chart-drift-${slug(p.name)}`, p.driftChart);
  }));
  section("versions", data.versions, renderVersions);
  section("runs", data.runs, renderRuns, runs => runs.forEach(r => loadTrials(namespace, r)));
  section("featuresets", data.featuresets, renderFeatureSets);
  section("datasets", data.datasets, renderDatasets);
}

function renderActions(d) {
  if (!d.writes) return `<h2>Actions</h2><p class="muted" id="read-only">Read-only: start the console with <code>kadence console --enable-writes</code> to approve, reject, promote, abort or retrain.</p>`;
  const buttons = d.actions.map(a => `<button data-action="${esc(a.action)}" data-name="${esc(a.name)}"
      class="${a.action === "reject" || a.action === "abort" ? "danger" : ""}">${esc(a.label)}</button>`).join("");
  return `<h2>Actions</h2><p class="muted">As ${esc(d.user)}; each is checked against your RBAC and recorded in an Event.</p>
    ${buttons || `<p class="muted">Nothing waits for a person now.</p>`}<div id="action-result"></div>`;
}

document.addEventListener("click", async event => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const [, , namespace, name] = location.pathname.split("/").map(decodeURIComponent);
  let reason;
  if (button.dataset.action === "retrain") {  // the request records why (spec.triggers.manual.reason)
    reason = prompt(`${button.textContent.trim()}: why? (recorded in the request)`, "");
    if (reason === null) return;
  } else if (!confirm(`${button.textContent.trim()}?`)) return;
  button.disabled = true;
  const out = document.getElementById("action-result");
  try {
    const response = await fetch("/api/actions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ namespace, model: name, action: button.dataset.action, name: button.dataset.name, reason }),
    });
    const body = await response.json();
    out.textContent = response.ok ? body.done : `refused: ${body.error}`;
    out.className = response.ok ? "ready-True" : "breached";
  } catch (e) { out.textContent = `failed: ${e}`; out.className = "breached"; }
  button.disabled = false;
});

function renderServices(services) {
  return `<h2>Serving and canary</h2>` + (services.length ? services.map(s => {
    const steps = s.steps.map(st => `<li class="${esc(st.state)}" data-step-index="${st.index}" data-state="${esc(st.state)}">step ${st.index + 1}: ${st.weight}% for ${esc(st.pause)}</li>`).join("");
    const analyses = s.analysis.slice().reverse().map(a => [when(a.at), a.step + 1, a.requests, fmt(a.errorRate, 4),
      fmt(a.latencyP99Ratio, 2), fmt(a.qualityDelta, 4), a.passed ? "passed" : `<span class="breached">failed</span>`, esc(a.message)]);
    const canary = s.canary ? `<p id="canary-step">canary ${esc(s.canary)} (${esc(s.canarySource)}) at ${fmt(s.canaryWeight)}%, step ${s.currentStep + 1} of ${s.steps.length} · ${esc(s.phase)}</p>
      ${s.canaryApproval ? `<p class="muted">approved by ${esc(s.canaryApproval)}</p>` : ""}` : `<p class="muted">no canary</p>`;
    return `<div class="service" data-name="${esc(s.name)}"><p><b>${esc(s.name)}</b> ${ready(s)} · phase ${esc(s.phase || "–")} ·
      stable <b class="stable-version">${esc(s.stable || "–")}</b> · tracks ${esc(s.tracks || `version ${s.pinned}`)}</p>
      ${canary}<ul class="steps">${steps}</ul>${s.rolloutReason ? `<p class="muted">${esc(s.rolloutReason)}</p>` : ""}
      ${table(["at", "step", "requests", "error rate", "p99 ratio", "quality Δ", "verdict", "message"], analyses)}</div>`;
  }).join("") : `<p class="muted">not served</p>`);
}

function renderPolicies(policies) {
  return `<h2>Monitoring</h2>` + (policies.length ? policies.map(p => {
    const id = slug(p.name);
    const m = p.metric;
    const retrains = p.retrains.slice().reverse().map(r => [when(r.time), esc(r.trigger), esc(r.trainingRun || "–"), esc(r.outcome), esc(r.modelVersion || "–"), esc(r.outcomeMessage || r.message || "")]);
    const verdicts = p.verdicts.slice().reverse().map(v => [when(v.time), esc(v.candidate), esc(v.champion || "–"), `${fmt(v.candidateScore)} vs ${fmt(v.championScore)}`, v.allowed ? "allowed" : `<span class="breached">refused</span>`, esc(v.rollout || "–"), esc(v.reason)]);
    const breaches = p.breaches.slice().reverse().map(b => [when(b.time), esc(b.reason), esc(b.message || "")]);
    const drift = p.drift.map(d => [esc(d.feature), fmt(d.score, 4), d.drifted ? `<span class="breached">drifted</span>` : "ok"]);
    const report = p.reports.length ? p.reports[p.reports.length - 1] : null;
    return `<div class="policy" data-name="${esc(p.name)}"><p><b>${esc(p.name)}</b> ${ready(p)} · ${esc(p.metricSummary || "")} · ${esc(p.driftSummary || "")}</p>
      ${m ? `<p class="metric-line">${esc(m.metric)} over time, threshold <b class="threshold">${fmt(m.threshold)}</b></p>
      <div id="chart-metric-${id}" class="chart metric-chart"></div>` : `<p class="muted">no quality metric</p>`}
      ${p.lastDecision ? `<p>Last retrain decision: <b>${esc(p.lastDecision.reason)}</b> ${esc(p.lastDecision.message)}</p>` : ""}
      <h2>Breaches</h2>${table(["time", "reason", "message"], breaches)}
      <h2>Retrains</h2>${table(["time", "trigger", "TrainingRun", "outcome", "candidate", "why"], retrains)}
      <h2>Champion / challenger</h2>${table(["time", "candidate", "champion", "scores", "verdict", "rollout", "reason"], verdicts)}
      <h2>Drift per feature</h2><div id="chart-drift-${id}" class="chart"></div>${table(["feature", "score", ""], drift)}
      <h2>Report</h2>${report ? `<p class="muted">evaluation of ${when(report.time)}</p>
        <iframe class="report" sandbox title="monitoring report" src="/files/${encodeURIComponent(p_ns())}/${report.key.split("/").map(encodeURIComponent).join("/")}"></iframe>` : `<p class="muted">no report yet</p>`}
    </div>`;
  }).join("") : `<p class="muted">no MonitorPolicy watches this model's InferenceServices</p>`);
}
function p_ns() { return decodeURIComponent(location.pathname.split("/")[2]); }

function renderVersions(versions) {
  const rows = versions.slice().reverse().map(v => [esc(v.name), esc(v.stage) + (v.requestedStage && v.requestedStage !== v.stage ? ` → ${esc(v.requestedStage)}` : ""),
    Object.entries(v.metrics).map(([k, x]) => `${esc(k)}=${fmt(x)}`).join(", "), ready(v),
    v.history.map(h => `${when(h.at)}: ${esc(h.previous || "–")} → ${esc(h.stage)} by ${esc(h.by)}${h.reason ? ` (${esc(h.reason)})` : ""}`).join("<br>")]);
  return `<h2>Model versions</h2>${table(["version", "stage", "hold-out metrics", "ready", "stage history"], rows)}`;
}

function renderRuns(runs) {
  return `<h2>Training runs</h2>` + (runs.length ? runs.map(r => `<div class="run" data-name="${esc(r.name)}">
      <p><b>${esc(r.name)}</b> ${ready(r)} · ${esc(r.phase || "")} ${esc(r.progress || "")} · best ${esc(r.bestFamily || "–")} ${esc(r.metric)}=${fmt(r.bestScore)}
        → ${esc(r.modelVersion || "–")} · promotion ${esc(r.promotion)}</p>
      <div id="chart-trials-${slug(r.name)}" class="chart"></div>
      ${r.modelCard ? `<details><summary>Model card</summary><iframe class="model-card-frame" sandbox title="model card" src="/files/${encodeURIComponent(p_ns())}/${r.modelCard.split("/").map(encodeURIComponent).join("/")}"></iframe></details>` : ""}
    </div>`).join("") : `<p class="muted">none</p>`);
}

async function loadTrials(namespace, run) {
  const id = `chart-trials-${slug(run.name)}`;
  try {
    const data = await getJSON(`/api/runs/${encodeURIComponent(namespace)}/${encodeURIComponent(run.name)}/trials`);
    chart(id, data.chart);
  } catch (e) { const el = document.getElementById(id); if (el) el.innerHTML = `<p class="muted">search: ${esc(e.message)}</p>`; }
}

function renderFeatureSets(featuresets) {
  return `<h2>Feature catalog</h2>` + (featuresets.length ? featuresets.map(f => `<p><b>${esc(f.name)}</b> on Dataset ${esc(f.dataset)} ${ready(f)} · version ${esc(f.latestVersion || "–")} of data ${esc(f.datasetVersion || "–")} · ${f.versions} versions</p>
      ${table(["feature", "type", "from"], f.features.map(x => [esc(x.name), esc(x.type), `<code>${esc(x.source)}</code>`]))}`).join("") : `<p class="muted">none</p>`);
}

function renderDatasets(datasets) {
  return `<h2>Datasets</h2>` + (datasets.length ? datasets.map(d => {
    const v = d.validation;
    const verdict = v.passed === null ? "not validated yet" : v.passed ? `passed ${v.rules} rules` : `<span class="breached">failed: ${v.failed.map(f => esc(`${f.rule}: ${f.message}`)).join("; ")}</span>`;
    return `<p><b>${esc(d.name)}</b> ${ready(d)} · validation ${verdict} (${when(v.at)})</p>
      ${table(["version", "rows", "feedback rows", "ingested"], d.versions.map(x => [esc(x.id) + (x.id === d.latestVersion ? " (current)" : ""), fmt(x.rows), fmt(x.feedbackRows), when(x.createdAt)]))}`;
  }).join("") : `<p class="muted">none</p>`);
}

// ------------------------------------------------------------------ routing and live updates

function route() {
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  return parts[0] === "models" && parts.length === 3 ? () => model(parts[1], parts[2]) : home;
}

async function refresh() {
  try { await route()(); } catch (e) { console.error(e); }
}

function live() {
  const badge = document.getElementById("live");
  const source = new EventSource("/api/events");
  source.onopen = () => { badge.textContent = "live"; badge.classList.add("on"); refresh(); };
  source.onerror = () => { badge.textContent = "reconnecting"; badge.classList.remove("on"); };
  source.addEventListener("change", () => {
    clearTimeout(state.timer);
    state.timer = setTimeout(refresh, 100);  // one refetch for a burst of changes
  });
}

(async () => {
  state.session = await getJSON("/api/session");
  document.getElementById("scope").textContent = state.session.scope;
  const mode = document.getElementById("mode");
  mode.textContent = state.session.writes ? `writes enabled · ${state.session.user}` : "read-only";
  await refresh();
  live();
})();
