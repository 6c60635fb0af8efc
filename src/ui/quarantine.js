// Quarantine and rejections (admin): bodies that could not be split, with their bytes and
// error, to reprocess or delete; requests refused for their signature.
import { put, el, time, table, flash, json } from "./dom.js";
import { get, post, api } from "./api.js";

export async function quarantine(view, ctx) {
  if (!ctx.admin) {
    put(view, el("p", { class: "muted" }, "Only the admin key sees quarantined bodies and rejections."));
    return;
  }
  const render = async () => {
    const [q, r] = await Promise.all([get("/quarantine?limit=50"), get("/rejected?limit=50")]);
    const act = (fn, done) => async () => {
      try { await fn(); flash(done); await render(); } catch (err) { flash(err.message, "error"); }
    };
    put(view, 
      el("h1", {}, "Quarantine"),
      q.items.length ? q.items.map((b) => el("section", { class: "panel quarantined" },
        el("h3", {}, `${b.source} · ${time(b.received_at)} · ${b.body_len} bytes`),
        el("p", { class: "error" }, b.error),
        el("p", { class: "muted small" }, `id ${b.id} · journal ${b.journal_id} · request ${b.request_id}`),
        json(b.body),
        el("button", { onclick: act(() => post(`/quarantine/${b.id}/reprocess`), "Back in the journal: it is split again.") }, "Reprocess"),
        " ",
        el("button", { class: "danger", onclick: act(() => api("DELETE", `/quarantine/${b.id}`), "Deleted.") }, "Delete")))
        : el("p", { class: "muted empty" }, "Nothing quarantined."),
      el("h2", {}, "Rejected requests"),
      table(["at", "source", "reason", "from", "body"], r.items.map((x) => el("tr", {},
        el("td", {}, time(x.received_at)), el("td", {}, x.source), el("td", {}, x.reason), el("td", {}, x.remote_addr),
        el("td", {}, el("code", {}, x.body_prefix)))), "No rejections."));
  };
  await render();
}
