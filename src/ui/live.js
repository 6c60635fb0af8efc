// Live feed: new events and delivery outcomes as hookd stores them (every instance's), from
// GET /api/v1/stream, newest on top, at most 200 kept on the page.
import { put, el, badge, time, values, field } from "./dom.js";
import { stream } from "./api.js";

const KEEP = 200;

export async function live(view) {
  let controller = null;
  const list = el("tbody", { id: "feed" });
  const state = el("span", { class: "muted", id: "feed-state" }, "connecting…");
  const row = (kind, d) => {
    if (kind === "event") {
      return el("tr", { class: "event" }, el("td", {}, time(d.received_at)), el("td", {}, badge("event")),
        el("td", {}, el("a", { href: `#/events/${d.id}` }, d.type)), el("td", {}, d.account_id),
        el("td", { class: "muted" }, d.test ? "test" : ""));
    }
    const ok = d.status >= 200 && d.status < 300;
    return el("tr", { class: "delivery" }, el("td", {}, time(d.at)), el("td", {}, badge(ok ? "delivered" : "failed")),
      el("td", {}, el("a", { href: `#/events/${d.event_id}` }, d.type)),
      el("td", {}, el("a", { href: `#/endpoints/${d.endpoint_id}` }, d.endpoint_id)),
      el("td", { class: "muted" }, `${d.status || d.error || ""} · ${d.duration_ms} ms · attempt ${d.attempt}`));
  };
  const connect = (filters) => {
    if (controller) controller.abort();
    controller = new AbortController();
    state.textContent = "connecting…";
    let opened = false;
    stream(filters, (kind, d) => {
      if (!opened) { opened = true; state.textContent = "live"; }
      if (kind === "lagged") {
        list.prepend(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "More arrived than the feed shows; see Events.")));
        return;
      }
      if (kind !== "event" && kind !== "delivery") return;
      list.prepend(row(kind, d));
      while (list.children.length > KEEP) list.lastChild.remove();
    }, controller.signal).then(() => { state.textContent = "ended (hookd stopped?); reload to reconnect"; })
      .catch((e) => { if (e.name !== "AbortError") state.textContent = `disconnected: ${e.message}`; });
    // The first frame is a comment: call it live once the answer starts.
    setTimeout(() => { if (state.textContent === "connecting…") state.textContent = "live"; }, 800);
  };
  const form = el("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); put(list, ); connect(values(form)); } },
    field("Platform", el("select", { name: "platform" }, ["", "whatsapp", "messenger", "page", "instagram"].map((p) => el("option", { value: p }, p || "any")))),
    field("Type", el("input", { name: "type", placeholder: "whatsapp.messages" })),
    field("Account", el("input", { name: "account_id" })),
    field("Endpoint", el("input", { name: "endpoint_id", placeholder: "ep_…" })),
    el("button", { type: "submit" }, "Apply"));
  put(view, el("h1", {}, "Live ", state), form,
    el("table", {}, el("thead", {}, el("tr", {}, ["at", "what", "type", "account / endpoint", ""].map((h) => el("th", {}, h)))), list));
  connect({});
  return () => controller && controller.abort();
}
