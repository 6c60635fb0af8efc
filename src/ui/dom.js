// Small DOM helpers shared by the dashboard's views. Text always goes in as text, never HTML.

export const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "value") node.value = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) node.append(c);
  }
  return node;
};

export const svg = (tag, attrs = {}, ...children) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children.flat()) if (c) node.append(c);
  return node;
};

export const time = (ms) => (ms ? new Date(ms).toLocaleString() : "–");
export const ago = (ms) => {
  if (!ms) return "–";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
};
export const pct = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(1)}%`);
export const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString());

// A status word as a coloured badge.
export const badge = (status) => el("span", { class: `badge ${status}` }, status);

// Pretty JSON in a <pre>, from an object or a string holding JSON.
export const json = (value) => {
  let text = value;
  if (typeof value !== "string") text = JSON.stringify(value, null, 2);
  else {
    try { text = JSON.stringify(JSON.parse(value), null, 2); } catch { /* not JSON: as is */ }
  }
  return el("pre", { class: "json" }, text);
};

export const table = (head, rows, empty = "Nothing here.") =>
  rows.length
    ? el("table", {}, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))), el("tbody", {}, rows))
    : el("p", { class: "muted empty" }, empty);

export const card = (label, value, note) =>
  el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "value" }, value), note ? el("div", { class: "note" }, note) : null);

// A message at the top of the view that goes away by itself.
export function flash(text, kind = "ok") {
  const area = document.getElementById("flash") || document.body.appendChild(el("div", { id: "flash" }));
  const note = el("div", { class: `flash ${kind}`, role: "status" }, text);
  area.append(note);
  setTimeout(() => note.remove(), 6000);
}

// A labelled form field.
export const field = (label, input, help) =>
  el("label", { class: "field" }, el("span", {}, label), input, help ? el("small", { class: "muted" }, help) : null);

// Form values by input name; empty strings left out.
export function values(form) {
  const out = {};
  for (const [k, v] of new FormData(form).entries()) {
    if (typeof v === "string" && v.trim() !== "") out[k] = v.trim();
  }
  return out;
}

// Replaces `node`'s children: arrays are flattened, absent ones (null, false) left out.
export const put = (node, ...children) =>
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
