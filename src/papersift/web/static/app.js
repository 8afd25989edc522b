// papersift: keyboard navigation, upvotes and saves without a reload, BibTeX copy. Everything works without it.
(function () {
  "use strict";
  const meta = (name) => (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
  const cards = () => Array.from(document.querySelectorAll(".card"));
  let current = -1;

  function toast(text) {
    const el = document.createElement("div");
    el.className = "toast";
    el.textContent = text;
    document.body.appendChild(el);
    setTimeout(() => el.remove(), 1600);
  }

  function select(i) {
    const all = cards();
    if (!all.length) return;
    current = Math.max(0, Math.min(i, all.length - 1));
    all.forEach((c, n) => c.classList.toggle("sel", n === current));
    all[current].scrollIntoView({ block: "nearest" });
  }

  // POST (or DELETE when `on`) /api/papers/ID/ACTION for a card's form; its JSON, or null when the form
  // was posted instead, the reader was sent to sign in, or the request failed (then `failed` is shown)
  async function paperAction(form, action, on, failed) {
    const id = form.dataset.id;
    // an id that is only dots would still be a dot segment once encoded: let the form post (its action is safe)
    if (/^(?:\.|%2e){1,2}$/i.test(id)) { form.submit(); return null; }
    // one encoded path part: an id's '/', '.', '#' or '?' can never move the request to another endpoint
    const url = `${meta("root-path")}/api/papers/${encodeURIComponent(id)}/${action}`;
    const res = await fetch(url, {
      method: on ? "DELETE" : "POST",
      headers: { "X-CSRF-Token": meta("csrf-token"), Accept: "application/json" },
      credentials: "same-origin",
    });
    if (res.status === 401) {
      location.href = `${meta("root-path")}/login?next=${encodeURIComponent(location.pathname + location.search)}`;
      return null;
    }
    if (!res.ok) {
      toast(failed);
      return null;
    }
    return res.json();
  }

  async function vote(form) {
    const id = form.dataset.id;
    const on = form.querySelector(".vote-btn").classList.contains("on");
    const body = await paperAction(form, "upvote", on, "Could not record the vote; reload and try again");
    if (!body) return;
    document.querySelectorAll(`form.vote[data-id="${CSS.escape(id)}"]`).forEach((f) => {
      const b = f.querySelector(".vote-btn");
      b.classList.toggle("on", body.voted);
      b.setAttribute("aria-pressed", String(body.voted));
      b.querySelector(".count").textContent = body.votes;
      f.querySelector('input[name="action"]').value = body.voted ? "down" : "up";
    });
  }

  // library: Save puts the paper in the reader's "Saved" collection; pressed again, takes it out of all
  async function save(form) {
    const id = form.dataset.id;
    const on = form.querySelector(".save-btn").classList.contains("on");
    const body = await paperAction(form, "save", on, "Could not save; reload and try again");
    if (!body) return;
    document.querySelectorAll(`form.save[data-id="${CSS.escape(id)}"]`).forEach((f) => {
      const b = f.querySelector(".save-btn");
      b.classList.toggle("on", body.saved);
      b.setAttribute("aria-pressed", String(body.saved));
      b.textContent = body.saved ? "Saved" : "Save";
      f.querySelector('input[name="action"]').value = body.saved ? "remove" : "save";
    });
    toast(body.saved ? "Saved to your library" : "Removed from your collections");
  }

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.classList && form.classList.contains("vote")) {
      ev.preventDefault();
      vote(form);
    } else if (form.classList && form.classList.contains("save")) {
      ev.preventDefault();
      save(form);
    }
  });

  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    const text = document.getElementById(btn.dataset.copy).textContent;
    navigator.clipboard.writeText(text).then(() => toast("BibTeX copied"), () => toast("Copy failed; select the text below"));
  });

  document.addEventListener("keydown", (ev) => {
    const t = ev.target;
    if (ev.metaKey || ev.ctrlKey || ev.altKey) return;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) {
      if (ev.key === "Escape") t.blur();
      return;
    }
    const all = cards();
    const card = all[current];
    const go = (sel) => { const a = document.querySelector(sel); if (a) location.href = a.href; };
    switch (ev.key) {
      case "j": select(current + 1); break;
      case "k": select(current - 1); break;
      case "o": case "Enter": if (card) location.href = card.dataset.href; else return; break;
      case "a": if (card) { const d = card.querySelector("details"); if (d) d.open = !d.open; } break;
      case "u": {
        const form = card ? card.querySelector("form.vote") : document.querySelector(".paperhead form.vote");
        if (form) vote(form);
        break;
      }
      case "s": {
        const form = card ? card.querySelector("form.save") : null;
        if (form) save(form); else return;
        break;
      }
      case "/": { const q = document.getElementById("q"); if (q) { q.focus(); q.select(); } break; }
      case "[": go('a[rel="prev"]'); break;
      case "]": go('a[rel="next"]'); break;
      default: return;
    }
    ev.preventDefault();
  });
})();
