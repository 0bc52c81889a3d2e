// fmhub UI: the little JavaScript every page shares (htmx does the rest).
"use strict";
// The page's CSRF token (its <meta name="csrf-token">): fetch calls that change state send it as
// X-CSRF-Token; htmx requests get it from hx-headers on <body>, plain forms from a hidden field.
window.fmhubCsrfToken = function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
};
window.fmhub = (function () {
  // Show 4xx/5xx fragments (error boxes) instead of dropping them. A 4xx answer is an expected
  // outcome (the server explains a problem with the request in the fragment): it is swapped in
  // without htmx logging it as an error or firing htmx:responseError. A 5xx stays an error.
  document.addEventListener("DOMContentLoaded", function () {
    if (window.htmx) {
      htmx.config.responseHandling = [
        { code: "204", swap: false },
        { code: "[23]..", swap: true },
        { code: "4..", swap: true, error: false },
        { code: "5..", swap: true, error: true },
      ];
      htmx.config.selfRequestsOnly = true;
      htmx.config.allowEval = false;
    }
    initCopyButtons(document);
    initWizards(document);
    fillFiltersFromUrl();
  });
  document.addEventListener("htmx:afterSettle", function (evt) {
    initCopyButtons(evt.target);
    markFieldErrors(evt.target);
    refreshWizards();
  });

  // aria-describedby is a list of ids: add or remove one, keeping the others (e.g. the help text).
  function describedBy(el, id, on) {
    var ids = (el.getAttribute("aria-describedby") || "").split(/\s+/).filter(function (x) { return x && x !== id; });
    if (on) ids.push(id);
    if (ids.length) el.setAttribute("aria-describedby", ids.join(" ")); else el.removeAttribute("aria-describedby");
  }
  // Keep the keyboard focus across a swap that replaces the focused element (a catalog filter
  // radio changed with the arrow keys re-renders all the filters): focus its new copy, found by id
  // or else by name and value.
  var focusBeforeSwap = null;
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var active = document.activeElement, target = evt.detail.target;
    focusBeforeSwap = active && active !== document.body && target && target.contains(active)
      ? { id: active.id, name: active.getAttribute("name"), value: active.value } : null;
  });
  document.addEventListener("htmx:afterSwap", function () {
    var was = focusBeforeSwap;
    focusBeforeSwap = null;
    if (!was || (document.activeElement && document.activeElement !== document.body)) return;
    var el = was.id ? document.getElementById(was.id) : null;
    if (!el && was.name) {
      el = Array.from(document.getElementsByName(was.name)).filter(function (n) { return n.value === was.value; })[0];
    }
    if (el) el.focus({ preventScroll: true });
  });

  // Filter forms that put their query in the URL (hx-push-url): after Back/Forward htmx restores
  // the page from a snapshot whose inputs show what the server first rendered, so set them from
  // the URL (on load too, over any value the browser itself restored).
  function fillFiltersFromUrl() {
    var params = new URLSearchParams(window.location.search);
    document.querySelectorAll("form[hx-push-url]").forEach(function (form) {
      Array.from(form.elements).forEach(function (el) {
        if (!el.name) return;
        var value = params.get(el.name) || "";
        if (el.type === "radio") el.checked = el.value === value;
        else if (el.matches("select")) { el.value = value; if (el.selectedIndex < 0) el.selectedIndex = 0; }
        else if (el.matches("input[type=search], input[type=text]")) el.value = value;
      });
    });
  }
  document.addEventListener("htmx:historyRestore", fillFiltersFromUrl);

  // A request answered 4xx or 5xx (successful is true for a 4xx, which is not an htmx error here).
  function failed(detail) { return !detail.xhr || detail.xhr.status >= 400 || detail.xhr.status === 0; }

  // Field errors: `[data-field-errors]` holds [{field, message}]; each message goes next to the
  // input of the same name (e.g. "hyperparameters.learning_rate").
  function clearFieldErrors(form) {
    form.querySelectorAll(".field-error[data-generated]").forEach(function (n) {
      form.querySelectorAll('[aria-describedby~="' + CSS.escape(n.id) + '"]').forEach(function (i) { describedBy(i, n.id, false); });
      n.remove();
    });
    form.querySelectorAll("[aria-invalid=true][data-marked]").forEach(function (n) {
      n.removeAttribute("data-marked");
      if (!n.hasAttribute("data-constraint")) n.removeAttribute("aria-invalid");
    });
  }
  function markFieldErrors(root) {
    var boxes = (root.matches && root.matches("[data-field-errors]")) ? [root] : [];
    boxes = boxes.concat(Array.from(root.querySelectorAll ? root.querySelectorAll("[data-field-errors]") : []));
    boxes.forEach(function (box) {
      var form = box.closest("form") || document.querySelector("form.wizard");
      if (!form) return;
      clearFieldErrors(form);
      var problems = [];
      try { problems = JSON.parse(box.getAttribute("data-field-errors")); } catch (e) { return; }
      var firstInput = null, placed = [];
      problems.forEach(function (p) {
        var names = [p.field, p.field.replace(/^data\./, "data."), "spec." + p.field];
        var input = null;
        for (var i = 0; i < names.length && !input; i++) {
          input = form.querySelector('[name="' + CSS.escape(names[i]) + '"]');
        }
        if (!input) return;
        var msg = document.createElement("p");
        msg.className = "field-error"; msg.setAttribute("data-generated", "1");
        msg.id = "err-" + p.field.replace(/[^A-Za-z0-9_-]/g, "-");
        msg.textContent = p.message;
        input.setAttribute("aria-invalid", "true"); input.setAttribute("data-marked", "1");
        describedBy(input, msg.id, true);
        (input.closest(".field") || input.parentNode).appendChild(msg);
        placed.push({ input: input, msg: msg });
        // the step shown is that of the earliest field with a problem
        if (!firstInput || (input.compareDocumentPosition(firstInput) & Node.DOCUMENT_POSITION_FOLLOWING)) firstInput = input;
      });
      foldIntoField(box, problems, placed);
      if (firstInput && window.fmhub.wizard) window.fmhub.wizard.showStepOf(firstInput);
    });
  }
  // A box that says no more than the one field message it carries (a plain form: the box sits by
  // the field; not a wizard's review, far from the field's step) is said once, at the field, with
  // the box's hint; the box is hidden.
  function foldIntoField(box, problems, placed) {
    var strong = box.querySelector(":scope > strong"), hint = box.querySelector(":scope > .hint");
    if (problems.length !== 1 || placed.length !== 1 || !strong || box.querySelector(".details")) return;
    var at = placed[0];
    if (strong.textContent.trim() !== at.msg.textContent.trim()) return;
    if (box.closest("section.step") !== at.input.closest("section.step")) return;
    if (hint) at.msg.textContent += " — " + hint.textContent.trim();
    at.msg.setAttribute("role", "alert");
    box.hidden = true;
  }

  function initCopyButtons(root) {
    (root.querySelectorAll ? root.querySelectorAll("[data-copy]") : []).forEach(function (btn) {
      if (btn.dataset.bound) return;
      btn.dataset.bound = "1";
      btn.addEventListener("click", function () {
        var target = document.getElementById(btn.getAttribute("data-copy"));
        var text = target ? (target.value || target.getAttribute("data-secret") || target.textContent) : "";
        var done = function () { var old = btn.textContent; btn.textContent = "Copied"; setTimeout(function () { btn.textContent = old; }, 1200); };
        if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done, done); }
        else { var ta = document.createElement("textarea"); ta.value = text; document.body.appendChild(ta); ta.select();
               try { document.execCommand("copy"); } catch (e) {} ta.remove(); done(); }
      });
    });
  }

  // Wizards: <form class="wizard"> with <section class="step" data-title="..."> children, buttons
  // [data-next] / [data-back]. "Next" stays disabled while the step holds a [data-blocking] element
  // (e.g. a validation report with errors) or an input that fails its constraints (required, min,
  // max, step, pattern); such an input shows the browser's validationMessage next to it. The final
  // step's [data-submit] buttons stay disabled while their request runs (hx-disabled-elt) and once
  // it succeeded (the server sends the browser to the new job's page).
  var wizards = [];
  function initWizards(root) {
    (root.querySelectorAll ? root.querySelectorAll("form.wizard") : []).forEach(function (form) {
      if (form.dataset.bound) return;
      form.dataset.bound = "1";
      var steps = Array.from(form.querySelectorAll("section.step"));
      var list = form.querySelector("ol.steps");
      var state = { form: form, steps: steps, list: list, index: 0 };
      if (list) {
        list.innerHTML = "";
        steps.forEach(function (s, i) {
          var li = document.createElement("li"); li.textContent = (i + 1) + ". " + (s.dataset.title || "Step");
          li.id = "step-tab-" + i; list.appendChild(li);
        });
      }
      form.addEventListener("click", function (e) {
        var t = e.target.closest("[data-next],[data-back]");
        if (!t) return;
        e.preventDefault();
        if (t.hasAttribute("data-next")) go(state, state.index + 1); else go(state, state.index - 1);
      });
      // Enter in a field moves to the next step instead of submitting the whole form.
      form.addEventListener("keydown", function (e) {
        var t = e.target;
        if (e.key !== "Enter" || !t.matches("input") || t.matches("[type=button], [type=submit], [type=file]")) return;
        e.preventDefault();
        touchStep(state.steps[state.index]);
        refresh(state);
        go(state, state.index + 1);
      });
      var edited = function (e) {
        if (e.target.matches && e.target.matches("input, select, textarea")) e.target.setAttribute("data-touched", "");
        refresh(state);
      };
      form.addEventListener("input", edited);
      form.addEventListener("change", edited);
      wizards.push(state);
      go(state, 0, true);
    });
  }
  // Parts of a step that are hidden or disabled (an option not chosen) do not block it.
  function inactive(el) { return !!el.closest("[hidden], fieldset:disabled"); }
  function blocked(step) {
    var blockers = step.querySelectorAll("[data-blocking]");
    for (var b = 0; b < blockers.length; b++) { if (!inactive(blockers[b])) return true; }
    var inputs = step.querySelectorAll("input, select, textarea");
    for (var i = 0; i < inputs.length; i++) {
      if (!inputs[i].matches(":disabled") && !inactive(inputs[i]) && !inputs[i].checkValidity()) return true;
    }
    return false;
  }
  // "Next" and the final step's [data-submit] buttons are disabled while their step is blocked.
  function refresh(state) {
    var step = state.steps[state.index];
    var b = blocked(step);
    state.form.querySelectorAll("input, select, textarea").forEach(showConstraint);
    step.querySelectorAll("[data-next], [data-submit]").forEach(function (btn) {
      var off = b || btn.hasAttribute("data-disabled-by-htmx") || btn.hasAttribute("data-submitted");
      btn.disabled = off;
      btn.setAttribute("aria-disabled", off ? "true" : "false");
    });
  }
  // Constraint messages: the browser's own text ("Value must be greater than or equal to 0.") in a
  // .field-error next to the input, kept up to date as the user types and removed once the value is
  // fixed. An empty required field says so only once it was edited (or Enter was pressed).
  function constraintMessage(input) {
    if (/^(hidden|radio|checkbox|submit|button)$/.test(input.type) || input.matches(":disabled") || inactive(input)) return "";
    if (input.checkValidity()) return "";
    if (input.validity.valueMissing && !input.hasAttribute("data-touched")) return "";
    return input.validationMessage;
  }
  function showConstraint(input) {
    var key = input.id || input.name;
    if (!key) return;
    var id = "invalid-" + key.replace(/[^A-Za-z0-9_-]/g, "-");
    var node = document.getElementById(id);
    var message = constraintMessage(input);
    if (!message) {
      if (node) node.remove();
      if (input.hasAttribute("data-constraint")) {
        input.removeAttribute("data-constraint");
        describedBy(input, id, false);
        if (!input.hasAttribute("data-marked")) input.removeAttribute("aria-invalid");
      }
      return;
    }
    if (!node) {
      node = document.createElement("p");
      node.className = "field-error"; node.id = id; node.setAttribute("data-constraint-message", "");
      (input.closest(".field") || input.parentNode).appendChild(node);
      var closed = input.closest("details:not([open])");  // e.g. "Advanced": show the field at fault
      if (closed) closed.open = true;
    }
    if (node.textContent !== message) node.textContent = message;
    input.setAttribute("data-constraint", "");
    input.setAttribute("aria-invalid", "true");
    describedBy(input, id, true);
  }
  function touchStep(step) {
    step.querySelectorAll("input, select, textarea").forEach(function (i) { i.setAttribute("data-touched", ""); });
  }
  function refreshWizards() { wizards.forEach(refresh); }
  function go(state, index, initial) {
    if (index < 0 || index >= state.steps.length) return;
    if (index > state.index && blocked(state.steps[state.index])) return;
    state.index = index;
    state.steps.forEach(function (s, i) { s.hidden = i !== index; });
    if (state.list) {
      Array.from(state.list.children).forEach(function (li, i) {
        if (i === index) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
        li.classList.toggle("done", i < index);
      });
    }
    var step = state.steps[index];
    step.dispatchEvent(new CustomEvent("fmhub:step-shown", { bubbles: true }));
    refresh(state);
    if (!initial) {
      var focus = step.querySelector("h2, legend") || step;
      focus.setAttribute("tabindex", "-1"); focus.focus();
    }
  }
  // A wizard's submit button stays disabled once its request succeeded: the page is being left.
  document.addEventListener("htmx:afterRequest", function (evt) {
    var elt = evt.detail.elt;
    if (!elt || !elt.matches || !elt.matches("form.wizard [data-submit]") || failed(evt.detail)) return;
    elt.setAttribute("data-submitted", "");
    elt.disabled = true;
  });
  // Back to a page kept by the browser (back/forward cache): its buttons work again.
  window.addEventListener("pageshow", function (evt) {
    if (!evt.persisted) return;
    document.querySelectorAll("[data-submitted], [data-disabled-by-htmx]").forEach(function (btn) {
      btn.removeAttribute("data-submitted"); btn.removeAttribute("data-disabled-by-htmx"); btn.disabled = false;
    });
    refreshWizards();
  });

  var wizard = {
    showStepOf: function (input) {
      wizards.forEach(function (state) {
        var step = input.closest("section.step");
        var i = state.steps.indexOf(step);
        if (i >= 0) { state.index = i; go(state, i); input.focus(); }
      });
    },
    refresh: refreshWizards,
  };

  return { markFieldErrors: markFieldErrors, clearFieldErrors: clearFieldErrors, wizard: wizard };
})();
