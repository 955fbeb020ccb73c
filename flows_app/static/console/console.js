/* Celestra console: live refresh of the execution page, logs following, the expression
 * evaluator, confirmations of destructive actions, and the flow editor. No framework. */
(function () {
  "use strict";

  // below 1,280 px the admin's navigation sidebar starts closed (until the user opens it), so that
  // tables get the width; read by the admin's nav_sidebar.js, which runs after this file
  try {
    if (window.innerWidth < 1280 && window.localStorage.getItem("django.admin.navSidebarIsOpen") === null) {
      window.localStorage.setItem("django.admin.navSidebarIsOpen", "false");
    }
  } catch (e) { /* storage disabled: the sidebar stays as the admin sets it */ }

  function csrf() {
    var m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
    // bulk actions of the changelist that cannot be undone
    var changelist = document.getElementById("changelist-form");
    if (changelist) {
      changelist.addEventListener("submit", function (event) {
        var select = changelist.querySelector("select[name=action]");
        var action = select ? select.value : "";
        if (/kill|delete|restart|force/.test(action) &&
            !window.confirm("Apply '" + select.options[select.selectedIndex].text + "' to the selected rows?")) {
          event.preventDefault();
        }
      });
    }
  }

  /* --- the execution page ------------------------------------------------------------------------ */

  function executionPage(root) {
    var fragmentUrl = root.getAttribute("data-fragment");
    var logsUrl = root.getAttribute("data-logs");
    var evalUrl = root.getAttribute("data-eval");
    var live = document.getElementById("exec-live");
    var terminated = live && live.getAttribute("data-terminated") === "1";
    var startedState = live ? live.getAttribute("data-state") : "";
    // a page loaded on a terminated execution does not change any more (tests wait for this)
    if (terminated) document.body.setAttribute("data-settled", "1");

    function refresh() {
      if (terminated) return;
      fetch(fragmentUrl, {credentials: "same-origin"}).then(function (r) {
        return r.text().then(function (html) { return {r: r, html: html}; });
      }).then(function (res) {
        if (!res.r.ok) return;
        var holder = document.createElement("div");
        holder.innerHTML = res.html;
        var fresh = holder.querySelector("#exec-live");
        var current = document.getElementById("exec-live");
        if (fresh && current) current.replaceWith(fresh);
        terminated = fresh && fresh.getAttribute("data-terminated") === "1";
        var state = fresh ? fresh.getAttribute("data-state") : startedState;
        if (state !== startedState && (terminated || state === "PAUSED" || state === "QUEUED" || startedState === "PAUSED")) {
          // the actions that apply (resume form, restart...) change with the state: load the page again
          terminated = true;
          fetchLogs(function () { window.location.reload(); });
        }
      }).catch(function () {}).finally(function () {
        if (!terminated) window.setTimeout(refresh, 1000);
      });
    }
    if (!terminated) window.setTimeout(refresh, 1000);

    // logs: appended from the last id seen; filters restart from the beginning
    var logs = document.getElementById("logs");
    var count = document.getElementById("log-count");
    var taskSel = document.getElementById("log-task");
    var levelSel = document.getElementById("log-level");
    var follow = document.getElementById("log-follow");
    var after = 0, shown = 0, generation = 0, timer = null;

    function line(entry) {
      var div = document.createElement("div");
      div.className = "logline";
      div.setAttribute("data-level", entry.level);
      div.setAttribute("data-task", entry.taskId || "");
      var ts = document.createElement("span"); ts.className = "muted"; ts.textContent = entry.timestamp + " ";
      var lvl = document.createElement("span"); lvl.className = "lvl lvl-" + entry.level; lvl.textContent = entry.level;
      var task = document.createElement("span"); task.className = "muted"; task.textContent = entry.taskId ? "[" + entry.taskId + "] " : "";
      var msg = document.createElement("span"); msg.className = "msg"; msg.textContent = entry.message;
      div.append(ts, lvl, task, msg);
      return div;
    }

    function fetchLogs(done) {
      var mine = generation;
      var params = new URLSearchParams({after: String(after), level: levelSel.value, task: taskSel.value});
      fetch(logsUrl + "?" + params.toString(), {credentials: "same-origin"}).then(function (r) { return r.json(); })
        .then(function (data) {
          if (mine !== generation) return;
          var atBottom = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 20;
          (data.logs || []).forEach(function (entry) { logs.appendChild(line(entry)); after = entry.id; shown++; });
          count.textContent = shown + " line" + (shown === 1 ? "" : "s");
          if (follow.checked && atBottom) logs.scrollTop = logs.scrollHeight;
          var again = data.more || !data.terminated;
          if (done) { done(); return; }
          if (again && follow.checked) timer = window.setTimeout(fetchLogs, data.more ? 10 : 1000);
        }).catch(function () { timer = window.setTimeout(fetchLogs, 2000); });
    }

    function restartLogs() {
      generation++; after = 0; shown = 0; logs.textContent = "";
      if (timer) window.clearTimeout(timer);
      fetchLogs();
    }
    if (logs) {
      taskSel.addEventListener("change", restartLogs);
      levelSel.addEventListener("change", restartLogs);
      follow.addEventListener("change", function () { if (follow.checked) { if (timer) window.clearTimeout(timer); fetchLogs(); } });
      fetchLogs();
    }

    var evalForm = document.getElementById("eval-form");
    if (evalForm) {
      evalForm.addEventListener("submit", function (event) {
        event.preventDefault();
        var body = new URLSearchParams({expression: document.getElementById("eval-expression").value,
                                        taskrun: document.getElementById("eval-taskrun").value});
        fetch(evalUrl, {method: "POST", credentials: "same-origin", body: body,
                        headers: {"X-CSRFToken": csrf()}}).then(function (r) { return r.json(); })
          .then(function (data) {
            var out = document.getElementById("eval-result");
            out.className = data.error ? "error" : "";
            out.textContent = data.error ? data.error : data.result;
          });
      });
    }
  }

  /* --- the flow editor --------------------------------------------------------------------------- */

  function flowEditor(textarea) {
    var url = textarea.getAttribute("data-validate");
    var list = document.getElementById("editor-errors");
    var editor = window.CodeMirror ? window.CodeMirror.fromTextArea(textarea, {
      mode: "yaml", lineNumbers: true, indentUnit: 2, tabSize: 2, lineWrapping: false,
      extraKeys: {Tab: function (cm) { cm.replaceSelection("  "); }}
    }) : null;
    var marked = [];
    var pending = null, seq = 0;

    function show(errors) {
      marked.forEach(function (n) { editor && editor.removeLineClass(n, "background", "cm-error-line"); });
      marked = [];
      list.textContent = "";
      errors.forEach(function (e) {
        var li = document.createElement("li");
        li.setAttribute("data-line", e.line || "");
        li.textContent = (e.line ? "line " + e.line + ": " : "") + (e.path ? e.path + ": " : "") + e.message;
        list.appendChild(li);
        if (editor && e.line) {
          var n = e.line - 1;
          editor.addLineClass(n, "background", "cm-error-line");
          marked.push(n);
        }
      });
      var status = document.getElementById("editor-status");
      if (status) status.textContent = errors.length ? errors.length + " error(s)" : "valid";
    }

    function validate() {
      var mine = ++seq;
      var source = editor ? editor.getValue() : textarea.value;
      fetch(url, {method: "POST", credentials: "same-origin", body: source,
                  headers: {"X-CSRFToken": csrf(), "Content-Type": "application/x-yaml"}})
        .then(function (r) { return r.json(); })
        .then(function (data) { if (mine === seq) show(data.errors || []); });
    }

    function changed() {
      if (pending) window.clearTimeout(pending);
      pending = window.setTimeout(validate, 400);
    }
    if (editor) {
      editor.on("change", function () { editor.save(); changed(); });
      window.celestraEditor = editor;
    } else {
      textarea.addEventListener("input", changed);
    }
    validate();
  }

  document.addEventListener("DOMContentLoaded", function () {
    confirmForms();
    var page = document.getElementById("execution-page");
    if (page) executionPage(page);
    var source = document.querySelector("textarea[data-validate]");
    if (source) flowEditor(source);
    document.querySelectorAll("textarea[data-code]").forEach(function (area) {
      if (!window.CodeMirror) return;
      var cm = window.CodeMirror.fromTextArea(area, {lineNumbers: true, mode: area.getAttribute("data-code") || null});
      cm.on("change", function () { cm.save(); });
    });
  });
})();
