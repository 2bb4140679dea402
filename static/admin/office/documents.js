/* 工会干部工作台：公文流转（我的草稿、待我办理的公文环节及各环节的按钮、拟稿与收文登记、
   公文页与打印版式、发文 / 收文登记簿、公文设置）。专门环节走 /documents/{id}/actions，
   核稿、会签、复核、签收、拟办、承办、传阅、办结、归档走事项办理的通用操作。 */
(function () {
  "use strict";

  const { $, show, el, setMessage } = window.dom;
  const { api, report, notify, formatTime, can, registerView } = window.adminConsole;
  // 专门环节（节点 → 操作）及其按钮
  const DESK = {
    draft: { action: "submit", label: "送审（提交核稿）" },
    sign: { action: "sign", label: "同意签发" },
    sign_principal: { action: "sign", label: "同意签发" },
    number: { action: "number", label: "编号（生成发文字号）" },
    seal: { action: "seal", label: "已用印" },
    distribute: { action: "distribute", label: "分发" },
    register: { action: "register", label: "登记（生成收文编号）" },
    instruct: { action: "instruct", label: "批办" },
  };
  const STATUS = { open: "办理中", suspended: "已中止", closed: "已办结" };
  const state = { doc: null, page: null, editing: null, incoming: false };

  const act = (label, handler, tone = "plain") =>
    el("button", { type: "button", class: `btn small ${tone}`, onclick: handler }, label);
  const list = (text) => String(text || "").split(/[,，、\s]+/).map((s) => s.trim()).filter(Boolean);
  const ids = (text) => list(text).map(Number).filter((n) => Number.isInteger(n) && n > 0);
  const thisYear = () => new Date(Date.now() + 8 * 3600 * 1000).getUTCFullYear();

  function due(value, dueState) {
    if (!value) return el("span", { class: "muted" }, "无时限");
    return el("span", { class: `due ${dueState || ""}` }, formatTime(value, false) +
      (dueState === "overdue" ? " 已逾期" : dueState === "soon" ? " 临近到期" : ""));
  }

  async function loadView() {
    loadMine();
    loadRegistry();
    loadOffice();
    show($("#df-upload-row"), can("channel.publish"));
  }

  // --- 我的草稿、待我办理 ---------------------------------------------------------------------------
  async function loadMine() {
    let data;
    try {
      data = await api("GET", "/documents/mine");
      setMessage($("#doc-mine-error"), "");
    } catch (e) {
      report($("#doc-mine-error"), e);
      return;
    }
    $("#doc-drafts tbody").replaceChildren(...data.drafts.map((d) => el("tr", {},
      el("td", {}, d.title), el("td", {}, d.org_name),
      el("td", { class: "actions" }, act("打开", () => openDocument(d.document_id))))));
    show($("#doc-drafts-empty"), data.drafts.length === 0);
    $("#doc-tasks tbody").replaceChildren(...data.tasks.map((t) => el("tr", { class: t.due_state },
      el("td", {}, t.title, t.urgency ? el("span", { class: "tag" }, t.urgency) : "",
        t.for ? el("span", { class: "tag" }, `代${t.for}`) : ""),
      el("td", {}, t.direction === "out" ? "发文" : "收文"),
      el("td", {}, t.doc_number || t.received_no || "—"), el("td", {}, t.step), el("td", {}, t.org_name),
      el("td", {}, due(t.due_at, t.due_state)),
      el("td", { class: "actions" }, act("办理", () => openDocument(t.document_id), "primary")))));
    show($("#doc-tasks-empty"), data.tasks.length === 0);
  }

  // --- 拟稿、收文登记、修改草稿 ------------------------------------------------------------------------
  const FIELDS = [["copy_no", "#df-copy-no"], ["urgency", "#df-urgency"], ["issuer_mark", "#df-mark"],
                  ["title", "#df-title"], ["main_to", "#df-main-to"], ["body", "#df-body"],
                  ["attachment_note", "#df-attachment-note"], ["issuer", "#df-issuer"],
                  ["written_on", "#df-written-on"], ["note", "#df-note"], ["copy_to", "#df-copy-to"],
                  ["printer", "#df-printer"], ["printed_on", "#df-printed-on"], ["flow", "#df-flow"],
                  ["sender", "#df-sender"], ["doc_number", "#df-number"]];

  function openForm(incoming, doc = null) {
    state.incoming = incoming;
    state.editing = doc;
    $("#doc-form-title").textContent = doc ? "修改草稿" : incoming ? "收文登记" : "拟稿";
    for (const node of document.querySelectorAll("#doc-form .doc-out")) show(node, !incoming);
    for (const node of document.querySelectorAll("#doc-form .doc-in")) show(node, incoming);
    for (const [key, id] of FIELDS) $(id).value = doc && doc[key] != null ? doc[key] : "";
    $("#df-flow").value = (doc && doc.flow) || "down";
    $("#df-classification").value = "";
    $("#df-important").checked = Boolean(doc && doc.important);
    $("#df-attachments").value = doc ? doc.attachments.map((a) => a.id).join(",") : "";
    $("#df-countersign").value = doc ? doc.countersign.join("，") : "";
    setMessage($("#doc-form-error"), "");
    show($("#doc-form"));
    $("#doc-form").scrollIntoView({ block: "start" });
  }

  function formBody() {
    const body = {};
    for (const [key, id] of FIELDS) {
      const node = $(id);
      if (node.closest(".doc-out") && state.incoming) continue;
      if (node.closest(".doc-in") && !state.incoming) continue;
      body[key] = node.value.trim() || null;
    }
    body.classification = $("#df-classification").value || null;
    body.attachments = ids($("#df-attachments").value);
    if (!state.incoming) {
      body.flow = $("#df-flow").value;
      body.important = $("#df-important").checked;
      body.countersign = list($("#df-countersign").value);
    }
    return body;
  }

  async function submitForm(event) {
    event.preventDefault();
    const body = formBody();
    try {
      let page;
      if (state.editing) {
        page = await api("PUT", `/documents/${state.editing.id}`, body);
      } else {
        page = await api("POST", state.incoming ? "/documents/incoming" : "/documents", body);
      }
      show($("#doc-form"), false);
      notify(state.editing ? "草稿已保存。" : state.incoming ? "已登记，请签收。" : "草稿已保存，送审前仍可修改。");
      showPage(page);
      loadMine();
    } catch (e) {
      report($("#doc-form-error"), e);
    }
  }

  async function upload() {
    const file = $("#df-upload").files[0];
    if (!file) return;
    try {
      const { media } = await api("POST", `/media/attachments?filename=${encodeURIComponent(file.name)}`, file);
      $("#df-attachments").value = [...ids($("#df-attachments").value), media.id].join(",");
      notify(`已上传附件：${media.filename}`);
    } catch (e) {
      report($("#doc-form-error"), e);
    }
    $("#df-upload").value = "";
  }

  // --- 公文页 ---------------------------------------------------------------------------------------
  async function openDocument(id) {
    try {
      showPage(await api("GET", `/documents/${id}`));
    } catch (e) {
      report($("#doc-mine-error"), e);
    }
  }

  function showPage(page) {
    state.page = page;
    const doc = page.document;
    const item = page.item;
    state.doc = doc;
    $("#dp-head").textContent = `${doc.direction === "out" ? "发文" : "收文"}：${doc.title}`;
    $("#dp-print-link").href = `/static/admin/document-print.html?id=${doc.id}`;
    const fact = (label, value) => (value ? [el("dt", {}, label), el("dd", {}, value)] : []);
    $("#dp-facts").replaceChildren(
      ...fact("发文机关标志", doc.issuer_mark), ...fact("发文字号", doc.doc_number),
      ...fact("收文编号", doc.received_no), ...fact("来文机关", doc.sender),
      ...fact("份号", doc.copy_no), ...fact("紧急程度", doc.urgency),
      ...fact("行文方向", doc.direction === "out" ? doc.flow_name : ""),
      ...fact("重要公文", doc.important ? "是（须主要负责人签发）" : ""),
      ...fact("签发人", doc.signer), ...fact("主送机关", doc.main_to), ...fact("署名", doc.issuer),
      ...fact("成文日期", doc.written_on), ...fact("附注", doc.note), ...fact("抄送机关", doc.copy_to),
      ...fact("印发", doc.printed_on ? `${doc.printer || doc.issuer} ${doc.printed_on} 印发` : ""),
      ...fact("会签部门", doc.countersign.join("、")), ...fact("批办意见", doc.instruction),
      ...fact("承办部门", doc.handlers.join("、")), ...fact("状态", STATUS[item.status]),
      ...fact("办理时限", item.due_at ? formatTime(item.due_at, false) : ""),
      ...fact("拟稿人", doc.drafted_by), ...fact("来源", page.source ? `${page.source.org_name} ${page.source.doc_number || ""}` : ""));
    $("#dp-text").replaceChildren(...doc.body.split(/\n+/).map((line) => el("p", {}, line)),
      ...(doc.attachment_note ? [el("p", {}, `附件：${doc.attachment_note}`)] : []));
    $("#dp-files").replaceChildren(...doc.attachments.map((f) =>
      el("a", { class: "btn plain small", href: `${f.url}?name=${encodeURIComponent(f.filename)}` }, `附件：${f.filename}`)));
    $("#dp-steps").replaceChildren(...item.steps.map((s) => el("li", {},
      `${s.name}（${{ open: "办理中", passed: "已通过", rejected: "未通过", cancelled: "已取消" }[s.status]}）：`,
      s.tasks.map((t) => `${t.assignee}${t.acted_by ? `（${t.acted_by}${t.acted_for ? `代${t.acted_for}` : ""}）` : ""}`).join("、"))));
    $("#dp-timeline").replaceChildren(...item.timeline.map((e) => el("li", {},
      el("strong", {}, e.name), ` ${formatTime(e.at)} `, e.actor || "",
      e.opinion ? el("span", { class: "opinion" }, e.opinion) : "")));
    $("#dp-copies tbody").replaceChildren(...page.copies.map((c) => el("tr", {},
      el("td", {}, c.org_name), el("td", {}, c.received_no || "—"),
      el("td", {}, c.steps || STATUS[c.status]), el("td", {}, c.received_at ? formatTime(c.received_at) : "未签收"))));
    show($("#dp-copies-block"), page.copies.length > 0);
    show($("#dp-edit"), item.desk_steps.includes("draft"));
    renderStep(item);
    setMessage($("#dp-error"), "");
    show($("#doc-page"));
    $("#doc-page").scrollIntoView({ block: "start" });
  }

  /** 本人在该公文上的待办环节：专门环节给专门的按钮，其余给“通过 / 不通过”。 */
  function renderStep(item) {
    const mine = [];
    for (const s of item.steps) {
      if (s.status !== "open") continue;
      for (const t of s.tasks) if (t.mine) mine.push({ node: s.node, name: s.name, task: t.id });
    }
    const buttons = [];
    const mineStep = mine[0];
    show($("#dp-recipients-row"), Boolean(mineStep && mineStep.node === "distribute"));
    show($("#dp-instruct-row"), Boolean(mineStep && mineStep.node === "instruct"));
    $("#dp-opinion-label").textContent = mineStep && mineStep.node === "instruct" ? "批办意见" : "意见";
    if (mineStep) {
      $("#dp-step-title").textContent = `办理：${mineStep.name}`;
      const desk = DESK[mineStep.node];
      if (desk) {
        buttons.push(act(desk.label, () => deskAction(desk.action, mineStep.task), "primary"));
        if (desk.action === "sign") buttons.push(act("退回修改", () => deskAction("sign", mineStep.task, "reject")));
      } else {
        const pass = item.actions.some((a) => a.action === "pass");
        if (pass) buttons.push(act(mineStep.node === "receive" ? "签收" : "通过", () => generic("pass", mineStep.task), "primary"));
        if (item.actions.some((a) => a.action === "reject")) {
          buttons.push(act(mineStep.node === "receive" ? "退文（说明理由）" : "不通过（退回拟稿）", () => generic("reject", mineStep.task)));
        }
      }
    }
    if (item.actions.some((a) => a.action === "urge")) buttons.push(act("催办", () => generic("urge")));
    $("#dp-buttons").replaceChildren(...buttons);
    show($("#dp-step"), buttons.length > 0);
  }

  async function deskAction(action, taskId, decision) {
    const body = { action, task_id: taskId, version: state.page.item.version };
    const opinion = $("#dp-opinion").value.trim();
    if (opinion) body.opinion = opinion;
    if (decision) body.decision = decision;
    if (action === "distribute") {
      body.children = $("#dp-children").checked;
      body.org_ids = ids($("#dp-recipients").value);
    }
    if (action === "instruct") {
      body.instruction = opinion;
      delete body.opinion;
      body.handlers = list($("#dp-handlers").value);
      if ($("#dp-days").value) body.limit_days = Number($("#dp-days").value);
    }
    try {
      const { result } = await api("POST", `/documents/${state.doc.id}/actions`, body);
      if (result.doc_number) notify(`发文字号：${result.doc_number}`);
      if (result.received_no) notify(`收文编号：${result.received_no}`);
      if (result.recipients !== undefined) notify(`已分发至 ${result.recipients} 个工会。`);
      $("#dp-opinion").value = "";
      await refreshAfterStep();
    } catch (e) {
      report($("#dp-error"), e);
    }
  }

  async function generic(action, taskId) {
    const body = { action, version: state.page.item.version };
    if (taskId) body.task_id = taskId;
    const opinion = $("#dp-opinion").value.trim();
    if (opinion) body.opinion = opinion;
    try {
      await api("POST", `/casework/items/${state.page.item.id}/actions`, body);
      $("#dp-opinion").value = "";
      await refreshAfterStep();
    } catch (e) {
      report($("#dp-error"), e);
    }
  }

  async function refreshAfterStep() {
    await openDocument(state.doc.id);
    loadMine();
    loadRegistry();
  }

  // --- 登记簿 ---------------------------------------------------------------------------------------
  async function loadRegistry(event) {
    if (event) event.preventDefault();
    const params = new URLSearchParams({ direction: $("#dr-direction").value,
                                         year: $("#dr-year").value || String(thisYear()) });
    if ($("#dr-org").value) params.set("org_id", $("#dr-org").value);
    if ($("#dr-q").value.trim()) params.set("q", $("#dr-q").value.trim());
    let data;
    try {
      data = await api("GET", `/documents?${params}`);
      setMessage($("#doc-registry-error"), "");
    } catch (e) {
      report($("#doc-registry-error"), e);
      return;
    }
    $("#doc-registry tbody").replaceChildren(...data.documents.map((d) => el("tr", {},
      el("td", {}, d.doc_number && d.direction === "out" ? d.doc_number : d.received_no || d.doc_number || "（未编号）"),
      el("td", {}, d.title), el("td", {}, d.direction === "out" ? d.issuer : d.sender || "—"),
      el("td", {}, d.urgency || "—"), el("td", {}, d.steps || "—"),
      el("td", {}, STATUS[d.status] + (d.outcome === "returned" ? "（已退文）" : "")),
      el("td", { class: "actions" }, act("查看", () => openDocument(d.id)),
        el("a", { class: "btn plain small", href: `/static/admin/document-print.html?id=${d.id}`,
                  target: "_blank", rel: "noopener" }, "打印")))));
    show($("#doc-registry-empty"), data.documents.length === 0);
  }

  // --- 公文设置 -------------------------------------------------------------------------------------
  async function loadOffice() {
    try {
      const data = await api("GET", "/document-office");
      const office = data.office || { issuer_code: "", issuer_mark: data.defaults.issuer_mark,
                                      issuer_name: data.defaults.issuer_name, principal_id: null };
      $("#do-code").value = office.issuer_code;
      $("#do-mark").value = office.issuer_mark;
      $("#do-name").value = office.issuer_name;
      $("#do-principal").replaceChildren(el("option", { value: "" }, "（未指定）"),
        ...data.candidates.map((c) => el("option", { value: String(c.id) },
          `${c.name}${c.department ? `（${c.department}）` : ""}`)));
      $("#do-principal").value = office.principal_id ? String(office.principal_id) : "";
      if (!data.office) setMessage($("#doc-office-error"), "尚未设置发文代字：编号前请先保存公文设置。");
    } catch (e) {
      report($("#doc-office-error"), e);
    }
  }

  async function saveOffice(event) {
    event.preventDefault();
    try {
      await api("PUT", "/document-office", {
        issuer_code: $("#do-code").value.trim(), issuer_mark: $("#do-mark").value.trim(),
        issuer_name: $("#do-name").value.trim(),
        principal_id: $("#do-principal").value ? Number($("#do-principal").value) : null });
      setMessage($("#doc-office-error"), "");
      notify("公文设置已保存。");
      loadOffice();
    } catch (e) {
      report($("#doc-office-error"), e);
    }
  }

  function bind() {
    $("#doc-refresh").addEventListener("click", loadView);
    $("#doc-new").addEventListener("click", () => openForm(false));
    $("#doc-new-in").addEventListener("click", () => openForm(true));
    $("#doc-form").addEventListener("submit", submitForm);
    $("#doc-form-cancel").addEventListener("click", () => show($("#doc-form"), false));
    $("#df-upload").addEventListener("change", upload);
    $("#dp-close").addEventListener("click", () => show($("#doc-page"), false));
    $("#dp-edit").addEventListener("click", () => openForm(false, state.doc));
    $("#doc-registry-form").addEventListener("submit", loadRegistry);
    $("#doc-office-form").addEventListener("submit", saveOffice);
    $("#dr-year").value = String(thisYear());
  }

  registerView("documents", { perm: "document.handle", load: loadView });
  document.addEventListener("DOMContentLoaded", () => { if ($("#view-documents")) bind(); });
})();
