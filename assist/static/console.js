// The console's small behaviours: the live queue and its alerts, keys, suggestions, the SMS segment counter and
// the confirmation of a long SMS, SLA countdowns.
(function () {
  "use strict";

  // GSM 03.38: basic characters cost one septet, the extension set two; anything else means UCS-2.
  const GSM7 = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  const GSM7_EXT = "^{}\\[~]|€\f";

  function segments(text) {
    const chars = Array.from(text);
    const gsm = chars.every((c) => GSM7.includes(c) || GSM7_EXT.includes(c));
    const units = gsm ? chars.map((c) => (GSM7_EXT.includes(c) ? 2 : 1))
                      : chars.map((c) => (c.codePointAt(0) > 0xffff ? 2 : 1));
    const [single, multi] = gsm ? [160, 153] : [70, 67];
    const total = units.reduce((a, b) => a + b, 0);
    if (total <= single) return { count: 1, encoding: gsm ? "GSM-7" : "UCS-2", total };
    let count = 1, used = 0;
    for (const u of units) { if (used + u > multi) { count += 1; used = 0; } used += u; }
    return { count, encoding: gsm ? "GSM-7" : "UCS-2", total };
  }

  // -- time ---------------------------------------------------------------------------------------------------
  // Count on the service's clock, not the browser's: the page says what time the server read.
  const serverClock = document.querySelector("[data-now]");
  const skew = serverClock ? Date.parse(serverClock.dataset.now) - Date.now() : 0;

  // A duration as h:mm ("23:59" for a day less a minute), or "42 s" under a minute: as assist/web/timing.py.
  function hoursMinutes(seconds) {
    const whole = Math.floor(Math.abs(seconds));
    if (whole < 60) return `${whole} s`;
    const minutes = Math.floor(whole / 60);
    return `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, "0")}`;
  }

  function tickClocks() {
    const now = Date.now() + skew;
    document.querySelectorAll(".countdown").forEach((el) => {
      const left = (Date.parse(el.dataset.due) - now) / 1000;
      el.textContent = left >= 0 ? `in ${hoursMinutes(left)}` : `overdue ${hoursMinutes(left)}`;
      el.classList.toggle("overdue", left < 0);
      const sla = el.closest(".sla");  // the case header's SLA state turns overdue with its countdown
      if (sla) { sla.classList.toggle("sla-due", left >= 0); sla.classList.toggle("sla-overdue", left < 0); }
    });
    document.querySelectorAll(".waited").forEach((el) => {
      el.textContent = hoursMinutes(Math.max(0, (now - Date.parse(el.dataset.since)) / 1000));
    });
  }
  tickClocks();
  setInterval(tickClocks, 1000);

  // -- the reply box ------------------------------------------------------------------------------------------
  const MOST_SEGMENTS_UNASKED = 3;  // a longer SMS reply is sent only once the agent confirms it
  const reply = document.getElementById("reply-text");
  const replyForm = reply && reply.form;
  const counter = document.getElementById("segments");
  const sendConfirm = document.getElementById("send-confirm");

  function smsSegments() {
    return reply && reply.dataset.channel === "sms" ? segments(reply.value) : null;
  }

  function updateCounter() {
    if (!counter) return;
    const s = smsSegments();
    if (!s) { counter.textContent = ""; return; }
    const tooMany = s.count > MOST_SEGMENTS_UNASKED;
    counter.textContent = `${reply.value.length} characters · ${s.encoding} · ${s.count} SMS segment${s.count > 1 ? "s" : ""}`
      + (tooMany ? ` — more than ${MOST_SEGMENTS_UNASKED}: the customer may get it in pieces; sending asks first` : "");
    counter.classList.toggle("too-long", tooMany);
  }
  if (reply) { reply.addEventListener("input", updateCounter); updateCounter(); }

  function useSuggestion(button) {
    if (!reply || !button) return false;
    reply.value = button.dataset.text;
    reply.dispatchEvent(new Event("input", { bubbles: true }));  // the counter, and whatever keeps the draft
    reply.focus();
    return true;
  }
  document.querySelectorAll("button.suggestion").forEach((button) => {
    button.addEventListener("click", () => useSuggestion(button));
  });

  // A long SMS waits for the agent's yes, however it is sent (the button, Ctrl+Enter). The listener captures on
  // the document so it runs before any other submit handler of the form (one that sends it in place).
  let confirmed = false;
  document.addEventListener("submit", (event) => {
    if (event.target !== replyForm || !sendConfirm) return;
    if (confirmed) { confirmed = false; return; }
    const s = smsSegments();
    if (!s || s.count <= MOST_SEGMENTS_UNASKED) return;
    event.preventDefault();
    event.stopPropagation();
    sendConfirm.querySelector(".segment-count").textContent = String(s.count);
    sendConfirm.showModal();
  }, true);
  if (sendConfirm) {
    document.getElementById("send-confirm-yes").addEventListener("click", () => {
      confirmed = true;
      sendConfirm.close();
      replyForm.requestSubmit();
    });
    sendConfirm.addEventListener("close", () => reply.focus());  // back to the draft, kept or sent
  }
  if (reply) {
    reply.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); replyForm.requestSubmit(); }
    });
  }

  // -- a case page tells the queue's tabs it was opened: its alert has been seen ------------------------------
  const OPENED_KEY = "assist.case-opened";
  const caseHeader = document.getElementById("case-header");
  if (caseHeader) localStorage.setItem(OPENED_KEY, `${caseHeader.dataset.case} ${Date.now()}`);  // a new value each time

  // -- the live queue -----------------------------------------------------------------------------------------
  const queue = document.getElementById("queue");
  const rowsBody = document.getElementById("queue-rows");

  function rows() { return Array.from(document.querySelectorAll("tr.case-row")); }

  // The selection is a case, not a row position: when the rows change it stays on its case wherever that moved,
  // and a case that left the page hands it to the row now where it was.
  let selectedCase = null, selectedIndex = 0;
  function select(index) {
    const all = rows();
    selectedIndex = Math.max(0, Math.min(index, all.length - 1));
    selectedCase = all.length ? all[selectedIndex].dataset.case : null;
    all.forEach((row, i) => row.classList.toggle("selected", i === selectedIndex));
    return all[selectedIndex];
  }
  function reselect() {
    const index = rows().findIndex((row) => row.dataset.case === selectedCase);
    select(index >= 0 ? index : selectedIndex);
  }
  function openSelected() {
    const row = queue && rows()[selectedIndex];
    if (row) window.location = row.dataset.href;
    return Boolean(row);
  }
  function move(step) {
    const row = select(selectedIndex + step);
    if (row) row.scrollIntoView({ block: "nearest" });
    return true;
  }

  // -- alerts: a case that arrives critical, or turns critical, flashes, sounds, notifies a hidden tab and counts
  // in the tab's title until it is seen (the tab shown again, or the case opened here or in another tab).
  const MUTED_KEY = "assist.alert-sound-off";
  const FLASH_MS = 6000;  // as long as console.css's flash-critical animation runs (5 × 1.2 s)
  const flashedAt = new Map();  // case id -> when its row began to flash (Date.now())
  const pageTitle = document.title;
  const unseen = new Set();
  const announcer = document.getElementById("queue-announcer");
  const soundBox = document.getElementById("alert-sound");
  const enableAlerts = document.getElementById("alerts-enable");
  let audio = null;

  function urgencies() { return new Map(rows().map((row) => [row.dataset.case, row.dataset.urgency])); }

  function describe(row) {
    return `case #${row.dataset.case}${row.dataset.category ? `: ${row.dataset.category}` : ""}`;
  }

  function showUnseen() {
    const shown = new Set(rows().map((row) => row.dataset.case));
    unseen.forEach((id) => { if (!shown.has(id)) unseen.delete(id); });  // gone from this page: nothing to see
    rows().forEach((row) => row.classList.toggle("unseen", unseen.has(row.dataset.case)));
    showFlashes();
    document.title = unseen.size ? `(${unseen.size}) ${pageTitle}` : pageTitle;
  }
  // Rows are replaced on every refresh: a flash carries on where it was instead of starting over.
  function showFlashes() {
    flashedAt.forEach((at, id) => { if (Date.now() - at >= FLASH_MS) flashedAt.delete(id); });
    rows().filter((row) => flashedAt.has(row.dataset.case)).forEach((row) => {
      row.style.animationDelay = `-${Date.now() - flashedAt.get(row.dataset.case)}ms`;  // CSSOM: the CSP allows it
      row.classList.add("flash");
    });
  }
  function seeAll() { if (unseen.size) { unseen.clear(); showUnseen(); } }

  // Browsers let a page make sound only after a gesture on it: the first click or key wakes the audio up.
  function wakeAudio() {
    if (!window.AudioContext) return;
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume();
  }
  function chime() {
    if (!audio || localStorage.getItem(MUTED_KEY) === "1") return;
    const start = audio.currentTime;
    [880, 660].forEach((pitch, i) => {  // two short falling tones (Hz), 0.18 s apart
      const tone = audio.createOscillator(), volume = audio.createGain(), at = start + i * 0.18;
      tone.frequency.value = pitch;
      volume.gain.setValueAtTime(0.0001, at);
      volume.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
      volume.gain.exponentialRampToValueAtTime(0.0001, at + 0.16);
      tone.connect(volume).connect(audio.destination);
      tone.start(at);
      tone.stop(at + 0.17);
    });
  }

  // Only the case number, urgency and category: a notification shows on locked screens and in the system's history.
  function notify(row) {
    if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
    const href = row.dataset.href;
    try {
      const notice = new Notification(`Critical case #${row.dataset.case}`,
                                      { body: row.dataset.category || "untriaged", tag: `case-${row.dataset.case}` });
      notice.onclick = () => { window.focus(); window.location = href; };
    } catch (error) {
      // Chrome on Android shows notifications only through a service worker: there the constructor throws.
      if (!(error instanceof TypeError)) throw error;
    }
  }

  function alertArrivals(before) {
    const news = [];
    const critical = [];
    rows().forEach((row) => {
      const was = before.get(row.dataset.case), now = row.dataset.urgency;
      if (was === undefined) news.push(`New ${now === "critical" ? "critical " : ""}${describe(row)}`);
      else if (now === "critical" && was !== "critical") news.push(`Now critical: ${describe(row)}`);
      if (now === "critical" && was !== "critical") critical.push(row);
    });
    critical.forEach((row) => {
      unseen.add(row.dataset.case);
      flashedAt.set(row.dataset.case, Date.now());
      notify(row);
    });
    if (critical.length) chime();
    if (news.length && announcer) announcer.textContent = news.join(". ");
  }

  function showPermission() {
    if (!enableAlerts || !("Notification" in window)) return;
    const permission = Notification.permission;
    enableAlerts.hidden = false;
    enableAlerts.disabled = permission !== "default";
    enableAlerts.textContent = { granted: "Desktop alerts on", denied: "Desktop alerts blocked by the browser" }[permission]
      || "Enable alerts";
  }

  if (queue) {
    select(0);
    showPermission();
    if (enableAlerts) {
      enableAlerts.addEventListener("click", () => {
        wakeAudio();
        if ("Notification" in window) Notification.requestPermission().then(showPermission);
      });
    }
    if (soundBox) {
      soundBox.checked = localStorage.getItem(MUTED_KEY) !== "1";
      soundBox.addEventListener("change", () => {
        localStorage.setItem(MUTED_KEY, soundBox.checked ? "0" : "1");
        if (soundBox.checked) { wakeAudio(); chime(); }  // let the agent hear what an alert sounds like
      });
    }
    ["pointerdown", "keydown"].forEach((gesture) => document.addEventListener(gesture, wakeAudio, { once: true }));
    document.addEventListener("visibilitychange", () => { if (!document.hidden) seeAll(); });
    window.addEventListener("focus", seeAll);
    window.addEventListener("storage", (event) => {
      if (event.key !== OPENED_KEY || !event.newValue) return;
      if (unseen.delete(event.newValue.split(" ")[0])) showUnseen();
    });

    // Every console event re-fetches the rows this page shows.
    const url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    let pending = null;
    const refresh = () => {
      pending = null;
      fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
        .then((html) => {
          const before = urgencies();
          rowsBody.innerHTML = html;
          reselect();
          tickClocks();
          alertArrivals(before);
          showUnseen();
        });
    };
    const state = document.getElementById("live-state");
    const listen = () => {
      const source = new EventSource(queue.dataset.live);
      source.onopen = () => { if (state) state.textContent = "live"; };
      source.onmessage = () => { if (!pending) pending = setTimeout(refresh, 100); };
      source.onerror = () => {
        if (state) state.textContent = "reconnecting…";
        // The browser reconnects a stream that ended by itself; one refused (too many tabs: 429) it gives up on.
        if (source.readyState === EventSource.CLOSED) setTimeout(listen, 30000);
      };
    };
    listen();
  }

  // -- dialogs and keys ---------------------------------------------------------------------------------------
  const help = document.getElementById("keys-help");
  function openHelp() { if (help && !help.open) help.showModal(); return Boolean(help); }
  document.querySelectorAll(".keys-help-open").forEach((button) => button.addEventListener("click", openHelp));
  document.querySelectorAll("dialog [data-close]").forEach((button) => {
    button.addEventListener("click", () => button.closest("dialog").close());
  });

  const NOT_TYPED_IN = ["checkbox", "radio", "button", "submit", "reset"];  // inputs that take no text
  function typingIn(target) {
    return target.isContentEditable || ["TEXTAREA", "SELECT"].includes(target.tagName)
      || (target.tagName === "INPUT" && !NOT_TYPED_IN.includes(target.type));
  }
  function click(id) {
    const element = document.getElementById(id);
    if (element) element.click();
    return Boolean(element);
  }
  function focus(element) { if (element) element.focus(); return Boolean(element); }
  function suggestion(n) { return () => useSuggestion(document.querySelectorAll("button.suggestion")[n - 1]); }

  // Each key's action; it returns whether it applied on this page (then the key does nothing else).
  const KEYS = {
    "?": openHelp,
    j: () => Boolean(queue) && move(1),
    k: () => Boolean(queue) && move(-1),
    Enter: openSelected,
    r: () => focus(reply),
    n: () => focus(document.getElementById("note-text")),
    e: () => click("escalate-link"),
    1: suggestion(1),
    2: suggestion(2),
    3: suggestion(3),
  };

  // Esc closes the open dialog, else leaves the text field it was pressed in.
  function escape(target) {
    const dialog = document.querySelector("dialog[open]");
    if (dialog) { dialog.close(); return true; }
    if (typingIn(target)) { target.blur(); return true; }
    return false;
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { if (escape(event.target)) event.preventDefault(); return; }
    // Letters and digits are text while typing; Enter on a link, a button or a form's field is that control's own.
    if (typingIn(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Enter" && (["A", "BUTTON"].includes(event.target.tagName) || event.target.form)) return;
    if (document.querySelector("dialog[open]")) return;
    const action = Object.hasOwn(KEYS, event.key) ? KEYS[event.key] : null;
    if (action && action()) event.preventDefault();
  });
})();
