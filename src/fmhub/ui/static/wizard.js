// fmhub UI: the data steps the wizards share (templates wizard_data_source.html and friends).
//
// - <fieldset data-source-field="data.train"> (wizard_data_source.html): a file input [data-upload]
//   uploads the file with PUT /api/v1/data/{name}/upload?filename=...; a select [data-asset-select]
//   picks a registered data asset. Either sets the hidden [data-source-value] input to NAME:VERSION,
//   shows what was chosen, and sends the htmx event "fmhub-data-changed" to the element whose id is
//   in data-notify (the mapping region). A failed upload shows its message next to the file input.
// - [data-show-when="NAME=VALUE"]: shown (and its inputs enabled) only while the radio NAME has
//   VALUE checked; a hidden part does not block its wizard step.
// - [data-load-on-show]: sent the htmx event "fmhub-step-shown" whenever its wizard step is shown.
"use strict";
(function () {
  function assetName(filename) {
    var stem = filename.replace(/\.[^.]*$/, "");
    return stem.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 200) || "data";
  }
  function safeFilename(filename) {
    var clean = filename.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "");
    return clean.slice(-200) || "data";
  }
  function refreshWizard() { if (window.fmhub && window.fmhub.wizard) window.fmhub.wizard.refresh(); }

  function setStatus(box, nodes, blocking) {
    var status = box.querySelector("[data-source-status]");
    status.textContent = "";
    nodes.forEach(function (n) { status.appendChild(typeof n === "string" ? document.createTextNode(n) : n); });
    if (blocking) {
      var b = document.createElement("span");
      b.setAttribute("data-blocking", "");
      b.className = "muted";
      b.textContent = blocking;
      status.appendChild(b);
    }
    refreshWizard();
  }
  function code(text) { var c = document.createElement("code"); c.textContent = text; return c; }
  function showError(box, input, message) {
    clearError(box);
    var p = document.createElement("p");
    p.className = "field-error"; p.setAttribute("role", "alert"); p.setAttribute("data-upload-error", "");
    p.id = input.id + "-error";
    p.textContent = message;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", p.id);
    input.closest(".field").appendChild(p);
  }
  function clearError(box) {
    box.querySelectorAll("[data-upload-error]").forEach(function (n) { n.remove(); });
    box.querySelectorAll("[data-upload][aria-invalid]").forEach(function (n) {
      n.removeAttribute("aria-invalid");
      n.setAttribute("aria-describedby", n.id + "-help");
    });
  }
  function choose(box, ref, summary) {
    var hidden = box.querySelector("[data-source-value]");
    hidden.value = ref;
    setStatus(box, summary, ref ? null : "No data chosen yet.");
    var target = box.dataset.notify && document.getElementById(box.dataset.notify);
    if (target && window.htmx) htmx.trigger(target, "fmhub-data-changed");
  }
  function describe(ref, rows, columns) {
    return ["Using ", code(ref), ": " + rows + " rows, columns " + columns + "."];
  }

  function upload(box, input) {
    var file = input.files && input.files[0];
    if (!file) return;
    clearError(box);
    var select = box.querySelector("[data-asset-select]");
    if (select) select.value = "";
    box.querySelector("[data-source-value]").value = "";
    setStatus(box, [], "Uploading " + file.name + "...");
    input.setAttribute("aria-busy", "true");
    var url = "/api/v1/data/" + encodeURIComponent(assetName(file.name)) + "/upload?filename=" +
      encodeURIComponent(safeFilename(file.name));
    fetch(url, { method: "PUT", body: file, credentials: "same-origin",
                 headers: { "Content-Type": "application/octet-stream", "Accept": "application/json",
                            "X-CSRF-Token": window.fmhubCsrfToken() } })
      .then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (body) { return { ok: resp.ok, status: resp.status, body: body }; });
      })
      .then(function (r) {
        input.removeAttribute("aria-busy");
        if (!r.ok) {
          var err = (r.body && r.body.error) || {};
          var msg = (err.message || ("upload failed (HTTP " + r.status + ")")) + (err.hint ? " — " + err.hint : "");
          showError(box, input, msg);
          choose(box, "", []);
          return;
        }
        var a = r.body;
        choose(box, a.name + ":" + a.version, describe(a.name + ":" + a.version, a.rows, (a.columns || []).join(", ")));
      })
      .catch(function (e) {
        input.removeAttribute("aria-busy");
        showError(box, input, "upload failed: " + e.message);
        choose(box, "", []);
      });
  }

  function initSources(root) {
    root.querySelectorAll("fieldset[data-source-field]").forEach(function (box) {
      if (box.dataset.sourceBound) return;
      box.dataset.sourceBound = "1";
      var input = box.querySelector("[data-upload]");
      if (input) input.addEventListener("change", function () { upload(box, input); });
      var select = box.querySelector("[data-asset-select]");
      if (select) select.addEventListener("change", function () {
        clearError(box);
        if (input) input.value = "";
        var opt = select.selectedOptions[0];
        if (!select.value) { choose(box, "", []); return; }
        choose(box, select.value, describe(select.value, opt.dataset.rows, opt.dataset.columns));
      });
    });
  }

  function applyShowWhen(form) {
    form.querySelectorAll("[data-show-when]").forEach(function (el) {
      var parts = el.getAttribute("data-show-when").split("=");
      var checked = form.querySelector('input[name="' + CSS.escape(parts[0]) + '"]:checked');
      var on = !!checked && checked.value === parts.slice(1).join("=");
      el.hidden = !on;
      if (el.tagName === "FIELDSET") el.disabled = !on;
      else el.querySelectorAll("input, select, textarea").forEach(function (i) { i.disabled = !on; });
    });
    refreshWizard();
  }

  document.addEventListener("DOMContentLoaded", function () {
    initSources(document);
    document.querySelectorAll("form.wizard").forEach(function (form) {
      applyShowWhen(form);
      form.addEventListener("change", function (e) {
        if (e.target.matches("input[type=radio]")) applyShowWhen(form);
        if (e.target.matches("select[name^='data.column_mapping.']")) {  // chosen now, not matched by name
          var auto = e.target.closest(".field").querySelector("[data-auto-match]");
          if (auto) auto.remove();
        }
      });
    });
  });
  document.addEventListener("htmx:afterSettle", function (evt) { initSources(evt.target); });
  // A region marked [data-load-on-show] gets the htmx event "fmhub-step-shown" each time its
  // wizard step is shown (e.g. the review, rebuilt from the form).
  document.addEventListener("fmhub:step-shown", function (evt) {
    if (!window.htmx) return;
    evt.target.querySelectorAll("[data-load-on-show]").forEach(function (el) { htmx.trigger(el, "fmhub-step-shown"); });
  });
})();
