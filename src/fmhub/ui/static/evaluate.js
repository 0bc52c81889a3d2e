// fmhub UI: the evaluate wizard's model checkboxes (template evaluate.html).
//
// The models of the task chosen are shown (wizard.js [data-show-when]); the step stays blocked
// ("Tick at least one model", a [data-blocking] note) until one of them is ticked.
"use strict";
(function () {
  function update(form) {
    var note = form.querySelector("#models-none");
    if (!note) return;
    var ticked = Array.from(form.querySelectorAll("input[type=checkbox][name=model]:checked"))
      .filter(function (box) { return !box.matches(":disabled"); });
    note.hidden = ticked.length > 0;
    if (window.fmhub && window.fmhub.wizard) window.fmhub.wizard.refresh();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("evaluate-wizard");
    if (!form) return;
    update(form);
    form.addEventListener("change", function (e) {
      if (e.target.matches("input[name=model], input[name=task]")) update(form);
    });
  });
})();
