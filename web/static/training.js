// The training page: refresh the progress of queued and running learning-loop jobs, and the
// loss curve of the newest run, every few seconds while any is active; reload the page when
// one finishes.
"use strict";

(function () {
  const table = document.getElementById("training-runs");
  if (!table) {
    return;
  }
  const ACTIVE = new Set(["queued", "running"]);
  const curve = document.getElementById("loss-curve");

  function active() {
    return Array.from(table.querySelectorAll("tr[data-job-id]")).some(function (row) {
      return ACTIVE.has(row.dataset.state);
    });
  }

  async function refresh() {
    try {
      const response = await fetch("/api/training/runs", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) {
        return;
      }
      const data = await response.json();
      for (const job of data.runs || []) {
        const row = table.querySelector('tr[data-job-id="' + Number(job.id) + '"]');
        if (!row) {
          continue;
        }
        const finished = ACTIVE.has(row.dataset.state) && !ACTIVE.has(job.state);
        row.dataset.state = job.state;
        row.querySelector(".job-state").textContent = job.state;
        row.querySelector("progress").value = job.progress;
        row.querySelector(".job-percent").textContent = Math.round(job.progress * 100) + "%";
        row.querySelector(".job-message").textContent = job.message || "";
        if (finished) {
          // A finished dataset job adds a dataset to train on; a finished run changes the
          // comparison and the version list: show them.
          window.location.reload();
          return;
        }
      }
      if (curve) {
        curve.src = curve.src.split("?")[0] + "?t=" + Date.now();
      }
    } finally {
      if (active()) {
        window.setTimeout(refresh, 5000);
      }
    }
  }

  if (active()) {
    window.setTimeout(refresh, 5000);
  }
})();
