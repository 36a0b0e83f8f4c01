/* The routing policy admin's structured editor for conditions and actions, and its dry run.
 *
 * Each editor is built from the policy language's JSON Schema (routing/engine/schema.py,
 * embedded by the widget): the attributes and their operators, the action keys, strategies,
 * error types and capabilities all come from there, the provider and model pickers from the
 * catalogue. The textarea stays the form's value: every edit writes the JSON there, and
 * "Edit as raw JSON" shows it. Nothing is rewritten until the operator edits, so a form that
 * came back with errors keeps the text as it was typed. What the rows cannot show ($or, $not,
 * sensitive values, unknown keys) opens in raw JSON with a note saying why.
 */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (value === undefined || value === null || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    });
    (children || []).forEach((child) => child && node.append(child));
    return node;
  }

  function select(options, value, attrs) {
    const node = el("select", attrs);
    options.forEach(([optionValue, label]) => {
      const option = el("option", { value: optionValue, text: label });
      if (String(optionValue) === String(value)) option.selected = true;
      node.append(option);
    });
    return node;
  }

  // The schema of a value, without the sensitive-reference alternative.
  function plain(schema) {
    if (schema && schema.anyOf) {
      const rest = schema.anyOf.filter((s) => !s.$ref && s.type !== "null");
      if (rest.length === 1) return Object.assign({}, schema, rest[0], { anyOf: undefined });
      return Object.assign({}, schema, { anyOf: rest });
    }
    return schema || {};
  }

  function isReference(value) {
    return value && typeof value === "object" && !Array.isArray(value) && "$sensitive" in value;
  }

  function hasReference(value) {
    if (isReference(value)) return true;
    if (value && typeof value === "object") return Object.values(value).some(hasReference);
    return false;
  }

  // Text typed by the operator -> the JSON value the schema expects. Anything unreadable is
  // passed on as text, so the server names the field and the problem.
  function parseScalar(text, schema) {
    const trimmed = text.trim();
    const types = [].concat(schema.type || (schema.anyOf || []).map((s) => s.type));
    if (types.includes("boolean") && (trimmed === "true" || trimmed === "false")) {
      return trimmed === "true";
    }
    if (types.includes("null") && trimmed === "null") return null;
    if ((types.includes("number") || types.includes("integer")) && trimmed !== "") {
      const number = Number(trimmed);
      if (!Number.isNaN(number)) return number;
    }
    return types.includes("string") || !types.length ? text : trimmed;
  }

  function showScalar(value) {
    if (Array.isArray(value)) return value.map(showScalar).join(", ");
    return value === null ? "null" : String(value);
  }

  // --- conditions ---------------------------------------------------------------------------

  function conditionsEditor(schema) {
    const definition = schema.$defs.condition;
    const attributes = [];
    Object.entries(definition.properties).forEach(([path, s]) => {
      if (!path.startsWith("$")) attributes.push({ path, kind: s["x-kind"], help: s.description });
    });
    Object.values(definition.patternProperties || {}).forEach((s) => {
      attributes.push({ path: s["x-prefix"], kind: s["x-kind"], help: s.description, prefix: true });
    });
    const operators = (kind) => schema.$defs["operators_" + kind].properties;

    const editor = { node: el("div", { class: "pe-conditions" }), onchange: () => {} };
    const rows = el("div", { class: "pe-rows" });
    const empty = el("p", { class: "help pe-empty", text: "No condition: the policy matches every request." });
    const changed = () => { empty.style.display = rows.children.length ? "none" : ""; editor.onchange(); };
    editor.node.append(
      rows,
      empty,
      el("button", { type: "button", class: "button pe-add", text: "+ Add a condition", onclick: () => { addRow(); changed(); } }),
    );

    function attributeOf(path) {
      return attributes.find((a) => a.path === path) ||
        attributes.find((a) => a.prefix && path.startsWith(a.path) && path.length > a.path.length);
    }

    function addRow(path, op, operand) {
      const row = el("div", { class: "pe-row" });
      const attribute = attributeOf(path || "model") || attributes[0];
      const attributeSelect = select(
        attributes.map((a) => [a.path, a.prefix ? a.path + "<name>" : a.path]),
        attribute.path,
        { class: "pe-attribute", "aria-label": "attribute" },
      );
      const name = el("input", {
        type: "text", class: "pe-name", placeholder: "name", "aria-label": "name",
        value: attribute.prefix && path ? path.slice(attribute.path.length) : "",
      });
      const operatorSlot = el("span");
      const valueSlot = el("span");
      const help = el("span", { class: "help pe-attribute-help" });
      let valueInput = null;

      function current() { return attributeOf(attributeSelect.value); }

      function buildOperator(selected) {
        const ops = operators(current().kind);
        const choices = Object.entries(ops).map(([key, s]) => [key, s.title + " (" + key + ")"]);
        const operatorSelect = select(choices, selected in ops ? selected : "$eq", { class: "pe-operator", "aria-label": "operator" });
        operatorSelect.addEventListener("change", () => { buildValue(undefined); changed(); });
        operatorSlot.replaceChildren(operatorSelect);
        return operatorSelect;
      }

      let operatorSelect = null;
      function operandSchema() {
        return plain(operators(current().kind)[operatorSelect.value]);
      }

      function buildValue(value) {
        const s = operandSchema();
        const item = s.type === "array" ? plain(s.items) : s;
        if (s.type === "boolean") {
          valueInput = select([["true", "true"], ["false", "false"]], value === false ? "false" : "true", { class: "pe-value", "aria-label": "value" });
        } else if (item.enum && s.type !== "array") {
          valueInput = select(item.enum.map((v) => [v, v]), value, { class: "pe-value", "aria-label": "value" });
        } else {
          const hint = s.type === "array" ? "comma-separated values" : (item.examples ? "e.g. " + item.examples.slice(0, 3).join(", ") : "value");
          valueInput = el("input", { type: "text", class: "pe-value", "aria-label": "value", placeholder: hint, value: value === undefined ? "" : showScalar(value) });
        }
        valueInput.addEventListener("input", changed);
        valueInput.addEventListener("change", changed);
        valueSlot.replaceChildren(valueInput);
      }

      function refresh(op, value) {
        const attribute = current();
        name.style.display = attribute.prefix ? "" : "none";
        help.textContent = attribute.help || "";
        operatorSelect = buildOperator(op);
        buildValue(value);
      }

      attributeSelect.addEventListener("change", () => { refresh(operatorSelect.value, undefined); changed(); });
      name.addEventListener("input", changed);
      row.append(
        attributeSelect, name, operatorSlot, valueSlot,
        el("button", { type: "button", class: "button pe-remove", title: "Remove", text: "×", onclick: () => { row.remove(); changed(); } }),
        help,
      );
      row.read = () => {
        const attribute = current();
        const fullPath = attribute.prefix ? attribute.path + name.value.trim() : attribute.path;
        const s = operandSchema();
        let operand;
        if (s.type === "boolean") operand = valueInput.value === "true";
        else if (s.type === "array") {
          const item = plain(s.items);
          operand = valueInput.value.split(",").map((t) => t.trim()).filter((t) => t !== "").map((t) => parseScalar(t, item));
        } else operand = parseScalar(valueInput.value, s);
        return [fullPath, operatorSelect.value, operand];
      };
      rows.append(row);
      refresh(op, operand);
      return row;
    }

    editor.load = (value) => {
      if (!value || typeof value !== "object" || Array.isArray(value)) return "Conditions must be a JSON object.";
      const pending = [];
      for (const [path, condition] of Object.entries(value)) {
        if (path.startsWith("$")) return "These conditions use " + path + ": edit them as raw JSON.";
        const attribute = attributeOf(path);
        if (!attribute) return "Unknown attribute '" + path + "': see the error below, or edit as raw JSON.";
        if (hasReference(condition)) return "These conditions use a sensitive value: edit them as raw JSON.";
        if (condition && typeof condition === "object" && !Array.isArray(condition)) {
          for (const [op, operand] of Object.entries(condition)) {
            if (!(op in operators(attribute.kind))) return "Operator " + op + " does not apply to " + path + ": edit as raw JSON.";
            pending.push([path, op, operand]);
          }
        } else if (Array.isArray(condition)) {
          return "A list is not a value here (use 'is one of'): edit as raw JSON.";
        } else {
          pending.push([path, "$eq", condition]);
        }
      }
      rows.replaceChildren();
      pending.forEach(([path, op, operand]) => addRow(path, op, operand));
      empty.style.display = rows.children.length ? "none" : "";
      return null;
    };

    editor.value = () => {
      const result = {};
      Array.from(rows.children).forEach((row) => {
        const [path, op, operand] = row.read();
        if (!(path in result)) { result[path] = op === "$eq" ? operand : { [op]: operand }; return; }
        const existing = result[path];
        const merged = existing && typeof existing === "object" && !Array.isArray(existing) ? existing : { $eq: existing };
        merged[op] = operand;
        result[path] = merged;
      });
      return result;
    };
    return editor;
  }

  // --- actions ------------------------------------------------------------------------------

  function actionsEditor(schema, offers, samplePercent) {
    const props = schema.properties;
    const editor = { node: el("div", { class: "pe-actions" }), onchange: () => {} };
    const changed = () => { refreshVisibility(); editor.onchange(); };
    const inner = (key) => plain(props[key]);
    const providers = (plain(plain(inner("targets").items).properties.provider).examples || ["*"]);
    const modelsOf = (provider) => {
      const all = offers.filter((o) => provider === "*" || o.provider === provider).map((o) => o.model);
      return Array.from(new Set(all)).sort();
    };

    // targets
    const targetRows = el("tbody");
    const targetsTable = el("table", { class: "pe-targets" }, [
      el("thead", {}, [el("tr", {}, ["#", "provider", "model", "weight", ""].map((h) => el("th", { text: h })))]),
      targetRows,
    ]);
    const noTargets = el("p", { class: "help", text: "No target: the requested model on every provider that offers it." });

    function addTarget(target) {
      target = target || {};
      const row = el("tr", { class: "pe-target" });
      const provider = select(providers.map((p) => [p, p === "*" ? "* (every provider)" : p]), target.provider || providers.find((p) => p !== "*") || "*", { class: "pe-provider", "aria-label": "provider" });
      const modelSlot = el("td");
      let model = null;
      function buildModels(selected) {
        const names = modelsOf(provider.value);
        if (selected && !names.includes(selected)) names.unshift(selected);
        model = select(names.map((m) => [m, m]), selected || names[0], { class: "pe-model", "aria-label": "model" });
        model.addEventListener("change", changed);
        modelSlot.replaceChildren(model);
      }
      provider.addEventListener("change", () => { buildModels(model.value); changed(); });
      const weight = el("input", { type: "number", step: "any", min: "0", class: "pe-weight", placeholder: "1", "aria-label": "weight", value: target.weight === undefined ? "" : target.weight });
      weight.addEventListener("input", changed);
      const number = el("td", { class: "pe-position" });
      row.append(
        number, el("td", {}, [provider]), modelSlot, el("td", {}, [weight]),
        el("td", {}, [
          el("button", { type: "button", class: "button pe-up", title: "Move up", text: "↑", onclick: () => { if (row.previousElementSibling) row.parentNode.insertBefore(row, row.previousElementSibling); changed(); } }),
          el("button", { type: "button", class: "button pe-remove", title: "Remove", text: "×", onclick: () => { row.remove(); changed(); } }),
        ]),
      );
      buildModels(target.model);
      row.read = () => {
        const out = { provider: provider.value, model: model.value };
        if (weight.value.trim() !== "") out.weight = parseScalar(weight.value, { type: "number" });
        return out;
      };
      targetRows.append(row);
    }

    // scalar inputs, read back only when they differ from the default
    const fields = {};
    function input(path, label, s, extra) {
      s = plain(s);
      let control;
      if (s.type === "boolean") {
        control = el("input", { type: "checkbox", class: "pe-" + path.replace(".", "-") });
        control.checked = s.default !== false;
      } else if (s.enum) {
        control = select(s.enum.map((v) => [v, v === s.default ? v + " (default)" : v]), s.default, { class: "pe-" + path.replace(".", "-") });
      } else {
        control = el("input", { type: "number", step: "any", class: "pe-" + path.replace(".", "-"), placeholder: s.default === undefined ? "none" : String(s.default) });
      }
      control.setAttribute("aria-label", label);
      control.addEventListener("input", changed);
      control.addEventListener("change", changed);
      fields[path] = { control, schema: s };
      return el("label", { class: "pe-field" }, [el("span", { text: label }), control, extra]);
    }
    function checkboxes(path, label, s, defaults) {
      const box = el("span", { class: "pe-checks pe-" + path.replace(".", "-") });
      plain(plain(s).items).enum.forEach((v) => {
        const check = el("input", { type: "checkbox", value: v });
        check.checked = defaults.includes(v);
        check.addEventListener("change", changed);
        box.append(el("label", {}, [check, " " + v]));
      });
      fields[path] = { checks: box, defaults };
      return el("div", { class: "pe-field" }, [el("span", { text: label }), box]);
    }

    const strategyNote = el("p", { class: "help pe-strategy-note" });
    const weights = plain(props.weights).properties;
    const fallback = plain(props.fallback).properties;
    const retry = plain(props.retry).properties;
    const constraints = plain(props.constraints).properties;
    const weightsRow = el("div", { class: "pe-group pe-weights" }, [el("h4", { text: "Weights (balanced only)" })].concat(
      Object.keys(weights).map((k) => input("weights." + k, k, weights[k]))));
    editor.node.append(
      el("h4", { text: "Targets, in the order they are tried" }), targetsTable, noTargets,
      el("button", { type: "button", class: "button pe-add-target", text: "+ Add a target", onclick: () => { addTarget(); changed(); } }),
      el("div", { class: "pe-group" }, [input("strategy", "Strategy", props.strategy), strategyNote]),
      weightsRow,
      el("div", { class: "pe-group" }, [
        el("h4", { text: "Fallback" }),
        input("fallback.enabled", "Fall back to the next target", fallback.enabled),
        checkboxes("fallback.on", "after", fallback.on, plain(fallback.on).default),
      ]),
      el("div", { class: "pe-group" }, [el("h4", { text: "Retry (per target)" })].concat(
        Object.keys(retry).map((k) => input("retry." + k, k.replace(/_/g, " "), retry[k])))),
      el("div", { class: "pe-group" }, [el("h4", { text: "Limits" }), input("timeout_s", "Time budget (s)", props.timeout_s)].concat(
        ["max_cost_usd", "max_latency_s", "min_context_window"].map((k) => input("constraints." + k, k.replace(/_/g, " "), constraints[k])),
        [checkboxes("constraints.capabilities", "needs capabilities", constraints.capabilities, [])])),
    );

    function refreshVisibility() {
      const strategy = fields.strategy.control.value;
      weightsRow.style.display = strategy === "balanced" ? "" : "none";
      noTargets.style.display = targetRows.children.length ? "none" : "";
      Array.from(targetRows.children).forEach((row, i) => { row.querySelector(".pe-position").textContent = i + 1; });
      strategyNote.textContent = (strategy === "cheapest" || strategy === "balanced")
        ? " Orders by cost only on the cost_optimization sample (now " + samplePercent + " % of requests); on the others it acts as priority."
        : "";
    }

    function setField(path, value) {
      const field = fields[path];
      if (field.checks) {
        const wanted = value === undefined || value === null ? field.defaults : value;
        field.checks.querySelectorAll("input").forEach((c) => { c.checked = wanted.includes(c.value); });
      } else if (field.schema.type === "boolean") {
        field.control.checked = value === undefined || value === null ? field.schema.default !== false : value === true;
      } else {
        field.control.value = value === undefined || value === null ? (field.schema.enum ? field.schema.default : "") : value;
      }
    }

    editor.load = (value) => {
      if (!value || typeof value !== "object" || Array.isArray(value)) return "Actions must be a JSON object.";
      if (hasReference(value)) return "These actions use a sensitive value: edit them as raw JSON.";
      for (const key of Object.keys(value)) if (!(key in props)) return "Unknown key '" + key + "': see the error below, or edit as raw JSON.";
      const groups = { weights, fallback, retry, constraints };
      for (const [group, known] of Object.entries(groups)) {
        const v = value[group];
        if (v === undefined || v === null) continue;
        if (typeof v !== "object" || Array.isArray(v)) return group + " must be an object: edit as raw JSON.";
        for (const key of Object.keys(v)) if (!(key in known)) return "Unknown key '" + group + "." + key + "': edit as raw JSON.";
      }
      if (value.targets !== undefined && value.targets !== null && !Array.isArray(value.targets)) return "targets must be a list: edit as raw JSON.";
      for (const t of value.targets || []) {
        if (!t || typeof t !== "object" || Object.keys(t).some((k) => !["provider", "model", "weight"].includes(k))) return "A target this editor cannot show: edit as raw JSON.";
      }
      targetRows.replaceChildren();
      (value.targets || []).forEach(addTarget);
      setField("strategy", value.strategy);
      Object.keys(fields).forEach((path) => {
        if (path === "strategy") return;
        const [group, key] = path.includes(".") ? path.split(".") : [null, path];
        const source = group ? (value[group] || {}) : value;
        setField(path, source[key]);
      });
      refreshVisibility();
      return null;
    };

    function read(path) {
      const field = fields[path];
      if (field.checks) {
        const chosen = Array.from(field.checks.querySelectorAll("input:checked")).map((c) => c.value).sort();
        const defaults = field.defaults.slice().sort();
        return JSON.stringify(chosen) === JSON.stringify(defaults) ? undefined : chosen;
      }
      if (field.schema.type === "boolean") {
        const on = field.control.checked;
        return on === (field.schema.default !== false) ? undefined : on;
      }
      const text = field.control.value;
      if (field.schema.enum) return text === field.schema.default ? undefined : text;
      if (text.trim() === "") return undefined;
      const number = parseScalar(text, field.schema);
      return number === field.schema.default ? undefined : number;
    }

    editor.value = () => {
      const out = {};
      const targets = Array.from(targetRows.children).map((row) => row.read());
      if (targets.length) out.targets = targets;
      const strategy = read("strategy");
      if (strategy !== undefined) out.strategy = strategy;
      Object.keys(fields).forEach((path) => {
        if (path === "strategy" || !path.includes(".")) {
          if (path === "timeout_s") { const t = read(path); if (t !== undefined) out.timeout_s = t; }
          return;
        }
        const [group, key] = path.split(".");
        if (group === "weights" && fields.strategy.control.value !== "balanced") return;
        const v = read(path);
        if (v === undefined) return;
        out[group] = out[group] || {};
        out[group][key] = v;
      });
      return out;
    };
    return editor;
  }

  // --- wiring -------------------------------------------------------------------------------

  function init(root) {
    const schema = JSON.parse(document.getElementById(root.dataset.schema).textContent);
    const offers = JSON.parse(document.getElementById(root.dataset.offers).textContent);
    const textarea = document.getElementById(root.dataset.textarea);
    const structured = root.querySelector(".pe-structured");
    const toggle = root.querySelector(".pe-raw-toggle");
    const note = root.querySelector(".pe-note");
    const editor = root.dataset.kind === "conditions"
      ? conditionsEditor(schema)
      : actionsEditor(schema, offers, textarea.dataset.samplePercent || "?");
    structured.append(editor.node);

    function showRaw(raw, reason) {
      toggle.checked = raw;
      textarea.style.display = raw ? "" : "none";
      structured.style.display = raw ? "none" : "";
      note.textContent = reason || "";
    }
    function load() {
      const text = textarea.value.trim();
      let value = {};
      if (text) {
        try { value = JSON.parse(text); } catch (e) { showRaw(true, "Not valid JSON (the error says where): fix it here."); return false; }
      }
      const problem = editor.load(value);
      if (problem) { showRaw(true, problem); return false; }
      showRaw(false);
      return true;
    }
    editor.onchange = () => {
      textarea.value = JSON.stringify(editor.value(), null, 2);
      textarea.dispatchEvent(new Event("change", { bubbles: true }));
    };
    toggle.addEventListener("change", () => {
      if (toggle.checked) showRaw(true);
      else if (!load()) toggle.checked = true;
    });
    load();
  }

  function dryRun(panel) {
    const form = document.getElementById("routingpolicy_form");
    const result = document.getElementById("pe-dryrun-result");
    const button = document.getElementById("pe-dryrun-button");
    const match = window.location.pathname.match(/\/([0-9a-f-]{36})\/change\/$/);
    let timer = null;
    let sequence = 0;

    function render(data, ok) {
      result.replaceChildren();
      if (!ok) {
        const list = el("ul", { class: "errorlist" });
        Object.entries(data.errors || {}).forEach(([field, messages]) => messages.forEach((m) => list.append(el("li", { text: m.startsWith(field) ? m : field + ": " + m }))));
        result.append(el("p", { class: "errornote", text: "The dry run cannot run yet:" }), list);
        return;
      }
      const d = data.decision;
      const first = d.targets[0];
      const name = (t) => t.provider_id + "/" + t.model;
      if (first) {
        result.append(el("p", { class: "pe-verdict" }, [
          data.matched ? "Matches. This request would go to " : "Does not match: the default route, ",
          el("b", { text: name(first) }), ".",
        ]));
        if (d.targets.length > 1) result.append(el("p", { text: "Then, if it fails: " + d.targets.slice(1).map(name).join(", ") + "." }));
      } else {
        result.append(el("p", { class: "pe-verdict errornote", text: (data.matched ? "Matches, but no target can take it: " : "No target: ") + d.reasons.join("; ") }));
      }
      result.append(el("p", { class: "help", text: "Strategy " + d.strategy + "; cost optimisation " + (data.flags.cost_optimization ? "on" : "off") + " for this request (sample " + data.cost_optimization_percent + " %)." }));
      if (d.dropped.length) {
        result.append(el("p", { class: "help", text: "Left out: " + d.dropped.map((x) => x.provider_id + "/" + x.model + " (" + x.reason + ")").join("; ") }));
      }
    }

    function run() {
      const body = new FormData();
      body.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      ["conditions", "actions", "name", "priority"].forEach((field) => {
        const input = form.querySelector("[name=" + field + "]");
        body.append(field, input ? input.value : "");
      });
      if (match) body.append("policy", match[1]);
      body.append("request", document.getElementById("pe-dryrun-request").value);
      const mine = ++sequence;
      result.setAttribute("aria-busy", "true");
      fetch(panel.dataset.url, { method: "POST", body, credentials: "same-origin" })
        .then((response) => response.json().then((data) => [data, response.ok]))
        .then(([data, ok]) => { if (mine === sequence) render(data, ok); })
        .catch((error) => { result.textContent = "Dry run failed: " + error; })
        .finally(() => { if (mine === sequence) result.removeAttribute("aria-busy"); });
    }
    button.addEventListener("click", run);
    // Again whenever the policy changes, once the operator pauses.
    form.addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(run, 500); });
    form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 800); });
    run();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".policy-editor").forEach(init);
    const panel = document.querySelector(".pe-dryrun");
    if (panel) dryRun(panel);
  });
})();
