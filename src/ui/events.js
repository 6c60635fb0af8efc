// Events: filtered pages of events; one event with its data and, per endpoint, its state and
// attempts; retry a delivery; delete the event (admin).
import { put, el, badge, time, json, table, flash, values, field } from "./dom.js";
import { get, post, api, query } from "./api.js";

const STATUSES = ["", "delivered", "pending", "delivering", "failed", "dead", "stale", "unrouted"];
const toMs = (local) => (local ? String(new Date(local).getTime()) : undefined);

export async function events(view) {
  const list = el("div");
  let filters = {};
  const load = async (cursor) => {
    const page = await get(`/events${query({ ...filters, cursor, limit: 50 })}`);
    const rows = page.items.map((e) => el("tr", {},
      el("td", {}, el("a", { href: `#/events/${e.id}` }, e.id)), el("td", {}, e.type), el("td", {}, e.account_id),
      el("td", {}, time(e.received_at)), el("td", {}, e.test ? badge("test") : "")));
    put(list, table(["id", "type", "account", "received", ""], rows, "No events match."),
      page.next_cursor ? el("button", { class: "link", onclick: () => load(page.next_cursor) }, "Older →") : null);
  };
  const form = el("form", { class: "filters", onsubmit: async (e) => {
    e.preventDefault();
    const v = values(form);
    filters = { ...v, from: toMs(v.from), to: toMs(v.to) };
    await load().catch((err) => flash(err.message, "error"));
  } },
  field("Platform", el("select", { name: "platform" }, ["", "whatsapp", "messenger", "page", "instagram", "other"].map((p) => el("option", { value: p }, p || "any")))),
  field("Type", el("input", { name: "type", placeholder: "whatsapp.messages" })),
  field("Account", el("input", { name: "account_id" })),
  field("From", el("input", { name: "from", type: "datetime-local" })),
  field("To", el("input", { name: "to", type: "datetime-local" })),
  field("Delivery", el("select", { name: "status" }, STATUSES.map((s) => el("option", { value: s }, s || "any")))),
  el("button", { type: "submit" }, "Filter"));
  put(view, el("h1", {}, "Events"), form, list);
  await load();
}

export async function eventDetail(view, ctx, id) {
  const e = await get(`/events/${encodeURIComponent(id)}`);
  const deliveries = await Promise.all(e.deliveries.map(async (d) => {
    const log = await get(`/endpoints/${d.endpoint_id}/attempts?limit=100`).catch(() => ({ items: [] }));
    return { ...d, attempts_log: log.items.filter((a) => a.event_id === e.id) };
  }));
  const retry = (ep) => async () => {
    try {
      await post(`/events/${encodeURIComponent(e.id)}/deliveries/${ep}/retry`);
      flash(`Retry of ${ep} queued.`);
      setTimeout(() => eventDetail(view, ctx, id), 1500);
    } catch (err) { flash(err.message, "error"); }
  };
  const remove = async () => {
    if (!confirm("Delete this event for everyone? Its pending deliveries go too; Meta's resend of it is still recognised.")) return;
    try {
      await api("DELETE", `/events/${encodeURIComponent(e.id)}`);
      flash("Event deleted.");
      location.hash = "#/events";
    } catch (err) { flash(err.message, "error"); }
  };
  put(view, 
    el("h1", {}, e.type, " ", badge(e.status)),
    el("dl", { class: "facts" },
      [["id", e.id], ["webhook-id", `evt_${e.id}`], ["account", e.account_id], ["source", e.source], ["received", time(e.received_at)],
        ["occurred", time(e.occurred_at)], ["request id", e.request_id], ["journal id", e.journal_id],
        ["test", e.test ? `suite ${e.test.suite_id}, run ${e.test.run_id}` : "no"]]
        .map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    ctx.admin ? el("button", { class: "danger", onclick: remove }, "Delete event") : null,
    el("h2", {}, "Deliveries"),
    deliveries.length ? deliveries.map((d) => el("section", { class: "panel delivery" },
      el("h3", {}, el("a", { href: `#/endpoints/${d.endpoint_id}` }, d.endpoint_id), " ", badge(d.status), ` ${d.attempts} attempt(s) `,
        el("button", { onclick: retry(d.endpoint_id) }, "Retry now")),
      table(["attempt", "at", "status", "duration", "response / error"], d.attempts_log.map((a) => el("tr", {},
        el("td", {}, a.attempt), el("td", {}, time(a.at)), el("td", {}, a.status || "–"), el("td", {}, `${a.duration_ms} ms`),
        el("td", {}, el("code", {}, a.error || a.response || "")))), "No attempt logged yet.")))
      : el("p", { class: "muted" }, "Not routed to any endpoint you can see."),
    el("h2", {}, "Data"), json(e.data));
}
