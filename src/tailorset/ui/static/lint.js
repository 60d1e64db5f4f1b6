// Caption lint beside the caption in the editor: its length in the tokens of the text encoder that will read
// it, and what would hurt training (prefix missing or repeated, no subject, control characters, FIBO fields
// left "not determined"…), checked by POST /captions/lint as you type.

import { api } from "./api.js";
import { debounce, fill, h } from "./dom.js";

export function createLint(getDataset) {
  const el = h("div", { class: "lint", "aria-live": "polite" });
  let sequence = 0;

  function render(result) {
    const encoder = result.encoder;
    const over = result.tokens != null && result.tokens > encoder.limit;
    const count =
      result.tokens == null
        ? "no caption"
        : `${encoder.exact ? "" : "about "}${result.tokens} of ${encoder.limit} ${encoder.name} tokens${encoder.exact ? "" : " (estimated)"}`;
    const same = result.same_caption_image_ids.length
      ? h("li", { class: "problem warning" }, `The same caption as image ${result.same_caption_image_ids.join(", ")}.`)
      : null;
    fill(
      el,
      h("p", { class: `tokens ${over ? "over" : ""}` }, count),
      result.findings.length || same
        ? h(
            "ul",
            { class: "problem-list" },
            result.findings.map((f) => h("li", { class: `problem ${f.blocking ? "error" : "warning"}`, dataset: { rule: f.rule } }, f.message)),
            same,
          )
        : h("p", { class: "valid" }, "✓ No lint findings"),
    );
  }

  // imageId: the image being edited, whose own stored caption is not "the same caption" as the draft.
  const check = debounce(async (text, imageId) => {
    const mine = ++sequence;
    try {
      const result = await api.post(`/datasets/${getDataset().id}/captions/lint`, { caption: text, image_id: imageId });
      if (mine === sequence) render(result);
    } catch (error) {
      if (mine === sequence) fill(el, h("p", { class: "problem warning" }, `Lint is unavailable: ${error.message}`));
    }
  }, 300);

  return { el, check, cancel: () => check.cancel() };
}
