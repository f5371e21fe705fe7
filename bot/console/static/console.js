// Live console: server-sent events refresh cards; buttons call the REST API.
(function () {
  "use strict";

  const list = document.getElementById("incident-list");
  const page = document.querySelector("[data-incident-page]");
  const toast = document.getElementById("toast");
  const live = document.getElementById("live");

  function say(text, bad) {
    if (!toast) return;
    toast.textContent = text;
    toast.className = bad ? "show bad" : "show";
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { toast.className = ""; }, 4000);
  }

  function wanted(card) {
    if (!list) return false;
    const state = list.dataset.filterState || "active";
    const severity = list.dataset.filterSeverity || "";
    const q = (list.dataset.filterQ || "").toLowerCase();
    const cardState = card.querySelector(".state").dataset.state;
    if (state === "active" && cardState === "resolved") return false;
    if (!["active", "all"].includes(state) && cardState !== state) return false;
    if (severity && !card.classList.contains("sev-" + severity)) return false;
    if (q && !card.querySelector(".title").textContent.toLowerCase().includes(q)) return false;
    return true;
  }

  async function fetchCard(id) {
    const response = await fetch("/console/cards/" + id, { credentials: "same-origin" });
    if (!response.ok) return null;
    const holder = document.createElement("div");
    holder.innerHTML = (await response.text()).trim();
    return holder.firstElementChild;
  }

  async function refreshList(id) {
    const card = await fetchCard(id);
    if (!card) return;
    const old = document.getElementById("card-" + id);
    if (old && wanted(card)) {
      old.replaceWith(card);
    } else if (old) {
      old.remove();
    } else if (wanted(card)) {
      card.classList.add("arrived");
      list.prepend(card);
      const empty = document.getElementById("empty");
      if (empty) empty.remove();
    }
    const total = document.getElementById("total");
    const count = list.querySelectorAll(".card").length;
    if (total) total.textContent = count;
    const noun = document.getElementById("total-noun");
    if (noun) noun.textContent = count === 1 ? "incident" : "incidents";
  }

  async function refreshPage() {
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.querySelector("[data-incident-page]");
    if (fresh) page.replaceWith(fresh);
  }

  function connect() {
    const source = new EventSource("/events");
    source.onopen = () => live && live.classList.add("on");
    source.onerror = () => live && live.classList.remove("on");
    source.addEventListener("incident", (event) => {
      const change = JSON.parse(event.data);
      if (list) refreshList(change.id);
      const current = document.querySelector("[data-incident-page]");
      if (current && Number(current.dataset.incidentPage) === change.id) refreshPage();
    });
  }

  async function send(id, body) {
    const response = await fetch("/api/v1/incidents/INC-" + id + "/commands", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({ error: "unexpected answer" }));
    if (!response.ok) throw new Error(answer.error || response.statusText);
    return answer;
  }

  async function act(id, body) {
    try {
      const answer = await send(id, body);
      say("INC-" + id + ": " + answer.message);
      if (list) await refreshList(id);
      if (document.querySelector("[data-incident-page]")) await refreshPage();
    } catch (error) {
      say(error.message, true);
    }
  }

  function ask(dialogId, id, human) {
    const dialog = document.getElementById(dialogId);
    const form = dialog.querySelector("form");
    form.reset();
    dialog.querySelector(".dlg-id").textContent = human;
    const error = form.querySelector(".error");
    error.hidden = true;
    const custom = form.querySelector(".custom-duration");
    if (custom) custom.hidden = true;
    form.onchange = () => {
      if (custom) custom.hidden = form.duration.value !== "custom";
    };
    form.onsubmit = async (event) => {
      if (event.submitter && event.submitter.value === "cancel") return;
      event.preventDefault();
      const body = { command: form.dataset.command };
      if (form.dataset.command === "suppress") {
        body.duration = form.duration.value === "custom" ? form.custom.value.trim() : form.duration.value;
        body.reason = form.reason.value.trim();
        if (!body.reason) { error.textContent = "A reason is required."; error.hidden = false; return; }
        if (!body.duration) { error.textContent = "Give a duration, e.g. 90m."; error.hidden = false; return; }
      } else {
        body.note = form.note.value.trim();
      }
      try {
        const answer = await send(id, body);
        dialog.close();
        say(human + ": " + answer.message);
        if (list) await refreshList(id);
        if (document.querySelector("[data-incident-page]")) await refreshPage();
      } catch (failure) {
        error.textContent = failure.message;
        error.hidden = false;
      }
    };
    dialog.showModal();
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const card = button.closest("[data-incident]");
    const id = Number(card.dataset.incident);
    const action = button.dataset.action;
    if (action === "suppress") return ask("suppress-dialog", id, card.dataset.human);
    if (action === "resolve") return ask("resolve-dialog", id, card.dataset.human);
    act(id, { command: action });
  });

  if (live) connect();
})();
