// The admin page: refresh the progress of running jobs every few seconds.
"use strict";

(function () {
  const table = document.getElementById("jobs");
  if (!table) {
    return;
  }
  const ACTIVE = new Set(["queued", "running"]);

  function active() {
    return Array.from(table.querySelectorAll("tr[data-job-id]")).some(function (row) {
      return ACTIVE.has(row.dataset.state);
    });
  }

  async function refresh() {
    try {
      const response = await fetch("/api/jobs", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) {
        return;
      }
      const data = await response.json();
      for (const job of data.jobs || []) {
        const row = table.querySelector('tr[data-job-id="' + Number(job.id) + '"]');
        if (!row) {
          continue;
        }
        row.dataset.state = job.state;
        row.querySelector(".job-state").textContent = job.state;
        row.querySelector("progress").value = job.progress;
        row.querySelector(".job-percent").textContent = Math.round(job.progress * 100) + "%";
        row.querySelector(".job-message").textContent = job.message || "";
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
