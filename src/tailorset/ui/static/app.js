// The workbench: a hash router and the login, projects and project views.
// The dataset view (grid, editor) lives in dataset.js; the views of its toolbar in replace.js,
// transfer.js, guidance.js and review.js.

import { ApiError, api, onUnauthorized, request, session } from "./api.js";
import { datasetView } from "./dataset.js";
import { healthView } from "./health.js";
import { clearNotifications, fill, formatTime, h, messageBox, notify, setCrumbs, statusBadge } from "./dom.js";

const main = document.getElementById("main");
const logout = document.getElementById("logout");

const IP_TYPES = [
  "stylized_scene", "multi_object_set", "object_variants", "defined_character", "character_variants", "icons", "other",
];
const LEGACY_VERSIONS = ["max", "light", "3.2", "2.3"];

let cleanup = null;
let afterLogin = "#/projects";

async function route() {
  if (cleanup) cleanup();
  cleanup = null;
  const hash = location.hash || "#/projects";
  if (!session.token) {
    if (hash !== "#/login") afterLogin = hash;
    return render(loginView);
  }
  logout.hidden = false;
  let match;
  if (hash === "#/login" || hash === "#/" || hash === "#/projects") return render(projectsView);
  if ((match = hash.match(/^#\/projects\/(\d+)$/))) return render(projectView, Number(match[1]));
  if ((match = hash.match(/^#\/datasets\/(\d+)$/))) return render(datasetView, Number(match[1]));
  if ((match = hash.match(/^#\/datasets\/(\d+)\/health$/))) return render(healthView, Number(match[1]));
  // The review queue: the dataset's unreviewed images, least sure first (the health report links here).
  if ((match = hash.match(/^#\/datasets\/(\d+)\/review$/))) return render(datasetView, Number(match[1]), { queue: true });
  setCrumbs({ text: "Projects", href: "#/projects" }, { text: "Not found" });
  fill(main, h("h1", {}, "No such page"), h("p", {}, h("a", { href: "#/projects" }, "Back to your projects")));
}

async function render(view, ...args) {
  main.replaceChildren(h("p", { class: "loading" }, "Loading…"));
  try {
    cleanup = (await view(main, ...args)) ?? null;
    // A new page: focus its start (as a page load would), unless the view focused a field itself.
    if (!main.contains(document.activeElement) || document.activeElement === document.body) main.focus({ preventScroll: true });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) return;
    fill(main, h("h1", {}, "This page could not be loaded"), h("p", { class: "message error", role: "alert" }, error.message));
  }
}

function loginView(root) {
  logout.hidden = true;
  setCrumbs({ text: "Sign in" });
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const box = messageBox();
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card-form login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in to the caption workbench"),
    h("label", { for: "token" }, "API token"),
    input,
    h("p", { class: "hint" }, "Create one with ", h("code", {}, "tailorset token create --org NAME"), ". It is kept in this tab only."),
    box.el,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    button.disabled = true;
    box.show("info", "Checking the token…");
    try {
      await request("GET", "/projects", { token }); // any authenticated call tells whether the token is good
      session.signIn(token);
      const target = afterLogin === "#/login" ? "#/projects" : afterLogin;
      if (location.hash === target) route();
      else location.hash = target;
    } catch (error) {
      box.show("error", `Not signed in: ${error.message}`);
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  fill(root, form);
  input.focus();
}

async function projectsView(root) {
  setCrumbs({ text: "Projects" });
  const projects = await api.get("/projects");
  const list = projects.length
    ? h(
        "ul",
        { class: "rows", "aria-label": "Projects" },
        projects.map((p) =>
          h(
            "li",
            {},
            h("a", { href: `#/projects/${p.id}`, class: "row-title" }, p.project_name),
            h("span", { class: "meta" }, `${p.ip_medium} · ${p.ip_type}${p.training_version ? ` · ${familyOf(p.training_version)}` : ""}`),
            h("span", { class: "meta" }, `updated ${formatTime(p.updated_at)}`),
          ),
        ),
      )
    : h("p", { class: "empty" }, "No projects yet: create the first one below.");
  fill(root, h("h1", {}, "Projects"), list, newProjectForm());
}

function familyOf(version) {
  return version === "fibo" ? "FIBO" : "legacy";
}

function newProjectForm() {
  const box = messageBox();
  const name = h("input", { id: "project-name", name: "project_name", required: true, maxlength: "500" });
  const medium = h("select", { id: "project-medium", name: "ip_medium" }, h("option", {}, "photography"), h("option", {}, "illustration"));
  const type = h("select", { id: "project-type", name: "ip_type" }, IP_TYPES.map((t) => h("option", {}, t)));
  const form = h(
    "form",
    { class: "card-form inline", "aria-labelledby": "new-project" },
    h("h2", { id: "new-project" }, "New project"),
    field("Name", name),
    field("Medium", medium),
    field("Type", type),
    h("button", { type: "submit", class: "primary" }, "Create project"),
    box.el,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const project = await api.post("/projects", { project_name: name.value, ip_medium: medium.value, ip_type: type.value });
      location.hash = `#/projects/${project.id}`;
    } catch (error) {
      box.show("error", `Project not created: ${error.message}`);
    }
  });
  return form;
}

function field(label, control) {
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control);
}

async function projectView(root, projectId) {
  const [project, datasets] = await Promise.all([
    api.get(`/projects/${projectId}`),
    api.get(`/projects/${projectId}/datasets`),
  ]);
  setCrumbs({ text: "Projects", href: "#/projects" }, { text: project.project_name });
  const table = datasets.length
    ? h(
        "table",
        { class: "datasets" },
        h("caption", { class: "visually-hidden" }, "Datasets"),
        h("thead", {}, h("tr", {}, ["Dataset", "Status", "Version", "Images", "Updated"].map((t) => h("th", { scope: "col" }, t)))),
        h(
          "tbody",
          {},
          datasets.map((d) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, h("a", { href: `#/datasets/${d.id}` }, d.name)),
              h("td", {}, statusBadge(d.status)),
              h("td", {}, d.training_version),
              h("td", { class: "num" }, String(d.images_count)),
              h("td", {}, formatTime(d.updated_at)),
            ),
          ),
        ),
      )
    : h("p", { class: "empty" }, "No datasets in this project yet.");
  const description = project.project_description ? h("p", {}, project.project_description) : null;
  fill(
    root,
    h("h1", {}, project.project_name),
    description,
    h("p", { class: "meta" }, `${project.ip_medium} · ${project.ip_type}`),
    table,
    newDatasetForm(project),
  );
}

function newDatasetForm(project) {
  const box = messageBox();
  // A project is locked to one family by its first dataset: offer only what it accepts.
  const versions =
    project.training_version === "fibo" ? ["fibo"] : project.training_version ? LEGACY_VERSIONS : [...LEGACY_VERSIONS, "fibo"];
  const name = h("input", { id: "dataset-name", name: "name", required: true, maxlength: "500" });
  const version = h("select", { id: "dataset-version", name: "training_version" }, versions.map((v) => h("option", {}, v)));
  const prefix = h("input", { id: "dataset-prefix", name: "caption_prefix", maxlength: "1000", placeholder: "trigger word, e.g. sks style" });
  const prefixField = field("Caption prefix", prefix);
  const syncPrefix = () => (prefixField.hidden = version.value === "fibo"); // FIBO captions are JSON: no prefix
  version.addEventListener("change", syncPrefix);
  syncPrefix();
  const form = h(
    "form",
    { class: "card-form inline", "aria-labelledby": "new-dataset" },
    h("h2", { id: "new-dataset" }, "New dataset"),
    field("Name", name),
    field("Training version", version),
    prefixField,
    h("button", { type: "submit", class: "primary" }, "Create dataset"),
    box.el,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const dataset = await api.post("/datasets", { project_id: project.id, name: name.value, training_version: version.value });
      if (prefix.value.trim() && version.value !== "fibo") {
        try {
          await api.put(`/datasets/${dataset.id}`, { caption_prefix: prefix.value.trim() });
        } catch (error) {
          notify("error", `Dataset created, but its caption prefix was not set: ${error.message}`);
        }
      }
      location.hash = `#/datasets/${dataset.id}`;
    } catch (error) {
      box.show("error", `Dataset not created: ${error.message}`);
    }
  });
  return form;
}

onUnauthorized((error) => {
  session.signOut();
  clearNotifications();
  notify("error", `Signed out: ${error.message} Sign in again with a valid token.`);
  if (location.hash === "#/login") route();
  else location.hash = "#/login";
});

logout.addEventListener("click", () => {
  session.signOut();
  clearNotifications();
  notify("info", "Signed out. The token was removed from this tab.");
  location.hash = "#/login";
});

window.addEventListener("hashchange", route);
route();
