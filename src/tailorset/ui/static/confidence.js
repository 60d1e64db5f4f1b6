// Caption confidence: what the captioner said of its own automatic caption (0-1, and the signals it rests on),
// read with ?include=confidence (api.js IMAGE_EXTRAS). A badge on each card and beside the caption in the editor, so a reviewer
// reads the doubtful captions first; nothing at all for manual captions and captioners that give none.

import { h } from "./dom.js";

// The local captioner writes a subject into the caption at 0.6 or more (captioners/fusion.py CAPTION_MIN).
const LEVELS = [
  [0.8, "high"],
  [0.6, "medium"],
  [0, "low"],
];

/** "82%" in a badge coloured by level, with the signals in its tooltip; null when there is no confidence. */
export function confidenceBadge(image) {
  const value = image.caption_confidence;
  if (value === null || value === undefined) return null;
  const level = LEVELS.find(([floor]) => value >= floor)[1];
  const percent = `${Math.round(value * 100)}%`;
  return h(
    "span",
    { class: `badge confidence confidence-${level}`, title: describe(image.caption_signals, percent), "aria-label": `Captioner confidence ${percent}` },
    percent,
  );
}

/** One line saying what the caption rests on, e.g. "a tabby cat — classifier + detector", or what it left
 * out for doubt: "not named, perhaps a dog — classifier". */
export function signalsLine(image) {
  const signals = image.caption_signals;
  if (!signals || image.caption_confidence == null) return null;
  const subject = signals.subject ?? (signals.guess ? `not named, perhaps ${signals.guess}` : "no subject named");
  const evidence = (signals.evidence ?? []).join(" + ");
  return h("span", { class: "meta signals" }, evidence ? `${subject} — ${evidence}` : subject);
}

function describe(signals, percent) {
  const lines = [`Captioner confidence ${percent}`];
  if (signals?.subject) lines.push(`Subject: ${signals.subject}`);
  if (signals?.guess) lines.push(`Not named, too doubtful: ${signals.guess}`);
  if (signals?.evidence?.length) lines.push(`Rests on: ${signals.evidence.join(", ")}`);
  for (const [label, score] of signals?.detector ?? []) lines.push(`Detected: ${label} ${Math.round(score * 100)}%`);
  const [place, score] = signals?.scene?.[0] ?? [];
  if (place) lines.push(`Place: ${place} ${Math.round(score * 100)}%`);
  return lines.join("\n");
}
