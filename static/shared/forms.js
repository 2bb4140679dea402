/* One renderer for forms defined as data (wxbackend/services/office/forms.py): the console and the
   H5 pages draw a notice's receipt or a configured business's application from the same
   definition. The server checks every answer again; this only helps the person filling it in.
   Load after dom.js: <script src="/static/shared/forms.js" defer></script>; read window.forms. */
(function () {
  "use strict";

  const { el } = window.dom;

  // A field's "when" is read by the server with simpleeval; the page understands the simple
  // comparisons forms use (key == 'text', key != 'text', key > 3) and otherwise shows the field.
  const SIMPLE = /^\s*([a-z][a-z0-9_]*)\s*(==|!=|>=|<=|>|<)\s*(?:'([^']*)'|"([^"]*)"|(-?\d+(?:\.\d+)?)|(True|False))\s*$/;

  function holds(when, values) {
    const m = SIMPLE.exec(when || "");
    if (!m) return true;
    const left = values[m[1]];
    const right = m[3] ?? m[4] ?? (m[5] !== undefined ? Number(m[5]) : m[6] === "True");
    switch (m[2]) {
      case "==": return left === right;
      case "!=": return left !== right;
      case ">": return left > right;
      case "<": return left < right;
      case ">=": return left >= right;
      default: return left <= right;
    }
  }

  function input(field, value) {
    const id = `f-${field.key}`;
    const common = { id, name: field.key, required: Boolean(field.required) };
    switch (field.type) {
      case "textarea":
        return el("textarea", { ...common, rows: 4, maxLength: field.max_length, value: value ?? "" });
      case "number":
        return el("input", { ...common, type: "number", step: field.integer ? "1" : "any",
                             min: field.min ?? "", max: field.max ?? "", value: value ?? "" });
      case "date":
        return el("input", { ...common, type: "date", value: value ?? "" });
      case "choice":
        return el("select", common, el("option", { value: "" }, "请选择"),
          ...field.choices.map((c) => el("option", { value: c, selected: c === value }, c)));
      case "multichoice":
        return el("div", { id, class: "choices", role: "group" }, ...field.choices.map((c) =>
          el("label", { class: "choice" },
            el("input", { type: "checkbox", name: field.key, value: c, checked: (value || []).includes(c) }), c)));
      case "bool":
        return el("label", { class: "choice" },
          el("input", { id, type: "checkbox", name: field.key, checked: value === true }), "是");
      case "phone":
        return el("input", { ...common, type: "tel", inputMode: "numeric", maxLength: 14,
                             autocomplete: "tel", value: value ?? "" });
      case "idnumber":
        return el("input", { ...common, type: "text", maxLength: 18, autocomplete: "off",
                             spellcheck: false, value: value ?? "" });
      case "attachments":
        return el("input", { ...common, type: "file", multiple: true, accept: "image/*,.pdf" });
      default:
        return el("input", { ...common, type: "text", maxLength: field.max_length, value: value ?? "" });
    }
  }

  function refresh(container) {
    const values = read(container, false).values;
    for (const row of container.querySelectorAll(".form-field[data-when]")) {
      row.hidden = !holds(row.dataset.when, values);
    }
  }

  /** Draw ``form`` into ``container`` (replacing what was there), filled with ``values``. */
  function render(container, form, values = {}) {
    container.replaceChildren(...form.fields.map((field) => {
      const row = el("div", { class: "form-field", dataset: { key: field.key, type: field.type } },
        el("label", { htmlFor: `f-${field.key}` }, field.label, field.required ? el("span", { class: "req" }, " *") : null),
        input(field, values[field.key]),
        field.help ? el("p", { class: "hint" }, field.help) : null,
        field.sensitive ? el("p", { class: "hint" }, "个人信息，加密保存，仅经办人可见") : null);
      if (field.when) row.dataset.when = field.when;
      return row;
    }));
    container.addEventListener("input", () => refresh(container));
    container.addEventListener("change", () => refresh(container));
    container._form = form;
    refresh(container);
  }

  function read(container, check) {
    const form = container._form;
    const values = {};
    const errors = [];
    const files = {};
    for (const field of form.fields) {
      const row = container.querySelector(`.form-field[data-key="${field.key}"]`);
      if (check && row.hidden) continue;
      let value;
      if (field.type === "multichoice") {
        value = [...row.querySelectorAll("input:checked")].map((i) => i.value);
      } else if (field.type === "bool") {
        value = row.querySelector("input").checked;
      } else if (field.type === "attachments") {
        files[field.key] = [...row.querySelector("input").files];
        if (check && field.required && !files[field.key].length) errors.push(`请添加“${field.label}”`);
        continue;
      } else {
        value = row.querySelector("input, select, textarea").value.trim();
        if (field.type === "number" && value !== "") value = Number(value);
      }
      const empty = value === "" || (Array.isArray(value) && !value.length);
      if (!empty) values[field.key] = value;
      if (check && empty && field.required && field.type !== "bool") errors.push(`请填写“${field.label}”`);
    }
    return { values, errors, files };
  }

  /** The answers as the server takes them, the first faults a person can fix before sending, and
   *  the files chosen for attachment fields (the page uploads them and puts their ids in values). */
  function collect(container) { return read(container, true); }

  window.forms = Object.freeze({ render, collect, holds });
})();
