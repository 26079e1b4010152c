// boxoffice back office: the little that needs script. Everything works without it.

// Check-in: each scan posts the form and comes back to this page; the scanner's next code must
// land in the input again, even after someone clicked elsewhere on the page.
function keepScannerFocus() {
  const input = document.getElementById("ticket-code");
  if (!input) return;
  input.focus();
  document.addEventListener("keydown", (event) => {
    const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement;
    if (!typing && event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey) input.focus();
  });
}

// A form with data-confirm asks before it is sent (cancelling a showtime, refunding).
function confirmForms() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

keepScannerFocus();
confirmForms();
