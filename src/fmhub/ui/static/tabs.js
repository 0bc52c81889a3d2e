// Tabs (WAI-ARIA tabs pattern): a [role=tablist] of [role=tab] buttons, each naming its
// [role=tabpanel] with aria-controls. Click, or Left/Right/Home/End on a focused tab, selects one.
// Without JavaScript every panel stays visible.
"use strict";
(function () {
  function select(tabs, tab, focus) {
    tabs.forEach(function (t) {
      var on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      var panel = document.getElementById(t.getAttribute("aria-controls"));
      if (panel) panel.hidden = !on;
    });
    if (focus) tab.focus();
  }
  function init(list) {
    if (list.dataset.bound) return;
    list.dataset.bound = "1";
    var tabs = Array.from(list.querySelectorAll("[role=tab]"));
    if (!tabs.length) return;
    var current = tabs.filter(function (t) { return t.getAttribute("aria-selected") === "true"; })[0] || tabs[0];
    select(tabs, current, false);
    list.addEventListener("click", function (e) {
      var t = e.target.closest("[role=tab]");
      if (t) select(tabs, t, true);
    });
    list.addEventListener("keydown", function (e) {
      var i = tabs.indexOf(document.activeElement);
      if (i < 0) return;
      var moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
      if (!(e.key in moves)) return;
      e.preventDefault();
      select(tabs, tabs[(moves[e.key] + tabs.length) % tabs.length], true);
    });
  }
  function initAll(root) {
    (root.querySelectorAll ? root.querySelectorAll("[role=tablist]") : []).forEach(init);
  }
  document.addEventListener("DOMContentLoaded", function () { initAll(document); });
  document.addEventListener("htmx:afterSettle", function (evt) { initAll(evt.target); });
})();
