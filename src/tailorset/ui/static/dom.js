// DOM helpers. Captions and names only ever reach the page as text nodes, never as HTML.

/** h("button", {class: "x", onclick: fn, disabled: true}, "text", child…) → an element. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
export const nextId = (prefix) => `${prefix}-${++uid}`;

/** A message area inside a view: errors are announced (role=alert), the rest politely. */
export function messageBox(className = "") {
  const el = h("div", { class: `message-box ${className}` });
  return {
    el,
    show(kind, ...content) {
      const message = h(
        "div",
        { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" },
        h("span", { class: "message-text" }, ...content),
      );
      fill(el, message);
      return message;
    },
    clear() {
      el.replaceChildren();
    },
  };
}

/** Page-level messages, under the top bar. Successes fade after a while; errors stay until closed. */
export function notify(kind, ...content) {
  const area = document.getElementById("messages");
  const close = h("button", { type: "button", class: "quiet close", "aria-label": "Dismiss message" }, "×");
  const message = h(
    "div",
    { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", { class: "message-text" }, ...content),
    close,
  );
  close.addEventListener("click", () => message.remove());
  area.append(message);
  while (area.children.length > 3) area.firstElementChild.remove();
  if (kind !== "error") setTimeout(() => message.remove(), 8000);
  return message;
}

export function clearNotifications() {
  document.getElementById("messages").replaceChildren();
}

/** A source badge: automatic, manual, or no caption. */
export function sourceBadge(source) {
  const label = source ?? "no caption";
  return h("span", { class: `badge source-${source ?? "none"}`, title: `Caption source: ${label}` }, label);
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status);
}

/** Run `fn` at most once per `ms` of quiet. */
export function debounce(fn, ms) {
  let timer;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

/** Is the user typing into this element (so single-letter shortcuts must not fire)? */
export function isTyping(target) {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
  if (target.tagName !== "INPUT") return false;
  return !["button", "checkbox", "radio", "submit", "reset", "range", "color", "file"].includes(target.type);
}

/** A modal confirmation (<dialog>), resolved true or false; never the browser's blocking confirm(). */
export function confirmDialog({ title, body, confirm, danger = false, extra = null, focus = null }) {
  return new Promise((resolve) => {
    const titleId = nextId("confirm-title");
    const ok = h("button", { type: "submit", class: danger ? "danger" : "primary", value: "ok" }, confirm);
    const cancel = h("button", { type: "submit", value: "cancel", formnovalidate: true }, "Cancel");
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": titleId },
      h(
        "form",
        { method: "dialog" },
        h("h2", { id: titleId }, title),
        h("p", {}, body),
        extra,
        h("div", { class: "actions" }, ok, cancel),
      ),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "ok");
    });
    document.body.append(dialog);
    dialog.showModal();
    (focus ?? ok).focus();
  });
}

export function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** The breadcrumb trail in the top bar: [{text, href}…], the last one being this page. */
export function setCrumbs(...items) {
  const last = items.length - 1;
  document.title = `${items[last].text} — tailorset`;
  fill(
    document.getElementById("crumbs"),
    h(
      "ol",
      {},
      items.map((item, i) =>
        h("li", {}, i < last ? h("a", { href: item.href }, item.text) : h("span", { "aria-current": "page" }, item.text)),
      ),
    ),
  );
}

/** A modal <dialog> titled `title`, shown at once and removed from the page when it closes. */
export function modal(title, className, ...content) {
  const heading = h("h2", { id: nextId("modal-title") }, title);
  const dialog = h("dialog", { class: className, "aria-labelledby": heading.id }, heading, ...content);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}
