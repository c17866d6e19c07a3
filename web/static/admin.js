// The control room: keep the jobs table live while a job is queued or running.
"use strict";

// Forms that cannot be undone (deleting an account) ask first.
document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
});

(function () {
  const table = document.getElementById("jobs");
  if (!table) {
    return;
  }
  const body = table.tBodies[0];
  const ACTIVE = new Set(["queued", "running"]);
  const FAST_MS = 1000;
  const SLOW_MS = 10000;
  const kind = table.dataset.kind || "";

  function cell(className) {
    const td = document.createElement("td");
    if (className) {
      td.className = className;
    }
    return td;
  }

  function newRow(job) {
    const row = document.createElement("tr");
    row.dataset.jobId = String(Number(job.id));
    const id = cell();
    id.textContent = String(Number(job.id));
    const jobKind = cell();
    jobKind.textContent = String(job.kind || "");
    const state = cell("job-state");
    const badge = document.createElement("span");
    state.append(badge);
    const progressCell = cell("job-progress");
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.setAttribute("aria-label", "Progress of job " + Number(job.id));
    const percent = document.createElement("span");
    percent.className = "job-percent";
    progressCell.append(bar, " ", percent);
    const message = cell("job-message");
    const created = cell();
    created.textContent = String(job.created_at || "").slice(0, 16).replace("T", " ");
    row.append(id, jobKind, state, progressCell, message, created);
    const empty = body.querySelector(".empty-row");
    if (empty) {
      empty.remove();
    }
    body.prepend(row);
    return row;
  }

  function update(row, job) {
    row.dataset.state = String(job.state);
    const badge = row.querySelector(".job-state span") || row.querySelector(".job-state");
    badge.textContent = String(job.state);
    badge.className = "state state-" + String(job.state).replace(/[^a-z]/g, "");
    const progress = Math.max(0, Math.min(1, Number(job.progress) || 0));
    row.querySelector("progress").value = progress;
    row.querySelector(".job-percent").textContent = Math.round(progress * 100) + "%";
    row.querySelector(".job-message").textContent = String(job.message || "");
  }

  function anyActive() {
    return Array.from(body.querySelectorAll("tr[data-job-id]")).some(function (row) {
      return ACTIVE.has(row.dataset.state);
    });
  }

  async function refresh() {
    try {
      const response = await fetch("/api/jobs" + (kind ? "?kind=" + encodeURIComponent(kind) : ""), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.ok) {
        const data = await response.json();
        const jobs = (data.jobs || []).slice().reverse(); // oldest first, so prepends keep order
        for (const job of jobs) {
          const row = body.querySelector('tr[data-job-id="' + Number(job.id) + '"]') || newRow(job);
          update(row, job);
        }
      }
    } catch (e) {
      // The next round tries again; the page keeps what it shows.
    } finally {
      window.setTimeout(refresh, anyActive() ? FAST_MS : SLOW_MS);
    }
  }

  window.setTimeout(refresh, anyActive() ? FAST_MS : SLOW_MS);
})();
