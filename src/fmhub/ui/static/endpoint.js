// fmhub UI, endpoint pages: traffic sliders that must sum to 100, keys shown on demand and copied,
// and the test console that scores a request with the endpoint's key and times it.
"use strict";
(function () {
  // -- traffic sliders -------------------------------------------------------------------------
  function initTraffic() {
    var form = document.getElementById("traffic-form");
    if (!form) return;
    var sliders = Array.from(form.querySelectorAll("input[type=range][data-traffic]"));
    var sum = document.getElementById("traffic-sum");
    var error = document.getElementById("traffic-error");
    var save = document.getElementById("traffic-save");
    function update() {
      var total = 0;
      sliders.forEach(function (s) {
        var v = parseInt(s.value, 10) || 0;
        total += v;
        var out = document.getElementById(s.id + "-value");
        if (out) out.textContent = v + "%";
      });
      sum.textContent = total + "%";
      var ok = total === 100;
      error.hidden = ok;
      error.textContent = ok ? "" : "The shares sum to " + total + "%; they must sum to 100%.";
      sliders.forEach(function (s) {
        if (ok) { s.removeAttribute("aria-invalid"); s.removeAttribute("aria-errormessage"); }
        else { s.setAttribute("aria-invalid", "true"); s.setAttribute("aria-errormessage", "traffic-error"); }
      });
      save.disabled = !ok;
      save.setAttribute("aria-disabled", ok ? "false" : "true");
    }
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    form.addEventListener("submit", function (e) { if (save.disabled) e.preventDefault(); });
    update();
  }

  // -- keys --------------------------------------------------------------------------------------
  var keys = null;
  function fetchKeys() {
    if (keys) return Promise.resolve(keys);
    var section = document.getElementById("keys");
    return fetch(section.getAttribute("data-keys-url"), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("the keys could not be read (HTTP " + r.status + ")");
        return r.json();
      })
      .then(function (body) { keys = { primary: body.primary_key, secondary: body.secondary_key }; return keys; });
  }
  function keysError(err) {
    var box = document.getElementById("keys-errors");
    if (box) { box.innerHTML = ""; var p = document.createElement("p"); p.className = "field-error"; p.textContent = String(err.message || err); box.appendChild(p); }
  }
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    var ta = document.createElement("textarea");
    ta.value = text; ta.setAttribute("readonly", ""); ta.style.position = "fixed"; ta.style.opacity = "0";
    document.body.appendChild(ta); ta.select();
    try { document.execCommand("copy"); } finally { ta.remove(); }
    return Promise.resolve();
  }
  function initKeys() {
    var section = document.getElementById("keys");
    if (!section) return;
    var toggle = document.getElementById("keys-toggle");
    var shown = false;
    toggle.addEventListener("click", function () {
      var codes = section.querySelectorAll("code.key[data-which]");
      if (shown) {
        codes.forEach(function (c) { c.textContent = c.getAttribute("data-masked"); });
        shown = false; toggle.textContent = "Show keys"; toggle.setAttribute("aria-pressed", "false");
        return;
      }
      fetchKeys().then(function (k) {
        codes.forEach(function (c) { c.textContent = k[c.getAttribute("data-which")]; });
        shown = true; toggle.textContent = "Hide keys"; toggle.setAttribute("aria-pressed", "true");
      }).catch(keysError);
    });
    section.querySelectorAll("[data-copy-key]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var which = btn.getAttribute("data-copy-key");
        fetchKeys().then(function (k) { return copyText(k[which]); }).then(function () {
          var old = btn.textContent; btn.textContent = "Copied";
          setTimeout(function () { btn.textContent = old; }, 1200);
        }).catch(keysError);
      });
    });
  }

  // -- test console ----------------------------------------------------------------------------
  function initConsole() {
    var box = document.getElementById("console");
    if (!box) return;
    var request = document.getElementById("console-request");
    var status = document.getElementById("console-status");
    var latency = document.getElementById("console-latency");
    var response = document.getElementById("console-response");
    var route = document.getElementById("console-deployment");
    var send = document.getElementById("console-send");
    send.addEventListener("click", function () {
      var headers = { "Content-Type": "application/json", "Authorization": "Bearer " + box.getAttribute("data-key") };
      if (route && route.value) headers["x-fmhub-deployment"] = route.value;
      send.disabled = true;
      status.textContent = "sending…"; latency.textContent = "-";
      var started = performance.now();
      var httpStatus = null;
      fetch(box.getAttribute("data-score-url"), { method: "POST", headers: headers, body: request.value, credentials: "omit" })
        .then(function (r) {
          httpStatus = r.status + (r.statusText ? " " + r.statusText : "");
          return r.text();
        })
        .then(function (text) {
          latency.textContent = (performance.now() - started).toFixed(1) + " ms";
          status.textContent = httpStatus;
          var shown = text;
          try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON: show as is */ }
          response.textContent = shown;
        })
        .catch(function (err) {
          latency.textContent = (performance.now() - started).toFixed(1) + " ms";
          status.textContent = "network error";
          response.textContent = String(err && err.message || err);
        })
        .finally(function () { send.disabled = false; });
    });
  }

  // Field errors inside closed <details> (advanced settings) must be seen: open them.
  document.addEventListener("htmx:afterSettle", function (evt) {
    var root = evt.target && evt.target.closest ? (evt.target.closest("form") || evt.target) : document;
    root.querySelectorAll("details").forEach(function (d) {
      if (d.querySelector("[aria-invalid=true]")) d.open = true;
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    initTraffic();
    initKeys();
    initConsole();
  });
})();
