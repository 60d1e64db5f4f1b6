// The dataset view: a thumbnail grid searched and filtered on the server (keyset pages), the
// editor panel, keyboard review, Complete and Clone. The toolbar's other views have modules of their own:
// find/replace (replace.js), Regenerate All (regenerate.js), import/export (transfer.js), guidance.js.

import { api, IMAGE_EXTRAS, request } from "./api.js";
import {
  confirmDialog, fill, h, isTyping, notify, setCrumbs, sourceBadge, statusBadge, debounce,
} from "./dom.js";
import { confidenceBadge } from "./confidence.js";
import { createEditor } from "./editor.js";
import { createReview } from "./review.js";
import { regenerateAllControls } from "./regenerate.js";
import { replaceButtons } from "./replace.js";
import { guidanceButtons } from "./guidance.js";
import { transferButtons } from "./transfer.js";

const PAGE = 48;

/** options.queue: open on the review queue (unreviewed images, least sure first), as #/datasets/ID/review does. */
export async function datasetView(root, datasetId, options = {}) {
  let dataset = await api.get(`/datasets/${datasetId}`, { max_images: 1 });
  const project = await api.get(`/projects/${dataset.project_id}`).catch(() => null);
  setCrumbs(
    { text: "Projects", href: "#/projects" },
    { text: project?.project_name ?? `Project ${dataset.project_id}`, href: `#/projects/${dataset.project_id}` },
    { text: dataset.name },
  );

  const state = { images: [], byId: new Map(), cursor: null, selectedId: null, sequence: 0 };
  let alive = true;

  // --- header and toolbar -------------------------------------------------------------------
  const heading = h("h1", {});
  const info = h("p", { class: "meta dataset-info" });
  const banner = h("div", { class: "banner", hidden: true });
  const prefixButton = h("button", { type: "button" }, "Prefix…");
  const completeButton = h("button", { type: "button", "aria-describedby": "complete-note" }, "Complete…");
  const completeNote = h("span", { class: "hint", id: "complete-note" });
  const cloneButton = h("button", { type: "button" }, "Clone as draft");
  const transfer = transferButtons({ datasetId, getDataset: () => dataset, afterImport: () => refreshAll() });
  const guidance = guidanceButtons({
    datasetId, prefixButton, getDataset: () => dataset, getProject: () => project, getImages: () => state.images,
    refreshDataset: () => refreshDataset(), regenerateAll: () => regenerate.start(),
  });
  const shortcuts = h(
    "details",
    { class: "shortcuts" },
    h("summary", {}, "Keyboard"),
    h(
      "dl",
      {},
      [
        ["j / →", "next image"], ["k / ←", "previous image"], ["Enter / e", "edit the caption"],
        ["Ctrl+Enter / ⌘+Enter", "save"], ["r", "regenerate"], ["Esc", "leave the field, then close the editor"],
        ["/", "search"], ["a", "approve, then the next image"], ["f", "flag, then the next image"],
      ].map(([keys, what]) => [h("dt", {}, h("kbd", {}, keys)), h("dd", {}, what)]),
    ),
  );

  // --- filters and grid ---------------------------------------------------------------------
  const search = h("input", { id: "search", type: "search", placeholder: "words in the caption", "aria-keyshortcuts": "/" });
  const exclude = h("input", { id: "exclude", type: "search", placeholder: "words not in it" });
  const source = h(
    "select",
    { id: "source" },
    h("option", { value: "" }, "Any source"),
    h("option", { value: "automatic" }, "Automatic"),
    h("option", { value: "manual" }, "Manual"),
    h("option", { value: "none" }, "No caption"),
  );
  const filters = h(
    "form",
    { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
    h("div", { class: "field" }, h("label", { for: "search" }, "Caption contains"), search),
    h("div", { class: "field" }, h("label", { for: "exclude" }, "Caption excludes"), exclude),
    h("div", { class: "field" }, h("label", { for: "source" }, "Source"), source),
  );
  const count = h("p", { class: "meta count", "aria-live": "polite" });
  const grid = h("ul", { class: "grid", "aria-label": "Images" });
  const more = h("button", { type: "button", class: "more", hidden: true }, "Load more");

  const editor = createEditor({
    getDataset: () => dataset,
    onSaved: (image) => {
      updateImage(image);
      review.refresh();
    },
    onConflict: () => refreshDataset(),
    onNavigate: (delta) => move(delta),
    onClose: () => closeEditor(),
  });
  const review = createReview({
    datasetId,
    getDataset: () => dataset,
    selectedId: () => state.selectedId,
    reload: () => loadImages(),
    move: (delta) => move(delta),
    updateImage: (image) => updateImage(image),
    filterQuery: () => filterQuery(),
    queue: Boolean(options.queue),
  });
  filters.append(...review.controls);
  const replace = replaceButtons({
    datasetId, filterQuery: () => filterQuery(), imageById: (id) => state.byId.get(id),
    isFiltered: () => Boolean(search.value || exclude.value || source.value || review.isFiltered()),
    renderInfo: () => renderInfo(), afterBulkChange: () => afterBulkChange(), refreshDataset: () => refreshDataset(),
  });
  const regenerate = regenerateAllControls({
    datasetId, getDataset: () => dataset, setDataset: (fresh) => { dataset = fresh; },
    renderInfo: () => renderInfo(), afterBulkChange: () => afterBulkChange(), refreshDataset: () => refreshDataset(),
  });

  fill(
    root,
    h(
      "div",
      { class: "dataset-head" },
      h("div", {}, heading, info),
      h(
        "div",
        { class: "toolbar", role: "toolbar", "aria-label": "Dataset actions" },
        ...replace.buttons, prefixButton, ...guidance.buttons, regenerate.button, completeButton, cloneButton,
        ...transfer.buttons, shortcuts,
      ),
    ),
    completeNote,
    banner,
    regenerate.progress,
    review.bar,
    h("div", { class: "workbench" }, h("section", { class: "images", "aria-label": "Images" }, filters, count, grid, more), editor.el),
  );

  // --- rendering ----------------------------------------------------------------------------
  function renderInfo() {
    const completed = dataset.status === "completed";
    fill(heading, dataset.name);
    fill(
      info,
      statusBadge(dataset.status),
      ` ${dataset.training_version} · ${dataset.images_count} images`,
      dataset.caption_prefix ? ` · prefix “${dataset.caption_prefix}”` : "",
    );
    banner.hidden = !completed;
    fill(
      banner,
      h("strong", {}, "Completed: "),
      "this dataset is frozen, so its captions cannot be edited. Clone it to make a draft you can change.",
    );
    prefixButton.disabled = completed;
    prefixButton.hidden = dataset.training_version === "fibo"; // FIBO captions are JSON: no prefix
    completeButton.disabled = completed;
    completeNote.textContent = completed ? "This dataset is already completed; it cannot return to draft." : "";
    replace.render(dataset);
    regenerate.render(dataset);
    editor.setReadOnly(completed);
    transfer.render(dataset);
    guidance.render(dataset);
  }

  async function refreshAll() {
    await refreshDataset();
    await loadImages();
  }

  function captionText(image) {
    if (image.caption == null) return "(no caption)";
    if (dataset.training_version !== "fibo") return image.caption;
    try {
      return JSON.parse(image.caption).short_description ?? image.caption;
    } catch {
      return image.caption;
    }
  }

  function card(image) {
    const button = h(
      "button",
      { type: "button", class: "card", dataset: { id: String(image.id) }, "aria-current": image.id === state.selectedId ? "true" : false },
      h("img", { src: image.thumbnail_url, alt: "", loading: "lazy", width: "256", height: "256" }),
      h("span", { class: "card-head" }, sourceBadge(image.caption_source), confidenceBadge(image), h("span", { class: "name" }, image.image_name ?? `#${image.id}`)),
      h("span", { class: "caption" }, captionText(image)),
    );
    button.addEventListener("click", () => select(image.id, { open: true, focus: true }));
    return review.decorate(h("li", {}, button), image);
  }

  function cardFor(id) {
    return grid.querySelector(`.card[data-id="${id}"]`);
  }

  function renderCount() {
    const filtered = search.value || exclude.value || source.value || review.isFiltered();
    const n = state.images.length;
    count.textContent = filtered
      ? `${n}${state.cursor ? "+" : ""} matching ${n === 1 ? "image" : "images"}`
      : `Showing ${n} of ${dataset.images_count} images`;
    more.hidden = !state.cursor;
    if (!n) {
      fill(
        grid,
        h(
          "li",
          { class: "empty" },
          filtered ? "No caption matches these filters." : `No images yet. Upload some with: tailorset push DIR --dataset ${dataset.id}`,
        ),
      );
    }
  }

  function updateImage(image) {
    const index = state.images.findIndex((i) => i.id === image.id);
    state.byId.set(image.id, image);
    if (index === -1) return;
    state.images[index] = image;
    const old = cardFor(image.id)?.parentElement;
    if (old) old.replaceWith(card(image));
  }

  // --- loading ------------------------------------------------------------------------------
  async function loadImages({ reset = true } = {}) {
    const mine = ++state.sequence;
    const query = {
      limit: PAGE, ...filterQuery(), ...review.query(), ...IMAGE_EXTRAS, cursor: reset ? undefined : state.cursor,
    };
    more.disabled = true;
    try {
      const { data, headers } = await request("GET", `/datasets/${datasetId}/images`, { query });
      if (mine !== state.sequence || !alive) return;
      if (reset) {
        state.images = [];
        grid.replaceChildren();
      }
      // A save that landed while this page was on its way is newer than what the page says.
      const images = data.map((image) => {
        const known = state.byId.get(image.id);
        return known && Date.parse(known.updated_at) > Date.parse(image.updated_at) ? known : image;
      });
      for (const image of images) state.byId.set(image.id, image);
      state.images.push(...images);
      state.cursor = headers.get("X-Next-Cursor");
      grid.append(...images.map(card));
      renderCount();
    } catch (error) {
      notify("error", `Images not loaded: ${error.message}`);
    } finally {
      more.disabled = false;
    }
  }

  /** The search and filters as the API's image filters (the review ones included). */
  function filterQuery() {
    const { review_state, only } = review.query();
    const query = { caption_contains: search.value, caption_excludes: exclude.value, caption_source: source.value, review_state, only };
    return Object.fromEntries(Object.entries(query).filter(([, value]) => value));
  }

  async function refreshDataset() {
    try {
      dataset = await api.get(`/datasets/${datasetId}`, { max_images: 1 });
      renderInfo();
      renderCount();
    } catch (error) {
      notify("error", `Dataset not reloaded: ${error.message}`);
    }
    return dataset;
  }

  // --- selection and keyboard ----------------------------------------------------------------
  async function select(id, { open = false, focus = false } = {}) {
    if (editor.isDirty() && editor.imageId !== id) {
      editor.warnUnsaved();
      return false;
    }
    const previous = state.selectedId;
    state.selectedId = id;
    cardFor(previous)?.removeAttribute("aria-current");
    const target = cardFor(id);
    target?.setAttribute("aria-current", "true");
    target?.scrollIntoView({ block: "nearest" });
    if (!focus) target?.focus({ preventScroll: true });
    const index = state.images.findIndex((i) => i.id === id);
    if ((open || editor.isOpen) && (editor.imageId !== id || !editor.isOpen)) {
      const where = `${index + 1} of ${state.cursor ? `${state.images.length}+` : state.images.length}`;
      await editor.show(state.byId.get(id), where);
    }
    if (focus) editor.focusCaption();
    return true;
  }

  // Moves run one after another: a key held down past the last loaded image waits for the next page.
  let moves = Promise.resolve();
  function move(delta) {
    moves = moves.then(() => step(delta)).catch((error) => notify("error", `Could not move: ${error.message}`));
    return moves;
  }

  async function step(delta) {
    if (!state.images.length) return;
    const index = state.images.findIndex((i) => i.id === state.selectedId);
    let target = index === -1 ? (delta > 0 ? 0 : state.images.length - 1) : index + delta;
    if (target >= state.images.length && state.cursor) {
      if (editor.isDirty()) return editor.warnUnsaved();
      await loadImages({ reset: false });
    }
    target = Math.max(0, Math.min(target, state.images.length - 1));
    if (state.images[target].id !== state.selectedId) await select(state.images[target].id);
  }

  function closeEditor() {
    if (editor.isDirty()) return editor.warnUnsaved();
    editor.hide();
    cardFor(state.selectedId)?.focus();
  }

  function onKey(event) {
    if (document.querySelector("dialog[open]")) return; // a dialog handles its own keys
    const typing = isTyping(event.target);
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (editor.isOpen) {
        event.preventDefault();
        editor.save();
      }
      return;
    }
    if (event.key === "Escape") {
      if (typing) {
        event.preventDefault();
        const inEditor = editor.el.contains(event.target);
        event.target.blur();
        if (inEditor) (cardFor(state.selectedId) ?? editor.el).focus({ preventScroll: true });
      } else if (editor.isOpen) {
        event.preventDefault();
        closeEditor();
      }
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const onControl = event.target instanceof Element && event.target.closest("button, a, summary");
    const handled = {
      j: () => move(1),
      ArrowRight: () => move(1),
      k: () => move(-1),
      ArrowLeft: () => move(-1),
      e: () => edit(),
      Enter: onControl ? null : () => edit(),
      r: () => editor.isOpen && editor.regenerate(),
      a: () => review.onKey("a"),
      f: () => review.onKey("f"),
      "/": () => search.focus(),
    }[event.key];
    if (!handled) return;
    event.preventDefault();
    handled();
  }

  function edit() {
    const id = state.selectedId ?? state.images[0]?.id;
    if (id != null) select(id, { open: true, focus: true });
  }

  // --- after a bulk change (find/replace, undo, Regenerate All) -----------------------------
  async function afterBulkChange() {
    await loadImages();
    const shown = editor.isOpen && !editor.isDirty() && state.byId.get(editor.imageId);
    if (shown) {
      // The panel shows the caption as it is now, not as it was before the batch.
      try {
        const fresh = await api.get(`/datasets/${datasetId}/images/${shown.id}`, IMAGE_EXTRAS);
        updateImage(fresh);
        const index = state.images.findIndex((i) => i.id === fresh.id);
        await editor.show(fresh, `${index + 1} of ${state.images.length}${state.cursor ? "+" : ""}`);
      } catch (error) {
        notify("error", `The open image was not reloaded: ${error.message}`);
      }
    }
  }

  // --- Complete, Clone ----------------------------------------------------------------------
  async function complete() {
    const counts = await review.refresh();
    const left = counts && (counts.unreviewed_automatic || counts.flagged)
      ? h("p", { class: "problem warning" }, `${counts.unreviewed_automatic} automatic captions have not been reviewed and ${counts.flagged} images are flagged. Complete anyway?`)
      : null;
    const ok = await confirmDialog({
      title: `Complete “${dataset.name}”?`,
      body: "A completed dataset is frozen: no uploads, deletions or caption edits, and it cannot return to draft. Clone it to change it later.",
      confirm: "Complete dataset",
      extra: left,
    });
    if (!ok) return;
    try {
      dataset = await api.put(`/datasets/${datasetId}`, { status: "completed" });
      renderInfo();
      notify("success", `Dataset completed with ${dataset.images_count} images; it is now frozen and ready to pull.`);
    } catch (error) {
      notify("error", `Not completed: ${error.message}`);
    }
  }

  async function clone() {
    cloneButton.disabled = true;
    try {
      const copy = await api.post(`/datasets/${datasetId}/clone`, {});
      location.hash = `#/datasets/${copy.id}`;
      notify("success", `Cloned as the draft “${copy.name}”, with the same images and captions.`);
    } catch (error) {
      notify("error", `Not cloned: ${error.message}`);
      cloneButton.disabled = false;
    }
  }

  // --- wiring ------------------------------------------------------------------------------
  const reload = debounce(() => loadImages(), 300);
  search.addEventListener("input", reload);
  exclude.addEventListener("input", reload);
  source.addEventListener("change", () => loadImages());
  more.addEventListener("click", () => loadImages({ reset: false }));
  completeButton.addEventListener("click", complete);
  cloneButton.addEventListener("click", clone);
  document.addEventListener("keydown", onKey);

  renderInfo();
  await loadImages();
  review.refresh();
  regenerate.watch();

  return () => {
    alive = false;
    regenerate.stop();
    reload.cancel();
    document.removeEventListener("keydown", onKey);
    for (const dialog of document.querySelectorAll("dialog")) dialog.close();
  };
}
