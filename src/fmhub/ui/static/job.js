// fmhub UI: a job page follows its job while it runs. Every second it reads the new progress events
// (/api/v1/jobs/{id}/events?after=SEQ) and the new part of the log (/logs?offset=N); it moves the
// progress bar, adds points to the charts (uPlot), and fetches the summary fragment again
// (/ui/jobs/{id}/summary: status, actions, metrics) when the status changes.
"use strict";
(function () {
  var root = document.getElementById("job");
  if (!root) return;
  var jobId = root.getAttribute("data-job-id");
  var kind = root.getAttribute("data-kind");
  var api = "/api/v1/jobs/" + encodeURIComponent(jobId);
  var FINAL = ["completed", "failed", "canceled"];
  var POLL_MS = 1000;
  var LOG_KEEP = 200000;  // characters of log kept on the page
  var SKIP_EVAL = /(^|_)(runtime|per_second|epoch)$|per_second/;

  var state = {
    lastSeq: 0, logOffset: 0, logChars: 0, timer: null, polling: false, finalPolls: 0, refreshing: false,
    step: null, total: null, epoch: null, samplesPerS: null, etaS: null, stage: null, predict: null,
  };
  var train = new Map();  // step -> {loss, lr}
  var evals = new Map();  // step -> {metric: value}
  var evalNames = [];
  var lossChart = null, evalChart = null, evalChartNames = "";

  function $(id) { return document.getElementById(id); }
  function shownStatus() {
    var el = $("job-status");
    return el ? el.getAttribute("data-status") : null;
  }
  function isFinal(status) { return FINAL.indexOf(status) >= 0; }

  function fmtDuration(s) {
    if (s === null || s === undefined || !isFinite(s)) return "-";
    s = Math.max(0, Math.round(s));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (h) return h + "h " + String(m).padStart(2, "0") + "m";
    if (m) return m + "m " + String(sec).padStart(2, "0") + "s";
    return sec + "s";
  }
  function fmtNumber(v, digits) {
    if (v === null || v === undefined) return "-";
    if (Math.abs(v) > 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(2);
    return Number(v).toFixed(digits === undefined ? 4 : digits);
  }

  // ---- events -> state ------------------------------------------------------------------------
  function apply(events) {
    var chartsChanged = false;
    events.forEach(function (e) {
      state.lastSeq = Math.max(state.lastSeq, e.seq);
      var d = e.data || {};
      if (e.kind === "stage") {
        state.stage = d.stage || state.stage;
        if (d.total_steps) { state.total = d.total_steps; state.step = d.step || state.step || 0; }
      } else if (e.kind === "train" || e.kind === "checkpoint") {
        if (d.step !== undefined && d.step !== null) state.step = d.step;
        if (d.total) state.total = d.total;
        if (d.epoch !== undefined && d.epoch !== null) state.epoch = d.epoch;
        if (e.kind === "train") {
          state.samplesPerS = d.samples_per_s; state.etaS = d.eta_s;
          if (typeof d.loss === "number") {
            train.set(d.step, { loss: d.loss, lr: typeof d.learning_rate === "number" ? d.learning_rate : null });
            chartsChanged = true;
          }
        }
      } else if (e.kind === "eval" && d.step !== undefined && d.step !== null) {
        var row = {};
        Object.keys(d.metrics || {}).forEach(function (k) {
          var v = d.metrics[k];
          if (typeof v !== "number" || SKIP_EVAL.test(k)) return;
          var name = k === "loss" ? "eval_loss" : k;
          row[name] = v;
          if (evalNames.indexOf(name) < 0) evalNames.push(name);
        });
        evals.set(d.step, row);
        chartsChanged = true;
      } else if (e.kind === "done") {
        state.stage = "done";
        if (kind === "finetune") state.predict = null;
      } else if (e.kind === "predict") {
        state.predict = { split: d.split, done: d.done || 0, total: d.total || 0 };
      }
    });
    if (events.length) drawProgress();
    if (chartsChanged) drawCharts();
  }

  function drawProgress() {
    var bar = $("progress");
    if (!bar) return;
    var status = shownStatus();
    var value = 0, max = 0, text, stage = state.stage ? "stage: " + state.stage : "";
    if (kind === "finetune") {
      value = state.step || 0; max = state.total || 0;
      if (max) {
        text = "step " + value + " / " + max;
        if (state.epoch !== null) text += " · epoch " + Number(state.epoch).toFixed(2);
        if (state.samplesPerS) text += " · " + state.samplesPerS + " samples/s";
        if (state.etaS !== null && state.etaS !== undefined && !isFinal(status)) text += " · ETA " + fmtDuration(state.etaS);
      } else {
        text = isFinal(status) ? "no progress recorded" : "waiting for the first step";
      }
      if (state.predict) {
        stage += (stage ? " · " : "") + state.predict.done + " / " + state.predict.total +
          " rows predicted (" + state.predict.split + ")";
      }
    } else if (state.predict) {
      value = state.predict.done; max = state.predict.total;
      text = value + " / " + max + " rows predicted (" + state.predict.split + ")";
    } else {
      text = isFinal(status) ? "no progress recorded" : "waiting for the first rows";
    }
    if (status === "completed") { max = max || 1; value = max; }
    var pct = max ? Math.min(100, 100 * value / max) : 0;
    bar.setAttribute("aria-valuemax", String(max));
    bar.setAttribute("aria-valuenow", String(value));
    bar.setAttribute("aria-valuetext", value + " of " + max);
    var fill = bar.querySelector("span");
    if (fill) fill.style.width = pct.toFixed(1) + "%";
    $("progress-text").textContent = text;
    $("stage").textContent = stage;
  }

  // ---- charts ---------------------------------------------------------------------------------
  var COLORS = ["#2257d6", "#c2410c", "#1a7f37", "#9333ea", "#b91c1c", "#0e7490", "#a16207"];
  function chartWidth(el) { return Math.max(260, Math.floor(el.clientWidth || el.parentNode.clientWidth || 400)); }
  function sortedSteps(map) { return Array.from(map.keys()).sort(function (a, b) { return a - b; }); }
  function sciTicks(u, vals) { return vals.map(function (v) { return v === null ? "" : Number(v).toExponential(1); }); }

  function drawLoss() {
    var el = $("loss-chart");
    if (!el || !train.size || !window.uPlot) return;
    var steps = sortedSteps(train);
    var data = [steps, steps.map(function (s) { return train.get(s).loss; }),
                steps.map(function (s) { return train.get(s).lr; })];
    if (!lossChart) {
      el.textContent = "";
      lossChart = new uPlot({
        width: chartWidth(el), height: 240,
        scales: { x: { time: false }, lr: { auto: true } },
        series: [
          { label: "step" },
          { label: "loss", stroke: COLORS[0], width: 2, value: function (u, v) { return fmtNumber(v); } },
          { label: "learning rate", stroke: COLORS[1], width: 1, dash: [4, 4], scale: "lr",
            value: function (u, v) { return v === null ? "-" : Number(v).toExponential(2); } },
        ],
        axes: [{ label: "step" }, { label: "loss" },
               { scale: "lr", side: 1, label: "learning rate", grid: { show: false }, values: sciTicks, size: 64 }],
      }, data, el);
    } else {
      lossChart.setData(data);
    }
    el.setAttribute("data-points", String(steps.length));
    var last = steps[steps.length - 1];
    $("loss-chart-summary").textContent = steps.length + " points; loss " + fmtNumber(train.get(last).loss) +
      " at step " + last + ".";
  }

  function drawEval() {
    var el = $("eval-chart");
    if (!el || !evals.size || !window.uPlot || !evalNames.length) return;
    var steps = sortedSteps(evals);
    var data = [steps].concat(evalNames.map(function (n) {
      return steps.map(function (s) { var v = evals.get(s)[n]; return v === undefined ? null : v; });
    }));
    if (!evalChart || evalChartNames !== evalNames.join(",")) {
      if (evalChart) evalChart.destroy();
      el.textContent = "";
      var hasLoss = evalNames.indexOf("eval_loss") >= 0;
      evalChartNames = evalNames.join(",");
      evalChart = new uPlot({
        width: chartWidth(el), height: 240,
        scales: { x: { time: false }, loss: { auto: true } },
        series: [{ label: "step" }].concat(evalNames.map(function (n, i) {
          return { label: n, stroke: COLORS[i % COLORS.length], width: 2, scale: n === "eval_loss" ? "loss" : "y",
                   points: { show: true }, value: function (u, v) { return fmtNumber(v); } };
        })),
        axes: [{ label: "step" }, { label: "score" }].concat(hasLoss ?
          [{ scale: "loss", side: 1, label: "eval_loss", grid: { show: false }, size: 56 }] : []),
      }, data, el);
    } else {
      evalChart.setData(data);
    }
    el.setAttribute("data-points", String(steps.length));
    var last = evals.get(steps[steps.length - 1]);
    $("eval-chart-summary").textContent = steps.length + " evaluations; at step " + steps[steps.length - 1] + ": " +
      evalNames.filter(function (n) { return last[n] !== undefined; })
        .map(function (n) { return n + " " + fmtNumber(last[n]); }).join(", ") + ".";
  }

  function drawCharts() {
    if (kind !== "finetune") return;
    drawLoss();
    drawEval();
  }
  window.addEventListener("resize", function () {
    [[lossChart, "loss-chart"], [evalChart, "eval-chart"]].forEach(function (pair) {
      if (pair[0]) pair[0].setSize({ width: chartWidth($(pair[1])), height: 240 });
    });
  });

  // ---- log tail -------------------------------------------------------------------------------
  function appendLog(text) {
    var pre = $("log");
    if (!pre || !text) return;
    var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    state.logChars += text.length;
    if (state.logChars > 1.5 * LOG_KEEP) {  // trim now and then, not on every read
      var all = pre.textContent + text;
      pre.textContent = all.slice(all.length - LOG_KEEP);
      state.logChars = LOG_KEEP;
    } else {
      pre.appendChild(document.createTextNode(text));
    }
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  // ---- polling --------------------------------------------------------------------------------
  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(url + ": HTTP " + r.status); return r.json(); });
  }

  function refreshSummary() {
    if (state.refreshing || !window.htmx) return;
    state.refreshing = true;
    htmx.ajax("GET", "/ui/jobs/" + encodeURIComponent(jobId) + "/summary", { target: "#job-summary", swap: "innerHTML" })
      .then(function () { state.refreshing = false; drawProgress(); },
            function () { state.refreshing = false; });
  }

  function showDuration() {  // the summary says how long a running job has run; keep it current
    var el = $("job-duration");
    var started = el && el.getAttribute("data-started");
    if (started && shownStatus() === "running") {
      var t = Date.parse(started);
      if (isFinite(t)) el.textContent = fmtDuration((Date.now() - t) / 1000);
    }
  }

  function tick() {
    state.timer = null;
    showDuration();
    Promise.all([
      getJSON(api + "/events?after=" + state.lastSeq).then(apply),
      getJSON(api + "/logs?offset=" + state.logOffset).then(function (chunk) {
        appendLog(chunk.text);
        state.logOffset = chunk.next_offset;
        return chunk.status;
      }),
    ]).then(function (results) {
      var status = results[1];
      if (status && status !== shownStatus()) refreshSummary();
      if (isFinal(status)) {
        state.finalPolls += 1;  // a few more reads: the last events land just after the status
        if (state.finalPolls >= 3) { stop(); drawProgress(); return; }
      } else {
        state.finalPolls = 0;
      }
      schedule();
    }, function () {
      schedule(3 * POLL_MS);  // the server restarted or the network dropped: try again, slower
    });
  }
  function schedule(ms) {
    if (!state.polling) return;
    if (state.timer) clearTimeout(state.timer);
    state.timer = setTimeout(tick, ms || POLL_MS);
  }
  function start() {
    if (state.polling) return;
    state.polling = true; state.finalPolls = 0;
    tick();
  }
  function stop() {
    state.polling = false;
    if (state.timer) { clearTimeout(state.timer); state.timer = null; }
  }

  // After an action (Resume) or a refresh, follow the job again if it is active.
  document.addEventListener("htmx:afterSettle", function (evt) {
    var target = evt.detail && evt.detail.target;
    if (target && target.id === "job-summary" && !isFinal(shownStatus())) start();
  });

  start();
  window.fmhubJob = { state: state, stop: stop, start: start };
})();
