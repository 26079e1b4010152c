// boxoffice back office: the little that needs script. Everything works without it.

// Check-in: the scanner types into the one input; keep it focused and empty after each scan.
function keepScannerFocus() {
  const input = document.getElementById("ticket-code");
  if (!input) return;
  input.focus();
  input.select();
  document.addEventListener("htmx:afterSwap", () => {
    input.value = "";
    input.focus();
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
