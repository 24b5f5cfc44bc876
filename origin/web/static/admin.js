// shelfedge admin: live validation and variant rows for the experiment form. No build step,
// no library. The page works without this script (the server validates every save and handles
// "add/remove variant" as form posts); the script only saves round trips. It never stores or
// sends anything but the form itself, to this origin, with the page's CSRF nonce.
(function () {
  "use strict";
  const form = document.getElementById("experiment-form");
  if (!form) { return; }
  const csrf = form.querySelector('input[name="csrf"]').value;
  const url = form.dataset.validateUrl;
  const rows = form.querySelector("[data-variants]");
  const template = document.getElementById("variant-row-template");
  const summary = document.querySelector("[data-error-summary]");
  const summaryList = document.querySelector("[data-summary-list]");
  const count = document.querySelector("[data-problem-count]");
  const noun = document.querySelector("[data-problem-noun]");
  const status = document.querySelector("[data-live-status]");
  const addButton = form.querySelector("[data-add-variant]");
  const DEBOUNCE_MS = 300;
  let timer = 0;
  let sequence = 0;

  // --- errors next to fields -----------------------------------------------------------------
  function errorSlot(name) {
    // The field itself, else its nearest shown parent: variants[1].changes.scoring.x -> variants[1].changes
    let candidate = name;
    while (candidate) {
      const slot = form.querySelector('[data-error-for="' + CSS.escape(candidate) + '"]');
      if (slot) { return { slot: slot, exact: candidate === name }; }
      const trimmed = candidate.replace(/(\[\d+\]|\.[^.\[\]]+)$/, "");
      if (trimmed === candidate) { return null; }
      candidate = trimmed;
    }
    return null;
  }

  function clearErrors() {
    form.querySelectorAll("[data-error-for]").forEach(function (el) { el.hidden = true; el.textContent = ""; });
    form.querySelectorAll(".field.invalid").forEach(function (el) { el.classList.remove("invalid"); });
    form.querySelectorAll('[aria-invalid="true"]').forEach(function (el) { el.removeAttribute("aria-invalid"); });
    summaryList.textContent = "";
  }

  function showProblems(problems) {
    clearErrors();
    const names = Object.keys(problems);
    names.forEach(function (name) {
      const found = errorSlot(name);
      if (!found) {
        const li = document.createElement("li");
        const code = document.createElement("span");
        code.className = "mono";
        code.textContent = name;
        li.appendChild(code);
        li.appendChild(document.createTextNode(": " + problems[name]));
        summaryList.appendChild(li);
        return;
      }
      const text = found.exact ? problems[name] : name + ": " + problems[name];
      found.slot.textContent = found.slot.textContent ? found.slot.textContent + "; " + text : text;
      found.slot.hidden = false;
      const field = found.slot.closest(".field");
      if (field) {
        field.classList.add("invalid");
        field.querySelectorAll("input, select, textarea").forEach(function (input) {
          input.setAttribute("aria-invalid", "true");
        });
      }
    });
    summary.hidden = names.length === 0;
    count.textContent = String(names.length);
    noun.textContent = names.length === 1 ? "problem" : "problems";
    if (status) {
      status.textContent = names.length ? names.length + (names.length === 1 ? " problem" : " problems") : "✓ Ready to save";
      status.className = "live-status " + (names.length ? "bad" : "ok");
    }
  }

  // --- the sample-size and duration estimate, from the same dry run ----------------------------
  function showPlan(plan) {
    const box = form.querySelector("[data-plan]");
    if (!box || !plan) { return; }
    const message = box.querySelector("[data-plan-message]");
    message.textContent = plan.message;
    let detail = box.querySelector("[data-plan-detail]");
    if (!detail) {
      detail = document.createElement("p");
      detail.className = "muted small";
      detail.setAttribute("data-plan-detail", "");
      box.appendChild(detail);
    }
    detail.textContent = plan.detail;
    detail.hidden = !plan.detail;
    box.classList.toggle("plan-warning", plan.reachable === false);
    if (plan.reachable === null) { box.removeAttribute("data-reachable"); }
    else { box.setAttribute("data-reachable", plan.reachable ? "yes" : "no"); }
    if (plan.reachable === false) { message.setAttribute("role", "alert"); } else { message.removeAttribute("role"); }
  }

  async function validate() {
    const mine = ++sequence;
    const body = new URLSearchParams(new FormData(form));
    if (status) { status.textContent = "Checking…"; status.className = "live-status"; }
    try {
      const res = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
        body: body,
      });
      if (mine !== sequence) { return; }  // a newer check is on its way
      if (res.status === 401) {
        if (status) { status.textContent = "Session expired: log in again to save"; status.className = "live-status bad"; }
        return;
      }
      const doc = await res.json();
      if (mine === sequence) { showProblems(doc.problems || {}); showPlan(doc.plan); }
    } catch (err) {
      if (status && mine === sequence) { status.textContent = "Could not check (the server will on save)"; }
    }
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(validate, DEBOUNCE_MS);
  }

  // --- variant rows --------------------------------------------------------------------------
  const ATTRS = ["name", "id", "for", "aria-describedby", "data-field", "data-error-for", "value"];

  function renumber() {
    rows.querySelectorAll("[data-variant-row]").forEach(function (row, index) {
      row.querySelectorAll("*").forEach(function (el) {
        ATTRS.forEach(function (attr) {
          const value = el.getAttribute(attr);
          if (value === null) { return; }
          if (attr === "value" && !/^remove-variant-/.test(value)) { return; }
          el.setAttribute(attr, value
            .replace(/variants\[(\d+|__i__)\]/g, "variants[" + index + "]")
            .replace(/variants-(\d+|__i__)-/g, "variants-" + index + "-")
            .replace(/^remove-variant-(\d+|__i__)$/, "remove-variant-" + index));
        });
      });
      row.querySelectorAll(".swatch").forEach(function (swatch) {
        swatch.className = "swatch series-" + (index % 6);
      });
    });
    if (addButton) {
      addButton.disabled = rows.querySelectorAll("[data-variant-row]").length >= Number(rows.dataset.max);
    }
  }

  function addRow() {
    const fragment = template.content.cloneNode(true);
    rows.appendChild(fragment);
    renumber();
    const added = rows.querySelectorAll("[data-variant-row]");
    const first = added[added.length - 1].querySelector("input");
    if (first) { first.focus(); }
    schedule();
  }

  form.addEventListener("click", function (event) {
    const target = event.target.closest("button");
    if (!target) { return; }
    if (target.hasAttribute("data-add-variant")) {
      event.preventDefault();
      addRow();
    } else if (target.hasAttribute("data-remove-variant")) {
      event.preventDefault();
      target.closest("[data-variant-row]").remove();
      renumber();
      schedule();
    }
  });

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  if (form.dataset.validateNow !== undefined || !summary.hidden) { schedule(); }
})();
