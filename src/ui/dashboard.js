// The dashboard's shell: sign-in, the caller, and the views by location hash.
import { put, el, flash } from "./dom.js";
import { forget, get, key, setKey, whenUnauthorized } from "./api.js";
import { overview } from "./overview.js";
import { live } from "./live.js";
import { events, eventDetail } from "./events.js";
import { dead } from "./dead.js";
import { quarantine } from "./quarantine.js";
import { endpoints, endpointDetail } from "./endpoints.js";
import { suites, suiteDetail } from "./suites.js";

const ROUTES = [
  [/^#\/overview$/, overview],
  [/^#\/live$/, live],
  [/^#\/events$/, events],
  [/^#\/events\/([^/]+)$/, eventDetail],
  [/^#\/dead$/, dead],
  [/^#\/quarantine$/, quarantine],
  [/^#\/endpoints$/, endpoints],
  [/^#\/endpoints\/([^/]+)$/, endpointDetail],
  [/^#\/suites$/, suites],
  [/^#\/suites\/([^/]+)$/, suiteDetail],
];

const view = document.getElementById("view");
let me = null;
let leave = null;

function signIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  const input = el("input", { type: "password", name: "key", autocomplete: "off", required: true, placeholder: "API key", id: "key" });
  const form = el("form", { class: "signin panel", onsubmit: async (e) => {
    e.preventDefault();
    setKey(input.value.trim());
    input.value = "";
    await start();
  } },
  el("h1", {}, "Sign in"),
  el("p", { class: "muted" }, "The admin key sees everything; a tenant key sees its own. The key stays in this tab until you sign out or close it."),
  message ? el("p", { class: "error" }, message) : null,
  input,
  el("button", { type: "submit" }, "Sign in"));
  put(view, form);
  input.focus();
}

function signOut(message) {
  forget();
  me = null;
  if (leave) leave();
  leave = null;
  signIn(message);
}

let shown = 0;

async function route() {
  if (!me) return;
  if (leave) leave();
  leave = null;
  const hash = location.hash || "#/overview";
  for (const [pattern, render] of ROUTES) {
    const m = hash.match(pattern);
    if (!m) continue;
    for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", hash.startsWith(a.getAttribute("href")));
    // Each page renders into a container of its own: one still loading when the user moves on
    // writes into a detached one, never over the next page.
    const page = el("div", { class: "page" }, el("p", { class: "muted" }, "Loading…"));
    put(view, page);
    const mine = ++shown;
    try {
      const cleanup = (await render(page, { me, admin: me.role === "admin" }, ...m.slice(1).map(decodeURIComponent))) || null;
      if (mine === shown) leave = cleanup;
      else if (cleanup) cleanup();
    } catch (e) {
      put(page, el("p", { class: "error" }, `Could not load this page: ${e.message}`));
    }
    return;
  }
  location.hash = "#/overview";
}

async function start() {
  if (!key()) return signIn();
  try {
    me = await get("/me");
  } catch (e) {
    return signOut(e.status === 401 ? "That key was not accepted." : `hookd did not answer: ${e.message}`);
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("signout").hidden = false;
  for (const a of document.querySelectorAll("[data-admin]")) a.hidden = me.role !== "admin";
  document.getElementById("who").textContent = me.role === "admin" ? "admin" : `tenant ${me.name || me.tenant_id}`;
  await route();
}

whenUnauthorized(() => signOut("Signed out: the key is no longer accepted."));
document.getElementById("signout").addEventListener("click", () => { signOut(); flash("Signed out."); });
window.addEventListener("hashchange", route);
start();
