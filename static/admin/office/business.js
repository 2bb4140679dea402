/* 业务配置（流程改造后上网）：部门定义业务模块（表单、流程、开放范围、申请人），提交领导小组审批，
   批准即上线；停用；干部申请本单位可申请的业务；经办人查看申请全文并办理各环节（含环节表单）。
   表单用 shared/forms.js 绘制，与职工的 H5 页面相同。 */
(function () {
  "use strict";

  const { $, show, el, setMessage } = window.dom;
  const { api, report, notify, formatTime, can, registerView } = window.adminConsole;
  const STATUS_TONE = { live: "ok", requested: "warn", refused: "error" };
  const state = { modules: [], names: { entrances: {}, applicants: {} }, editing: null, applying: null,
                  item: null };

  const button = (label, handler, tone = "plain") =>
    el("button", { type: "button", class: `btn small ${tone}`, onclick: handler }, label);

  function permitted(root) {
    for (const node of root.querySelectorAll("[data-perm]")) show(node, node.dataset.perm.split(" ").some(can));
  }

  async function load() {
    permitted($("#view-business"));
    setMessage($("#biz-error"), "");
    if (can("business.configure") || can("business.approve")) {
      try {
        const data = await api("GET", "/business-modules");
        state.modules = data.modules;
        state.names = { entrances: data.entrances, applicants: data.applicants };
        renderModules();
      } catch (e) { report($("#biz-error"), e); }
    }
    show($("#biz-desk"), can("business.handle"));
    loadServices();
  }

  function renderModules() {
    const rows = state.modules.map((m) => el("tr", null,
      el("td", null, el("strong", null, m.name), el("div", { class: "muted" }, m.code)),
      el("td", null, `第 ${m.version} 版`),
      el("td", null, m.department),
      el("td", null, `${state.names.applicants[m.applicants] || m.applicants}；` +
        m.entrances.map((e) => state.names.entrances[e] || e).join("、")),
      el("td", null, el("span", { class: `tag ${STATUS_TONE[m.status] || ""}` }, m.status_name),
        m.running ? el("div", { class: "muted" }, `办理中 ${m.running} 件`) : null),
      el("td", null, ...actions(m))));
    $("#biz-table tbody").replaceChildren(...(rows.length ? rows :
      [el("tr", null, el("td", { colSpan: 6, class: "muted" }, "还没有业务模块。"))]));
  }

  function actions(m) {
    const out = [];
    if (m.status === "draft" && can("business.configure")) {
      out.push(button("编辑", () => openEditor(m)), button("提交审批", () => requestApproval(m), "primary"));
    }
    if (m.status === "requested" && can("business.approve")) {
      out.push(button("批准上线", () => decide(m, true), "primary"), button("不批准", () => decide(m, false)));
    }
    if (m.status === "live" && can("business.configure")) {
      out.push(button("新建版本", () => openEditor({ ...m, id: null })), button("停用", () => retire(m)));
    }
    out.push(button("预览", () => openEditor(m, true)));
    return out;
  }

  function definitionOf(m) {
    const { form, step_forms, graph, open_to, entrances, applicants, purpose } = m;
    return JSON.stringify({ purpose, applicants, entrances, open_to, form, step_forms, graph }, null, 2);
  }

  function openEditor(m, readOnly = false) {
    state.editing = m;
    $("#biz-editor-title").textContent = readOnly ? `${m.name}（第 ${m.version} 版）` : (m.id ? "编辑草稿" : "新建业务模块");
    $("#biz-code").value = (m.code || "").replace(/^biz_/, "");
    $("#biz-name").value = m.name || "";
    $("#biz-dept").value = m.department || "";
    $("#biz-definition").value = definitionOf(m);
    for (const id of ["#biz-code", "#biz-name", "#biz-dept", "#biz-definition"]) $(id).readOnly = readOnly;
    $("#biz-code").readOnly = readOnly || Boolean(m.code);
    show($("#biz-save"), !readOnly);
    setMessage($("#biz-editor-error"), "");
    preview();
    show($("#biz-editor"));
    $("#biz-editor").scrollIntoView({ behavior: "smooth" });
  }

  function parsed() {
    const body = JSON.parse($("#biz-definition").value);
    return { ...body, code: $("#biz-code").value.trim(), name: $("#biz-name").value.trim(),
             department: $("#biz-dept").value.trim() };
  }

  function preview() {
    try {
      window.forms.render($("#biz-preview"), parsed().form);
      setMessage($("#biz-editor-error"), "");
    } catch (e) {
      setMessage($("#biz-editor-error"), "定义不是有效的 JSON，或缺少 form.fields");
    }
  }

  async function save() {
    let body;
    try { body = parsed(); } catch (e) { setMessage($("#biz-editor-error"), "定义不是有效的 JSON"); return; }
    try {
      const m = state.editing;
      const result = m && m.id && m.status === "draft"
        ? await api("PUT", `/business-modules/${m.id}`, body)
        : await api("POST", "/business-modules", body);
      notify(`已保存“${result.module.name}”第 ${result.module.version} 版草稿。`, "ok");
      show($("#biz-editor"), false);
      load();
    } catch (e) { report($("#biz-editor-error"), e); }
  }

  async function fromExample() {
    try {
      const { module } = await api("GET", "/business-examples/hardship");
      openEditor(module);
      state.editing = null;
    } catch (e) { report($("#biz-error"), e); }
  }

  async function requestApproval(m) {
    const opinion = prompt(`提交“${m.name}”第 ${m.version} 版给领导小组审批。说明（可不填）：`, "");
    if (opinion === null) return;
    try {
      await api("POST", `/business-modules/${m.id}/request`, { opinion });
      notify("已提交领导小组审批；审批前该版本不能再修改。", "ok");
      load();
    } catch (e) { report($("#biz-error"), e); }
  }

  async function decide(m, approve) {
    const opinion = prompt(approve ? "批准意见（可不填）：" : "不批准的理由（必填）：", "");
    if (opinion === null) return;
    try {
      await api("POST", `/business-modules/${m.id}/decision`, { approve, opinion });
      notify(approve ? `“${m.name}”已上线。` : "已退回申请部门。", "ok");
      load();
    } catch (e) { report($("#biz-error"), e); }
  }

  async function retire(m) {
    const reason = prompt(`停用“${m.name}”：停用后不再受理新申请，已受理的继续办完。理由：`, "");
    if (!reason) return;
    try {
      await api("POST", `/business-modules/${m.id}/retire`, { reason });
      notify("已停用。", "ok");
      load();
    } catch (e) { report($("#biz-error"), e); }
  }

  // --- 干部申请 -------------------------------------------------------------------------------------
  async function loadServices() {
    try {
      const { modules } = await api("GET", "/business-services");
      show($("#biz-cadre-services"), modules.length > 0);
      $("#biz-services").replaceChildren(...modules.map((m) =>
        button(m.name, () => openApply(m))));
    } catch (e) { show($("#biz-cadre-services"), false); }
  }

  function openApply(m) {
    state.applying = m;
    $("#biz-apply-title").textContent = m.name;
    window.forms.render($("#biz-apply-fields"), m.form);
    setMessage($("#biz-apply-error"), "");
    show($("#biz-apply"));
  }

  async function apply() {
    const { values, errors } = window.forms.collect($("#biz-apply-fields"));
    if (errors.length) { setMessage($("#biz-apply-error"), errors[0]); return; }
    try {
      const { application } = await api("POST", `/business-services/${state.applying.id}/applications`, { answers: values });
      notify(`已提交，事项编号 ${application.id}。`, "ok");
      show($("#biz-apply"), false);
    } catch (e) { report($("#biz-apply-error"), e); }
  }

  // --- 经办 -----------------------------------------------------------------------------------------
  async function openItem(id) {
    setMessage($("#biz-step-error"), "");
    try {
      const { item } = await api("GET", `/business-applications/${id}`);
      state.item = item;
      const a = item.application;
      const shown = (v) => (Array.isArray(v) ? v.join("、") : v === true ? "是" : v === false ? "否" : String(v));
      const value = (f) => (f.type === "attachments"
        ? el("span", null, ...a.answers[f.key].map((file) => el("a", { href: `/admin/v1/business-files/${file.id}`,
            target: "_blank", rel: "noopener", class: "file-link" }, file.filename)))
        : shown(a.answers[f.key]));
      const facts = a.form.fields.filter((f) => f.key in a.answers).map((f) =>
        el("tr", null, el("th", null, f.label), el("td", null, value(f))));
      const recorded = Object.entries(a.steps).map(([node, values]) =>
        el("p", { class: "muted" }, `${node}：` + Object.values(values).map(shown).join("，")));
      $("#biz-application").replaceChildren(
        el("h4", null, `${item.title}（${item.status_name}）`),
        el("p", { class: "muted" }, `${item.org_name} · 提交于 ${formatTime(a.filed_at)}` +
          (item.due_at ? ` · 时限 ${formatTime(item.due_at, false)}${item.due_provisional ? "（暂定）" : ""}` : "")),
        a.erased ? el("p", { class: "alert warn" }, "申请人已注销账号，个人信息已删除。") : null,
        el("table", { class: "table facts" }, el("tbody", null, ...facts)), ...recorded);
      const step = item.steps.find((s) => s.status === "open" && s.tasks.some((t) => t.mine && t.status === "open"));
      show($("#biz-step"), Boolean(step));
      if (step) {
        $("#biz-step-title").textContent = `本环节：${step.name}`;
        const form = a.step_forms[step.node];
        if (form) window.forms.render($("#biz-step-fields"), form);
        else $("#biz-step-fields").replaceChildren();
        state.task = step.tasks.find((t) => t.mine && t.status === "open").id;
        state.stepForm = Boolean(form);
      }
    } catch (e) { report($("#biz-step-error"), e); show($("#biz-step"), true); }
  }

  async function act(decision) {
    const body = { task_id: state.task, decision, opinion: $("#biz-opinion").value.trim(), version: state.item.version };
    if (decision === "pass" && state.stepForm) {
      const { values, errors } = window.forms.collect($("#biz-step-fields"));
      if (errors.length) { setMessage($("#biz-step-error"), errors[0]); return; }
      body.answers = values;
    }
    try {
      const { result } = await api("POST", `/business-applications/${state.item.id}/steps`, body);
      notify(result.status === "closed" ? "已办结。" : "已办理，转入下一环节。", "ok");
      $("#biz-opinion").value = "";
      openItem(state.item.id);
    } catch (e) { report($("#biz-step-error"), e); }
  }

  function bind() {
    $("#biz-refresh").addEventListener("click", load);
    $("#biz-example").addEventListener("click", fromExample);
    $("#biz-new").addEventListener("click", () => openEditor({ form: { fields: [] }, graph: { nodes: [] },
      step_forms: {}, open_to: [], entrances: ["h5", "mp"], applicants: "members", purpose: "" }));
    $("#biz-save").addEventListener("click", save);
    $("#biz-preview-btn").addEventListener("click", preview);
    $("#biz-close").addEventListener("click", () => show($("#biz-editor"), false));
    $("#biz-apply-submit").addEventListener("click", apply);
    $("#biz-open").addEventListener("click", () => { const id = $("#biz-item").value; if (id) openItem(id); });
    $("#biz-pass").addEventListener("click", () => act("pass"));
    $("#biz-reject").addEventListener("click", () => act("reject"));
  }

  registerView("business", { perm: "business.configure business.approve business.handle", load });
  document.addEventListener("DOMContentLoaded", () => { if ($("#view-business")) bind(); });
})();
