// The pop-up page: listens for arrivals (Server-Sent Events), opens an accessible
// modal dialog, and sends the clinician's choice. Every string from the server is
// put into the page with textContent, never innerHTML: patient data stays text.

const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const dialog = document.getElementById("prompt-dialog");
const list = document.getElementById("prompt-list");
const announcer = document.getElementById("announcer");
const prompts = new Map();
const waiting = [];
let current = null;
let returnFocus = null;
let previewTimer = null;

function byId(id) {
  return document.getElementById(id);
}

function announce(text) {
  // Cleared first so the same words twice are still read out.
  announcer.textContent = "";
  window.setTimeout(() => {
    announcer.textContent = text;
  }, 50);
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
    body: JSON.stringify(body || {}),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(data.error || "Something went wrong. Try again.");
  }
  return data;
}

// ---- the list of flagged patients here now ----------------------------------

function listItem(prompt) {
  const item = document.createElement("li");
  item.className = "hh-prompt";
  item.dataset.flagId = prompt.flagId;
  const name = document.createElement("span");
  name.className = "hh-prompt__name";
  name.textContent = prompt.name;
  const when = document.createElement("span");
  when.className = "hh-prompt__when";
  when.textContent = `${prompt.time}, ${prompt.status}`;
  const open = document.createElement("button");
  open.type = "button";
  open.className = "nhsuk-button nhsuk-button--secondary nhsuk-button--small hh-prompt__open";
  open.dataset.open = prompt.flagId;
  open.append("Offer referral");
  const hidden = document.createElement("span");
  hidden.className = "nhsuk-u-visually-hidden";
  hidden.textContent = ` to ${prompt.name}`;
  open.append(hidden);
  item.append(name, when, open);
  return item;
}

function renderList() {
  list.replaceChildren(...[...prompts.values()].map(listItem));
  byId("no-prompts").hidden = prompts.size > 0;
}

function addPrompt(prompt) {
  prompts.set(prompt.flagId, prompt);
  renderList();
}

function removePrompt(flagId) {
  prompts.delete(flagId);
  const queued = waiting.indexOf(flagId);
  if (queued >= 0) waiting.splice(queued, 1);
  // An open dialog stays usable (the consultation may just have ended): if someone
  // else has answered meanwhile, the server says so when this clinician acts.
  renderList();
}

list.addEventListener("click", (event) => {
  const button = event.target.closest("[data-open]");
  if (button && prompts.has(button.dataset.open)) {
    openPrompt(prompts.get(button.dataset.open), button);
  }
});

// ---- the dialog ----------------------------------------------------------------

function showPanel(name) {
  for (const panel of dialog.querySelectorAll("[data-panel]")) {
    panel.hidden = panel.dataset.panel !== name;
  }
  const heading = byId(`${name}-title`);
  dialog.setAttribute("aria-labelledby", heading.id);
  hideError();
  heading.focus();
}

function showError(message) {
  byId("dialog-error-text").textContent = message;
  const box = byId("dialog-error");
  box.hidden = false;
  box.focus();
}

function hideError() {
  byId("dialog-error").hidden = true;
}

function resetForms() {
  byId("referral-form").reset();
  byId("decline-form").reset();
  byId("consent-method-form").reset();
  byId("not-appropriate-form").reset();
  clearDeclineError();
  for (const dl of dialog.querySelectorAll(".hh-preview")) dl.replaceChildren();
  byId("preview-details").open = false;
  resetRouting();
}

function openPrompt(prompt, opener) {
  if (dialog.open) {
    if (!waiting.includes(prompt.flagId)) waiting.push(prompt.flagId);
    return;
  }
  current = prompt;
  returnFocus = opener || document.activeElement;
  resetForms();
  byId("dialog-name").textContent = prompt.name;
  byId("dialog-born").textContent = prompt.birthDate ? `Born ${prompt.birthDate}. ` : "";
  byId("dialog-when").textContent = `Appointment ${prompt.time}, ${prompt.status}.`;
  for (const id of ["consent-caption", "decline-caption", "not-appropriate-caption"]) {
    byId(id).textContent = prompt.name;
  }
  const healthReason = byId("health-reason-text");
  if (healthReason) healthReason.textContent = prompt.reasons.join("; ");
  const reasons = byId("dialog-reasons");
  reasons.replaceChildren(
    ...prompt.reasons.map((reason) => {
      const item = document.createElement("li");
      item.textContent = reason;
      return item;
    }),
  );
  dialog.showModal();
  showPanel("choose");
  post(`/api/flags/${encodeURIComponent(prompt.flagId)}/shown`).catch(() => {});
  loadRouting(prompt.flagId);
}

// ---- routing: which housing service, asked before any consent ----------------

function resetRouting() {
  byId("routing-state").hidden = false;
  byId("routing-state").textContent = "Finding the housing service for this address…";
  for (const id of ["routing-to", "routing-ask", "routing-none", "consent-routing"]) {
    byId(id).hidden = true;
  }
  for (const button of dialog.querySelectorAll("[data-offer]")) button.hidden = false;
  dialog.querySelector('[data-action="consent-confirm"]').disabled = false;
}

function showRoutedService(routing) {
  if (!routing.canRefer) return;
  for (const el of dialog.querySelectorAll(".hh-service-name")) el.textContent = routing.sentTo;
  byId("consent-wording").textContent = routing.wording;
}

function renderRouting(routing) {
  byId("routing-state").hidden = true;
  showRoutedService(routing);
  if (routing.canRefer) {
    byId("routing-remit").textContent = routing.remit || "";
    byId("routing-to").hidden = false;
  } else if (routing.canAsk) {
    byId("routing-ask-text").textContent = routing.message;
    byId("routing-ask").hidden = false;
  } else {
    // Nowhere to send it: the offer is not made, so no consent can be recorded.
    byId("routing-none-text").textContent = routing.message;
    byId("routing-none").hidden = false;
    for (const button of dialog.querySelectorAll("[data-offer]")) button.hidden = true;
    announce(`No housing service covers this address. ${routing.message}`);
  }
}

async function loadRouting(flagId) {
  try {
    const routing = await post(`/api/flags/${encodeURIComponent(flagId)}/route`, {});
    if (current && current.flagId === flagId) renderRouting(routing);
  } catch (error) {
    byId("routing-state").textContent = error.message;
  }
}

// In the consent panel the referral form's tenure can change the answer.
function renderConsentRouting(routing) {
  const blocked = !routing.canRefer;
  showRoutedService(routing);
  byId("consent-routing-text").textContent = blocked ? routing.message : "";
  byId("consent-routing").hidden = !blocked;
  dialog.querySelector('[data-action="consent-confirm"]').disabled = blocked;
}

// A modal dialog keeps Tab inside it: browsers otherwise let focus leave for their own
// toolbar, and a keyboard user lands nowhere on return.
function focusable() {
  return [...dialog.querySelectorAll("button, input, textarea, select, summary, a[href]")].filter(
    (el) => !el.disabled && el.getClientRects().length > 0,
  );
}

dialog.addEventListener("keydown", (event) => {
  if (event.key !== "Tab") return;
  const items = focusable();
  if (items.length === 0) return;
  const first = items[0];
  const last = items[items.length - 1];
  const inside = items.includes(document.activeElement);
  if (event.shiftKey && (document.activeElement === first || !inside)) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
    event.preventDefault();
    first.focus();
  }
});

dialog.addEventListener("close", () => {
  const finished = current;
  current = null;
  if (returnFocus && document.contains(returnFocus)) {
    returnFocus.focus();
  } else {
    byId("prompts-heading").setAttribute("tabindex", "-1");
    byId("prompts-heading").focus();
  }
  returnFocus = null;
  const next = waiting.shift();
  if (next && prompts.has(next) && (!finished || finished.flagId !== next)) {
    openPrompt(prompts.get(next));
  }
});

function showDone(title, message) {
  byId("done-title").textContent = title;
  byId("done-message").textContent = message;
  showPanel("done");
  announce(`${title}. ${message}`);
}

// ---- the referral form and its preview ------------------------------------

function referralForm() {
  const form = new FormData(byId("referral-form"));
  const text = (name) => (form.get(name) || "").toString().trim() || null;
  return {
    tenure: text("tenure"),
    concerns: form.getAll("concerns").map(String),
    contact_method: text("contact_method"),
    contact_times: text("contact_times"),
    staff_risks: text("staff_risks"),
    staff_risks_consented: form.get("staff_risks_consented") === "yes",
    // Agreement only: the server writes the reason from the flag (absent: practice off).
    health_reason_consented: form.get("health_reason_consented") === "yes",
  };
}

function renderPreview(dl, lines) {
  dl.replaceChildren(
    ...lines.map(([label, value]) => {
      const row = document.createElement("div");
      row.className = "nhsuk-summary-list__row";
      const key = document.createElement("dt");
      key.className = "nhsuk-summary-list__key";
      key.textContent = label;
      const val = document.createElement("dd");
      val.className = "nhsuk-summary-list__value";
      val.textContent = value;
      row.append(key, val);
      return row;
    }),
  );
}

async function loadPreview(dl, withForm) {
  if (!current) return;
  const flagId = current.flagId;
  try {
    const body = withForm ? { form: referralForm() } : {};
    const data = await post(`/api/flags/${encodeURIComponent(flagId)}/preview`, body);
    if (current && current.flagId === flagId) {
      renderPreview(dl, data.lines);
      if (withForm) renderConsentRouting(data.routing);
    }
  } catch (error) {
    if (withForm) return; // half-typed answers (risks without agreement) are checked on confirm
    showError(error.message);
  }
}

byId("preview-details").addEventListener("toggle", (event) => {
  if (event.target.open) loadPreview(byId("preview-choose"), false);
});

byId("referral-form").addEventListener("input", () => {
  window.clearTimeout(previewTimer);
  previewTimer = window.setTimeout(() => loadPreview(byId("preview-consent"), true), 250);
});
byId("referral-form").addEventListener("submit", (event) => event.preventDefault());
byId("decline-form").addEventListener("submit", (event) => event.preventDefault());
byId("consent-method-form").addEventListener("submit", (event) => event.preventDefault());
byId("not-appropriate-form").addEventListener("submit", (event) => event.preventDefault());

// ---- the actions ----------------------------------------------------------------

// Verbal is checked when the form is reset, so a choice is always made; the server
// refuses anything but verbal or written.
function consentMethod() {
  const chosen = new FormData(byId("consent-method-form")).get("consent_method");
  return chosen === "written" ? "written" : "verbal";
}

function clearDeclineError() {
  byId("decline-group").classList.remove("nhsuk-form-group--error");
  const old = byId("reason-error");
  if (old) old.remove();
}

function declineError(message) {
  clearDeclineError();
  const group = byId("decline-group");
  group.classList.add("nhsuk-form-group--error");
  const span = document.createElement("span");
  span.className = "nhsuk-error-message";
  span.id = "reason-error";
  const prefix = document.createElement("span");
  prefix.className = "nhsuk-u-visually-hidden";
  prefix.textContent = "Error: ";
  span.append(prefix, message);
  const fieldset = group.querySelector("fieldset");
  fieldset.querySelector(".nhsuk-radios").before(span);
  fieldset.setAttribute("aria-describedby", "reason-error");
  group.querySelector("input[type=radio]").focus();
}

async function act(button, run) {
  if (!current || button.disabled) return;
  button.disabled = true;
  try {
    await run(current.flagId);
  } catch (error) {
    showError(error.message);
  } finally {
    button.disabled = false;
  }
}

const actions = {
  "consent-start": () => {
    showPanel("consent");
    loadPreview(byId("preview-consent"), true);
  },
  "decline-start": () => showPanel("decline"),
  "not-appropriate-start": () => showPanel("not-appropriate"),
  back: () => showPanel("choose"),
  close: () => dialog.close(),
  "consent-confirm": (button) =>
    act(button, async (flagId) => {
      const data = await post(`/api/flags/${encodeURIComponent(flagId)}/consent`, {
        wording_version: byId("wording-version").textContent.trim(),
        method: consentMethod(),
        form: referralForm(),
      });
      removePromptQuietly(flagId);
      showDone(data.sent ? "Referral sent" : "Consent recorded", data.message);
    }),
  "decline-confirm": (button) =>
    act(button, async (flagId) => {
      const form = new FormData(byId("decline-form"));
      const reason = form.get("reason");
      if (!reason) {
        declineError("Select why the patient declined");
        return;
      }
      const detail = (form.get("detail") || "").toString().trim() || null;
      const data = await post(`/api/flags/${encodeURIComponent(flagId)}/decline`, {
        reason,
        detail,
      });
      removePromptQuietly(flagId);
      showDone("Decline recorded", data.message);
    }),
  "not-appropriate-confirm": (button) =>
    act(button, async (flagId) => {
      const form = new FormData(byId("not-appropriate-form"));
      const reason = (form.get("reason") || "").toString().trim() || null;
      const data = await post(`/api/flags/${encodeURIComponent(flagId)}/not-appropriate`, {
        reason,
      });
      removePromptQuietly(flagId);
      showDone("Recorded as not appropriate", data.message);
    }),
  dismiss: (button) =>
    act(button, async (flagId) => {
      const data = await post(`/api/flags/${encodeURIComponent(flagId)}/dismiss`);
      removePromptQuietly(flagId);
      showDone("Prompt dismissed", data.message);
    }),
  snooze: (button) =>
    act(button, async (flagId) => {
      const data = await post(`/api/flags/${encodeURIComponent(flagId)}/snooze`);
      removePromptQuietly(flagId);
      showDone("We will ask next time", data.message);
    }),
};

function removePromptQuietly(flagId) {
  prompts.delete(flagId);
  renderList();
}

dialog.addEventListener("click", (event) => {
  const button = event.target.closest("[data-action]");
  if (button && actions[button.dataset.action]) {
    actions[button.dataset.action](button);
  }
});

// ---- desktop notifications ----------------------------------------------------

const notifyButton = byId("enable-notifications");

function notificationState() {
  const state = byId("notification-state");
  if (!("Notification" in window)) {
    notifyButton.hidden = true;
    state.textContent = "This browser cannot show desktop notifications.";
    return;
  }
  notifyButton.hidden = Notification.permission !== "default";
  state.textContent = {
    granted: "Desktop notifications are on.",
    denied: "Desktop notifications are blocked in this browser's settings.",
    default: "Desktop notifications are off.",
  }[Notification.permission];
}

notifyButton.addEventListener("click", async () => {
  // Browsers only ask from a user gesture, which this click is.
  await Notification.requestPermission();
  notificationState();
});

function notify(prompt) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  if (document.visibilityState === "visible") return;
  const note = new Notification("Healthy Homes: offer a housing referral", {
    body: `${prompt.name} has ${prompt.status} (${prompt.time}). ${prompt.reasons[0] || ""}`,
    tag: `healthy-homes-${prompt.flagId}`,
    requireInteraction: true,
  });
  document.body.dataset.lastNotification = prompt.flagId;
  note.addEventListener("click", () => {
    window.focus();
    note.close();
    if (prompts.has(prompt.flagId)) openPrompt(prompts.get(prompt.flagId));
  });
}

// ---- the event stream ----------------------------------------------------------

function streamState(text, state) {
  byId("stream-state").textContent = text;
  document.body.dataset.stream = state;
}

function connect() {
  const source = new EventSource("/events");
  const data = (event) => JSON.parse(event.data);
  source.addEventListener("snapshot", (event) => {
    prompts.clear();
    for (const prompt of data(event).prompts) prompts.set(prompt.flagId, prompt);
    renderList();
    streamState("Watching for arrivals.", "ready");
  });
  source.addEventListener("listed", (event) => addPrompt(data(event)));
  source.addEventListener("arrived", (event) => {
    const prompt = data(event);
    addPrompt(prompt);
    announce(`Housing referral prompt: ${prompt.name} has ${prompt.status}.`);
    notify(prompt);
    openPrompt(prompt);
  });
  source.addEventListener("resolved", (event) => removePrompt(data(event).flagId));
  source.addEventListener("status", (event) => {
    const health = data(event);
    byId("health-warning").hidden = health.ok;
    byId("health-message").textContent = health.message;
  });
  source.addEventListener("error", () => {
    streamState("Connection lost. Reconnecting…", "reconnecting");
  });
}

notificationState();
connect();
