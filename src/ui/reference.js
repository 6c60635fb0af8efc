// Renders /api/v1/openapi.json as a readable page: operations by tag, their parameters,
// bodies and answers, then the schemas they name. Plain DOM, no framework, no network but
// the document itself.
"use strict";

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) node.append(c);
  }
  return node;
};

// Markdown-ish text: `code` only, everything else as text (never as HTML).
const prose = (text) => {
  const out = el("span");
  (text || "").split(/(`[^`]*`)/).forEach((part) => {
    out.append(part.startsWith("`") && part.endsWith("`") && part.length > 1
      ? el("code", {}, part.slice(1, -1))
      : part);
  });
  return out;
};

const refName = (ref) => ref.split("/").pop();

// A short type expression for a schema: `string`, `[Endpoint]`, `integer ≥ 1`, `a | b`.
function typeOf(schema) {
  if (!schema) return "";
  if (schema.$ref) {
    const name = refName(schema.$ref);
    return el("a", { href: `#schema-${name}` }, name);
  }
  if (schema.oneOf || schema.anyOf) {
    const parts = (schema.oneOf || schema.anyOf).map(typeOf);
    return el("span", {}, ...parts.flatMap((p, i) => (i ? [" | ", p] : [p])));
  }
  if (schema.allOf) {
    const parts = schema.allOf.map(typeOf);
    return el("span", {}, ...parts.flatMap((p, i) => (i ? [" & ", p] : [p])));
  }
  let type = schema.type;
  if (Array.isArray(type)) type = type.filter((t) => t !== "null").join(" | ") + (type.includes("null") ? "?" : "");
  if (type === "array" || (Array.isArray(schema.type) && schema.type.includes("array"))) {
    return el("span", {}, "[", typeOf(schema.items), "]");
  }
  const notes = [];
  if (schema.enum) notes.push(schema.enum.map((v) => JSON.stringify(v)).join(" | "));
  if (schema.pattern) notes.push(`/${schema.pattern}/`);
  if (schema.minimum !== undefined) notes.push(`≥ ${schema.minimum}`);
  if (schema.maximum !== undefined) notes.push(`≤ ${schema.maximum}`);
  if (schema.minLength !== undefined) notes.push(`length ≥ ${schema.minLength}`);
  return el("span", {}, type || "any", notes.length ? el("span", { class: "muted" }, " " + notes.join(", ")) : null);
}

function properties(schema) {
  const rows = Object.entries(schema.properties || {}).map(([name, prop]) =>
    el("tr", {},
      el("td", {}, el("code", {}, name), (schema.required || []).includes(name) ? el("span", { class: "req" }, " required") : null),
      el("td", {}, typeOf(prop)),
      el("td", {}, prose(prop.description))));
  return rows.length ? el("table", {}, el("tbody", {}, rows)) : null;
}

function operation(method, path, op) {
  const params = (op.parameters || []).map((p) =>
    el("tr", {},
      el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "req" }, " required") : null),
      el("td", {}, p.in),
      el("td", {}, typeOf(p.schema)),
      el("td", {}, prose(p.description))));
  const body = op.requestBody
    ? Object.entries(op.requestBody.content || {}).map(([type, c]) =>
      el("p", {}, "Body ", el("code", {}, type), ": ", typeOf(c.schema),
        op.requestBody.required ? "" : el("span", { class: "muted" }, " (optional)")))
    : [];
  // The error answers every call may get are listed once, in the schema ErrorBody's row.
  const isError = ([, r]) => Object.values(r.content || {}).some((c) => c.schema && c.schema.$ref && refName(c.schema.$ref) === "ErrorBody");
  const entries = Object.entries(op.responses || {});
  const errors = entries.filter(isError).map(([status, r]) =>
    el("span", { class: `status s${status[0]}`, title: r.description }, status, " "));
  const answers = entries.filter((e) => !isError(e)).map(([status, r]) => {
    const content = Object.entries(r.content || {})[0];
    return el("tr", {},
      el("td", {}, el("span", { class: `status s${status[0]}` }, status)),
      el("td", {}, prose(r.description)),
      el("td", {}, content ? typeOf(content[1].schema) : ""));
  });
  const open = op.security && op.security.some((s) => Object.keys(s).length === 0);
  return el("section", { class: "op", id: op.operationId || `${method}-${path}` },
    el("h3", {}, el("span", { class: `method ${method}` }, method.toUpperCase()), " ", el("code", {}, path),
      open ? el("span", { class: "muted" }, " no key") : null),
    op.summary ? el("p", {}, prose(op.summary)) : null,
    op.description ? el("p", { class: "muted" }, prose(op.description)) : null,
    params.length ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, ""))), el("tbody", {}, params)) : null,
    body,
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "answer"), el("th", {}, "body"))), el("tbody", {}, answers,
      errors.length ? el("tr", {}, el("td", {}, errors), el("td", {}, "errors (hover for when)"), el("td", {}, el("a", { href: "#schema-ErrorBody" }, "ErrorBody"))) : null)));
}

function render(doc) {
  const root = document.getElementById("reference");
  root.replaceChildren();
  root.append(el("h1", {}, doc.info.title, " ", el("span", { class: "muted" }, doc.info.version)),
    el("p", {}, prose(doc.info.description)));
  const byTag = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
      byTag.get(tag).ops.push([method, path, op]);
    }
  }
  const nav = el("nav", { class: "toc" });
  root.append(nav);
  for (const { tag, ops } of byTag.values()) {
    if (!ops.length) continue;
    nav.append(el("a", { href: `#tag-${tag.name.replace(/ /g, "-")}` }, tag.name));
    root.append(el("h2", { id: `tag-${tag.name.replace(/ /g, "-")}` }, tag.name),
      tag.description ? el("p", { class: "muted" }, prose(tag.description)) : null,
      ...ops.map(([m, p, o]) => operation(m, p, o)));
  }
  const schemas = Object.entries((doc.components || {}).schemas || {});
  nav.append(el("a", { href: "#schemas" }, "schemas"));
  root.append(el("h2", { id: "schemas" }, "Schemas"),
    ...schemas.map(([name, s]) => el("section", { class: "op", id: `schema-${name}` },
      el("h3", {}, el("code", {}, name)),
      s.description ? el("p", {}, prose(s.description)) : null,
      properties(s) || el("p", {}, typeOf(s)),
      (s.allOf || []).map((part) => properties(part) || el("p", {}, typeOf(part))))));
}

fetch("/api/v1/openapi.json")
  .then((res) => (res.ok ? res.json() : Promise.reject(new Error(`HTTP ${res.status}`))))
  .then(render)
  .catch((e) => {
    document.getElementById("reference").replaceChildren(el("p", { class: "error" }, `The description could not be read: ${e.message}`));
  });
