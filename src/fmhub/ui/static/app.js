// fmhub UI: the little JavaScript every page shares (htmx does the rest).
"use strict";
window.fmhub = (function () {
  // Show 4xx/5xx fragments (error boxes) instead of dropping them.
  document.addEventListener("DOMContentLoaded", function () {
    if (window.htmx) {
      htmx.config.responseHandling = [
        { code: "204", swap: false },
        { code: "[23]..", swap: true },
        { code: "[45]..", swap: true, error: true },
      ];
      htmx.config.selfRequestsOnly = true;
      htmx.config.allowEval = false;
    }
    initCopyButtons(document);
    initWizards(document);
  });
  document.addEventListener("htmx:afterSettle", function (evt) {
    initCopyButtons(evt.target);
    markFieldErrors(evt.target);
    refreshWizards();
  });

  // Field errors: `[data-field-errors]` holds [{field, message}]; each message goes next to the
  // input of the same name (e.g. "hyperparameters.learning_rate").
  function clearFieldErrors(form) {
    form.querySelectorAll(".field-error[data-generated]").forEach(function (n) { n.remove(); });
    form.querySelectorAll("[aria-invalid=true][data-marked]").forEach(function (n) {
      n.removeAttribute("aria-invalid"); n.removeAttribute("data-marked");
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
      var firstInput = null;
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
        input.setAttribute("aria-describedby", msg.id);
        (input.closest(".field") || input.parentNode).appendChild(msg);
        // the step shown is that of the earliest field with a problem
        if (!firstInput || (input.compareDocumentPosition(firstInput) & Node.DOCUMENT_POSITION_FOLLOWING)) firstInput = input;
      });
      if (firstInput && window.fmhub.wizard) window.fmhub.wizard.showStepOf(firstInput);
    });
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
  // (e.g. a validation report with errors) or an invalid required input.
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
        go(state, state.index + 1);
      });
      form.addEventListener("input", function () { refresh(state); });
      form.addEventListener("change", function () { refresh(state); });
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
    step.querySelectorAll("[data-next], [data-submit]").forEach(function (btn) {
      btn.disabled = b;
      btn.setAttribute("aria-disabled", b ? "true" : "false");
    });
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
