// On a narrow screen the top bar's links fold behind a Menu button (console.css); without this script they
// stay unfolded, so nothing depends on it.
(function () {
  "use strict";
  const bar = document.querySelector(".topbar");
  const toggle = document.getElementById("menu-toggle");
  if (!bar || !toggle) return;
  bar.classList.add("foldable");
  toggle.hidden = false;
  toggle.addEventListener("click", () => {
    const open = bar.classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(open));
  });
})();
