// Live console: server-sent events refresh cards; buttons call the REST API.
(function () {
  "use strict";

  const list = document.getElementById("incident-list");
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

  // Refreshes of one card may overlap (several changes arrive at once) and their answers may
  // come back out of order: only the latest request's answer is shown, never an older state.
  const asked = new Map();
  function ticket(key) {
    const n = (asked.get(key) || 0) + 1;
    asked.set(key, n);
    return () => asked.get(key) === n;
  }

  async function refreshList(id) {
    const latest = ticket(id);
    const card = await fetchCard(id);
    if (!card || !latest()) return;
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
    const latest = ticket("page");
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const text = await response.text();
    if (!latest()) return;
    const doc = new DOMParser().parseFromString(text, "text/html");
    const fresh = doc.querySelector("[data-incident-page]");
    const shown = document.querySelector("[data-incident-page]"); // the one shown now
    if (fresh && shown) shown.replaceWith(fresh);
  }

  function connect() {
    const source = new EventSource("/events");
    source.onopen = () => live && live.classList.add("on");
    source.onerror = () => live && live.classList.remove("on");
    source.addEventListener("incident", (event) => {
      const change = JSON.parse(event.data);
      if (change.kind === "direct") return loadNotices(true);
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

  // remediation ---------------------------------------------------------------------------

  async function post(url, body, key) {
    const headers = { "Content-Type": "application/json" };
    if (key) headers["Idempotency-Key"] = key;
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin", headers, body: JSON.stringify(body || {}),
    });
    const answer = await response.json().catch(() => ({ error: "unexpected answer" }));
    if (!response.ok) throw new Error(answer.error || response.statusText);
    return answer;
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function stepItem(step) {
    const li = el("li");
    li.append(el("b", step.name), ": " + step.description + " ");
    li.append(el("code", step.executor + "." + step.action + " on " + step.target));
    const params = Object.entries(step.params).map(([k, v]) => k + "=" + v).join(", ");
    li.append(" · timeout " + step.timeout_s + "s" + (step.reversible ? "" : " · cannot be undone"));
    if (params) li.append(el("div", params, "params"));
    return li;
  }

  function showPlan(box, plan) {
    box.replaceChildren();
    box.append(el("p", plan.playbook_title + " (" + plan.playbook_id + ") on " + plan.target));
    box.append(el("p", "Risk " + plan.risk + " · category " + plan.category));
    box.append(el("p", "Confidence " + Math.round(plan.confidence.value * 100) + "%: " + plan.confidence.reasons.join("; "), "confidence"));
    box.append(el("h4", "Steps"));
    const steps = el("ol", undefined, "steps");
    plan.steps.forEach((s) => steps.append(stepItem(s)));
    box.append(steps);
    if (plan.rollback.length) {
      box.append(el("h4", "Rollback if it fails"));
      const back = el("ol");
      plan.rollback.forEach((s) => back.append(stepItem(s)));
      box.append(back);
    }
    if (plan.verify_wait_s) box.append(el("p", "Then it waits " + plan.verify_wait_s + "s and runs the incident's rule again: cleared resolves the incident."));
    const words = { run: "Gate: allowed, every check passed.", needs_approval: "Gate: needs a second responder's approval: ", refused: "Gate: refused: " };
    const failed = plan.verdict.checks.filter((c) => !c.passed).map((c) => c.text).join("; ");
    const text = words[plan.verdict.decision] + (plan.verdict.decision === "refused" ? failed : plan.verdict.decision === "run" ? "" : plan.verdict.reason);
    box.append(el("p", text, "verdict verdict-" + plan.verdict.decision));
    if (plan.alternatives.length) box.append(el("p", "Other playbooks that match: " + plan.alternatives.join(", ")));
  }

  async function autoResolve(id, human) {
    const dialog = document.getElementById("plan-dialog");
    const form = dialog.querySelector("form");
    const box = dialog.querySelector(".plan");
    const error = form.querySelector(".error");
    const confirm = form.querySelector("button[value=ok]");
    dialog.querySelector(".dlg-id").textContent = human;
    box.replaceChildren(el("p", "Planning…", "pending"));
    error.hidden = true;
    confirm.hidden = true;
    let plan = null;
    form.onsubmit = async (event) => {
      if (event.submitter && event.submitter.value === "cancel") return;
      event.preventDefault();
      if (!plan) return;
      confirm.disabled = true;
      try {
        const run = await post("/console/incidents/INC-" + id + "/runs", { fingerprint: plan.fingerprint, playbook_id: plan.playbook_id }, crypto.randomUUID());
        dialog.close();
        say(human + ": " + run.message);
        if (list) await refreshList(id);
        if (document.querySelector("[data-incident-page]")) await refreshPage();
      } catch (failure) {
        error.textContent = failure.message;
        error.hidden = false;
      } finally {
        confirm.disabled = false;
      }
    };
    dialog.showModal();
    try {
      plan = await post("/console/incidents/INC-" + id + "/plan", {});
      showPlan(box, plan);
      if (plan.verdict.decision !== "refused") {
        confirm.textContent = plan.verdict.decision === "needs_approval" ? "Run with approval" : "Confirm";
        confirm.hidden = false;
      }
    } catch (failure) {
      box.replaceChildren();
      error.textContent = failure.message;
      error.hidden = false;
    }
  }

  async function onRun(id, run, approve) {
    try {
      const answer = await post("/console/runs/" + run + (approve ? "/approve" : "/cancel"), approve ? undefined : { reason: "" });
      say(answer.message);
      if (list) await refreshList(id);
      if (document.querySelector("[data-incident-page]")) await refreshPage();
    } catch (failure) {
      say(failure.message, true);
    }
  }

  async function loadNotices(fresh) {
    const box = document.getElementById("notices");
    if (!box) return;
    const response = await fetch("/console/notifications", { credentials: "same-origin" });
    if (!response.ok) return;
    const answer = await response.json();
    const listing = box.querySelector("ol");
    listing.replaceChildren();
    answer.items.forEach((n) => {
      const li = el("li");
      li.append(el("time", n.at), n.text);
      listing.append(li);
    });
    box.querySelector(".count").textContent = answer.items.length ? "(" + answer.items.length + ")" : "";
    if (fresh && answer.items.length) say(answer.items[0].text);
  }

  const toggle = document.getElementById("killswitch-toggle");
  if (toggle) {
    toggle.addEventListener("click", async () => {
      const on = toggle.dataset.on === "yes";
      const reason = window.prompt(on ? "Why allow remediation again?" : "Why stop every remediation?");
      if (!reason || !reason.trim()) return;
      try {
        await post("/api/v1/config/kill-switch/" + (on ? "deactivate" : "activate"), { reason: reason.trim() });
        location.reload();
      } catch (failure) {
        say(failure.message, true);
      }
    });
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const card = button.closest("[data-incident]");
    const id = Number(card.dataset.incident);
    const action = button.dataset.action;
    if (action === "auto_resolve") return autoResolve(id, card.dataset.human);
    if (action === "approve_run") return onRun(id, Number(button.dataset.run), true);
    if (action === "cancel_run") return onRun(id, Number(button.dataset.run), false);
    if (action === "suppress") return ask("suppress-dialog", id, card.dataset.human);
    if (action === "resolve") return ask("resolve-dialog", id, card.dataset.human);
    act(id, { command: action });
  });

  if (live) connect();
  loadNotices(false);
  setInterval(() => loadNotices(false), 30000); // direct messages delivered by another replica
})();
