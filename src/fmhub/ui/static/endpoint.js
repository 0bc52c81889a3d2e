// fmhub UI, endpoint pages: traffic sliders that must sum to 100, keys shown on demand and copied,
// the test console that scores a request with the endpoint's key and times it, and for chat
// endpoints the chat playground (replies streamed as server-sent events, stoppable).
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

  // -- chat playground ---------------------------------------------------------------------------
  function initPlayground() {
    var box = document.getElementById("playground");
    if (!box) return;
    var log = document.getElementById("chat-log");
    var input = document.getElementById("chat-input");
    var system = document.getElementById("chat-system");
    var send = document.getElementById("chat-send");
    var stop = document.getElementById("chat-stop");
    var status = document.getElementById("chat-status");
    var ttft = document.getElementById("chat-ttft");
    var usage = document.getElementById("chat-usage");
    var finish = document.getElementById("chat-finish");
    var route = document.getElementById("chat-deployment");
    var history = [];
    var controller = null;

    function bubble(role, text) {
      var li = document.createElement("li");
      li.className = role;
      var label = document.createElement("span");
      label.className = "role"; label.textContent = role;
      var body = document.createElement("span");
      body.className = "content"; body.textContent = text;
      li.appendChild(label); li.appendChild(body);
      log.appendChild(li);
      log.scrollTop = log.scrollHeight;
      return body;
    }
    function done() { send.disabled = false; stop.disabled = true; controller = null; }

    document.getElementById("chat-clear").addEventListener("click", function () {
      if (controller) controller.abort();
      history = []; log.innerHTML = "";
      status.textContent = ttft.textContent = usage.textContent = finish.textContent = "-";
    });
    stop.addEventListener("click", function () { if (controller) controller.abort(); });
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !send.disabled) { e.preventDefault(); send.click(); }
    });
    send.addEventListener("click", function () {
      var text = input.value.trim();
      if (!text) return;
      history.push({ role: "user", content: text });
      bubble("user", text);
      input.value = "";
      var reply = bubble("assistant", "");
      var messages = (system.value.trim() ? [{ role: "system", content: system.value.trim() }] : []).concat(history);
      var body = { messages: messages, stream: true, stream_options: { include_usage: true },
                   max_tokens: parseInt(document.getElementById("chat-max-tokens").value, 10) || 256,
                   temperature: parseFloat(document.getElementById("chat-temperature").value) };
      var headers = { "Content-Type": "application/json", "Authorization": "Bearer " + box.getAttribute("data-key") };
      if (route && route.value) headers["x-fmhub-deployment"] = route.value;
      controller = new AbortController();
      send.disabled = true; stop.disabled = false;
      status.textContent = "sending…"; ttft.textContent = usage.textContent = finish.textContent = "-";
      var started = performance.now();
      var answer = "";
      fetch(box.getAttribute("data-chat-url"), { method: "POST", headers: headers, body: JSON.stringify(body),
                                                  credentials: "omit", signal: controller.signal })
        .then(function (r) {
          status.textContent = r.status + (r.statusText ? " " + r.statusText : "");
          if (!r.ok) {
            return r.text().then(function (t) {
              var message = t;
              try { message = JSON.parse(t).error.message; } catch (e) { /* not JSON */ }
              reply.textContent = message; reply.parentNode.className = "assistant field-error";
              finish.textContent = "error";
              history.pop();
            });
          }
          var reader = r.body.getReader();
          var decoder = new TextDecoder();
          var buffer = "";
          function pump() {
            return reader.read().then(function (part) {
              if (part.done) return;
              buffer += decoder.decode(part.value, { stream: true });
              var events = buffer.split("\n\n");
              buffer = events.pop();
              events.forEach(function (event) {
                var data = event.replace(/^data: /, "");
                if (data === "[DONE]") return;
                var chunk;
                try { chunk = JSON.parse(data); } catch (e) { return; }
                if (chunk.error) { reply.textContent += "\n[" + chunk.error.message + "]"; return; }
                var choice = chunk.choices && chunk.choices[0];
                if (choice && choice.delta && choice.delta.content) {
                  if (!answer) ttft.textContent = (performance.now() - started).toFixed(0) + " ms";
                  answer += choice.delta.content;
                  reply.textContent = answer;
                  log.scrollTop = log.scrollHeight;
                }
                if (choice && choice.finish_reason) finish.textContent = choice.finish_reason;
                if (chunk.usage) usage.textContent = chunk.usage.prompt_tokens + " in, " + chunk.usage.completion_tokens + " out";
              });
              return pump();
            });
          }
          return pump().then(function () { history.push({ role: "assistant", content: answer }); });
        })
        .catch(function (err) {
          if (err && err.name === "AbortError") {
            finish.textContent = "stopped";
            if (answer) history.push({ role: "assistant", content: answer }); else history.pop();
            return;
          }
          status.textContent = "network error"; finish.textContent = "error";
          reply.textContent = String(err && err.message || err);
          history.pop();
        })
        .finally(done);
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
    initPlayground();
  });
})();
