// The FIBO structured caption editor: a form built from the same JSON schema the server validates
// against (served at /ui/static/fibo-schema.json), so fields, required marks and score labels never
// drift from the rules. Each control carries its JSON path (caption.objects[0].location), which is
// how the validate endpoint names a problem, so problems land next to the field they are about.

import { h, nextId } from "./dom.js";

let schemaPromise = null;
export function loadSchema() {
  schemaPromise ??= fetch("/ui/static/fibo-schema.json").then((response) => {
    if (!response.ok) throw new Error(`The FIBO schema could not be loaded (${response.status}).`);
    return response.json();
  });
  return schemaPromise;
}

// Long free text starts taller; short labels start one line high.
const LONG_TEXT = new Set(["short_description", "background_setting", "context", "description", "appearance_details"]);
const ITEM_NAMES = { objects: "Object", text_render: "Text" };

function humanize(key) {
  const text = key.replaceAll("_", " ");
  return text[0].toUpperCase() + text.slice(1);
}

function resolve(schema, node) {
  // A $ref's siblings (description, examples…) refine the definition it points at.
  while (node?.$ref) {
    const { $ref, ...rest } = node;
    const target = $ref.replace(/^#\//, "").split("/").reduce((at, part) => at[part], schema);
    node = { ...target, ...rest };
  }
  return node;
}

const types = (node) => [].concat(node.type ?? []);
const isEmpty = (value) =>
  value === undefined || (Array.isArray(value) ? value.length === 0 : typeof value === "object" && Object.keys(value).length === 0);

/**
 * A structured form for one caption object. `form.el` is the element, `form.value()` the caption
 * object as the fields say (empty fields left out), `form.showProblems(errors, warnings)` puts the
 * validate endpoint's findings beside their fields.
 */
export function buildForm(schema, value) {
  const root = resolve(schema, schema);
  const node = objectNode(schema, root, value ?? {}, "caption", null, true);
  const general = h("div", { class: "problems", "data-problems-for": "caption", id: nextId("problems") });
  const el = h("fieldset", { class: "fibo-form" }, h("legend", { class: "visually-hidden" }, "Structured caption"), general, node.el);
  return {
    el,
    value: () => node.get() ?? {},
    showProblems(errors, warnings) {
      for (const box of el.querySelectorAll(".problems")) box.replaceChildren();
      for (const control of el.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
      for (const [kind, problems] of [["error", errors], ["warning", warnings]]) {
        for (const problem of problems) {
          const box = closestBox(el, problem.path);
          box.append(h("p", { class: `problem ${kind}` }, problem.message));
          const folded = box.closest("details");
          if (folded) folded.open = true;
          if (kind === "error") box.closest(".field")?.querySelector("input, textarea, select")?.setAttribute("aria-invalid", "true");
        }
      }
    },
    setDisabled(disabled) {
      el.disabled = disabled;
    },
  };
}

/** The problem box for a path, or for its nearest ancestor shown in the form. */
function closestBox(el, path) {
  let at = path;
  for (;;) {
    const box = el.querySelector(`.problems[data-problems-for="${CSS.escape(at)}"]`);
    if (box) return box;
    const parent = at.replace(/(\[\d+\]|\.[^.[\]]+)$/, "");
    if (parent === at) return el.querySelector('.problems[data-problems-for="caption"]');
    at = parent;
  }
}

function build(schema, node, value, path, key, required) {
  node = resolve(schema, node);
  if (types(node).includes("object") || node.properties) return objectNode(schema, node, value ?? {}, path, key, required);
  if (types(node).includes("array")) return arrayNode(schema, node, Array.isArray(value) ? value : [], path, key, required);
  return leafNode(node, value, path, key, required);
}

function objectNode(schema, node, value, path, key, required) {
  const order = node["x-fibo-canonicalKeyOrder"] ?? Object.keys(node.properties);
  const keys = [...order.filter((k) => k in node.properties), ...Object.keys(node.properties).filter((k) => !order.includes(k))];
  const needed = new Set(node.required ?? []);
  const children = keys.map((k) => [k, build(schema, node.properties[k], value[k], `${path}.${k}`, k, needed.has(k))]);
  const get = () => {
    const out = {};
    for (const [k, child] of children) {
      const v = child.get();
      if (!isEmpty(v)) out[k] = v;
    }
    return isEmpty(out) ? undefined : out;
  };
  if (key === null) return { el: h("div", { class: "fibo-root" }, children.map(([, c]) => c.el)), get };
  // Required fields first, the optional ones folded away unless one of them is filled in.
  const [shown, folded] = [children.filter(([k]) => needed.has(k)), children.filter(([k]) => !needed.has(k))];
  const filled = folded.filter(([, c]) => !isEmpty(c.get())).length;
  const more = folded.length
    ? h(
        "details",
        { class: "more", open: filled > 0 },
        h("summary", {}, `More fields (${filled} of ${folded.length} filled)`),
        folded.map(([, c]) => c.el),
      )
    : null;
  const el = h(
    "fieldset",
    { class: "group", "data-path": path },
    h("legend", {}, humanize(key), required ? h("span", { class: "req", title: "required" }, " *") : null),
    h("div", { class: "problems", "data-problems-for": path }),
    h("div", { class: "group-fields" }, shown.map(([, c]) => c.el)),
    more,
  );
  return { el, get };
}

function arrayNode(schema, node, value, path, key, required) {
  const itemSchema = resolve(schema, node.items);
  const itemName = ITEM_NAMES[key] ?? "Item";
  const list = h("ol", { class: "items" });
  let items = [];
  const el = h(
    "fieldset",
    { class: "group list", "data-path": path },
    h("legend", {}, humanize(key), required ? h("span", { class: "req", title: "required" }, " *") : null),
    h("div", { class: "problems", "data-problems-for": path }),
    list,
  );
  const changed = () => el.dispatchEvent(new Event("input", { bubbles: true }));
  const render = (values) => {
    items = values.map((v, i) => {
      const child = objectNode(schema, itemSchema, v ?? {}, `${path}[${i}]`, `${itemName} ${i + 1}`, false);
      const remove = h(
        "button",
        { type: "button", class: "quiet small", "aria-label": `Remove ${itemName.toLowerCase()} ${i + 1}` },
        "Remove",
      );
      remove.addEventListener("click", () => {
        render(current().filter((_, j) => j !== i));
        changed();
      });
      child.el.querySelector("legend").append(" ", remove);
      return child;
    });
    list.replaceChildren(...items.map((item) => h("li", {}, item.el)));
  };
  // Values as the fields hold them, empty items included (so indices match what is on screen).
  const current = () => items.map((item) => item.get() ?? {});
  const add = h("button", { type: "button", class: "small" }, `Add ${itemName.toLowerCase()}`);
  add.addEventListener("click", () => {
    render([...current(), {}]);
    changed();
    list.lastElementChild?.querySelector("input, textarea, select")?.focus();
  });
  el.append(add);
  render(value);
  return {
    el,
    get: () => {
      const values = current().filter((v) => !isEmpty(v));
      return values.length ? values : undefined;
    },
  };
}

function leafNode(node, value, path, key, required) {
  const id = nextId("fibo");
  const problemsId = nextId("problems");
  const common = { id, name: path, "aria-describedby": problemsId, required };
  let control;
  let get;
  if (node.enum) {
    control = h("select", common, h("option", { value: "" }, "—"), node.enum.map((label) => h("option", { value: label }, label)));
    control.value = node.enum.includes(value) ? value : "";
    get = () => control.value || undefined;
  } else if (types(node).includes("integer")) {
    control = h("input", { ...common, type: "number", min: String(node.minimum ?? 1), step: "1", inputmode: "numeric" });
    control.value = value ?? "";
    get = () => (control.value === "" ? undefined : Number(control.value));
  } else {
    const placeholder = node.examples?.[0] ? `e.g. ${node.examples[0]}` : "";
    // Textareas that grow with their text (field-sizing), so a long value is read whole.
    control = h("textarea", { ...common, rows: key === "short_description" ? "3" : LONG_TEXT.has(key) ? "2" : "1", placeholder });
    control.value = typeof value === "string" ? value : value == null ? "" : String(value);
    get = () => (control.value === "" ? undefined : control.value);
  }
  const el = h(
    "div",
    { class: "field", "data-path": path },
    h("label", { for: id, title: node.description ?? "" }, humanize(key), required ? h("span", { class: "req", title: "required" }, " *") : null),
    control,
    h("div", { class: "problems", id: problemsId, "data-problems-for": path }),
  );
  return { el, get };
}
