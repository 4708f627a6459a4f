// Redacting from the case page: words selected in a message's text fill that message's "Words to redact" box
// when its redact form is opened, so the agent need not copy a card number by hand.
(function () {
  "use strict";

  let selected = { message: null, words: "" };

  document.addEventListener("selectionchange", () => {
    const selection = document.getSelection();
    const words = selection ? selection.toString() : "";
    const node = selection && selection.anchorNode;
    const element = node && (node.nodeType === Node.ELEMENT_NODE ? node : node.parentElement);
    const body = element && element.closest(".msg .body, .msg .subject");
    if (body && words.trim()) {
      selected = { message: body.closest(".msg"), words: words };
    }
  });

  document.addEventListener("toggle", (event) => {
    const details = event.target;
    if (!(details instanceof HTMLDetailsElement) || !details.classList.contains("redact") || !details.open) return;
    const input = details.querySelector(".redact-words");
    if (input && !input.value && selected.message === details.closest(".msg")) input.value = selected.words;
    if (input) input.focus();
  }, true);
})();
