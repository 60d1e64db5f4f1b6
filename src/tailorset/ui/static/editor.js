// The editor panel: one image large, its caption (plain text, or FIBO fields with live validation
// and a raw-JSON view), Save / Regenerate / Discard, and the caption's history with restore.

import { api, IMAGE_EXTRAS, request } from "./api.js";
import { confidenceBadge, signalsLine } from "./confidence.js";
import { debounce, fill, formatTime, h, messageBox, sourceBadge } from "./dom.js";
import { buildForm, loadSchema } from "./fibo.js";
import { createLint } from "./lint.js";
import { reviewBadge } from "./review.js";

const canonical = (value) => JSON.stringify(value);

export function createEditor({ getDataset, onSaved, onConflict, onNavigate, onClose }) {
  const title = h("h2", { id: "editor-title" });
  const position = h("span", { class: "meta" });
  const picture = h("img", { class: "large", alt: "" });
  const pictureLink = h("a", { target: "_blank", rel: "noopener", title: "Open the original in a new tab" }, picture);
  const meta = h("div", { class: "panel-meta" });
  const box = messageBox("panel-messages");
  const body = h("div", { class: "caption-body" });
  const save = h("button", { type: "button", class: "primary", "aria-keyshortcuts": "Control+Enter Meta+Enter" }, "Save");
  const regenerate = h("button", { type: "button", "aria-keyshortcuts": "R" }, "Regenerate");
  const discard = h("button", { type: "button", class: "quiet", disabled: true }, "Discard changes");
  const previous = h("button", { type: "button", class: "quiet", "aria-label": "Previous image", "aria-keyshortcuts": "K ArrowLeft" }, "‹ Prev");
  const next = h("button", { type: "button", class: "quiet", "aria-label": "Next image", "aria-keyshortcuts": "J ArrowRight" }, "Next ›");
  const close = h("button", { type: "button", class: "quiet", "aria-label": "Close the editor", "aria-keyshortcuts": "Escape" }, "✕");
  const lint = createLint(getDataset);
  const review = h("p", { class: "panel-review meta" });
  const historyList = h("ol", { class: "history-list" });
  const history = h("details", { class: "history" }, h("summary", {}, "Caption history"), historyList);

  const el = h(
    "aside",
    { class: "panel", "aria-labelledby": "editor-title", hidden: true },
    h("div", { class: "panel-head" }, h("div", {}, title, position), h("div", { class: "nav" }, previous, next, close)),
    pictureLink,
    meta,
    review,
    box.el,
    body,
    lint.el,
    h("div", { class: "actions" }, save, regenerate, discard),
    h(
      "p",
      { class: "hint keys" },
      h("kbd", {}, "Ctrl"), "+", h("kbd", {}, "Enter"), " save · ", h("kbd", {}, "r"), " regenerate · ",
      h("kbd", {}, "j"), "/", h("kbd", {}, "k"), " next/previous · ", h("kbd", {}, "a"), "/", h("kbd", {}, "f"),
      " approve/flag, then next · ", h("kbd", {}, "Esc"), " leave the field, then close",
    ),
    history,
  );

  let image = null;
  let readOnly = false;
  let caption = null; // the caption editor in use: {focus, value, dirty, setReadOnly}
  let busy = false;
  let showing = 0;

  const state = () => ({ dirty: caption?.dirty() ?? false });
  const refreshButtons = () => {
    const dirty = state().dirty;
    save.disabled = readOnly || busy;
    regenerate.disabled = readOnly || busy;
    discard.disabled = !dirty || busy;
    el.classList.toggle("dirty", dirty);
  };

  function renderMeta() {
    fill(
      meta,
      sourceBadge(image.caption_source),
      confidenceBadge(image),
      h("span", { class: "meta" }, `#${image.id} · updated ${formatTime(image.updated_at)}`),
      signalsLine(image),
    );
    const state = image.review_state;
    fill(review, state ? reviewBadge(image) : null, image.review_note ? ` — ${image.review_note}` : null);
  }

  async function show(nextImage, where) {
    image = nextImage;
    fill(title, image.image_name ?? `Image ${image.id}`);
    position.textContent = where ?? "";
    picture.src = image.image_url;
    picture.alt = image.image_name ?? `Image ${image.id}`;
    pictureLink.href = image.image_url;
    renderMeta();
    box.clear();
    el.hidden = false;
    const ticket = ++showing; // quick j/k presses: only the last image shown gets the caption body
    const dataset = getDataset();
    let editor;
    try {
      editor = dataset.training_version === "fibo" ? await fiboEditor(image.caption) : textEditor(image.caption);
    } catch (error) {
      editor = textEditor(image.caption); // the form needs the schema; the text is always editable
      box.show("error", `The structured editor could not start (${error.message}); the caption is shown as text.`);
    }
    if (ticket !== showing) return;
    caption = editor;
    fill(body, caption.el);
    lint.check(caption.value(), image.id);
    caption.setReadOnly(readOnly);
    refreshButtons();
    if (history.open) loadHistory();
  }

  function textEditor(text) {
    const area = h("textarea", { id: "caption-text", name: "caption", rows: "7", spellcheck: "true" });
    area.value = text ?? "";
    const counter = h("p", { class: "hint counter", "aria-live": "off" });
    const count = () => {
      const words = area.value.trim() ? area.value.trim().split(/\s+/).length : 0;
      counter.textContent = `${area.value.length} characters · ${words} words`;
    };
    area.addEventListener("input", () => {
      count();
      refreshButtons();
    });
    count();
    return {
      el: h("div", {}, h("label", { for: "caption-text" }, "Caption"), area, counter),
      focus: () => area.focus(),
      value: () => area.value,
      dirty: () => area.value !== (text ?? ""),
      setReadOnly: (flag) => (area.readOnly = flag),
    };
  }

  async function fiboEditor(text) {
    const schema = await loadSchema();
    let original = null;
    try {
      original = JSON.parse(text ?? "{}");
    } catch {
      original = null;
    }
    const summary = h("div", { class: "validation", role: "status", "aria-live": "polite" });
    const raw = h("textarea", { id: "caption-json", name: "caption-json", class: "code", rows: "18", spellcheck: "false" });
    const holder = h("div", {});
    const fieldsButton = h("button", { type: "button", class: "small", "aria-pressed": "true" }, "Fields");
    const jsonButton = h("button", { type: "button", class: "small", "aria-pressed": "false" }, "JSON");
    let form = null;
    let mode = "fields";
    let sequence = 0;
    let ro = false;

    const value = () => (mode === "fields" ? JSON.stringify(form.value()) : raw.value);
    const initial = original === null ? text ?? "" : canonical(original);
    const dirty = () => {
      if (mode === "fields") return canonical(form.value()) !== initial;
      try {
        return canonical(JSON.parse(raw.value)) !== initial;
      } catch {
        return raw.value !== (text ?? "");
      }
    };

    const validate = debounce(async () => {
      const mine = ++sequence;
      try {
        const result = await api.post("/captions/validate", { caption: value(), training_version: "fibo" });
        if (mine !== sequence) return;
        showResult(result);
      } catch (error) {
        if (mine === sequence) fill(summary, h("p", { class: "problem warning" }, `Live validation is unavailable: ${error.message}`));
      }
    }, 350);

    function showResult(result) {
      const repairs = [...new Set(result.corrections.map((c) => c.rule))];
      const head = result.valid
        ? h("p", { class: "valid" }, "✓ Valid", repairs.length ? ` — saving will repair: ${repairs.join(", ")}` : "")
        : h("p", { class: "invalid" }, `✗ ${result.errors.length} ${result.errors.length === 1 ? "problem" : "problems"}: saving would be refused`);
      // Every problem is listed here too (its field may be scrolled away); in the form, a click goes to it.
      const item = (problem, kind) => {
        const target = mode === "fields" && form.el.querySelector(`[name="${CSS.escape(problem.path)}"]`);
        const text = target
          ? h("button", { type: "button", class: "link", onclick: () => target.focus() }, problem.message)
          : problem.message;
        return h("li", { class: `problem ${kind}` }, text);
      };
      if (mode === "fields") form.showProblems(result.errors, result.warnings);
      const list = h(
        "ul",
        { class: "problem-list" },
        result.errors.map((p) => item(p, "error")),
        result.warnings.map((p) => item(p, "warning")),
      );
      fill(summary, head, result.errors.length || result.warnings.length ? list : null);
    }

    const changed = () => {
      refreshButtons();
      validate();
    };

    function showFields(object) {
      form = buildForm(schema, object);
      form.setDisabled(ro);
      form.el.addEventListener("input", changed);
      form.el.addEventListener("change", changed);
      mode = "fields";
      fill(holder, form.el);
      fieldsButton.setAttribute("aria-pressed", "true");
      jsonButton.setAttribute("aria-pressed", "false");
    }

    function showJson(textValue, note) {
      raw.value = textValue;
      mode = "json";
      fill(holder, h("label", { for: "caption-json" }, "Caption JSON"), raw);
      if (note) fill(summary, h("p", { class: "problem warning" }, note));
      fieldsButton.setAttribute("aria-pressed", "false");
      jsonButton.setAttribute("aria-pressed", "true");
    }

    raw.addEventListener("input", changed);
    jsonButton.addEventListener("click", () => {
      if (mode === "json") return;
      showJson(JSON.stringify(form.value(), null, 2));
      validate();
    });
    fieldsButton.addEventListener("click", () => {
      if (mode === "fields") return;
      let parsed;
      try {
        parsed = JSON.parse(raw.value);
      } catch (error) {
        fill(summary, h("p", { class: "problem error" }, `The JSON does not parse (${error.message}); fix it here, or save and let the server repair what it can.`));
        return;
      }
      const probe = buildForm(schema, parsed);
      if (canonical(probe.value()) !== canonical(parsed)) {
        fill(summary, h("p", { class: "problem warning" }, "This JSON has keys or values the fields cannot show; keep editing it as JSON."));
        return;
      }
      showFields(parsed);
      validate();
    });

    // A caption the form cannot show faithfully opens as JSON: nothing is dropped silently.
    if (original !== null && typeof original === "object" && !Array.isArray(original)) {
      showFields(original);
      if (canonical(form.value()) !== canonical(original)) {
        showJson(JSON.stringify(original, null, 2), "This caption has fields the form does not show; edit it as JSON.");
      }
    } else {
      form = buildForm(schema, {});
      showJson(text ?? "", text ? "This caption is not a JSON object; edit it as JSON." : null);
    }

    const el = h(
      "div",
      { class: "fibo" },
      h("div", { class: "mode", role: "group", "aria-label": "Edit the caption as" }, fieldsButton, jsonButton),
      summary,
      holder,
    );
    return {
      el,
      focus: () => (mode === "fields" ? form.el.querySelector("input, textarea, select") : raw)?.focus(),
      value,
      dirty,
      setReadOnly(flag) {
        ro = flag;
        form.setDisabled(flag);
        raw.readOnly = flag;
      },
      showError(error) {
        // A 400 from Save names a JSON path: show it at its field too.
        const path = error.message.match(/^(caption[\w.[\]]*)/)?.[1];
        if (path && mode === "fields") form.showProblems([{ path, message: error.message }], []);
      },
    };
  }

  async function saveCaption() {
    if (!image || busy) return;
    if (readOnly) return box.show("error", completedMessage());
    busy = true;
    refreshButtons();
    box.show("info", "Saving…");
    try {
      const dataset = getDataset();
      const { data, headers } = await request("PUT", `/datasets/${dataset.id}/images/${image.id}`, {
        body: { caption: caption.value() },
        query: IMAGE_EXTRAS,
      });
      const repaired = headers.get("X-Caption-Corrected");
      busy = false;
      const focused = body.contains(document.activeElement) ? document.activeElement : null;
      await show(data, position.textContent);
      // Saving with Ctrl+Enter keeps you in the field you were typing in.
      if (focused) (body.querySelector(`[name="${CSS.escape(focused.name)}"]`) ?? caption).focus();
      box.show("success", repaired ? `Saved. The server repaired: ${repaired}.` : "Saved.");
      onSaved(data);
    } catch (error) {
      busy = false;
      box.show("error", `Not saved: ${error.message}`);
      caption.showError?.(error);
      if (error.status === 409) onConflict(error);
    } finally {
      busy = false;
      refreshButtons();
    }
  }

  async function regenerateCaption() {
    if (!image || busy) return;
    if (readOnly) return box.show("error", completedMessage());
    if (caption.dirty()) return warnUnsaved();
    busy = true;
    refreshButtons();
    regenerate.textContent = "Regenerating…";
    box.show("info", "The captioner is writing a new caption…");
    try {
      const data = await api.put(`/datasets/${getDataset().id}/images/${image.id}`, { regenerate_caption: true }, IMAGE_EXTRAS);
      busy = false;
      await show(data, position.textContent);
      box.show("success", "Regenerated: the captioner wrote this caption.");
      onSaved(data);
    } catch (error) {
      box.show("error", `Not regenerated: ${error.message}`);
      if (error.status === 409) onConflict(error);
    } finally {
      busy = false;
      regenerate.textContent = "Regenerate";
      refreshButtons();
    }
  }

  function completedMessage() {
    return `Dataset ${getDataset().id} is completed, so its captions cannot be edited; clone it as a draft instead.`;
  }

  function warnUnsaved() {
    box.show("error", "This caption has unsaved changes: save them (Ctrl+Enter) or discard them first.");
  }

  async function loadHistory() {
    if (!image) return;
    const forImage = image.id;
    fill(historyList, h("li", { class: "loading" }, "Loading…"));
    try {
      const revisions = await api.get(`/datasets/${getDataset().id}/images/${forImage}/captions`);
      if (forImage !== image.id) return;
      const newest = revisions.at(-1)?.id;
      fill(
        historyList,
        revisions
          .slice()
          .reverse()
          .map((revision) => {
            const restore = h(
              "button",
              { type: "button", class: "small", disabled: revision.id === newest || readOnly },
              revision.id === newest ? "Current" : "Restore",
            );
            restore.addEventListener("click", () => restoreRevision(revision));
            return h(
              "li",
              { dataset: { revision: String(revision.id) } },
              h("div", { class: "revision-head" }, sourceBadge(revision.caption_source), h("span", { class: "meta" }, `${formatTime(revision.created_at)} · ${revision.actor}`), restore),
              h("p", { class: "revision-text" }, revision.caption ?? "(no caption)"),
            );
          }),
      );
    } catch (error) {
      fill(historyList, h("li", { class: "message error", role: "alert" }, `History not loaded: ${error.message}`));
    }
  }

  async function restoreRevision(revision) {
    if (caption.dirty()) return warnUnsaved();
    try {
      const url = `/datasets/${getDataset().id}/images/${image.id}/captions/${revision.id}/restore`;
      const data = await api.post(url, undefined, IMAGE_EXTRAS);
      await show(data, position.textContent);
      box.show("success", `Restored the caption from ${formatTime(revision.created_at)}.`);
      onSaved(data);
    } catch (error) {
      box.show("error", `Not restored: ${error.message}`);
      if (error.status === 409) onConflict(error);
    }
  }

  function discardChanges() {
    if (image) show(image, position.textContent).then(() => box.show("info", "Changes discarded."));
  }

  body.addEventListener("input", () => caption && lint.check(caption.value(), image.id));
  save.addEventListener("click", saveCaption);
  regenerate.addEventListener("click", regenerateCaption);
  discard.addEventListener("click", discardChanges);
  previous.addEventListener("click", () => onNavigate(-1));
  next.addEventListener("click", () => onNavigate(1));
  close.addEventListener("click", () => onClose());
  history.addEventListener("toggle", () => history.open && loadHistory());

  return {
    el,
    get isOpen() {
      return !el.hidden;
    },
    get imageId() {
      return image?.id ?? null;
    },
    show,
    hide() {
      el.hidden = true;
      image = null;
    },
    isDirty: () => !el.hidden && state().dirty,
    warnUnsaved,
    save: saveCaption,
    regenerate: regenerateCaption,
    focusCaption: () => caption?.focus(),
    setReadOnly(flag) {
      readOnly = flag;
      caption?.setReadOnly(flag);
      refreshButtons();
      if (history.open) loadHistory();
    },
  };
}
