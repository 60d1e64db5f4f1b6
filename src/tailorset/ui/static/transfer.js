// Import: a ZIP through the bulk upload, with its upload and import progress and its report.
// Export: a trainer's layout, downloaded through a signed link (GET …/download?format=), never held in the page.

import { api, session } from "./api.js";
import { fill, h, messageBox, modal } from "./dom.js";

const POLL_MS = 1000;
const FORMATS = [
  ["kohya", "kohya_ss / sd-scripts: 1_<prefix>/ with a .txt beside each image"],
  ["ai-toolkit", "ai-toolkit: the images and their .txt, no repeat folder"],
  ["hf", "Hugging Face datasets: train/ and metadata.jsonl"],
  ["fibo", "Bria's FIBO fine-tuning: the images and metadata.csv"],
  ["jsonl", "Everything: images/ and dataset.jsonl, one record per image"],
];

/** The Import and Export buttons of a dataset's toolbar; `render(dataset)` keeps them in step with it. */
export function transferButtons({ datasetId, getDataset, afterImport }) {
  const importButton = h("button", { type: "button" }, "Import ZIP…");
  const exportButton = h("button", { type: "button" }, "Export…");
  importButton.addEventListener("click", () => openImport(datasetId, afterImport));
  exportButton.addEventListener("click", () => openExport(datasetId, getDataset()));
  return {
    buttons: [importButton, exportButton],
    render(dataset) {
      importButton.disabled = dataset.status === "completed";
    },
  };
}

// --- import ----------------------------------------------------------------------------------

function openImport(datasetId, afterImport) {
  const box = messageBox();
  const file = h("input", { id: "import-file", type: "file", accept: ".zip,application/zip", required: true });
  const automatic = h("input", { id: "import-automatic", type: "checkbox", checked: true });
  const start = h("button", { type: "submit", class: "primary" }, "Import");
  const close = h("button", { type: "button" }, "Close");
  const bar = h("progress", { id: "import-progress", max: "1", value: "0" });
  const barLabel = h("label", { for: "import-progress" }, "Uploading");
  const status = h("span", { class: "meta" });
  const progress = h("div", { class: "progress", role: "status", hidden: true }, barLabel, bar, status);
  const report = h("div", { class: "import-report", "aria-live": "polite" });
  const form = h(
    "form",
    {},
    h(
      "p",
      {},
      "A ZIP of JPEG, PNG or WebP images. Captions come along beside them (photo.txt, photo.caption) or in a ",
      "metadata.jsonl (file_name, text) or metadata.csv (file_name, caption); files already here are skipped.",
    ),
    h("div", { class: "field" }, h("label", { for: "import-file" }, "ZIP file"), file),
    h("div", { class: "checks" }, h("label", {}, automatic, " Caption automatically the images that bring no caption")),
    box.el,
    progress,
    report,
    h("div", { class: "actions" }, start, close),
  );
  const dialog = modal("Import a ZIP", "import", form);
  close.addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file.files.length) return;
    start.disabled = true;
    box.clear();
    fill(report);
    progress.hidden = false;
    try {
      await upload(datasetId, file.files[0], automatic.checked, (sent, total) => {
        bar.max = Math.max(1, total);
        bar.value = sent;
        status.textContent = `${(sent / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB sent`;
      });
      fill(barLabel, "Importing");
      const final = await watch(datasetId, (now) => {
        bar.max = Math.max(1, now.total);
        bar.value = now.total_processed;
        status.textContent = `${now.total_processed} of ${now.total || "?"} files`;
      });
      progress.hidden = true;
      renderReport(report, final);
      await afterImport();
    } catch (error) {
      progress.hidden = true;
      box.show("error", `Not imported: ${error.message}`);
    } finally {
      start.disabled = false;
    }
  });
  file.focus();
}

/** POST the ZIP as the bulk upload's multipart file; XMLHttpRequest, which reports upload progress. */
function upload(datasetId, zip, automatic, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/tailored-gen/datasets/${datasetId}/images/bulk-upload`);
    xhr.setRequestHeader("api_token", session.token ?? "");
    xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded, e.total));
    xhr.addEventListener("load", () => {
      if (xhr.status === 202) return resolve();
      let message = `The server answered ${xhr.status} without saying why.`;
      try {
        message = JSON.parse(xhr.responseText).error ?? message;
      } catch {}
      reject(new Error(message));
    });
    xhr.addEventListener("error", () => reject(new Error("The server could not be reached.")));
    const body = new FormData();
    body.append("file", zip, zip.name);
    body.append("automatic_captioning", String(automatic));
    xhr.send(body);
  });
}

async function watch(datasetId, onStatus) {
  for (;;) {
    const now = await api.get(`/datasets/${datasetId}/images/bulk-upload/status`);
    onStatus(now);
    if (now.status === "completed" || now.status === "failed") return now;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function renderReport(into, status) {
  const list = (title, items, text) =>
    items.length
      ? [h("h3", {}, `${title} (${items.length})`), h("ul", {}, items.map((item) => h("li", {}, h("strong", {}, item.filename), ": ", text(item))))]
      : [];
  const summary =
    status.status === "failed"
      ? `The import failed: ${status.error}`
      : `Imported ${status.done} ${status.done === 1 ? "image" : "images"}; ${status.failed} refused, ${status.skipped} already here.`;
  fill(
    into,
    h("p", { class: status.status === "failed" || status.failed ? "problem error" : "" }, summary),
    list("Refused", status.failed_images, (f) => f.error_message),
    list("Skipped", status.skipped_images, (s) => s.reason),
    list("No caption found", status.uncaptioned_images ?? [], (s) => s.reason),
  );
}

// --- export ----------------------------------------------------------------------------------

function openExport(datasetId, dataset) {
  const box = messageBox();
  const fibo = dataset.training_version === "fibo";
  const format = h(
    "select",
    { id: "export-format" },
    FORMATS.filter(([value]) => fibo || value !== "fibo").map(([value, label]) =>
      h("option", { value, selected: value === (fibo ? "fibo" : "kohya") }, label),
    ),
  );
  const download = h("button", { type: "submit", class: "primary" }, "Download");
  const close = h("button", { type: "button" }, "Close");
  const link = h("p", { class: "meta" });
  const form = h(
    "form",
    {},
    h("p", {}, "The dataset as a ZIP in the layout your trainer reads, with its captions; it streams from the server."),
    h("div", { class: "field" }, h("label", { for: "export-format" }, "Format"), format),
    box.el,
    link,
    h("div", { class: "actions" }, download, close),
  );
  const dialog = modal("Export the dataset", "export", form);
  close.addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    download.disabled = true;
    try {
      const urls = await api.get(`/datasets/${datasetId}/download`, { format: format.value });
      const anchor = h("a", { href: urls.download_url, download: "" }, "this link");
      fill(link, "Downloading. If it does not start, use ", anchor, " (valid for an hour).");
      anchor.click();
    } catch (error) {
      box.show("error", `No download: ${error.message}`);
    } finally {
      download.disabled = false;
    }
  });
  format.focus();
}
