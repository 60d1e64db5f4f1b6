// Bulk find/replace in a dataset's captions: a dry-run preview of exactly what would change, then apply,
// and Undo of the last applied batch (its id kept in sessionStorage, per dataset).

import { api, request } from "./api.js";
import { fill, h, messageBox, notify } from "./dom.js";

/** The "Find and replace…" and "Undo replace" buttons of a dataset's toolbar; `render(dataset)` keeps them
 * in step with it. The dataset view says what is searched (`isFiltered`, `filterQuery`), names images
 * (`imageById`) and reloads after a change (`renderInfo`, `afterBulkChange`, `refreshDataset`). */
export function replaceButtons({ datasetId, isFiltered, filterQuery, imageById, renderInfo, afterBulkChange, refreshDataset }) {
  const batchKey = `tailorset.batch.${datasetId}`;
  const replaceButton = h("button", { type: "button" }, "Find and replace…");
  const undoButton = h("button", { type: "button", hidden: true }, "Undo replace");
  replaceButton.addEventListener("click", openReplace);
  undoButton.addEventListener("click", undo);

  function storedBatch() {
    try {
      return JSON.parse(sessionStorage.getItem(batchKey));
    } catch {
      return null;
    }
  }

  function openReplace() {
    const box = messageBox();
    const find = h("input", { id: "replace-find", required: true, maxlength: "1000", autocomplete: "off" });
    const replacement = h("input", { id: "replace-with", maxlength: "5000", autocomplete: "off" });
    const regex = h("input", { id: "replace-regex", type: "checkbox" });
    const matchCase = h("input", { id: "replace-case", type: "checkbox", checked: true });
    const only = h(
      "select",
      { id: "replace-source" },
      h("option", { value: "" }, "every caption"),
      h("option", { value: "automatic" }, "automatic captions only"),
      h("option", { value: "manual" }, "manual captions only"),
    );
    // With a search or filter active, the edit can be limited to the images it matches.
    const filtered = isFiltered();
    const scoped = h("input", { id: "replace-scope", type: "checkbox", checked: filtered });
    const scope = filtered ? h("label", {}, scoped, " Only the images matching the current search and filter") : null;
    const previewButton = h("button", { type: "submit", class: "primary" }, "Preview");
    const apply = h("button", { type: "button", disabled: true }, "Apply");
    const cancel = h("button", { type: "button" }, "Cancel");
    const preview = h("div", { class: "preview", "aria-live": "polite" });
    const form = h(
      "form",
      {},
      h("h2", { id: "replace-title" }, "Find and replace in captions"),
      h(
        "div",
        { class: "replace-fields" },
        h("div", { class: "field" }, h("label", { for: "replace-find" }, "Find"), find),
        h("div", { class: "field" }, h("label", { for: "replace-with" }, "Replace with"), replacement),
        h("div", { class: "field" }, h("label", { for: "replace-source" }, "In"), only),
        h("div", { class: "checks" }, h("label", {}, regex, " Regular expression"), h("label", {}, matchCase, " Match case")),
        scope ? h("div", { class: "checks wide" }, scope) : null,
      ),
      box.el,
      h("div", { class: "actions" }, previewButton, apply, cancel),
      preview,
    );
    const dialog = h("dialog", { class: "replace", "aria-labelledby": "replace-title" }, form);
    const body = async () => ({
      find: find.value,
      replace: replacement.value,
      regex: regex.checked,
      case_sensitive: matchCase.checked,
      caption_source: only.value || undefined,
      image_ids: filtered && scoped.checked ? await matchingIds() : undefined,
    });

    let previewed = null; // apply only exactly what was previewed
    form.addEventListener("input", () => {
      previewed = null;
      apply.disabled = true;
      apply.textContent = "Apply";
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      previewButton.disabled = true;
      box.show("info", "Previewing…");
      try {
        const asked = await body();
        const result = await api.post(`/datasets/${datasetId}/captions/replace`, { ...asked, dry_run: true });
        box.clear();
        renderPreview(preview, result);
        const refused = result.refused;
        previewed = result.matched && !refused ? asked : null;
        apply.disabled = !previewed;
        apply.textContent = previewed ? `Apply to ${result.matched} ${result.matched === 1 ? "caption" : "captions"}` : "Apply";
        if (refused) box.show("error", `${refused} of the new captions would be refused, so nothing can be applied; change the replacement.`);
      } catch (error) {
        fill(preview);
        box.show("error", `No preview: ${error.message}`);
      } finally {
        previewButton.disabled = false;
      }
    });
    apply.addEventListener("click", async () => {
      if (!previewed) return;
      apply.disabled = true;
      box.show("info", "Applying…");
      try {
        const result = await api.post(`/datasets/${datasetId}/captions/replace`, { ...previewed, dry_run: false });
        sessionStorage.setItem(batchKey, JSON.stringify({ batch_id: result.batch_id, changed: result.changed }));
        dialog.close();
        notify("success", `Replaced in ${result.changed} ${result.changed === 1 ? "caption" : "captions"}. “Undo replace” puts them back.`);
        renderInfo();
        await afterBulkChange();
        undoButton.focus();
      } catch (error) {
        box.show("error", `Not applied: ${error.message}`);
        apply.disabled = false;
        if (error.status === 409) refreshDataset();
      }
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    find.focus();
  }

  /** Every image the current search and filter match, not just the pages loaded so far. */
  async function matchingIds() {
    const ids = [];
    let cursor;
    do {
      const query = { limit: 1000, ...filterQuery(), cursor };
      const { data, headers } = await request("GET", `/datasets/${datasetId}/images`, { query });
      ids.push(...data.map((image) => image.id));
      cursor = headers.get("X-Next-Cursor");
    } while (cursor);
    return ids;
  }

  function renderPreview(into, result) {
    if (!result.changes.length) {
      fill(into, h("p", { class: "empty" }, "Nothing matches: no caption would change."));
      return;
    }
    const rows = result.changes.map((change) => {
      const image = imageById(change.image_id);
      const [same, removed, tail] = diff(change.before ?? "", change.after ?? "");
      return h(
        "tr",
        { class: change.error ? "refused" : "" },
        h("th", { scope: "row" }, image ? image.image_name ?? `#${image.id}` : `#${change.image_id}`),
        h("td", {}, same, h("del", {}, removed.before), tail),
        h("td", {}, same, h("ins", {}, removed.after), tail, change.error ? h("p", { class: "problem error" }, change.error) : null),
      );
    });
    fill(
      into,
      h(
        "p",
        {},
        `${result.matched} ${result.matched === 1 ? "caption" : "captions"} would change` +
          (result.matched > result.changes.length ? ` (the first ${result.changes.length} are shown)` : "") +
          ". Nothing is saved until you apply.",
      ),
      h(
        "div",
        { class: "table-scroll" },
        h("table", { class: "preview-table" }, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Image"), h("th", { scope: "col" }, "Before"), h("th", { scope: "col" }, "After"))), h("tbody", {}, rows)),
      ),
    );
  }

  async function undo() {
    const batch = storedBatch();
    if (!batch) return;
    undoButton.disabled = true;
    try {
      const result = await api.post(`/datasets/${datasetId}/captions/batches/${encodeURIComponent(batch.batch_id)}/undo`);
      sessionStorage.removeItem(batchKey);
      const skipped = result.skipped.length
        ? ` ${result.skipped.length} skipped: ${result.skipped.map((s) => `image ${s.image_id}: ${s.reason}`).join(" ")}`
        : "";
      notify("success", `Undone: ${result.changed} ${result.changed === 1 ? "caption" : "captions"} put back.${skipped}`);
      renderInfo();
      await afterBulkChange();
    } catch (error) {
      notify("error", `Not undone: ${error.message}`);
      undoButton.disabled = false;
      if (error.status === 404) {
        sessionStorage.removeItem(batchKey);
        renderInfo();
      }
      if (error.status === 409) refreshDataset();
    }
  }

  return {
    buttons: [replaceButton, undoButton],
    render(dataset) {
      const completed = dataset.status === "completed";
      replaceButton.disabled = completed;
      const batch = storedBatch();
      undoButton.hidden = !batch;
      undoButton.disabled = completed;
      if (batch) undoButton.textContent = `Undo replace (${batch.changed})`;
    },
  };
}

/** Split two strings into the shared head, the changed middles and the shared tail. */
function diff(before, after) {
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let end = 0;
  while (
    end < before.length - start &&
    end < after.length - start &&
    before[before.length - 1 - end] === after[after.length - 1 - end]
  ) end++;
  return [
    before.slice(0, start),
    { before: before.slice(start, before.length - end), after: after.slice(start, after.length - end) },
    before.slice(before.length - end),
  ];
}
