// The console's small behaviours: live queue, keyboard, suggestions, SMS segment counter, SLA countdowns.
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

  const reply = document.getElementById("reply-text");
  const counter = document.getElementById("segments");
  function updateCounter() {
    if (!reply || !counter) return;
    if (reply.dataset.channel !== "sms") { counter.textContent = ""; return; }
    const s = segments(reply.value);
    counter.textContent = `${reply.value.length} characters · ${s.encoding} · ${s.count} SMS segment${s.count > 1 ? "s" : ""}`;
  }
  if (reply) { reply.addEventListener("input", updateCounter); updateCounter(); }

  document.querySelectorAll("button.suggestion").forEach((button) => {
    button.addEventListener("click", () => {
      reply.value = button.dataset.text;
      reply.focus();
      updateCounter();
    });
  });

  // Count down on the service's clock, not the browser's: the page says what time the server read.
  const queueTable = document.getElementById("queue");
  const skew = queueTable && queueTable.dataset.now ? Date.parse(queueTable.dataset.now) - Date.now() : 0;
  function tickCountdowns() {
    const now = Date.now() + skew;
    document.querySelectorAll(".countdown").forEach((el) => {
      const left = Math.round((Date.parse(el.dataset.due) - now) / 1000);
      const abs = Math.abs(left);
      const text = `${Math.floor(abs / 60)}:${String(abs % 60).padStart(2, "0")}`;
      el.textContent = left >= 0 ? `in ${text}` : `overdue ${text}`;
      el.classList.toggle("overdue", left < 0);
    });
  }
  tickCountdowns();
  setInterval(tickCountdowns, 1000);

  // The live queue: every console event re-fetches the rows this page shows.
  const queue = queueTable;
  let selected = 0;
  function rows() { return Array.from(document.querySelectorAll("tr.case-row")); }
  function select(index) {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((row, i) => row.classList.toggle("selected", i === selected));
  }
  if (queue) {
    select(0);
    const url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    let pending = null;
    const refresh = () => {
      pending = null;
      fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
        .then((html) => { document.getElementById("queue-rows").innerHTML = html; select(selected); tickCountdowns(); });
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

  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName);
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (queue) {
      if (event.key === "j") { select(selected + 1); event.preventDefault(); }
      if (event.key === "k") { select(selected - 1); event.preventDefault(); }
      if (event.key === "Enter" && rows()[selected]) { window.location = rows()[selected].dataset.href; }
    }
    if (event.key === "r" && reply) { reply.focus(); event.preventDefault(); }
    const note = document.getElementById("note-text");
    if (event.key === "n" && note) { note.focus(); event.preventDefault(); }
    const escalate = document.getElementById("escalate-link");
    if (event.key === "e" && escalate) { escalate.click(); event.preventDefault(); }
  });
})();
