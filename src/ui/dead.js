// Dead letters: deliveries whose attempts ran out, filtered; replay by the same filter, with a
// dry run's count first and a rate.
import { put, el, time, table, flash, values, field, num } from "./dom.js";
import { get, post, query } from "./api.js";

export async function dead(view) {
  const list = el("div");
  const outcome = el("p", { class: "muted", id: "replay-outcome" });
  let filters = {};
  const load = async (cursor) => {
    const page = await get(`/dead${query({ ...filters, cursor, limit: 50 })}`);
    put(list, table(["event", "endpoint", "type", "attempts", "reason", "dead"], page.items.map((d) => el("tr", {},
      el("td", {}, el("a", { href: `#/events/${d.event_id}` }, d.event_id)), el("td", {}, el("a", { href: `#/endpoints/${d.endpoint_id}` }, d.endpoint_id)),
      el("td", {}, d.type), el("td", {}, d.attempts), el("td", {}, d.reason), el("td", {}, time(d.dead_at)))), "No dead letters."),
    page.next_cursor ? el("button", { class: "link", onclick: () => load(page.next_cursor) }, "Older →") : null);
  };
  const body = () => {
    const v = values(form);
    const out = { endpoint_id: v.endpoint_id, type: v.type };
    if (v.rate) out.rate = Number(v.rate);
    return out;
  };
  const replayButton = el("button", { type: "button", disabled: true, id: "replay", onclick: async () => {
    try {
      const r = await post("/dead/replay", body());
      outcome.textContent = `Replaying ${num(r.matched)} at ${r.rate}/s (about ${r.estimated_seconds} s).`;
      replayButton.disabled = true;
      flash("Replay started.");
    } catch (err) { flash(err.message, "error"); }
  } }, "Replay");
  const form = el("form", { class: "filters", onsubmit: async (e) => {
    e.preventDefault();
    filters = body();
    delete filters.rate;
    await load().catch((err) => flash(err.message, "error"));
  } },
  field("Endpoint", el("input", { name: "endpoint_id", placeholder: "ep_…" })),
  field("Type", el("input", { name: "type", placeholder: "whatsapp.messages" })),
  field("Rate", el("input", { name: "rate", type: "number", min: "1", placeholder: "per second" })),
  el("button", { type: "submit" }, "Filter"),
  el("button", { type: "button", id: "dry-run", onclick: async () => {
    try {
      const r = await post("/dead/replay", { ...body(), dry_run: true });
      outcome.textContent = `${num(r.matched)} dead deliveries match; replay them?`;
      replayButton.disabled = r.matched === 0;
    } catch (err) { flash(err.message, "error"); }
  } }, "Dry run"),
  replayButton);
  put(view, el("h1", {}, "Dead letters"), form, outcome, list);
  await load();
}
