// The data page's upload form: PUT /api/v1/data/{name}/upload?filename=...&task=... with the file
// as the request body (no multipart). On success the asset page opens; on failure the API's error
// ({"error": {"code", "message", "hint", "details"}}) is shown in the form, next to its field.
"use strict";
(function () {
  var NAME_OK = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

  // "My reviews (2024).csv" -> file name "My-reviews-2024-.csv" (what the API accepts), asset name "My-reviews-2024".
  function safeFileName(name) {
    var cleaned = name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "");
    return (cleaned || "data").slice(-200);
  }
  function assetName(fileName) {
    var stem = fileName.replace(/\.[^.]*$/, "");
    var cleaned = stem.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "").replace(/[-.]+$/, "");
    return (cleaned || "data").slice(0, 200);
  }

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }

  function clear(form, box) {
    box.innerHTML = "";
    form.querySelectorAll("[aria-invalid=true]").forEach(function (input) {
      input.removeAttribute("aria-invalid");
      var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (id) { return id && id !== "upload-error"; });
      if (ids.length) input.setAttribute("aria-describedby", ids.join(" ")); else input.removeAttribute("aria-describedby");
    });
  }

  // The problems of an error body: a list of {field?, line?, column?, value?, message}, or a
  // validation report ({errors: [...]}).
  function problems(details) {
    if (Array.isArray(details)) return details;
    if (details && Array.isArray(details.errors)) return details.errors;
    return [];
  }

  function problemText(p) {
    if (typeof p !== "object" || p === null) return String(p);
    var where = [];
    if (p.field) where.push(p.field);
    if (p.line) where.push("line " + p.line);
    if (p.column) where.push("column " + p.column);
    var text = (where.length ? where.join(", ") + ": " : "") + (p.message || "");
    if (p.value !== undefined && p.value !== null && p.value !== "") text += " (value " + p.value + ")";
    return text;
  }

  function showError(form, box, error, fieldName) {
    clear(form, box);
    var alert = el("div", "alert error");
    alert.setAttribute("role", "alert");
    alert.setAttribute("data-code", error.code || "error");
    var list = problems(error.details);
    // "2 problem(s) in x.csv:\nx.csv:2: ..." lists the problems the details list again: keep its
    // first line, and show each problem and hint once.
    var message = error.message || "the upload failed";
    if (list.length && message.indexOf("\n") >= 0) message = message.split("\n")[0].replace(/:\s*$/, "");
    list = list.filter(function (p) { return !(p && p.message === message && !p.line); });
    alert.appendChild(el("strong", null, message));
    if (error.hint) alert.appendChild(el("p", "hint", error.hint));
    if (list.length) {
      var ul = el("ul", "details");
      list.slice(0, 50).forEach(function (p) {
        var li = el("li", null, problemText(p));
        if (p && p.hint && p.hint !== error.hint) li.appendChild(el("span", "muted", " - " + p.hint));
        ul.appendChild(li);
      });
      alert.appendChild(ul);
    }
    box.appendChild(alert);
    var input = form.querySelector('[name="' + fieldName + '"]');
    if (input) {
      input.setAttribute("aria-invalid", "true");
      var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (ids.indexOf("upload-error") < 0) ids.push("upload-error");
      input.setAttribute("aria-describedby", ids.join(" "));
      input.focus();
    }
  }

  // Which input an API error concerns: the asset name, or else the file.
  function fieldOf(error) {
    var fields = problems(error.details).map(function (p) { return (p && p.field) || ""; }).join(" ");
    if (/\bname\b/.test(fields) || /asset name/.test(error.message || "")) return "name";
    if (/\btask\b/.test(fields) || /unknown task/.test(error.message || "")) return "task";
    return "file";
  }

  function init(form) {
    var fileInput = form.querySelector("#upload-file");
    var nameInput = form.querySelector("#upload-name");
    var taskInput = form.querySelector("#upload-task");
    var submit = form.querySelector("#upload-submit");
    var status = form.querySelector("#upload-status");
    var box = form.querySelector("#upload-error");
    var autoName = "";

    fileInput.addEventListener("change", function () {
      var file = fileInput.files[0];
      if (!file) return;
      if (!nameInput.value || nameInput.value === autoName) {
        autoName = assetName(file.name);
        nameInput.value = autoName;
      }
      clear(form, box);
    });

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var file = fileInput.files[0];
      if (!file) {
        showError(form, box, { code: "invalid_request", message: "choose a data file to upload" }, "file");
        return;
      }
      var name = nameInput.value.trim();
      if (!NAME_OK.test(name)) {
        showError(form, box, { code: "invalid_spec", message: "invalid data asset name '" + name + "'",
                               hint: "use letters, digits, '.', '_' and '-', starting with a letter or digit" }, "name");
        return;
      }
      var query = "filename=" + encodeURIComponent(safeFileName(file.name));
      if (taskInput.value) query += "&task=" + encodeURIComponent(taskInput.value);
      clear(form, box);
      submit.disabled = true;
      status.textContent = "Uploading " + file.name + " (" + Math.max(1, Math.round(file.size / 1024)) + " KiB)...";
      fetch("/api/v1/data/" + encodeURIComponent(name) + "/upload?" + query, {
        method: "PUT", body: file, credentials: "same-origin",
        headers: { "Content-Type": "application/octet-stream", "Accept": "application/json",
                   "X-CSRF-Token": window.fmhubCsrfToken() },
      }).then(function (response) {
        return response.text().then(function (text) {
          var body = null;
          try { body = JSON.parse(text); } catch (err) { body = null; }
          if (response.ok && body) {
            status.textContent = (body.created === false ? "Already registered as " : "Registered ") + body.name + ":" + body.version;
            window.location.assign("/ui/data/" + encodeURIComponent(body.name) + ":" + body.version);
            return;
          }
          var error = (body && body.error) || { code: "http_" + response.status,
                                                message: "the server answered " + response.status + " " + response.statusText };
          status.textContent = "";
          showError(form, box, error, fieldOf(error));
          submit.disabled = false;
        });
      }).catch(function (err) {
        status.textContent = "";
        showError(form, box, { code: "unreachable", message: "the upload did not reach the server: " + err.message }, "file");
        submit.disabled = false;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-upload]").forEach(init);
  });
})();
