// The case page, live: who else is on the case, what changed on it, and every action saved in place, so no
// reload ever wipes a draft, the focus or the scroll.
(function () {
  "use strict";

  const timeline = document.getElementById("timeline");
  const viewersLine = document.getElementById("viewers");
  const feedback = document.getElementById("case-feedback");
  if (!timeline) return;
  const caseId = Number(timeline.dataset.case);

  function csrfToken() {
    const input = document.querySelector("input[name=csrf_token]");
    return input ? input.value : "";
  }

  function isJson(response) {
    return (response.headers.get("Content-Type") || "").startsWith("application/json");
  }

  // -- feedback: what an action did, or why it did not ----------------------------------------------------
  let hideFeedback = null;
  function say(text, isError) {
    clearTimeout(hideFeedback);
    feedback.textContent = text;
    feedback.classList.toggle("error", Boolean(isError));
    feedback.hidden = false;
    hideFeedback = setTimeout(() => { feedback.hidden = true; }, isError ? 10000 : 4000);
  }

  // -- what changed on the case ---------------------------------------------------------------------------
  let after = timeline.dataset.after;
  let fetching = false, again = false, soon = null;

  function update() {
    if (fetching) { again = true; return; }  // one at a time, each from the cursor the last one returned
    fetching = true;
    const url = new URL(timeline.dataset.updates, window.location.href);
    url.searchParams.set("after", after);
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => (r.ok && isJson(r) ? r.json() : Promise.reject(r.status)))
      .then(apply)
      .catch(() => {})  // the next event or reconnect tries again
      .finally(() => {
        fetching = false;
        if (again) { again = false; update(); }
      });
  }

  function updateSoon() {
    if (!soon) soon = setTimeout(() => { soon = null; update(); }, 100);
  }

  function element(html) {
    const template = document.createElement("template");
    template.innerHTML = html;  // rendered by the server's templates, every customer string escaped
    return template.content.firstElementChild;
  }

  function apply(changes) {
    changes.entries.forEach((entry) => {
      const fresh = element(entry.html);
      if (!fresh) return;
      const id = entry.message || fresh.dataset.message;  // a message shown again, or one already here
      const shown = id && timeline.querySelector(`li[data-message="${id}"]`);
      if (shown) {
        shown.replaceWith(fresh);
      } else {
        fresh.classList.add("fresh");
        timeline.append(fresh);
      }
    });
    after = changes.after;
    document.querySelectorAll("[data-case-status]").forEach((el) => { el.textContent = changes.status; });
    document.querySelectorAll("[data-case-assignee]").forEach((el) => { el.textContent = changes.assignee || "none"; });
    const status = document.querySelector("form[action$='/status'] select[name=status]");
    if (status && status !== document.activeElement) status.value = changes.status;
    document.querySelectorAll("form.tick[data-item]").forEach((form) => {
      const box = form.querySelector("input[type=checkbox]");
      if (!form.dataset.saving) box.checked = changes.checklist.includes(Number(form.dataset.item));
    });
    showClaim(changes.claim);
  }

  // The claim and assign buttons follow who has the case; not while the agent is choosing whom to assign.
  const claim = document.getElementById("case-claim");
  let claimWaiting = null, claimShown = null;
  function showClaim(html) {
    if (!claim) return;
    if (claim.contains(document.activeElement) && document.activeElement.tagName === "SELECT") {
      claimWaiting = html;
      return;
    }
    claimWaiting = null;
    if (html !== claimShown) claim.innerHTML = html;  // rendered by the server, escaped
    claimShown = html;
  }
  if (claim) claim.addEventListener("focusout", () => { setTimeout(() => { if (claimWaiting) showClaim(claimWaiting); }, 0); });

  // -- every action saved in place: forms marked data-in-place ----------------------------------------------
  function save(form, submitter) {
    if (form.dataset.saving) return;
    form.dataset.saving = "1";
    const body = new FormData(form, submitter);
    fetch(form.action, { method: "POST", body, credentials: "same-origin",
                         headers: { Accept: "application/json", "X-CSRFToken": csrfToken() } })
      .then((r) => (isJson(r) ? r.json() : Promise.resolve({})).then((answer) => {
        if (!r.ok) throw new Error(answer.error || `Not saved (error ${r.status}): reload the page and try again.`);
        return answer;
      }))
      .then((answer) => {
        say(answer.message || "Saved.");
        if (form.dataset.inPlace === "clear") form.querySelectorAll("textarea").forEach((t) => { t.value = ""; });
      })
      .catch((error) => say(error.message || "Not saved: reload the page and try again.", true))
      .finally(() => {
        delete form.dataset.saving;
        update();  // shows what the action changed (and puts a refused tick back as it is)
      });
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.matches("form[data-in-place]")) return;
    event.preventDefault();
    save(form, event.submitter);
  });

  // A box or a menu that saves as soon as it changes (no inline handler: the CSP allows none).
  document.addEventListener("change", (event) => {
    if (event.target.matches(".submit-on-change")) event.target.form.requestSubmit();
  });

  // -- who else is on the case --------------------------------------------------------------------------
  const me = viewersLine ? Number(viewersLine.dataset.me) : 0;
  const others = new Map();  // user id -> { name, until, typing, typingUntil } (milliseconds)
  let heartbeat = 5000, known = false;  // known: the server has answered (without Redis it never does)

  function remember(viewer) {
    if (viewer.user_id === me) return;
    if (!viewer.viewing_for) { others.delete(viewer.user_id); showViewers(); return; }
    const now = Date.now();
    others.set(viewer.user_id, { name: viewer.name, until: now + viewer.viewing_for * 1000, typing: viewer.typing,
                                 typingUntil: now + viewer.typing_for * 1000 });
    showViewers();
  }

  function showViewers() {
    if (!viewersLine || !known) return;
    const now = Date.now();
    const lines = [];
    others.forEach((viewer, id) => {
      if (viewer.until <= now) { others.delete(id); return; }
      const typing = viewer.typing && viewer.typingUntil > now;
      lines.push({ text: typing ? `${viewer.name} is typing a ${viewer.typing}…` : `${viewer.name} is viewing`, typing });
    });
    if (!lines.length) lines.push({ text: "Nobody else has this case open.", typing: false });
    const text = lines.map((l) => l.text).join(" · ");
    if (viewersLine.dataset.text === text) return;  // unchanged: nothing to announce
    viewersLine.dataset.text = text;
    viewersLine.replaceChildren(...lines.map((line, i) => {
      const span = document.createElement("span");
      span.className = line.typing ? "typing" : "viewing";
      span.textContent = (i ? " · " : "") + line.text;  // names as text, never as HTML
      return span;
    }));
    viewersLine.classList.toggle("alone", others.size === 0);
  }

  function beat(state) {
    if (!viewersLine) return;
    const body = new FormData();
    body.set("state", state);
    fetch(viewersLine.dataset.url, { method: "POST", body, credentials: "same-origin",
                                     headers: { Accept: "application/json", "X-CSRFToken": csrfToken() } })
      .then((r) => (r.ok && isJson(r) ? r.json() : null))
      .then((answer) => {
        if (!answer) return;  // no presence (Redis down): the page works without it
        heartbeat = answer.heartbeat * 1000;
        known = true;
        answer.others.forEach(remember);
        showViewers();
      })
      .catch(() => {});
  }

  let typedAt = 0, typed = null;
  function typing(draft) {
    const now = Date.now();
    if (draft === typed && now - typedAt < 2000) return;  // at most every 2 s: the server keeps "typing" a while
    typedAt = now;
    typed = draft;
    beat(draft);
  }

  if (viewersLine) {
    beat("viewing");
    const keepBeating = () => { beat("viewing"); setTimeout(keepBeating, heartbeat); };
    setTimeout(keepBeating, heartbeat);
    setInterval(showViewers, 1000);  // an entry nobody renewed goes
    const reply = document.getElementById("reply-text");
    const note = document.getElementById("note-text");
    if (reply) reply.addEventListener("input", () => typing("reply"));
    if (note) note.addEventListener("input", () => typing("note"));
    window.addEventListener("pagehide", () => {
      const body = new FormData();
      body.set("state", "left");
      body.set("csrf_token", csrfToken());  // a beacon sends no headers of its own
      navigator.sendBeacon(viewersLine.dataset.url, body);
    });
  }

  // -- the live stream (assist/web/live.py) ---------------------------------------------------------------
  function ours(event) {
    const data = JSON.parse(event.data);
    return data.case_id === caseId ? data : null;
  }

  const listen = () => {
    const source = new EventSource(timeline.dataset.live);
    source.onopen = () => { update(); beat("viewing"); };  // catch up on what a reconnect missed
    source.onmessage = (event) => { if (ours(event)) updateSoon(); };
    source.addEventListener("delivery", (event) => { if (ours(event)) updateSoon(); });
    source.addEventListener("viewers", (event) => { const viewer = ours(event); if (viewer) remember(viewer); });
    source.onerror = () => {
      // The browser reconnects a stream that ended by itself; one refused (too many tabs: 429) it gives up on.
      if (source.readyState === EventSource.CLOSED) setTimeout(listen, 30000);
    };
  };
  listen();
})();
