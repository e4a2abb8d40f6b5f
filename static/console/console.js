// WedBackup console: draw plotly figures embedded as JSON, poll job progress, confirm dangerous forms.
(function () {
  "use strict";

  function drawCharts() {
    if (!window.Plotly) return;
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var fig = JSON.parse(document.getElementById(el.dataset.chart).textContent);
      window.Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false });
    });
  }

  function setField(el, name, value) {
    var field = el.querySelector('[data-field="' + name + '"]');
    if (field) field.textContent = value;
  }

  function poll(el) {
    fetch(el.dataset.jobUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (job) {
        el.querySelector(".bar").style.width = job.percent + "%";
        el.setAttribute("aria-valuenow", job.percent);
        el.dataset.status = job.status;
        setField(el, "status", job.status);
        setField(el, "percent", job.percent);
        setField(el, "files", job.files.done + "/" + job.files.planned);
        if (job.active) window.setTimeout(function () { poll(el); }, 2000);
      })
      .catch(function () { /* signed out or gone: stop polling */ });
  }

  document.addEventListener("submit", function (event) {
    var message = event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    document.querySelectorAll(".progress[data-poll]").forEach(function (el) {
      window.setTimeout(function () { poll(el); }, 1500);
    });
  });
})();
