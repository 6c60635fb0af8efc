// Endpoints: the list with health and success rate; create and edit with the event-type
// catalogue as a picker; secret (revealed on request) and rotation; pause and resume; a test
// send of any type; the attempt log; statistics over a chosen period.
import { put, el, badge, time, ago, table, flash, values, field, pct, card, num } from "./dom.js";
import { get, post, api, query } from "./api.js";
import { bars } from "./charts.js";

let catalogue = null;
const types = async () => (catalogue ||= (await get("/event-types")).items);

const health = (e) => {
  if (e.disabled_reason) return badge(`disabled: ${e.disabled_reason}`);
  if (!e.enabled) return badge("paused");
  if (e.failing_since) return badge("failing");
  return badge("ok");
};

// The create or edit form; `current` is the endpoint being edited, or none.
async function form(ctx, current, done) {
  const all = await types();
  const chosen = new Set(current ? current.event_types : []);
  const platforms = [...new Set(all.map((t) => t.platform))];
  const picker = el("div", { class: "picker" },
    el("label", {}, el("input", { type: "checkbox", name: "event_types", value: "*", checked: chosen.has("*") }), " everything (*)"),
    platforms.map((p) => el("details", {},
      el("summary", {}, el("label", {}, el("input", { type: "checkbox", name: "event_types", value: `${p}.*`, checked: chosen.has(`${p}.*`) }), ` ${p}.*`)),
      all.filter((t) => t.platform === p).map((t) => el("label", { class: "type", title: t.description },
        el("input", { type: "checkbox", name: "event_types", value: t.type, checked: chosen.has(t.type) }), ` ${t.type}`)))));
  const f = el("form", { class: "panel endpoint-form", onsubmit: async (e) => {
    e.preventDefault();
    const v = values(f);
    const body = {
      url: v.url,
      description: v.description || "",
      event_types: [...f.querySelectorAll("input[name=event_types]:checked")].map((i) => i.value),
      account_ids: v.account_ids ? v.account_ids.split(",").map((s) => s.trim()).filter(Boolean) : [],
      ordering: v.ordering || "none",
    };
    if (v.tenant_id && !current) body.tenant_id = v.tenant_id;
    try {
      const saved = current ? await api("PATCH", `/endpoints/${current.id}`, body) : await post("/endpoints", body);
      flash(current ? "Endpoint saved." : `Endpoint ${saved.id} created.`);
      done(saved);
    } catch (err) { flash(`${err.body?.error?.field ? err.body.error.field + ": " : ""}${err.message}`, "error"); }
  } },
  el("h2", {}, current ? "Edit endpoint" : "New endpoint"),
  field("URL", el("input", { name: "url", type: "url", required: true, value: current?.url, placeholder: "https://example.com/hooks" })),
  field("Description", el("input", { name: "description", value: current?.description })),
  ctx.admin && !current ? field("Tenant", el("input", { name: "tenant_id", placeholder: "t_… (empty: the admin's own)" })) : null,
  field("Accounts", el("input", { name: "account_ids", value: current?.account_ids?.join(", "), placeholder: "all of the owner's" }), "Comma-separated Meta account ids; empty: every account of the owner."),
  field("Order", el("select", { name: "ordering" },
    [["none", "as fast as it takes them"], ["conversation", "per conversation, one at a time"]].map(([value, label]) =>
      el("option", { value, selected: (current?.ordering || "none") === value }, label))),
    "Per conversation: each user's events in the order received; a failing one holds back only its own conversation."),
  el("fieldset", {}, el("legend", {}, "Event types"), picker),
  el("button", { type: "submit" }, current ? "Save" : "Create endpoint"));
  return f;
}

export async function endpoints(view, ctx) {
  const page = await get("/endpoints?limit=500");
  const rates = await Promise.all(page.items.map((e) =>
    get(`/endpoints/${e.id}/stats?period=24h`).then((s) => s.stats).catch(() => null)));
  const area = el("div");
  put(view, 
    el("h1", {}, "Endpoints ", el("button", { id: "new-endpoint", onclick: async () => {
      put(area, await form(ctx, null, (saved) => { location.hash = `#/endpoints/${saved.id}`; }));
    } }, "New endpoint")),
    area,
    table(["endpoint", "url", "types", "health", "24h success", "last success"], page.items.map((e, i) => el("tr", {},
      el("td", {}, el("a", { href: `#/endpoints/${e.id}` }, e.id)), el("td", {}, e.url), el("td", {}, e.event_types.join(", ")),
      el("td", {}, health(e)), el("td", {}, rates[i] ? `${pct(rates[i].success_rate)} of ${num(rates[i].attempts)}` : "–"),
      el("td", {}, ago(e.last_success)))), "No endpoints yet."));
}

export async function endpointDetail(view, ctx, id) {
  // The id comes from the address bar: it names one resource, never a path.
  const ref = encodeURIComponent(id);
  const e = await get(`/endpoints/${ref}`);
  const all = await types();
  const area = el("div");
  const secret = el("code", { id: "secret" }, "••••••••");
  const statsArea = el("div", { class: "stats" });
  const testOutcome = el("div", { id: "test-outcome" });
  const reload = () => endpointDetail(view, ctx, id);
  const showStats = async (period) => {
    const s = (await get(`/endpoints/${ref}/stats${query({ period })}`)).stats;
    put(statsArea, 
      el("div", { class: "cards" }, card("Attempts", num(s.attempts)), card("Success rate", pct(s.success_rate)),
        card("p50", s.p50_ms == null ? "–" : `${s.p50_ms} ms`), card("p95", s.p95_ms == null ? "–" : `${s.p95_ms} ms`),
        card("Test attempts", num(s.test_attempts))),
      s.top_event_types.length ? bars(s.top_event_types.map((t) => [t.type, t.attempts])) : null);
  };
  const attempts = await get(`/endpoints/${ref}/attempts?limit=25`);
  put(view, 
    el("h1", {}, e.id, " ", health(e)),
    el("dl", { class: "facts" }, [["url", e.url], ["description", e.description || "–"], ["types", e.event_types.join(", ")],
      ["accounts", e.account_ids.length ? e.account_ids.join(", ") : "all of the owner's"], ["tenant", e.tenant_id || "admin"], ["order", e.ordering === "conversation" ? "per conversation" : "none"],
      ["created", time(e.created_at)], ["last success", time(e.last_success)], ["last failure", time(e.last_failure)]]
      .map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    el("div", { class: "actions" },
      el("button", { onclick: async () => put(area, await form(ctx, e, reload)) }, "Edit"),
      el("button", { onclick: async () => {
        try { await api("PATCH", `/endpoints/${ref}`, { enabled: !e.enabled }); flash(e.enabled ? "Paused." : "Resumed."); reload(); } catch (err) { flash(err.message, "error"); }
      } }, e.enabled ? "Pause" : "Resume"),
      el("button", { onclick: async () => {
        try { secret.textContent = (await get(`/endpoints/${ref}/secret`)).secret; } catch (err) { flash(err.message, "error"); }
      } }, "Reveal secret"),
      el("button", { onclick: async () => {
        if (!confirm("Rotate the secret? The old one keeps signing for the overlap period.")) return;
        try { secret.textContent = (await post(`/endpoints/${ref}/secret/rotate`)).secret; flash("Secret rotated."); } catch (err) { flash(err.message, "error"); }
      } }, "Rotate secret"),
      el("button", { class: "danger", onclick: async () => {
        if (!confirm("Delete this endpoint?")) return;
        try { await api("DELETE", `/endpoints/${ref}`); flash("Deleted."); location.hash = "#/endpoints"; } catch (err) { flash(err.message, "error"); }
      } }, "Delete")),
    el("p", {}, "Secret: ", secret),
    area,
    el("h2", {}, "Send a test event"),
    el("form", { class: "filters", onsubmit: async (ev) => {
      ev.preventDefault();
      const type = ev.target.elements.type.value;
      put(testOutcome, el("p", { class: "muted" }, "Sending…"));
      try {
        const r = await post(`/endpoints/${ref}/test`, { type });
        put(testOutcome, el("p", {}, badge(r.delivered ? "delivered" : "failed"),
          ` ${r.status ?? r.error} in ${r.duration_ms} ms`), r.response ? el("pre", { class: "json" }, r.response) : null);
      } catch (err) { put(testOutcome, el("p", { class: "error" }, err.message)); }
    } }, field("Type", el("select", { name: "type", id: "test-type" }, all.map((t) => el("option", { value: t.type }, t.type)))),
    el("button", { type: "submit", id: "send-test" }, "Send test")),
    testOutcome,
    el("h2", {}, "Statistics ", el("select", { onchange: (ev) => showStats(ev.target.value) },
      ["1h", "24h", "7d"].map((p) => el("option", { value: p, selected: p === "24h" }, p)))),
    statsArea,
    el("h2", {}, "Attempts"),
    table(["at", "event", "type", "attempt", "status", "duration", "response / error"], attempts.items.map((a) => el("tr", {},
      el("td", {}, time(a.at)), el("td", {}, el("a", { href: `#/events/${a.event_id}` }, a.event_id)), el("td", {}, a.type), el("td", {}, a.attempt),
      el("td", {}, a.status || "–"), el("td", {}, `${a.duration_ms} ms`), el("td", {}, el("code", {}, a.error || a.response || "")))), "No attempts yet."));
  await showStats("24h");
}
