// The playbook editor's gutter: line numbers that scroll with the YAML and follow its edits, keeping the
// lines the server marked as wrong; a problem's "line N" link selects that line. Without this script the
// gutter shows the numbers of the text as loaded, which still point at the marked lines.
(function () {
  "use strict";
  const editor = document.querySelector(".code-editor");
  if (!editor) return;
  const textarea = editor.querySelector("textarea");
  const gutter = editor.querySelector(".gutter");
  const marked = new Set(editor.dataset.marked ? editor.dataset.marked.split(",").map(Number) : []);

  function number() {
    const count = textarea.value.split("\n").length;
    if (gutter.children.length === count) return;
    const items = [];
    for (let n = 1; n <= count; n += 1) {
      const item = document.createElement("li");
      item.textContent = String(n);
      if (marked.has(n)) item.className = "marked";
      items.push(item);
    }
    gutter.replaceChildren(...items);
  }

  function follow() {
    gutter.style.height = textarea.offsetHeight + "px";
    gutter.scrollTop = textarea.scrollTop;
  }

  function select(line) {
    const lines = textarea.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0);
    textarea.focus();
    textarea.setSelectionRange(start, start + (lines[line - 1] || "").length);
    const height = textarea.scrollHeight / lines.length;
    textarea.scrollTop = Math.max(0, (line - 5) * height);
    follow();
  }

  textarea.addEventListener("input", () => { number(); follow(); });
  textarea.addEventListener("scroll", follow);
  new ResizeObserver(follow).observe(textarea);
  document.querySelectorAll(".problem-line").forEach((link) => {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      select(Number(link.dataset.line));
    });
  });
  number();
  follow();
})();
