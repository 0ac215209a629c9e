// noticerelay web pages: small progressive enhancements; every page works without them.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // A page marked data-refresh reloads itself every N seconds while it is
  // visible and no one is typing into it.
  const r = document.querySelector("[data-refresh]");
  if (r) {
    const secs = Math.max(5, parseInt(r.dataset.refresh, 10) || 30);
    setInterval(() => {
      const a = document.activeElement;
      const typing = a && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA");
      if (!document.hidden && !typing) location.reload();
    }, secs * 1000);
  }
  // Show a triage form's destination and outcome only for the state that needs them.
  const st = document.getElementById("state");
  if (st) {
    const sync = () => {
      for (const el of document.querySelectorAll("[data-for-state]")) {
        el.hidden = el.dataset.forState !== st.value;
      }
    };
    st.addEventListener("change", sync);
    sync();
  }
  // An element marked data-live="URL" is a part of the page that updates
  // by itself: every few seconds it asks URL?since=<its version>; the
  // server answers 204 while nothing changed, else the new part (HTML)
  // with its version in the Live-Version header.
  for (const el of document.querySelectorAll("[data-live]")) {
    let version = el.dataset.liveVersion || "";
    const secs = Math.max(2, parseInt(el.dataset.liveEvery, 10) || 5);
    setInterval(async () => {
      if (document.hidden) return;
      try {
        const r = await fetch(el.dataset.live + "?since=" + encodeURIComponent(version), {credentials: "same-origin"});
        if (r.status !== 200) return;
        const html = await r.text();
        el.innerHTML = html;
        version = r.headers.get("Live-Version") || "";
      } catch (e) { /* the next round tries again */ }
    }, secs * 1000);
  }
  for (const b of document.querySelectorAll("[data-print]")) {
    b.addEventListener("click", () => window.print());
  }
  // Filter forms submit as soon as a choice changes.
  for (const s of document.querySelectorAll("form.filters select")) {
    s.addEventListener("change", () => s.form.submit());
  }
});

// Portal: a notice's recipients follow the relay's status without a
// reload; without the script the page says to reload it.
document.addEventListener("DOMContentLoaded", () => {
  const sec = document.querySelector("[data-status]");
  if (!sec) return;
  const short = (ts) => ts ? new Date(ts).toISOString().replace("T", " ").replace(/\.\d+Z$/, "") : "";
  const poll = async () => {
    try {
      const r = await fetch(sec.dataset.status, {cache: "no-store", headers: {Accept: "application/json"}});
      if (!r.ok) return;
      const v = await r.json();
      const st = document.getElementById("notice-status");
      const rows = sec.querySelectorAll("tr[data-authority]");
      if (st && st.textContent !== v.status) { st.textContent = v.status; st.className = "status status-" + v.status; }
      // New recipients, or a withdrawal: the page's forms change too.
      if (rows.length !== (v.recipients || []).length || (v.withdrawn_at && !document.getElementById("withdrawn"))) {
        location.reload();
        return;
      }
      for (const rc of v.recipients) {
        const tr = sec.querySelector(`tr[data-authority="${CSS.escape(rc.authority)}"]`);
        if (!tr) continue;
        for (const td of tr.querySelectorAll("[data-k]")) {
          const k = td.dataset.k;
          if (k === "status") { td.textContent = rc.status; td.className = "status status-" + rc.status; }
          else td.textContent = short(rc[k]);
        }
      }
    } catch (e) {}
  };
  setInterval(() => { if (!document.hidden) poll(); }, 2000);
});

// A file input marked data-max-bytes says at once that a file is too
// large, before it is sent; the server refuses it all the same.
document.addEventListener("DOMContentLoaded", () => {
  for (const f of document.querySelectorAll("input[type=file][data-max-bytes]")) {
    f.addEventListener("change", () => {
      const max = parseInt(f.dataset.maxBytes, 10);
      const big = Array.from(f.files).some((x) => x.size > max);
      f.setCustomValidity(big ? "This file is larger than the relay takes (at most " + (f.dataset.maxLabel || max + " bytes") + ")." : "");
      f.reportValidity();
    });
  }
  // A summary of a form's problems takes the focus, so that it is read first.
  const p = document.querySelector(".problems[role=alert]");
  if (p) { p.tabIndex = -1; p.focus(); }
});
