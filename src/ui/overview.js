// Overview: the figures that say whether hookd is healthy, refreshed every few seconds, with
// the last minutes' rates drawn from the differences between refreshes.
import { put, el, card, num, pct, table, badge, ago } from "./dom.js";
import { get, query } from "./api.js";
import { sparkline } from "./charts.js";

const EVERY = 5000;
const KEEP = 60; // refreshes drawn (5 minutes)

export async function overview(view, ctx) {
  const history = [];
  let timer = null;
  const render = async () => {
    const [stats, deliveries, health, eps] = await Promise.all([
      ctx.admin ? get("/stats") : Promise.resolve(null),
      get(`/deliveries/stats${query({ period: "1h" })}`),
      fetch("/health/ready").then((r) => r.json()).catch(() => null),
      get("/endpoints?limit=500"),
    ]);
    history.push({ at: Date.now(), stats, deliveries: deliveries.stats });
    if (history.length > KEEP + 1) history.shift();
    const rate = (pick) => history.slice(1).map((h, i) => {
      const prev = history[i];
      const secs = (h.at - prev.at) / 1000;
      return Math.max(0, (pick(h) - pick(prev)) / secs);
    });
    const d = deliveries.stats;
    const cards = [];
    if (stats) {
      cards.push(
        card("Received", num(stats.received), sparkline(rate((h) => h.stats.received))),
        card("Events", num(stats.events), sparkline(rate((h) => h.stats.events))),
        card("Duplicates", num(stats.duplicates)),
        card("Rejected", num(stats.rejected)),
        card("Quarantined", num(stats.quarantined)));
    }
    cards.push(
      card("Delivered (1h)", num(d.successes), sparkline(rate((h) => h.deliveries.successes))),
      card("Failing (1h)", num(d.failures), sparkline(rate((h) => h.deliveries.failures))),
      card("Success rate (1h)", pct(d.success_rate)),
      card("p95 latency (1h)", d.p95_ms === null || d.p95_ms === undefined ? "–" : `${d.p95_ms} ms`));
    if (stats) {
      cards.push(
        card("Dead", num(stats.deliveries.dead)),
        card("Delivery backlog", num(stats.deliveries.queued + stats.deliveries.retrying), `${num(stats.deliveries.in_flight)} in flight, ${num(stats.deliveries.retrying)} retrying`),
        card("Journal backlog", num(stats.journal.unread), `${num(stats.journal.unacknowledged)} being split`),
        card("Test events", num(stats.test_events)));
    }
    const disabled = eps.items.filter((e) => e.disabled_reason);
    const stages = health
      ? el("div", { class: "health" },
        el("span", { title: health.storage }, "storage ", badge(health.storage === "ok" ? "ok" : "down")),
        el("span", {}, "actors ", badge(health.actors)),
        Object.entries(health.stages || {}).map(([name, s]) =>
          el("span", { title: s.last_error ? `${s.last_error} (for ${s.failing_for_secs} s)` : "" }, `${name} `, badge(s.state))))
      : el("p", { class: "error" }, "Health unknown");
    put(view, 
      el("h1", {}, "Overview"),
      stages,
      el("div", { class: "cards" }, cards),
      el("h2", {}, "Endpoints disabled by hookd"),
      table(["endpoint", "url", "reason", "since"], disabled.map((e) =>
        el("tr", {}, el("td", {}, el("a", { href: `#/endpoints/${e.id}` }, e.id)), el("td", {}, e.url),
          el("td", {}, e.disabled_reason), el("td", {}, ago(e.disabled_at)))), "None."),
      el("p", { class: "muted small" }, `Refreshed every ${EVERY / 1000} s; rates are per second over the last minutes.`));
  };
  await render();
  timer = setInterval(() => render().catch(() => {}), EVERY);
  return () => clearInterval(timer);
}
