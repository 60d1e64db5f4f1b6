// Review in the dataset view: the review state on each card, the progress bar ("37 of 50 reviewed"), filters by
// state / duplicates / lint findings, the review-queue order, approve (a) and flag (f) keys that move on, and
// the bulk actions (approve all shown, delete selected). dataset.js hooks it in; the API does the work.

import { api, IMAGE_EXTRAS } from "./api.js";
import { confirmDialog, h, notify } from "./dom.js";

const STATES = { unreviewed: "unreviewed", approved: "approved", flagged: "flagged" };

export function reviewBadge(image) {
  const state = image.review_state ?? "unreviewed";
  const title = image.review_note ? `Flagged: ${image.review_note}` : `Review: ${state}`;
  return h("span", { class: `review-label review-${state}`, title }, STATES[state] ?? state);
}

/**
 * hooks: {datasetId, getDataset, selectedId(), reload(), move(delta), updateImage(image), filterQuery(), queue}
 * (queue: start on the unreviewed images in the review queue's order).
 * Returns {controls, bar, query(), decorate(li, image), onKey(key) → bool, counts(), refresh(), selected()}.
 */
export function createReview(hooks) {
  const stateSelect = h(
    "select",
    { id: "review-state" },
    h("option", { value: "" }, "Any review state"),
    Object.keys(STATES).map((s) => h("option", { value: s }, s[0].toUpperCase() + s.slice(1))),
  );
  const only = h(
    "select",
    { id: "review-only" },
    h("option", { value: "" }, "Everything"),
    h("option", { value: "duplicates" }, "Duplicates"),
    h("option", { value: "lint" }, "Lint findings"),
  );
  const order = h(
    "select",
    { id: "review-order" },
    h("option", { value: "upload" }, "Upload order"),
    h("option", { value: "review" }, "Review queue"),
  );
  if (hooks.queue) {
    stateSelect.value = "unreviewed";
    order.value = "review";
  }
  const controls = [
    h("div", { class: "field" }, h("label", { for: "review-state" }, "Review"), stateSelect),
    h("div", { class: "field" }, h("label", { for: "review-only" }, "Show only"), only),
    h("div", { class: "field" }, h("label", { for: "review-order" }, "Order"), order),
  ];

  const progressBar = h("progress", { id: "review-progress", max: "1", value: "0" });
  const progressText = h("span", { class: "review-count" });
  const approveShown = h("button", { type: "button" }, "Approve all shown");
  const flagButton = h("button", { type: "button", "aria-keyshortcuts": "F" }, "Flag with a note…");
  const deleteSelected = h("button", { type: "button", class: "danger", disabled: true }, "Delete selected");
  const bar = h(
    "div",
    { class: "review-bar" },
    h("label", { for: "review-progress" }, "Reviewed"),
    progressBar,
    progressText,
    approveShown,
    flagButton,
    deleteSelected,
    h("a", { href: `#/datasets/${hooks.datasetId}/health`, class: "health-link" }, "Health report"),
  );
  const selected = new Set();

  function query() {
    return { review_state: stateSelect.value, only: only.value, order: order.value };
  }

  async function refresh() {
    try {
      const counts = await api.get(`/datasets/${hooks.datasetId}/review`);
      const total = counts.unreviewed + counts.approved + counts.flagged;
      const reviewed = total - counts.unreviewed;
      progressBar.max = Math.max(1, total);
      progressBar.value = reviewed;
      progressText.textContent = `${reviewed} of ${total} reviewed${counts.flagged ? ` (${counts.flagged} flagged)` : ""}`;
      return counts;
    } catch (error) {
      notify("error", `Review progress not loaded: ${error.message}`);
      return null;
    }
  }

  function decorate(li, image) {
    li.querySelector(".card-head")?.prepend(reviewBadge(image));
    const box = h("input", {
      type: "checkbox", class: "select-image", "aria-label": `Select ${image.image_name ?? `image ${image.id}`}`,
      checked: selected.has(image.id),
    });
    box.addEventListener("change", () => {
      if (box.checked) selected.add(image.id);
      else selected.delete(image.id);
      deleteSelected.disabled = !selected.size;
      deleteSelected.textContent = selected.size ? `Delete selected (${selected.size})` : "Delete selected";
    });
    li.classList.add("reviewable");
    li.append(box);
    return li;
  }

  async function setState(imageId, state, note) {
    const body = { state, ...(note ? { note } : {}) };
    const image = await api.post(`/datasets/${hooks.datasetId}/images/${imageId}/review`, body, IMAGE_EXTRAS);
    hooks.updateImage(image);
    refresh();
    return image;
  }

  /** a approves, f flags the selected image, then the next one comes up. */
  function onKey(key) {
    const id = hooks.selectedId();
    const state = { a: "approved", f: "flagged" }[key];
    if (!state || id == null || hooks.getDataset().status === "completed") return false;
    setState(id, state)
      .then(() => hooks.move(1))
      .catch((error) => notify("error", `Not ${state}: ${error.message}`));
    return true;
  }

  approveShown.addEventListener("click", async () => {
    const ok = await confirmDialog({
      title: "Approve every image shown?",
      body: "Every image the current filters match is approved, not only those loaded so far.",
      confirm: "Approve all shown",
    });
    if (!ok) return;
    try {
      const result = await api.post(`/datasets/${hooks.datasetId}/images/review`, { state: "approved", filter: hooks.filterQuery() });
      notify("success", `Approved ${result.changed} ${result.changed === 1 ? "image" : "images"}.`);
      await refresh();
      await hooks.reload();
    } catch (error) {
      notify("error", `Not approved: ${error.message}`);
    }
  });

  flagButton.addEventListener("click", async () => {
    const id = hooks.selectedId();
    if (id == null) return notify("error", "Select an image first (j / k, or click it).");
    const note = h("input", { id: "flag-note", maxlength: "2000", placeholder: "what needs attention" });
    const ok = await confirmDialog({
      title: "Flag this image",
      body: "Flagged images stop `tailorset check` until someone approves them or fixes the caption.",
      confirm: "Flag",
      extra: h("div", { class: "field" }, h("label", { for: "flag-note" }, "Note"), note),
      focus: note,
    });
    if (!ok) return;
    setState(id, "flagged", note.value.trim()).catch((error) => notify("error", `Not flagged: ${error.message}`));
  });

  deleteSelected.addEventListener("click", async () => {
    const ids = [...selected];
    const ok = await confirmDialog({
      title: `Delete ${ids.length} ${ids.length === 1 ? "image" : "images"}?`,
      body: "They leave the dataset together (their caption history is kept for a while, as with any deleted image).",
      confirm: "Delete",
      danger: true,
    });
    if (!ok) return;
    try {
      const result = await api.post(`/datasets/${hooks.datasetId}/images/delete`, { image_ids: ids });
      selected.clear();
      deleteSelected.disabled = true;
      deleteSelected.textContent = "Delete selected";
      notify("success", `Deleted ${result.deleted} ${result.deleted === 1 ? "image" : "images"}.`);
      await refresh();
      await hooks.reload();
    } catch (error) {
      notify("error", `Not deleted: ${error.message}`);
    }
  });

  for (const control of [stateSelect, only, order]) control.addEventListener("change", () => hooks.reload());

  return { controls, bar, query, decorate, onKey, refresh, setState, isFiltered: () => Boolean(stateSelect.value || only.value) };
}
