// The dataset health page (#/datasets/ID/health): what to fix before training, from GET /datasets/ID/health.
// Charts are small SVGs drawn here (no chart library); duplicates come in groups with their thumbnails and a
// "Delete all but one" button.

import { api } from "./api.js";
import { confirmDialog, fill, h, notify, setCrumbs } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 2000;

function svg(tag, attributes = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

/** A bar chart: bars [{label, value, over}] and an optional dashed limit line at `limit` (an x position, in bars). */
export function barChart(bars, { title, limitAt = null, limitLabel = "" } = {}) {
  const width = 420;
  const height = 150;
  const bottom = 24;
  const max = Math.max(1, ...bars.map((b) => b.value));
  const step = width / Math.max(1, bars.length);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height + bottom}`, class: "chart", role: "img", "aria-label": title });
  chart.append(svg("title", {}, title));
  bars.forEach((bar, i) => {
    const barHeight = Math.max(1, (bar.value / max) * height);
    const rect = svg("rect", {
      class: `bar${bar.over ? " over" : ""}`, x: i * step + 2, y: height - barHeight, width: Math.max(1, step - 4), height: barHeight,
    });
    rect.append(svg("title", {}, `${bar.label}: ${bar.value}`));
    chart.append(rect);
    if (bars.length <= 16 || i % Math.ceil(bars.length / 16) === 0) {
      chart.append(svg("text", { class: "label", x: i * step + step / 2, y: height + 14, "text-anchor": "middle" }, bar.label));
    }
  });
  if (limitAt !== null) {
    const x = limitAt * step;
    chart.append(svg("line", { class: "limit", x1: x, x2: x, y1: 0, y2: height }));
    chart.append(svg("text", { class: "axis", x: x + 4, y: 10 }, limitLabel));
  }
  return chart;
}

export async function healthView(root, datasetId) {
  const dataset = await api.get(`/datasets/${datasetId}`, { max_images: 1 });
  setCrumbs(
    { text: "Projects", href: "#/projects" },
    { text: dataset.name, href: `#/datasets/${datasetId}` },
    { text: "Health" },
  );
  let timer = null;
  let alive = true;

  async function load() {
    clearTimeout(timer);
    const report = await api.get(`/datasets/${datasetId}/health`);
    if (!alive) return;
    render(report);
    if (!report.complete) timer = setTimeout(() => load().catch((e) => notify("error", e.message)), POLL_MS);
  }

  function thumb(report, id) {
    const info = report.images[String(id)];
    return h(
      "li",
      {},
      h(
        "figure",
        { dataset: { id: String(id) } },
        info ? h("img", { src: info.thumbnail_url, alt: info.image_name ?? `image ${id}`, loading: "lazy" }) : null,
        h("figcaption", {}, info?.image_name ?? `#${id}`),
      ),
    );
  }

  function thumbs(report, ids) {
    return h("ul", { class: "thumbs" }, ids.map((id) => thumb(report, id)));
  }

  function duplicates(report, groups, kind) {
    return groups.map((group) => {
      const button = h("button", { type: "button", class: "small", disabled: report.status === "completed" }, "Delete all but one");
      button.addEventListener("click", () => deleteAllButOne(group.image_ids, kind));
      return h("div", { class: `dup-group ${kind}` }, thumbs(report, group.image_ids), button);
    });
  }

  async function deleteAllButOne(ids, kind) {
    const [keep, ...doomed] = ids;
    const ok = await confirmDialog({
      title: `Delete ${doomed.length} of these ${ids.length} ${kind} pictures?`,
      body: `Image ${keep} (the first uploaded) is kept; the others leave the dataset.`,
      confirm: `Delete ${doomed.length}`,
      danger: true,
    });
    if (!ok) return;
    try {
      await api.post(`/datasets/${datasetId}/images/delete`, { image_ids: doomed });
      notify("success", `Deleted ${doomed.length} ${doomed.length === 1 ? "duplicate" : "duplicates"}; kept image ${keep}.`);
      await load();
    } catch (error) {
      notify("error", `Not deleted: ${error.message}`);
    }
  }

  function render(report) {
    const ready = report.ready;
    const verdict = h(
      "p",
      { class: `verdict ${ready ? "ready" : "not-ready"}` },
      ready ? "Ready to train" : `Not ready: ${report.blocking} blocking ${report.blocking === 1 ? "problem" : "problems"}`,
    );
    const pending = report.complete
      ? null
      : h("p", { class: "meta", role: "status" }, `Still measuring: ${report.pending.measurements} images and ${report.pending.lint} captions to go…`);
    const problems = h(
      "ul",
      { class: "health-problems" },
      [...report.problems].sort((a, b) => (a.severity === "blocking" ? 0 : 1) - (b.severity === "blocking" ? 0 : 1)).map((p) =>
        h(
          "li",
          { class: `problem ${p.severity === "blocking" ? "error" : "warning"}`, dataset: { rule: p.rule } },
          `${p.severity === "blocking" ? "Blocking" : "Warning"}: ${p.message}`,
          // Where to start reviewing: the queue puts the captioner's least sure captions first.
          p.rule === "doubtful_captions" ? [" ", h("a", { href: `#/datasets/${datasetId}/review` }, "Open the review queue")] : null,
        ),
      ),
    );
    const review = report.review;
    const total = report.images_count;
    const reviewed = total - review.unreviewed;
    const encoder = report.captions.encoder;
    const tokens = report.captions.token_histogram;
    const bucketSize = tokens.length ? tokens[0].to - tokens[0].from + 1 : 1;
    const tokenBars = [];
    const lastBar = tokens.length ? tokens.at(-1).from / bucketSize : 0;
    for (let i = 0; i <= lastBar; i++) {
      const found = tokens.find((t) => t.from === i * bucketSize);
      tokenBars.push({ label: String(i * bucketSize), value: found?.count ?? 0, over: (i + 1) * bucketSize - 1 > encoder.limit });
    }
    const buckets = report.buckets.counts.map((b) => ({ label: `${b.width}×${b.height}`, value: b.count }));
    const words = report.captions.top_words;

    fill(
      root,
      h("div", { class: "health-summary" }, h("h1", {}, `Health of “${dataset.name}”`), verdict, h("a", { href: `#/datasets/${datasetId}` }, "Back to the images")),
      pending,
      h("p", { class: "meta" }, `${total} images · ${reviewed} of ${total} reviewed (${review.flagged} flagged) · ${report.training_version}`),
      h(
        "div",
        { class: "health-sections" },
        h("section", { "aria-labelledby": "h-problems" }, h("h2", { id: "h-problems" }, "What to fix"), report.problems.length ? problems : h("p", { class: "valid" }, "Nothing to report.")),
        h(
          "section",
          { "aria-labelledby": "h-duplicates", class: "duplicates" },
          h("h2", { id: "h-duplicates" }, "Duplicates"),
          report.duplicates.exact.length || report.duplicates.near.length ? null : h("p", { class: "empty" }, "No duplicates."),
          report.duplicates.exact.length ? h("h3", {}, "Exact copies") : null,
          duplicates(report, report.duplicates.exact, "exact"),
          report.duplicates.near.length ? h("h3", {}, "Near-duplicates") : null,
          duplicates(report, report.duplicates.near, "near-duplicate"),
        ),
        h(
          "section",
          { "aria-labelledby": "h-issues", class: "image-issues" },
          h("h2", { id: "h-issues" }, "Image issues"),
          report.image_issues.filter((i) => i.count).map((issue) =>
            h("div", { class: "issue", dataset: { issue: issue.issue } }, h("h3", {}, `${issue.count} ${issue.description}`), thumbs(report, issue.image_ids)),
          ),
        ),
        h(
          "section",
          { "aria-labelledby": "h-tokens" },
          h("h2", { id: "h-tokens" }, "Caption length"),
          h("p", { class: "meta" }, `${encoder.name} tokens${encoder.exact ? "" : " (estimated)"}; it reads ${encoder.limit}.`),
          barChart(tokenBars, { title: "Captions by length in tokens", limitAt: encoder.limit / bucketSize, limitLabel: `${encoder.limit}` }),
        ),
        h(
          "section",
          { "aria-labelledby": "h-buckets" },
          h("h2", { id: "h-buckets" }, "Aspect-ratio buckets"),
          h("p", { class: "meta" }, "As kohya's sd-scripts forms them: 1024² pixels, 64-px steps."),
          barChart(buckets, { title: "Images per bucket" }),
          report.buckets.most_cropped.length
            ? h("ul", { class: "meta" }, report.buckets.most_cropped.slice(0, 5).map((c) => h("li", {}, `${c.width}×${c.height} → ${c.bucket.join("×")}: ${Math.round(c.cropped * 100)}% cropped (images ${c.image_ids.join(", ")})`)))
            : null,
        ),
        h(
          "section",
          { "aria-labelledby": "h-words" },
          h("h2", { id: "h-words" }, "Most frequent words"),
          words.length ? barChart(words.slice(0, 12).map((w) => ({ label: w.word, value: w.count })), { title: "Most frequent words" }) : h("p", { class: "empty" }, "No captions yet."),
        ),
      ),
    );
  }

  await load();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
