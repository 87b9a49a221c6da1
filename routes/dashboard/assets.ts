/**
 * The dashboard's stylesheet and its little browser script, served by the service itself (no
 * build step, no CDN: it works offline).
 *
 * @module
 */

/** `/ui/app.css`: readable on a laptop and a phone, light and dark. */
export const APP_CSS = `
:root { color-scheme: light dark; --bg: #fff; --fg: #1f2328; --muted: #656d76; --line: #d0d7de;
  --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --run: #0969da; --wait: #8250df; }
@media (prefers-color-scheme: dark) { :root { --bg: #0d1117; --fg: #e6edf3; --muted: #8d96a0;
  --line: #30363d; --ok: #3fb950; --bad: #f85149; --warn: #d29922; --run: #58a6ff; --wait: #bc8cff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  background: var(--bg); color: var(--fg); }
header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1rem;
  border-bottom: 1px solid var(--line); position: sticky; top: 0; background: var(--bg); }
header .brand { font-weight: 700; text-decoration: none; color: inherit; margin-right: auto; }
main { padding: 1rem; max-width: 1400px; margin: 0 auto; }
a { color: var(--run); }
h1 { font-size: 1.3rem; margin: .2rem 0; } h2 { font-size: 1.05rem; margin: 1.2rem 0 .5rem; }
h3 { font-size: .95rem; margin: .8rem 0 .3rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line);
  vertical-align: top; white-space: nowrap; }
td.line { white-space: normal; max-width: 28rem; overflow-wrap: anywhere; }
th { font-size: .8rem; color: var(--muted); font-weight: 600; }
.scroll { overflow-x: auto; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.mono, td.id { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; }
.muted { color: var(--muted); margin-left: .4rem; }
.badge { display: inline-block; padding: 0 .5rem; border-radius: 1rem; font-size: .8rem;
  border: 1px solid currentColor; }
.badge.completed { color: var(--ok); } .badge.failed, .badge.critical, .badge.high { color: var(--bad); }
.badge.cancelled, .badge.info, .badge.low { color: var(--muted); }
.badge.running { color: var(--run); font-weight: 600; } .badge.queued, .badge.pending { color: var(--wait); }
.badge.medium { color: var(--warn); }
.totals { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; padding: .6rem .8rem;
  border: 1px solid var(--line); border-radius: 6px; }
.totals b { font-size: 1.15rem; }
form.inline { display: inline; margin: 0 .2rem 0 0; }
form.limit input { width: 4.5rem; }
.filters { display: flex; flex-wrap: wrap; gap: .4rem; margin-bottom: .5rem; }
input, select, button { font: inherit; padding: .2rem .45rem; border: 1px solid var(--line);
  border-radius: 5px; background: var(--bg); color: var(--fg); }
button { cursor: pointer; } button:hover { border-color: var(--run); }
button.link { border: 0; background: none; color: var(--run); padding: 0; }
.pager { display: flex; gap: 1rem; margin-top: .6rem; }
.notice { padding: .5rem .8rem; border-left: 4px solid var(--run); background: rgba(9,105,218,.08); }
.error { color: var(--bad); }
.empty { color: var(--muted); }
.live-state { font-size: .8rem; color: var(--muted); } .live-state.on::before { content: "● ";
  color: var(--ok); } .live-state.off::before { content: "● "; color: var(--bad); }
.grid { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1.5rem; }
.timeline { list-style: none; padding: 0; } .timeline li { padding: .15rem 0 .15rem 1.2rem;
  position: relative; } .timeline li::before { content: "○"; position: absolute; left: 0; }
.timeline li.done::before { content: "●"; color: var(--ok); }
.timeline li.now::before { content: "◐"; color: var(--run); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
.events { list-style: none; padding: 0; max-height: 24rem; overflow-y: auto; margin: 0; }
.events li { padding: .15rem 0; border-bottom: 1px dotted var(--line); overflow-wrap: anywhere; }
.findings ul { padding-left: 1.2rem; } .findings li { margin-bottom: .5rem; }
.findings p { margin: .2rem 0; } .summary { white-space: pre-wrap; }
.login { max-width: 24rem; margin: 4rem auto; } .login input { width: 100%; margin: .4rem 0; }
@media (max-width: 720px) { .grid { grid-template-columns: 1fr; } main { padding: .6rem; }
  th, td { padding: .3rem; } }
`;

/**
 * `/ui/app.js`: fills the sign-in form from a `#token=` link (the fragment never reaches the
 * server), asks before destructive actions, and keeps the page live: it listens to the page's
 * feed and re-reads the page's live region when something changed (one read at a time).
 */
export const APP_JS = `"use strict";
(() => {
  const form = document.getElementById("login");
  if (form && location.hash.startsWith("#token=")) {
    const token = decodeURIComponent(location.hash.slice(7));
    history.replaceState(null, "", location.pathname);
    form.elements.token.value = token;
    form.submit();
    return;
  }
  document.addEventListener("submit", (event) => {
    const f = event.target;
    if (f.dataset && f.dataset.confirm && !confirm(f.dataset.confirm)) event.preventDefault();
  });
  const feed = document.body.dataset.live;
  if (!feed || !window.EventSource) return;
  const state = document.getElementById("live-state");
  const region = document.getElementById("live");
  let reading = false, again = false;
  const editing = () => {
    const a = document.activeElement;
    return a && region.contains(a) && a.matches("input, select, textarea");
  };
  async function refresh() {
    if (reading || editing()) { again = true; return; }
    reading = true;
    try {
      const url = new URL(location.href);
      url.searchParams.set("fragment", "1");
      const res = await fetch(url, { credentials: "same-origin" });
      if (res.status === 401) { location.href = "/login"; return; }
      if (res.ok) {
        region.innerHTML = await res.text();
        document.body.dataset.updatedAt = String(Date.now());
      }
    } catch (_) {
      again = true;
    } finally {
      reading = false;
      if (again) { again = false; setTimeout(refresh, 50); }
    }
  }
  region.addEventListener("focusout", () => { if (again) setTimeout(refresh, 0); });
  const source = new EventSource(feed);
  source.addEventListener("open", () => {
    state.textContent = "live";
    state.className = "live-state on";
  });
  // "hello" comes once the stream listens: what changed between rendering the page (or while
  // away, after a reconnect) and now is read once, so nothing is missed.
  source.addEventListener("hello", refresh);
  source.addEventListener("change", refresh);
  source.addEventListener("error", () => {
    state.textContent = "reconnecting…";
    state.className = "live-state off";
  });
})();
`;
