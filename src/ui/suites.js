// Test suites: one Meta-shaped sample of every type for an account, through hookd's own
// ingress to the endpoints named, and per type whether it passed.
import { put, el, badge, time, table, flash, values, field } from "./dom.js";
import { get, post, api } from "./api.js";

const OBJECTS = [["whatsapp_business_account", "WhatsApp"], ["page", "Page and Messenger"], ["instagram", "Instagram"]];

export async function suites(view, ctx) {
  const [list, eps] = await Promise.all([get("/test-suites?limit=500"), get("/endpoints?limit=500")]);
  const form = el("form", { class: "panel", id: "new-suite", onsubmit: async (e) => {
    e.preventDefault();
    const v = values(form);
    const body = {
      name: v.name, source: v.source, object: v.object, account_id: v.account_id,
      endpoint_ids: [...form.querySelectorAll("input[name=endpoint]:checked")].map((i) => i.value),
    };
    if (ctx.admin && v.tenant_id) body.tenant_id = v.tenant_id;
    try {
      const s = await post("/test-suites", body);
      flash(`Suite ${s.name} saved.`);
      location.hash = `#/suites/${s.id}`;
    } catch (err) { flash(`${err.body?.error?.field ? err.body.error.field + ": " : ""}${err.message}`, "error"); }
  } },
  el("h2", {}, "New suite"),
  field("Name", el("input", { name: "name", placeholder: "optional" })),
  field("Source", el("select", { name: "source" }, ctx.me.sources.map((s) => el("option", { value: s }, s)))),
  field("Webhook object", el("select", { name: "object" }, OBJECTS.map(([v, l]) => el("option", { value: v }, l)))),
  field("Account", ctx.admin
    ? el("input", { name: "account_id", required: true, placeholder: "phone number, Page or Instagram account id" })
    : el("select", { name: "account_id" }, ctx.me.account_ids.map((a) => el("option", { value: a }, a)))),
  ctx.admin ? field("Tenant", el("input", { name: "tenant_id", placeholder: "t_… (empty: the admin's own)" })) : null,
  el("fieldset", {}, el("legend", {}, "Deliver to"), eps.items.map((e) =>
    el("label", { class: "type" }, el("input", { type: "checkbox", name: "endpoint", value: e.id }), ` ${e.id} `, el("span", { class: "muted" }, e.url)))),
  el("button", { type: "submit" }, "Save suite"));
  put(view, 
    el("h1", {}, "Test suites"),
    table(["suite", "object", "account", "types", "last run"], list.items.map((s) => el("tr", {},
      el("td", {}, el("a", { href: `#/suites/${s.id}` }, s.name)), el("td", {}, s.object), el("td", {}, s.account_id),
      el("td", {}, s.types.length), el("td", {}, s.runs[0] ? time(s.runs[0].started_at) : "never"))), "No suites yet."),
    form);
}

export async function suiteDetail(view, ctx, id) {
  // The id comes from the address bar: it names one resource, never a path.
  const ref = encodeURIComponent(id);
  const s = await get(`/test-suites/${ref}`);
  const results = el("div", { id: "results" });
  let timer = null;
  const show = async (runId) => {
    clearTimeout(timer);
    const r = await get(`/test-suites/${ref}/runs/${runId}`);
    const sm = r.summary;
    put(results, 
      el("h2", {}, `Run ${r.id} · ${time(r.started_at)} `, badge(sm.done ? (sm.failed ? "failed" : "passed") : "pending")),
      el("p", { class: "summary" }, `${sm.passed} passed, ${sm.failed} failed, ${sm.not_routed} not routed, ${sm.pending} pending`),
      table(["type", "outcome", "events", "problem"], r.results.map((t) => el("tr", {},
        el("td", {}, t.type), el("td", {}, badge(t.outcome)),
        el("td", {}, t.events.map((e) => el("a", { href: `#/events/${e.id}` }, e.id, " "))),
        el("td", {}, t.problem || "")))));
    if (!sm.done) timer = setTimeout(() => show(runId).catch(() => {}), 1000);
  };
  put(view, 
    el("h1", {}, s.name),
    el("dl", { class: "facts" }, [["source", s.source], ["object", s.object], ["account", s.account_id],
      ["endpoints", s.endpoint_ids.join(", ")], ["types", s.types.length]].map(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))])),
    el("div", { class: "actions" },
      el("button", { id: "run-suite", onclick: async () => {
        try { const run = await post(`/test-suites/${ref}/run`); await show(run.id); } catch (err) { flash(err.message, "error"); }
      } }, "Run suite"),
      el("button", { class: "danger", onclick: async () => {
        if (!confirm("Delete this suite?")) return;
        try { await api("DELETE", `/test-suites/${ref}`); location.hash = "#/suites"; } catch (err) { flash(err.message, "error"); }
      } }, "Delete suite")),
    results,
    s.runs.length ? el("div", {}, el("h2", {}, "Runs"), el("ul", {}, s.runs.map((r) =>
      el("li", {}, el("button", { class: "link", onclick: () => show(r.id) }, time(r.started_at)), ` ${r.accepted}/${r.sent} accepted`)))) : null);
  if (s.runs[0]) await show(s.runs[0].id);
  return () => clearTimeout(timer);
}
