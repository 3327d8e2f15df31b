// The evograd daemon's page: its jobs (live), one job's charts (live,
// downsampled by the daemon to the chart's width, finer on zoom), the
// submit form and the devices. Plain JavaScript; charts by uPlot.

const main = document.getElementById("main");
const statusLine = document.getElementById("status");
let token = sessionStorage.getItem("evograd-token") || "";
let leaving = [];  // what the current view must stop (timers, streams) when left

// ---- the API ----

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.field = e.field;
  }
}

function headers(extra) {
  const h = Object.assign({}, extra);
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

// Asks for the token once; resolves when one has been given.
let asking = null;
function askToken(message) {
  if (asking) return asking;
  const dialog = document.getElementById("token-dialog");
  document.getElementById("token-error").textContent = message || "";
  asking = new Promise((resolve) => {
    document.getElementById("token-form").onsubmit = () => {
      token = document.getElementById("token-input").value.trim();
      sessionStorage.setItem("evograd-token", token);
      asking = null;
      resolve();
    };
  });
  dialog.showModal();
  return asking;
}

async function api(path, opts = {}) {
  for (;;) {
    const r = await fetch(path, Object.assign({}, opts, {headers: headers(opts.headers)}));
    if (r.status === 401) {
      await askToken(token ? "That token was refused." : "");
      continue;
    }
    const text = await r.text();
    const body = text ? JSON.parse(text) : null;
    if (!r.ok) throw new ApiError(r.status, body);
    return body;
  }
}

// Follows a server-sent event stream with the bearer header (EventSource
// cannot send one), asking for the token when refused and reconnecting
// when the stream drops; calls onEvent(name, data) for each event until
// the returned function is called. once: stop when the server ends it.
function follow(path, onEvent, once = false) {
  const ctrl = new AbortController();
  (async () => {
    while (!ctrl.signal.aborted) {
      try {
        const r = await fetch(path, {headers: headers(), signal: ctrl.signal});
        if (r.status === 401) {
          await askToken(token ? "That token was refused." : "");
          continue;
        }
        if (!r.ok || !r.body) return;
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buf += dec.decode(value, {stream: true});
          let end;
          while ((end = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            let name = "message", data = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("event: ")) name = line.slice(7);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            if (data) onEvent(name, JSON.parse(data));
          }
        }
        if (once) return;
      } catch (e) {
        if (ctrl.signal.aborted) return;
      }
      await new Promise((ok) => setTimeout(ok, 1000));
    }
  })();
  return () => ctrl.abort();
}

// ---- helpers ----

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}

const fmt = (x, d = 4) => (x == null || !isFinite(x) ? "-" : Number(x.toPrecision(d)).toString());

function duration(s) {
  if (s == null || !isFinite(s) || s < 0) return "-";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}`
           : `${m}:${String(r).padStart(2, "0")}`;
}

const seconds = (a, b) => (a ? ((b ? Date.parse(b) : Date.now()) - Date.parse(a)) / 1000 : null);

function result(job) {
  const s = job.summary;
  if (!s) return "-";
  if (s.angle_deg != null) return `angle ${fmt(s.angle_deg)}°`;
  if (s.test_acc != null) return `acc ${fmt(s.test_acc)}%`;
  if (s.lambda_norm != null) return `|λ| ${fmt(s.lambda_norm)}`;
  return "-";
}

function eta(job) {
  if (job.state !== "running" || !job.total_steps || !job.steps_done) return "-";
  const spent = seconds(job.started_at);
  return duration((spent / job.steps_done) * (job.total_steps - job.steps_done));
}

// ---- the jobs ----

async function jobsView() {
  const filter = el("select", {id: "state-filter"},
    ...["", "queued", "running", "succeeded", "failed", "canceled"].map(
      (s) => el("option", {value: s}, s || "all states")));
  filter.value = sessionStorage.getItem("evograd-filter") || "";
  const body = el("tbody");
  const table = el("table", {id: "jobs"},
    el("thead", {}, el("tr", {}, ...["", "id", "task", "method", "state", "device", "worker",
      "progress", "ETA", "result", "created", "duration", ""].map((h) => el("th", {}, h)))), body);
  const picked = new Set();
  const compare = el("button", {id: "compare", onclick: () => {
    if (picked.size) location.hash = `#/compare?ids=${[...picked].sort((a, b) => a - b).join(",")}&metric=train_loss`;
  }}, "compare the chosen jobs");
  const examples = el("select", {id: "example"});
  const spec = el("textarea", {id: "spec", spellcheck: "false"});
  const errorBox = el("p", {class: "error", id: "submit-error"});
  const submit = el("button", {class: "primary", id: "submit"}, "Submit");
  main.replaceChildren(
    el("section", {}, el("h2", {}, "Jobs"), el("div", {class: "controls"}, filter, compare), table),
    el("section", {}, el("h2", {}, "Submit a job"),
      el("div", {class: "controls"}, el("label", {}, "start from ", examples), submit),
      spec, errorBox));

  api("/ui/examples.json").then((ex) => {
    for (const name of Object.keys(ex)) examples.append(el("option", {value: name}, name));
    const show = () => { spec.value = JSON.stringify(ex[examples.value], null, 2); };
    examples.onchange = show;
    examples.value = "toy1d-evograd" in ex ? "toy1d-evograd" : Object.keys(ex)[0];
    show();
  });
  submit.onclick = async () => {
    errorBox.textContent = "";
    spec.classList.remove("field-error");
    let parsed;
    try { parsed = JSON.parse(spec.value); } catch (e) {
      errorBox.textContent = `not JSON: ${e.message}`;
      spec.classList.add("field-error");
      return;
    }
    try {
      const job = await api("/v1/jobs", {method: "POST", body: JSON.stringify(parsed),
                                         headers: {"Content-Type": "application/json"}});
      errorBox.textContent = "";
      statusLine.textContent = `job ${job.id} queued`; // the table hears of it from the stream
    } catch (e) {
      errorBox.textContent = e.field && !e.message.startsWith(e.field) ? `${e.field}: ${e.message}` : e.message;
      spec.classList.add("field-error");
    }
  };

  async function act(job, what) {
    try {
      if (what === "cancel") await api(`/v1/jobs/${job.id}/cancel`, {method: "POST"});
      else await api(`/v1/jobs/${job.id}`, {method: "DELETE"});
    } catch (e) { statusLine.textContent = e.message; }
  }

  // The jobs as the daemon's event stream of every job tells them.
  const jobs = new Map();
  function render() {
    const state = filter.value;
    sessionStorage.setItem("evograd-filter", state);
    const list = [...jobs.values()].filter((j) => !state || j.state === state).sort((a, b) => b.id - a.id);
    const rows = list.map((j) => {
      const pct = j.total_steps ? Math.min(100, (100 * j.steps_done) / j.total_steps) : 0;
      const buttons = el("td");
      if (j.state === "queued" || j.state === "running")
        buttons.append(el("button", {class: "cancel", onclick: () => act(j, "cancel")}, "cancel"));
      if (j.state !== "running")
        buttons.append(el("button", {class: "delete", onclick: () => act(j, "delete")}, "delete"));
      const box = el("input", {type: "checkbox", class: "pick", "data-id": j.id});
      box.checked = picked.has(j.id);
      box.onchange = () => { if (box.checked) picked.add(j.id); else picked.delete(j.id); };
      return el("tr", {"data-id": j.id, "data-state": j.state}, el("td", {}, box),
        el("td", {class: "num"}, el("a", {href: `#/jobs/${j.id}`}, String(j.id))),
        el("td", {}, j.task), el("td", {}, j.method),
        el("td", {}, el("span", {class: `state ${j.state}`}, j.state)), el("td", {}, j.device),
        el("td", {class: "worker"}, j.worker || "-"),
        el("td", {}, el("span", {class: "bar"}, el("div", {style: `width:${pct}%`})),
           ` ${j.steps_done}/${j.total_steps || "?"}`),
        el("td", {class: "num"}, eta(j)), el("td", {}, result(j)),
        el("td", {}, (j.created_at || "").replace("T", " ").slice(0, 19)),
        el("td", {class: "num"}, duration(seconds(j.started_at, j.finished_at))), buttons);
    });
    body.replaceChildren(...rows);
    statusLine.textContent = `${jobs.size} jobs`;
  }
  let pending = false;
  const soon = () => {
    if (pending) return;
    pending = true;
    setTimeout(() => { pending = false; render(); }, 200);
  };
  filter.onchange = render;
  leaving.push(follow("/v1/events", (name, data) => {
    if (name === "job") jobs.set(data.id, data);
    else if (name === "deleted") jobs.delete(data.id);
    soon();
  }));
  // Durations and ETAs move on between events.
  const timer = setInterval(render, 5000);
  leaving.push(() => clearInterval(timer));
}

// ---- one job ----

const palette = ["#2f6fde", "#d9822b", "#2f8f4e", "#c23b3b", "#7b52c4", "#1c9aa6", "#8c6d1f",
                 "#d04ea1", "#566173", "#5ca84a", "#b5503a", "#3d8fd1", "#9a8a2c", "#6a5acd",
                 "#2e8b57", "#cd5c5c"];

// What each chart shows: the column the daemon downsamples it by, and its
// series from a step row.
function chartDefs(job, first) {
  const nLambda = first && Array.isArray(first.lambda) ? first.lambda.length : 0;
  const nW = first && Array.isArray(first.w) ? first.w.length : 0;
  const defs = [
    {title: "loss", by: "train_loss", series: [
      {label: "train", get: (r) => r.train_loss}, {label: "validation (meta)", get: (r) => r.meta_loss}]},
    {title: nLambda ? "λ" : "|λ|", by: "lambda_norm", series: nLambda
      ? Array.from({length: nLambda}, (_, i) => ({label: `λ${i}`, get: (r) => r.lambda && r.lambda[i]}))
      : [{label: "|λ|", get: (r) => r.lambda_norm}]},
    {title: "hypergradient norm", by: "hyper_norm", series: [{label: "‖∂ℓ_V/∂λ‖", get: (r) => r.hyper_norm}]},
    {title: "step and meta-step time (ms)", by: "step_ms", series: [
      {label: "step", get: (r) => r.step_ms}, {label: "meta step", get: (r) => r.meta_ms}]},
    {title: "engine memory (MiB)", by: "peak_bytes", series: [
      {label: "now", get: (r) => r.cur_bytes / 1048576}, {label: "peak", get: (r) => r.peak_bytes / 1048576}]},
  ];
  if (nW > 0 && nW <= 16)
    defs.push({title: "copy weights w", by: "train_loss", series: Array.from({length: nW},
      (_, i) => ({label: `w${i}`, get: (r) => r.w && r.w[i]}))});
  return defs;
}

function ema(ys, alpha) {
  if (!alpha) return ys;
  let m = null;
  return ys.map((y) => (y == null || !isFinite(y) ? y : (m = m == null ? y : alpha * m + (1 - alpha) * y)));
}

async function jobView(id) {
  const head = el("div", {class: "kv", id: "job-head"});
  const logY = el("input", {type: "checkbox", id: "log-y"});
  const xAxis = el("select", {id: "x-axis"}, el("option", {value: "step"}, "step"),
    el("option", {value: "time"}, "wall clock"));
  const smooth = el("input", {type: "range", id: "smooth", min: "0", max: "0.99", step: "0.01", value: "0"});
  const cancel = el("button", {id: "cancel-job"}, "cancel");
  const grid = el("div", {class: "charts", id: "charts"});
  const evalBody = el("tbody");
  const evalTitle = el("h2", {}, "Evaluations");
  const pictures = el("div", {class: "charts", id: "pictures"});
  main.replaceChildren(
    el("section", {}, el("h2", {}, `Job ${id}`), head),
    el("div", {class: "controls"}, el("label", {}, "x ", xAxis), el("label", {}, logY, " log y"),
      el("label", {}, "smoothing ", smooth), cancel),
    grid,
    pictures,
    el("section", {}, evalTitle,
      el("table", {id: "evals"}, el("thead", {}, el("tr", {}, ...["step", "test accuracy",
        "± 95 %", "test loss", "dev F1", "test F1", "learned angle", "w corrupted", "w clean"].map((h) => el("th", {}, h)))), evalBody)));
  cancel.onclick = () => api(`/v1/jobs/${id}/cancel`, {method: "POST"}).catch((e) => {
    statusLine.textContent = e.message;
  });

  let job = await api(`/v1/jobs/${id}`);
  const showHead = () => {
    head.replaceChildren(...[["task", job.task], ["method", job.method],
      ["state", job.state], ["device", job.device], ["worker", job.worker || "-"],
      ["steps", `${job.steps_done} / ${job.total_steps || "?"}`], ["result", result(job)],
      ["error", job.error || "-"]].flatMap(([k, v]) => [el("span", {}, k), el("span", {id: `job-${k}`}, v)]));
    cancel.disabled = !(job.state === "queued" || job.state === "running");
  };
  showHead();
  const showEvals = async () => {
    const ev = await api(`/v1/jobs/${id}/evals`);
    taskPictures(job, ev.evals, pictures);
    const shown = ev.evals.slice(-20);  // the latest; the API has them all
    evalTitle.textContent = ev.evals.length > shown.length
      ? `Evaluations (the last ${shown.length} of ${ev.evals.length})` : "Evaluations";
    evalBody.replaceChildren(...shown.map((e) => el("tr", {},
      ...[e.step, e.test_acc, e.test_acc_ci95, e.test_loss, e.dev_f1, e.test_f1, e.angle_deg, e.w_corrupted, e.w_clean].map(
        (x) => el("td", {class: "num"}, fmt(x, 5))))));
  };
  showEvals();

  const first = (await api(`/v1/jobs/${id}/steps?limit=1`)).steps[0];
  const charts = chartDefs(job, first).map((def) => {
    const box = el("div", {class: "chart"}, el("h3", {}, def.title));
    grid.append(box);
    return Object.assign(def, {box, rows: [], plot: null, zoom: null});
  });

  const width = () => Math.max(300, grid.clientWidth >= 1080 ? grid.clientWidth / 2 - 30 : grid.clientWidth - 20);
  function draw(c) {
    // Wall-clock time is the Unix time each step was logged (rows from
    // before the daemon kept it have none and are left out).
    const wall = xAxis.value === "time";
    const rows = wall ? c.rows.filter((r) => r.at_ms != null) : c.rows;
    const xs = rows.map((r) => (wall ? r.at_ms / 1000 : r.step));
    const alpha = Number(smooth.value);
    // A log axis plots log10 of the (smoothed) values, positive ones only,
    // on a linear scale labelled with the values themselves.
    const log = logY.checked;
    const keep = (v) => (v == null || !isFinite(v) ? null : v);
    const toLog = (v) => (v == null ? null : log ? (v > 0 ? Math.log10(v) : null) : v);
    const data = [xs, ...c.series.map((s) => ema(rows.map((r) => keep(s.get(r))), alpha).map(toLog))];
    const opts = {
      width: width(), height: 220,
      scales: {x: {time: wall}},
      axes: [{label: wall ? "wall clock" : "step"}, {size: 76, values: (u, ticks) => ticks.map((t) => fmt(log ? Math.pow(10, t) : t, 3))}],
      series: [{label: "step"}, ...c.series.map((s, i) => ({label: s.label, stroke: palette[i % palette.length],
        width: 1.5, spanGaps: true, value: (u, v) => (v == null ? "-" : fmt(log ? Math.pow(10, v) : v))}))],
      cursor: {drag: {x: true, y: false}},
      hooks: {setSelect: [(u) => {
        if (u.select.width < 5) return;
        const a = u.posToVal(u.select.left, "x"), b = u.posToVal(u.select.left + u.select.width, "x");
        // The selected steps: on the wall clock, those of the rows shown inside it.
        const inside = wall ? rows.filter((r) => r.at_ms / 1000 >= a && r.at_ms / 1000 <= b) : null;
        if (wall && !inside.length) return;
        const lo = wall ? inside[0].step : Math.floor(a), hi = wall ? inside[inside.length - 1].step : Math.ceil(b);
        c.zoom = [lo, hi];
        load(c);
      }]},
    };
    if (c.plot) c.plot.destroy();
    c.plot = new uPlot(opts, data, c.box);
    c.plot.over.ondblclick = () => { c.zoom = null; load(c); };
  }
  // One downsampled read for the given charts (those sharing a range):
  // each bucket's extremes of every charted column, in one scan.
  async function load(...cs) {
    const px = Math.round(width());
    const [lo, hi] = cs[0].zoom || [-1, null];
    const after = cs[0].zoom ? Math.max(-1, lo - 1) : -1;
    const limit = cs[0].zoom ? Math.max(1, hi - lo + 1) : 100000000;
    const by = [...new Set(cs.map((c) => c.by))].join(",");
    const page = await api(`/v1/jobs/${id}/steps?after=${after}&limit=${limit}&max_points=${px}&by=${by}`);
    for (const c of cs) {
      c.rows = page.steps;
      draw(c);
    }
  }
  await load(...charts);
  logY.onchange = smooth.oninput = xAxis.onchange = () => charts.forEach(draw);

  // Live: new steps are appended (a chart showing a zoomed range keeps it);
  // once a chart holds four times its width, it is fetched downsampled again.
  let pending = false;
  // From the last step the charts hold: the stream sends only what is new.
  const lastStep = Math.max(-1, ...charts.map((c) => (c.rows.length ? c.rows[c.rows.length - 1].step : -1)));
  const stop = follow(`/v1/jobs/${id}/events?after=${lastStep}`, (name, data) => {
    if (name === "state") {
      const ended = job.state !== data.state && !["queued", "running"].includes(data.state);
      job = data;
      showHead();
      if (ended) showEvals();
    } else if (name === "step") {
      job.steps_done = Math.max(job.steps_done, data.step + 1);
      for (const c of charts)
        if (!c.zoom && (!c.rows.length || data.step > c.rows[c.rows.length - 1].step)) c.rows.push(data);
      if (!pending) {
        pending = true;
        setTimeout(() => {
          pending = false;
          showHead();
          for (const c of charts) {
            if (c.zoom) continue;
            if (c.rows.length > 8 * width()) load(c); else draw(c);
          }
        }, 500);
      }
    }
  }, true);
  leaving.push(stop);
}

// ---- task pictures ----

// Lines through (x, y) points on a canvas, with axes: for the pictures
// whose x is not the step (toy1d's λ grid and its (x, λ) paths).
function xyPlot(title, lines, xLabel, yLabel) {
  const box = el("div", {class: "chart picture"}, el("h3", {}, title));
  const canvas = el("canvas", {width: "560", height: "300"});
  box.append(canvas, el("div", {class: "legend"}, ...lines.map((l, i) =>
    el("span", {style: `color:${l.color || palette[i % palette.length]}`}, `— ${l.label}  `))));
  const pts = lines.flatMap((l) => l.points).filter(([x, y]) => isFinite(x) && isFinite(y));
  if (!pts.length) return box;
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [x, y] of pts) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const g = canvas.getContext("2d"), L = 56, R = 12, T = 10, B = 36;
  const W = canvas.width - L - R, H = canvas.height - T - B;
  const px = (x) => L + ((x - x0) / (x1 - x0)) * W, py = (y) => T + H - ((y - y0) / (y1 - y0)) * H;
  g.strokeStyle = "#c9d0da"; g.fillStyle = "#6b7585"; g.font = "11px system-ui";
  for (let k = 0; k <= 4; k++) {
    const x = x0 + ((x1 - x0) * k) / 4, y = y0 + ((y1 - y0) * k) / 4;
    g.beginPath(); g.moveTo(px(x), T); g.lineTo(px(x), T + H); g.moveTo(L, py(y)); g.lineTo(L + W, py(y)); g.stroke();
    g.fillText(fmt(x, 3), px(x) - 10, T + H + 14);
    g.fillText(fmt(y, 3), 4, py(y) + 4);
  }
  g.fillText(xLabel, L + W / 2 - 10, canvas.height - 4);
  g.save(); g.translate(12, T + H / 2 + 10); g.rotate(-Math.PI / 2); g.fillText(yLabel, 0, 0); g.restore();
  lines.forEach((l, i) => {
    g.strokeStyle = l.color || palette[i % palette.length];
    g.lineWidth = l.width || 1.5;
    g.setLineDash(l.dash || []);
    g.beginPath();
    l.points.forEach(([x, y], k) => (k ? g.lineTo(px(x), py(y)) : g.moveTo(px(x), py(y))));
    g.stroke();
  });
  return box;
}

// What a person would rather look at than read, from the job's summary
// and evaluations: toy1d's estimated hypergradients against the closed
// form and its (x, λ) paths (the paper's Figures 2 and 3); rotation's
// learned angle against the true one; Meta-Weight-Net's VNet weight as a
// function of the loss at each evaluation (Figure 6).
function taskPictures(job, evals, into) {
  const s = job.summary || {};
  const boxes = [];
  if (job.task === "toy1d" && s.hypergradient_curve) {
    const c = s.hypergradient_curve;
    const lines = Object.keys(c).filter((k) => k !== "lambda" && k !== "truth").map((k) => ({
      label: `EvoGrad, K = ${k.slice(1)}`, points: c.lambda.map((l, i) => [l, c[k][i]])}));
    lines.push({label: "closed form", color: "#1d2430", width: 2.5, points: c.lambda.map((l, i) => [l, c.truth[i]])});
    boxes.push(xyPlot("hypergradient against λ: estimates and the closed form", lines, "λ", "∂ℓ_V/∂λ"));
  }
  if (job.task === "toy1d" && Array.isArray(s.trajectories)) {
    const lines = [];
    s.trajectories.forEach((t, i) => {
      const color = palette[i % palette.length];
      lines.push({label: `start (${t.start.map((v) => fmt(v, 2)).join(", ")}): EvoGrad`, color, points: t.estimated});
      lines.push({label: "closed form", color, dash: [4, 3], points: t.truth});
    });
    boxes.push(xyPlot("(x, λ) trajectories", lines, "x", "λ"));
  }
  const angles = evals.filter((e) => e.angle_deg != null);
  if (job.task === "rotation" && angles.length) {
    const truth = s.true_angle_deg ?? (job.spec.rotation || {}).true_angle_deg;
    const lines = [{label: "learned angle", points: angles.map((e) => [e.step, e.angle_deg])}];
    if (truth != null) lines.push({label: "true angle", color: "#1d2430", dash: [5, 4],
      points: [[angles[0].step, truth], [angles[angles.length - 1].step, truth]]});
    boxes.push(xyPlot("learned rotation angle (degrees)", lines, "step", "angle"));
  }
  const curves = evals.filter((e) => e.vnet_curve);
  if (curves.length) {
    // At most eight evaluations, spread over the run, the last included.
    const pick = curves.length <= 8 ? curves
      : Array.from({length: 8}, (_, i) => curves[Math.round((i * (curves.length - 1)) / 7)]);
    boxes.push(xyPlot("VNet weight against the loss, at each evaluation", pick.map((e) => ({
      label: `step ${e.step}`, points: e.vnet_curve.loss.map((l, i) => [l, e.vnet_curve.weight[i]])})),
      "loss", "weight"));
  }
  into.replaceChildren(...boxes);
}

// ---- compare ----

const metrics = ["train_loss", "meta_loss", "hyper_norm", "lambda_norm", "step_ms", "meta_ms",
                 "cur_bytes", "peak_bytes"];

async function compareView(ids, metric) {
  const pick = el("select", {id: "compare-metric"}, ...metrics.map((m) => el("option", {value: m}, m)));
  pick.value = metric;
  pick.onchange = () => { location.hash = `#/compare?ids=${ids.join(",")}&metric=${pick.value}`; };
  const box = el("div", {class: "chart", id: "compare-chart"});
  main.replaceChildren(el("section", {}, el("h2", {}, `Compare jobs ${ids.join(", ")}`),
    el("div", {class: "controls"}, el("label", {}, "metric ", pick))), box);
  const width = Math.max(400, main.clientWidth - 60);
  const pages = await Promise.all(ids.map((id) =>
    api(`/v1/jobs/${id}/steps?limit=100000000&max_points=${Math.round(width)}&by=${metric}`)));
  const tables = pages.map((p) => [p.steps.map((r) => r.step), p.steps.map((r) => r[metric] ?? null)]);
  const data = uPlot.join(tables);
  new uPlot({width, height: 420, scales: {x: {time: false}}, axes: [{label: "step"}, {size: 64}],
    series: [{label: "step"}, ...ids.map((id, i) => ({label: `job ${id}`, stroke: palette[i % palette.length],
      width: 1.5, spanGaps: true}))]}, data, box);
}

// ---- sweeps ----

const meanStd = (m) => {
  if (!m) return "-";
  const ref = m.std > 0 ? m.std : Math.abs(m.mean);
  const d = ref > 0 && isFinite(ref) ? Math.min(6, Math.max(2, (m.std > 0 ? 1 : 2) - Math.floor(Math.log10(ref)))) : 2;
  return `${m.mean.toFixed(d)} ± ${m.std.toFixed(d)}`;
};

async function sweepsView() {
  const page = await api("/v1/sweeps?limit=1000");
  main.replaceChildren(el("section", {}, el("h2", {}, "Sweeps"),
    el("table", {id: "sweeps"}, el("thead", {}, el("tr", {}, ...["id", "name", "state", "jobs",
      "succeeded", "failed", "created"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...page.sweeps.slice().reverse().map((w) => el("tr", {"data-id": w.id},
        el("td", {class: "num"}, el("a", {href: `#/sweeps/${w.id}`}, String(w.id))),
        el("td", {}, w.name || "-"), el("td", {}, el("span", {class: `state ${w.state}`}, w.state)),
        el("td", {class: "num"}, String(w.jobs_total)), el("td", {class: "num"}, String(w.counts.succeeded)),
        el("td", {class: "num"}, String(w.counts.failed)),
        el("td", {}, (w.created_at || "").replace("T", " ").slice(0, 19))))))));
}

// A sweep: its aggregate as the paper's tables give it, and its jobs
// overlaid on one chart (one colour per grid point, the seeds alike).
async function sweepView(id, metric) {
  const sw = await api(`/v1/sweeps/${id}`);
  const keys = [...new Set(sw.aggregate.flatMap((e) => Object.keys(e.point)))];
  const names = [...new Set(sw.aggregate.flatMap((e) => Object.keys(e.metrics)))];
  const prefer = ["test_acc", "angle_deg", "w_corrupted", "w_clean", "mean_step_ms", "mean_meta_ms", "peak_mem_bytes"];
  names.sort((a, b) => ((prefer.indexOf(a) + 1 || 99) - (prefer.indexOf(b) + 1 || 99)));
  const pick = el("select", {id: "sweep-metric"}, ...metrics.map((m) => el("option", {value: m}, m)));
  pick.value = metric;
  pick.onchange = () => { location.hash = `#/sweeps/${id}?metric=${pick.value}`; };
  const box = el("div", {class: "chart", id: "sweep-chart"});
  main.replaceChildren(
    el("section", {}, el("h2", {}, `Sweep ${id}${sw.name ? ": " + sw.name : ""}`),
      el("p", {}, `${sw.state}: ${sw.jobs_total} jobs, ${sw.counts.succeeded} succeeded, ${sw.counts.failed} failed, ` +
        `${sw.counts.running} running, ${sw.counts.queued} queued`),
      el("table", {id: "aggregate"}, el("thead", {}, el("tr", {}, ...[...keys, "n", ...names].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...sw.aggregate.map((e) => el("tr", {},
          ...keys.map((k) => el("td", {}, JSON.stringify(e.point[k] ?? null))),
          el("td", {class: "num"}, e.succeeded === e.jobs ? String(e.jobs) : `${e.succeeded}/${e.jobs}`),
          ...names.map((n) => el("td", {class: "num"}, meanStd(e.metrics[n])))))))),
    el("section", {}, el("div", {class: "controls"}, el("label", {}, "jobs overlaid: ", pick)), box));
  const group = (job) => JSON.stringify(Object.fromEntries(Object.entries(job.point).filter(([k]) => k !== "seed")));
  const groups = [...new Set(sw.jobs.map(group))];
  const width = Math.max(400, main.clientWidth - 60);
  const pages = await Promise.all(sw.jobs.map((j) =>
    api(`/v1/jobs/${j.id}/steps?limit=100000000&max_points=${Math.round(width)}&by=${metric}`)));
  const data = uPlot.join(pages.map((p) => [p.steps.map((r) => r.step), p.steps.map((r) => r[metric] ?? null)]));
  new uPlot({width, height: 420, scales: {x: {time: false}}, axes: [{label: "step"}, {size: 76}],
    series: [{label: "step"}, ...sw.jobs.map((j) => ({label: `job ${j.id} ${group(j)}`,
      stroke: palette[groups.indexOf(group(j)) % palette.length], width: 1.2, spanGaps: true}))]}, data, box);
}

// ---- devices ----

async function devicesView() {
  const [list, workers] = await Promise.all([api("/v1/devices"), api("/v1/workers")]);
  const mib = (b) => (b ? Math.round(b / 1048576) : "-");
  const jobLinks = (ids) => ids.length ? ids.flatMap((id, i) =>
    [i ? ", " : "", el("a", {href: `#/jobs/${id}`}, String(id))]) : ["-"];
  main.replaceChildren(el("section", {}, el("h2", {}, "Workers"),
    el("p", {}, "The daemons that run jobs from this store (every box's, when they share a PostgreSQL database)."),
    el("table", {id: "workers"}, el("thead", {}, el("tr", {}, ...["name", "host", "devices", "alive",
      "last heartbeat", "running jobs"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...workers.workers.map((w) => el("tr", {"data-name": w.name},
        el("td", {}, w.name), el("td", {}, w.host), el("td", {}, w.devices.join(", ")),
        el("td", {}, el("span", {class: `state ${w.alive ? "running" : "failed"}`}, w.alive ? "alive" : "gone")),
        el("td", {}, w.last_heartbeat.replace("T", " ").slice(0, 19)),
        el("td", {}, ...jobLinks(w.running))))))),
  el("section", {}, el("h2", {}, "Devices"),
    el("table", {id: "devices"}, el("thead", {}, el("tr", {}, ...["name", "kind", "model",
      "threads", "memory used / total (MiB)"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...list.map((d) => el("tr", {}, el("td", {}, d.name), el("td", {}, d.kind),
        el("td", {}, d.model || "-"), el("td", {class: "num"}, d.threads ?? "-"),
        el("td", {class: "num"}, d.kind === "cuda"
          ? `${mib(d.memory_bytes - d.free_bytes)} / ${mib(d.memory_bytes)}` : `- / ${mib(d.memory_bytes)}`)))))));
}

// ---- routing ----

async function route() {
  for (const stop of leaving) stop();
  leaving = [];
  const h = location.hash || "#/";
  const m = h.match(/^#\/jobs\/(\d+)$/);
  const cmp = h.match(/^#\/compare\?ids=([\d,]+)(?:&metric=(\w+))?$/);
  const sw = h.match(/^#\/sweeps\/(\d+)(?:\?metric=(\w+))?$/);
  try {
    if (m) await jobView(Number(m[1]));
    else if (sw) await sweepView(Number(sw[1]), metrics.includes(sw[2]) ? sw[2] : "train_loss");
    else if (h === "#/sweeps") await sweepsView();
    else if (cmp) await compareView(cmp[1].split(",").filter(Boolean).map(Number),
                                    metrics.includes(cmp[2]) ? cmp[2] : "train_loss");
    else if (h === "#/devices") await devicesView();
    else await jobsView();
  } catch (e) {
    main.replaceChildren(el("p", {class: "error"}, e.message));
  }
}
window.addEventListener("hashchange", route);
route();
