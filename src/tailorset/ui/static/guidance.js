// What guides a dataset's automatic captions: a legacy dataset's caption prefix, a FIBO dataset's
// visual_schema. Each can be written by hand or generated from images picked from the grid
// (POST /generate_prefix, /generate_visual_schema with image_ids), reviewed, saved — and then the
// captions already written can be regenerated with it.

import { api } from "./api.js";
import { h, messageBox, modal, notify } from "./dom.js";

const PREFIX_TYPES = new Set(["stylized_scene", "defined_character", "object_variants"]);
const PICKABLE = 48; // the first loaded images of the grid

/**
 * The Prefix… and Visual schema… actions of a dataset's toolbar. `prefixButton` is the toolbar's own;
 * `render(dataset)` shows the one that fits the dataset.
 */
export function guidanceButtons({ datasetId, prefixButton, getDataset, getProject, getImages, refreshDataset, regenerateAll }) {
  const schemaButton = h("button", { type: "button" }, "Visual schema…");
  const context = { datasetId, getDataset, getProject, getImages, refreshDataset, regenerateAll };
  prefixButton.addEventListener("click", () => editPrefix(context));
  schemaButton.addEventListener("click", () => editVisualSchema(context));
  return {
    buttons: [schemaButton],
    render(dataset) {
      schemaButton.hidden = dataset.training_version !== "fibo";
      schemaButton.textContent = dataset.status === "completed" ? "Visual schema" : "Visual schema…";
    },
  };
}

/** Thumbnails of the grid's images to tick; `ids()` are the ticked ones, in grid order. */
function picker(images, least, most) {
  const count = h("p", { class: "meta", "aria-live": "polite" });
  const boxes = images.slice(0, PICKABLE).map((image) =>
    h("input", { type: "checkbox", value: String(image.id), "aria-label": `Pick ${image.image_name ?? `image ${image.id}`}` }),
  );
  const list = h(
    "ul",
    { class: "picker", "aria-label": "Images to generate from" },
    boxes.map((box, i) =>
      h("li", {}, h("label", {}, box, h("img", { src: images[i].thumbnail_url, alt: "", width: "72", height: "72" }), h("span", { class: "name" }, images[i].image_name ?? `#${images[i].id}`))),
    ),
  );
  const ids = () => boxes.filter((box) => box.checked).map((box) => Number(box.value));
  const update = () => {
    const n = ids().length;
    count.textContent = `${n} picked; pick ${least} to ${most}.`;
  };
  list.addEventListener("change", update);
  update();
  return { el: h("div", {}, list, count), ids, ok: () => ids().length >= least && ids().length <= most };
}

/** PUT the dataset's `body`; once saved, close the dialog and offer to regenerate the captions already written. */
async function saveGuidance(context, dialog, box, body, what) {
  try {
    await api.put(`/datasets/${context.datasetId}`, body);
  } catch (error) {
    box.show("error", `${what} not saved: ${error.message}`);
    if (error.status === 409) context.refreshDataset();
    return;
  }
  dialog.close();
  await context.refreshDataset();
  const again = h("button", { type: "button" }, "Regenerate all…");
  const message = notify("success", `${what} saved. Captions already written keep the old one until they are regenerated. `, again);
  again.addEventListener("click", () => {
    message.remove();
    context.regenerateAll();
  });
}

// --- caption prefix (legacy datasets) ---------------------------------------------------------

function editPrefix(context) {
  const dataset = context.getDataset();
  const box = messageBox();
  const input = h("input", { id: "prefix-input", maxlength: "1000", value: dataset.caption_prefix ?? "" });
  const pick = picker(context.getImages(), 1, 6);
  const generate = h("button", { type: "button" }, "Generate prefix");
  const save = h("button", { type: "submit", class: "primary" }, "Save prefix");
  const cancel = h("button", { type: "button" }, "Cancel");
  const form = h(
    "form",
    {},
    h("p", {}, "Every automatic caption begins with it, exactly once: your trigger word, e.g. “sks style”. Captions already written keep theirs until you regenerate them."),
    h("div", { class: "field" }, h("label", { for: "prefix-input" }, "Prefix"), input),
    h("details", {}, h("summary", {}, "Generate one from images of this dataset"), pick.el, generate),
    box.el,
    h("div", { class: "actions" }, save, cancel),
  );
  const dialog = modal("Caption prefix", "guidance prefix", form);
  cancel.addEventListener("click", () => dialog.close());
  generate.addEventListener("click", async () => {
    if (!pick.ok()) return box.show("error", "Pick 1 to 6 images first.");
    const project = context.getProject() ?? {};
    generate.disabled = true;
    box.show("info", "Generating…");
    try {
      const { prefix } = await api.post("/generate_prefix", {
        dataset_id: context.datasetId, image_ids: pick.ids(),
        ip_type: PREFIX_TYPES.has(project.ip_type) ? project.ip_type : "stylized_scene",
        ip_medium: project.ip_medium ?? "photography", ip_name: project.ip_name ?? undefined,
      });
      input.value = prefix;
      box.show("success", "Generated: review it, then save.");
      input.focus();
    } catch (error) {
      box.show("error", `No prefix generated: ${error.message}`);
    } finally {
      generate.disabled = false;
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saveGuidance(context, dialog, box, { caption_prefix: input.value }, "Prefix");
  });
  input.focus();
}

// --- visual schema (FIBO datasets) -----------------------------------------------------------

function pretty(text) {
  if (text == null || text === "") return "";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text ?? "";
  }
}

function editVisualSchema(context) {
  const dataset = context.getDataset();
  const frozen = dataset.status === "completed";
  const box = messageBox();
  const text = h("textarea", { id: "schema-input", rows: "14", spellcheck: "false", readonly: frozen });
  text.value = pretty(dataset.visual_schema);
  const pick = picker(context.getImages(), 5, 10);
  const generate = h("button", { type: "button" }, "Generate visual schema");
  const instruction = h("input", { id: "schema-instruction", maxlength: "2000", placeholder: "e.g. Make the style description more detailed" });
  const refine = h("button", { type: "button" }, "Refine");
  const save = h("button", { type: "submit", class: "primary", hidden: frozen }, "Save visual schema");
  const cancel = h("button", { type: "button" }, frozen ? "Close" : "Cancel");
  const form = h(
    "form",
    {},
    h("p", {}, "What every image of the dataset shares — medium, style, colours, lighting, composition — as a JSON object. The captioner follows it; Bria requires one before a FIBO dataset is complete."),
    h("div", { class: "field" }, h("label", { for: "schema-input" }, "Visual schema (JSON)"), text),
    frozen
      ? null
      : [
          h("details", {}, h("summary", {}, "Generate one from images of this dataset"), pick.el, generate),
          h("div", { class: "field" }, h("label", { for: "schema-instruction" }, "Refine with an instruction"), instruction, refine),
        ],
    box.el,
    h("div", { class: "actions" }, save, cancel),
  );
  const dialog = modal(frozen ? "Visual schema (completed dataset)" : "Visual schema", "guidance visual-schema", form);
  cancel.addEventListener("click", () => dialog.close());

  async function ask(button, busy, call, failed) {
    button.disabled = true;
    box.show("info", busy);
    try {
      text.value = pretty(await call());
      box.show("success", "Review it, then save.");
      text.focus();
    } catch (error) {
      box.show("error", `${failed}: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  }
  generate.addEventListener("click", () => {
    if (!pick.ok()) return box.show("error", "Pick 5 to 10 images first.");
    ask(generate, "Generating…", async () =>
      (await api.post("/generate_visual_schema", { dataset_id: context.datasetId, image_ids: pick.ids() })).visual_schema,
      "No visual schema generated");
  });
  refine.addEventListener("click", () => {
    if (!instruction.value.trim() || !text.value.trim()) return box.show("error", "Write a visual schema and an instruction first.");
    ask(refine, "Refining…", async () =>
      (await api.post("/refine_structured_prompt", {
        dataset_id: context.datasetId, structured_prompt: text.value, instruction: instruction.value,
      })).structured_prompt,
      "Not refined");
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saveGuidance(context, dialog, box, { visual_schema: text.value }, "Visual schema");
  });
  text.focus();
}
