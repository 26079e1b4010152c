// boxoffice's one module: keyboard movement on the seat grid, picking seats in place, the live
// seat map, and the hold countdown. Every page works without it; it only makes them quicker.

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

// A select marked data-autosubmit sends its form when it changes (the cinema picker).
for (const select of $$("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.requestSubmit());
  for (const hidden of $$(".js-hide", select.form)) hidden.hidden = true;
}

const form = $("#seat-form");
if (form) seatMap(form);
const timer = $("#countdown");
if (timer) countdown(timer);
const stripeForm = $("#stripe-pay");
if (stripeForm && window.Stripe) stripePay(stripeForm);

// Real Stripe mode: the card is collected by Stripe.js (the one external script the policy
// allows); this site only ever sees the intent's client secret, never the card.
function stripePay(form) {
  const stripe = window.Stripe(form.dataset.stripeKey);
  const card = stripe.elements().create("card");
  card.mount("#card-element");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await fetch(form.action, {
      method: "POST",
      headers: { Accept: "application/json" },
      body: new URLSearchParams(new FormData(form)),
    });
    if (answer.ok) {
      const { client_secret: secret } = await answer.json();
      await stripe.confirmCardPayment(secret, { payment_method: { card } });
    }
    window.location.reload();
  });
}

function seatMap(form) {
  const grid = $("[role=grid]", form);
  const picks = $("#picks", form);
  const note = $("#live-note");
  const seats = () => $$("button.seat", grid);
  const rows = () => $$("[role=row]", grid).map((row) => $$("button.seat", row));
  const byId = new Map(seats().map((b) => [b.dataset.seat, b]));

  const name = (b) => `${b.dataset.label}, ${b.dataset.type}, ${b.dataset.state}`;
  const isPicked = (b) => b.getAttribute("aria-pressed") === "true";
  const changed = () => {
    if (window.htmx) window.htmx.trigger(form, "seats-changed");
  };
  const setPicked = (b, picked) => {
    b.setAttribute("aria-pressed", String(picked));
    const input = $(`input[name=seat][value="${b.dataset.seat}"]`, picks);
    if (picked && !input) {
      const added = document.createElement("input");
      added.type = "hidden";
      added.name = "seat";
      added.value = b.dataset.seat;
      picks.append(added);
    } else if (!picked && input) {
      input.remove();
    }
  };

  // Picking: the buttons submit the form without script; with it they toggle in place.
  grid.addEventListener("click", (event) => {
    const b = event.target.closest("button.seat");
    if (!b) return;
    event.preventDefault();
    focusSeat(b);
    if (b.getAttribute("aria-disabled") === "true") return;
    setPicked(b, !isPicked(b));
    changed();
  });

  // Roving tab index: the grid is one tab stop; arrows, Home and End move inside it.
  const focusSeat = (b) => {
    for (const other of seats()) other.tabIndex = other === b ? 0 : -1;
    b.focus();
  };
  const columnOf = (b) => b.closest("[role=gridcell]").getBoundingClientRect().left;
  grid.addEventListener("keydown", (event) => {
    const b = event.target.closest("button.seat");
    if (!b) return;
    const all = rows();
    const r = all.findIndex((row) => row.includes(b));
    const row = all[r];
    const i = row.indexOf(b);
    let next = null;
    switch (event.key) {
      case "ArrowRight": next = row[i + 1]; break;
      case "ArrowLeft": next = row[i - 1]; break;
      case "Home": next = event.ctrlKey ? all[0][0] : row[0]; break;
      case "End": next = event.ctrlKey ? all.at(-1).at(-1) : row.at(-1); break;
      case "ArrowUp":
      case "ArrowDown": {
        const target = all[r + (event.key === "ArrowUp" ? -1 : 1)];
        if (target && target.length) {
          const x = columnOf(b);
          next = target.reduce((best, s) =>
            Math.abs(columnOf(s) - x) < Math.abs(columnOf(best) - x) ? s : best);
        }
        break;
      }
      default: return;
    }
    event.preventDefault();
    if (next) focusSeat(next);
  });

  // Live: apply the feed's versions in order; on a gap, start again from a fresh snapshot.
  let version = Number(form.dataset.version);
  let source = null;
  const apply = (seat) => {
    const b = byId.get(seat.id);
    if (!b || b.dataset.state === seat.state) return;
    const wasPicked = isPicked(b);
    b.dataset.state = seat.state;
    b.setAttribute("aria-label", name(b));
    if (seat.state === "available") {
      b.removeAttribute("aria-disabled");
    } else {
      b.setAttribute("aria-disabled", "true");
      if (wasPicked) {
        setPicked(b, false);
        note.textContent = `${b.dataset.label} was just taken by someone else.`;
        changed();
      }
    }
  };
  const connect = () => {
    source = new EventSource(`/api/v1/showtimes/${form.dataset.showtime}/events`);
    source.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.snapshot) {
        version = event.version;
        event.seats.forEach(apply);
      } else if (event.version === version + 1) {
        version = event.version;
        event.seats.forEach(apply);
      } else if (event.version > version + 1) {
        // A change is missing: reconnect, which begins with the whole map.
        source.close();
        connect();
      }
    };
  };
  connect();
  window.addEventListener("pagehide", () => source && source.close());
}

function countdown(timer) {
  const shown = $("strong", timer);
  const note = $("#countdown-note");
  const extend = $("#extend");
  const started = performance.now();
  const total = Number(timer.dataset.remaining);
  // Announced at these seconds left, not every second.
  const thresholds = [300, 120, 60, 30, 10];
  let announced = new Set(thresholds.filter((t) => t >= total));
  const tick = () => {
    const left = Math.max(0, Math.round(total - (performance.now() - started) / 1000));
    shown.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    for (const t of thresholds) {
      if (left <= t && !announced.has(t)) {
        announced.add(t);
        note.textContent = t >= 60
          ? `${t / 60} minute${t === 60 ? "" : "s"} left to pay before the seats are released.`
          : `${t} seconds left to pay.`;
      }
    }
    if (extend && left <= 60) extend.hidden = false;
    if (left === 0) {
      // The server says what happened: the seats were released.
      window.location.reload();
      return;
    }
    window.setTimeout(tick, 1000 - ((performance.now() - started) % 1000));
  };
  tick();
}
