// Regenerate All: asked for with a confirmation (manual captions kept unless ticked), then the job's
// progress polled until it has ended, and the grid reloaded.

import { api } from "./api.js";
import { confirmDialog, h, notify } from "./dom.js";

const POLL_MS = 1500;
const RUNNING = new Set(["queued", "running"]);

/** The "Regenerate all…" button and the progress bar of a dataset's Regenerate All job. The dataset view owns
 * the dataset (`getDataset`, `setDataset`) and redraws after a change (`renderInfo`, `afterBulkChange`,
 * `refreshDataset`); `watch()` follows a job already running, `stop()` ends the polling. */
export function regenerateAllControls({ datasetId, getDataset, setDataset, renderInfo, afterBulkChange, refreshDataset }) {
  let pollTimer = null;
  let alive = true;
  const button = h("button", { type: "button" }, "Regenerate all…");
  const progressBar = h("progress", { id: "regen-progress", max: "1", value: "0" });
  const progressText = h("span", {});
  const progress = h(
    "div",
    { class: "progress", hidden: true, role: "status" },
    h("label", { for: "regen-progress" }, "Regenerating captions"),
    progressBar,
    progressText,
  );
  button.addEventListener("click", start);

  async function start() {
    const includeManual = h("input", { id: "include-manual", type: "checkbox" });
    const ok = await confirmDialog({
      title: "Regenerate all captions?",
      body: "The captioner writes the captions anew in the background. Manual captions are kept unless you tick the box; a caption someone edits meanwhile is never overwritten.",
      confirm: "Regenerate all",
      extra: h("p", {}, h("label", {}, includeManual, " Also replace manual captions")),
    });
    if (!ok) return;
    try {
      setDataset(await api.put(`/datasets/${datasetId}/images`, { include_manual: includeManual.checked }));
      renderInfo();
      watch();
    } catch (error) {
      notify("error", `Regeneration not started: ${error.message}`);
      if (error.status === 409) refreshDataset();
    }
  }

  function watch() {
    clearTimeout(pollTimer);
    const job = getDataset().captions_update;
    if (!job || !RUNNING.has(job.status)) {
      progress.hidden = true;
      return;
    }
    progress.hidden = false;
    button.disabled = true;
    progressBar.max = Math.max(1, job.total);
    progressBar.value = job.done;
    progressText.textContent = `${job.done} of ${job.total} done${job.failed ? `, ${job.failed} failed` : ""}`;
    pollTimer = setTimeout(async () => {
      if (!alive) return;
      try {
        setDataset(await api.get(`/datasets/${datasetId}`, { max_images: 1 }));
      } catch (error) {
        notify("error", `Progress not updated: ${error.message}`);
      }
      if (!alive) return;
      const now = getDataset().captions_update;
      if (now && !RUNNING.has(now.status)) {
        progress.hidden = true;
        renderInfo();
        const kind = now.status === "completed" && !now.failed ? "success" : "error";
        notify(kind, `Regenerate All ${now.status}: ${now.done} of ${now.total} captions${now.failed ? `, ${now.failed} failed` : ""}.`);
        await afterBulkChange();
      } else {
        watch();
      }
    }, POLL_MS);
  }

  return {
    button,
    progress,
    start,
    watch,
    render(dataset) {
      button.disabled = dataset.status === "completed";
    },
    stop() {
      alive = false;
      clearTimeout(pollTimer);
    },
  };
}
