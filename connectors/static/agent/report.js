// The admins' report in the agent console: for whole UTC days, how many
// handoffs the team closed, the median first response and resolution times
// and the ratings, overall and per agent (GET /agent/api/report).
(function () {
  "use strict";

  var t = window.segueTimeline;
  var el = t.el, clear = t.clear;
  var DEFAULT_DAYS = 7;
  var DAY_MS = 86400000;
  var NONE = "—";

  function $(id) { return document.getElementById(id); }

  function day(ms) { return new Date(ms).toISOString().slice(0, 10); }

  function time(seconds) {
    return seconds === null || seconds === undefined ? NONE : t.duration(seconds);
  }

  function csat(figures) {
    if (figures.csat_average === null || figures.csat_average === undefined) return NONE;
    return figures.csat_average + " (" + figures.csat_count + ")";
  }

  var COLUMNS = [
    ["handled", function (f) { return String(f.handled); }],
    ["first_response", function (f) { return time(f.median_first_response_seconds); }],
    ["resolution", function (f) { return time(f.median_resolution_seconds); }],
    ["csat", csat]
  ];
  var LABELS = { handled: "Handled", first_response: "Median first response",
                 resolution: "Median resolution", csat: "CSAT average (ratings)" };

  // `deps.api(method, path, body)` calls the agent API.
  window.segueReport = function (deps) {
    var dialog = $("report");
    var loads = 0;  // only the latest answer is shown

    function load() {
      var query = [];
      ["from", "to"].forEach(function (name) {
        var value = $("report-" + name).value;
        if (value) query.push(name + "=" + encodeURIComponent(value));
      });
      var ticket = ++loads;
      $("report-error").textContent = "";
      $("report-result").setAttribute("aria-busy", "true");
      return deps.api("GET", "report" + (query.length ? "?" + query.join("&") : ""))
        .then(function (report) { if (ticket === loads) render(report); })
        .catch(function (err) {
          if (ticket !== loads) return;
          $("report-error").textContent = err.message;
          $("report-result").hidden = true;
        })
        .finally(function () { $("report-result").removeAttribute("aria-busy"); });
    }

    function render(report) {
      $("report-result").hidden = false;
      $("report-period").textContent = report.from === report.to
        ? report.from + " (UTC)" : report.from + " to " + report.to + " (UTC)";
      var overall = $("report-overall");
      clear(overall);
      COLUMNS.forEach(function (column) {
        overall.appendChild(el("dt", "", LABELS[column[0]]));
        var dd = el("dd", "", column[1](report.overall));
        dd.dataset.figure = column[0];
        overall.appendChild(dd);
      });
      $("report-truncated").hidden = !report.truncated;
      var rows = $("report-agents");
      clear(rows);
      report.agents.forEach(function (figures) {
        var tr = el("tr");
        tr.dataset.agent = figures.agent;
        var who = el("th", "", figures.name || figures.agent);
        who.scope = "row";
        tr.appendChild(who);
        COLUMNS.forEach(function (column) {
          var td = el("td", "", column[1](figures));
          td.dataset.figure = column[0];
          tr.appendChild(td);
        });
        rows.appendChild(tr);
      });
      $("report-none").hidden = report.agents.length > 0;
    }

    $("report-open").addEventListener("click", function () {
      // Whole UTC days, as the server counts them: the last 7 up to today.
      if (!$("report-to").value) $("report-to").value = day(Date.now());
      if (!$("report-from").value) {
        $("report-from").value = day(Date.now() - (DEFAULT_DAYS - 1) * DAY_MS);
      }
      if (!dialog.open) dialog.showModal();
      load();
    });
    $("report-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      load();
    });
    $("report-close").addEventListener("click", function () { dialog.close(); });

    return {
      // On login: the button for admins only.
      start: function (agent) {
        $("report-open").hidden = agent.role !== "admin";
        if (dialog.open) dialog.close();
      }
    };
  };
})();
