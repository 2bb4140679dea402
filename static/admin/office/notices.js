/* 工会干部工作台：通知公告。每位干部的收件箱（未读在前、打开即已阅、填写回执）；有“通知公告发布”
   权限的干部起草、提交审核、审核（同意发布或退回）、按工会查看阅读与回执情况、催办未阅或未回执的干部、撤回。 */
(function () {
  "use strict";

  const { $, show, el, setMessage } = window.dom;
  const { api, report, notify, formatTime, can, registerView, chinaTime } = window.adminConsole;
  const PUBLISH = "notice.publish";
  const state = { notice: null, editing: null, files: [], under: null, menu: null };

  const act = (label, handler, tone = "plain") =>
    el("button", { type: "button", class: `btn small ${tone}`, onclick: handler }, label);
  const count = (v) => (v === null || v === undefined ? "—" : String(v));
  const paragraphs = (text) => (text || "").split("\n").map((line) => el("p", {}, line));

  // --- 收件箱 -----------------------------------------------------------------------------------------
  async function loadView() {
    loadInbox();
    show($("#nt-sent"), can(PUBLISH));
    show($("#nt-compose"), can(PUBLISH));
    if (can(PUBLISH)) {
      loadSent();
      if (!state.menu) loadMenu();
    }
  }

  function receiptState(n) {
    if (!n.has_receipt) return "—";
    if (n.receipt_at) return `已回执 ${formatTime(n.receipt_at)}`;
    return n.receipt_open ? `待回执（${formatTime(n.receipt_due_at)} 截止）` : "已截止";
  }

  async function loadInbox() {
    const unread = $("#nt-only-unread").checked ? "?unread=1" : "";
    let data;
    try {
      data = await api("GET", `/me/notices${unread}`);
      setMessage($("#nt-inbox-error"), "");
    } catch (e) {
      report($("#nt-inbox-error"), e);
      return;
    }
    $("#nt-total").textContent = data.counts.total;
    $("#nt-unread").textContent = data.counts.unread;
    $("#nt-unanswered").textContent = data.counts.unanswered;
    $("#nt-unread").closest(".stat").classList.toggle("on", data.counts.unread > 0);
    $("#nt-unanswered").closest(".stat").classList.toggle("on", data.counts.unanswered > 0);
    $("#nt-inbox tbody").replaceChildren(...data.notices.map((n) => el("tr", { class: n.unread ? "soon" : "" },
      el("td", {}, n.unread ? el("strong", {}, n.title) : n.title, n.urged ? el("span", { class: "tag" }, "催办") : ""),
      el("td", {}, n.org_name), el("td", {}, formatTime(n.delivered_at)),
      el("td", {}, n.status === "recalled" ? "已撤回" : n.unread ? "未读" : "已读"),
      el("td", {}, receiptState(n)),
      el("td", { class: "actions" }, act("打开", () => openNotice(n.id))))));
    show($("#nt-inbox-empty"), data.notices.length === 0);
  }

  // --- 通知页 -----------------------------------------------------------------------------------------
  async function openNotice(id) {
    let notice;
    try {
      notice = (await api("GET", `/notices/${id}`)).notice;
    } catch (e) {
      notify(e.message, "error");
      return;
    }
    state.notice = notice;
    state.under = null;
    $("#nt-d-title").textContent = notice.title;
    const fact = (label, value) => [el("dt", {}, label), el("dd", {}, value)];
    $("#nt-d-facts").replaceChildren(
      ...fact("发文单位", notice.org_name), ...fact("状态", notice.status_name),
      ...fact("发布时间", formatTime(notice.published_at)),
      ...(notice.has_receipt ? fact("回执截止", formatTime(notice.receipt_due_at)) : []));
    const recalled = notice.status === "recalled";
    setMessage($("#nt-d-recalled"), recalled ? `该通知已于 ${formatTime(notice.recalled_at)} 撤回：${notice.recall_reason || ""}` : "");
    $("#nt-d-body").replaceChildren(...(notice.body === null ? [] : paragraphs(notice.body)));
    $("#nt-d-files").replaceChildren(...notice.attachments.map((f) => el("li", {},
      el("a", { href: `${f.url}?name=${encodeURIComponent(f.filename)}`, rel: "noopener" }, `附件：${f.filename}`))));
    renderReceipt(notice);
    renderManage(notice);
    show($("#nt-detail"));
    $("#nt-detail").scrollIntoView({ block: "start" });
    loadInbox();   // opening it marked it read
  }

  function renderReceipt(notice) {
    const mine = notice.mine;
    const asked = Boolean(mine && notice.receipt_form);
    show($("#nt-receipt"), asked);
    setMessage($("#nt-receipt-error"), "");
    if (!asked) return;
    $("#nt-receipt-state").textContent = mine.receipt_at ? `已于 ${formatTime(mine.receipt_at)} 回执` +
      (mine.can_answer ? "，截止前可以修改。" : "。") : mine.can_answer ? `请于 ${formatTime(notice.receipt_due_at)} 前填写。` : "回执已截止。";
    if (window.forms) window.forms.render($("#nt-receipt-form"), notice.receipt_form, mine.receipt || {});
    for (const input of $("#nt-receipt-form").querySelectorAll("input, select, textarea")) input.disabled = !mine.can_answer;
    show($("#nt-receipt-send"), mine.can_answer);
  }

  async function sendReceipt(event) {
    event.preventDefault();
    const { values, errors } = window.forms.collect($("#nt-receipt-form"));
    if (errors.length) { setMessage($("#nt-receipt-error"), errors[0]); return; }
    try {
      await api("POST", `/notices/${state.notice.id}/receipt`, { answers: values });
      notify("回执已提交。", "ok");
      openNotice(state.notice.id);
    } catch (e) {
      report($("#nt-receipt-error"), e);
    }
  }

  // --- 发文管理：审核、提交、撤回、统计、催办 ------------------------------------------------------------------
  function renderManage(notice) {
    const m = notice.manage;
    show($("#nt-manage"), Boolean(m));
    setMessage($("#nt-m-error"), "");
    if (!m) return;
    const fact = (label, value) => [el("dt", {}, label), el("dd", {}, value)];
    $("#nt-m-facts").replaceChildren(
      ...fact("起草人", notice.author_name), ...fact("接收范围", m.targets_text),
      ...fact("审核人", m.reviewer_name || "—"), ...fact("收件人", String(m.recipients)),
      ...(m.return_opinion ? fact("退回意见", m.return_opinion) : []));
    show($("#nt-review"), Boolean(m.review && m.review.can_review));
    show($("#nt-edit"), m.can_edit);
    show($("#nt-submit"), m.can_edit);
    show($("#nt-recall"), m.can_recall);
    show($("#nt-stats"), notice.status === "published" || notice.status === "recalled");
    show($("#nt-people"), false);
    show($("#nt-people-title"), false);
    if (notice.status === "published" || notice.status === "recalled") loadStats(null);
  }

  async function manage(path, body, done) {
    try {
      await api("POST", `/notices/${state.notice.id}/${path}`, body);
      notify(done, "ok");
      await openNotice(state.notice.id);
      loadSent();
    } catch (e) {
      report($("#nt-m-error"), e);
    }
  }

  function decide(decision) {
    const review = state.notice.manage.review;
    manage("review", { decision, task_id: review.task_id, version: review.version,
                       opinion: $("#nt-review-opinion").value },
           decision === "approve" ? `“${state.notice.title}”已发布。` : `“${state.notice.title}”已退回起草人。`)
      .then(() => { $("#nt-review-opinion").value = ""; });
  }

  function recall() {
    const reason = window.prompt("撤回理由（收件人可见）：");
    if (reason) manage("recall", { reason }, `“${state.notice.title}”已撤回。`);
  }

  async function loadStats(orgId) {
    state.under = orgId;
    const query = orgId ? `?org_id=${orgId}` : "";
    let stats;
    try {
      stats = await api("GET", `/notices/${state.notice.id}/stats${query}`);
    } catch (e) {
      report($("#nt-m-error"), e);
      return;
    }
    $("#nt-stats-title").textContent = `阅读与回执情况：${stats.under.org_name}（合计 ${stats.total.recipients} 人，` +
      `已阅 ${stats.total.read}${stats.has_receipt ? `，已回执 ${stats.total.answered}` : ""}）`;
    show($("#nt-stats-up"), Boolean(orgId));
    const open = state.notice.status === "published";
    $("#nt-stats-table tbody").replaceChildren(...stats.unions.map((u) => el("tr", {},
      el("td", {}, u.own ? `${u.org_name}（本级）` : act(u.org_name, () => loadStats(u.org_id))),
      el("td", {}, String(u.recipients)), el("td", {}, String(u.read)), el("td", {}, String(u.unread)),
      el("td", {}, count(u.answered)), el("td", {}, count(u.unanswered)),
      el("td", { class: "actions" },
        u.unread ? act("未阅名单", () => loadPeople(u, "unread")) : "",
        stats.has_receipt && u.unanswered ? act("未回执名单", () => loadPeople(u, "unanswered")) : "",
        stats.has_receipt && u.answered ? act("回执内容", () => loadPeople(u, "answered")) : "",
        open && u.unread ? act("催办未阅", () => urge(u, "unread"), "") : "",
        open && stats.has_receipt && u.unanswered ? act("催办回执", () => urge(u, "unanswered"), "") : ""))));
  }

  async function loadPeople(union, what) {
    let data;
    try {
      data = await api("GET", `/notices/${state.notice.id}/recipients?org_id=${union.org_id}&state=${what}`);
    } catch (e) {
      report($("#nt-m-error"), e);
      return;
    }
    const titles = { unread: "未阅", unanswered: "未回执", answered: "已回执" };
    $("#nt-people-title").textContent = `${union.org_name}：${titles[what]}（${data.recipients.length} 人）`;
    const answers = (r) => (r.receipt ? Object.values(r.receipt).map((v) => (Array.isArray(v) ? v.join("、") : String(v))).join("；") : "");
    $("#nt-people tbody").replaceChildren(...data.recipients.map((r) => el("tr", {},
      el("td", {}, r.name), el("td", {}, r.org_name), el("td", {}, r.department || "—"),
      el("td", {}, r.read_at ? formatTime(r.read_at) : "未阅"),
      el("td", {}, r.receipt_at ? `${formatTime(r.receipt_at)} ${answers(r)}` : "—"),
      el("td", {}, r.bound ? "已绑定" : "未绑定"))));
    show($("#nt-people-title"));
    show($("#nt-people"));
  }

  async function urge(union, what) {
    try {
      const { urged } = await api("POST", `/notices/${state.notice.id}/urge`, { what, org_id: union.org_id });
      notify(`已催办 ${urged.urged} 人（其中 ${urged.queued} 人通过微信提醒，其余在工作台可见）。`, "ok");
      loadStats(state.under);
    } catch (e) {
      report($("#nt-m-error"), e);
    }
  }

  // --- 本单位发文 --------------------------------------------------------------------------------------
  async function loadSent() {
    const status = $("#nt-status").value;
    try {
      const { notices } = await api("GET", `/notices${status ? `?status=${status}` : ""}`);
      $("#nt-sent-table tbody").replaceChildren(...notices.map((n) => el("tr", {},
        el("td", {}, n.title, n.return_opinion && n.status === "draft" ? el("span", { class: "tag" }, "被退回") : ""),
        el("td", {}, n.status_name), el("td", {}, n.author_name),
        el("td", {}, n.status === "draft" || n.status === "reviewing" ? "—" : String(n.recipients)),
        el("td", {}, n.status === "draft" || n.status === "reviewing" ? "—" : String(n.read)),
        el("td", {}, n.has_receipt && n.recipients ? String(n.answered) : "—"),
        el("td", { class: "actions" }, act(n.status === "reviewing" && !n.mine ? "审核" : "打开", () => openNotice(n.id))))));
      show($("#nt-sent-empty"), notices.length === 0);
      setMessage($("#nt-sent-error"), "");
    } catch (e) {
      report($("#nt-sent-error"), e);
    }
  }

  // --- 起草 ----------------------------------------------------------------------------------------------
  async function loadMenu() {
    try {
      state.menu = await api("GET", "/notice-targets");
    } catch (e) {
      report($("#nt-compose-error"), e);
      return;
    }
    const check = (name, value, label) => el("label", {}, el("input", { type: "checkbox", name, value }), label);
    $("#nt-levels").replaceChildren(...state.menu.levels.map((l) => check("nt-level", l.level, `${l.name}（${l.unions}）`)));
    $("#nt-roles").replaceChildren(...state.menu.roles.map((r) => check("nt-role", r.role, r.name)));
    $("#nt-city").replaceChildren(...state.menu.cities.map((c) => el("option", { value: String(c.id) }, c.name)));
    $("#nt-department-list").replaceChildren(...state.menu.departments.map((d) => el("option", { value: d })));
  }

  function scopeFields() {
    const scope = $("#nt-scope").value;
    show($("#nt-levels-row"), scope === "levels");
    show($("#nt-city-row"), scope === "city");
    show($("#nt-unions-row"), scope === "unions");
    const receipt = $("#nt-has-receipt").checked;
    show($("#nt-due-row"), receipt);
    show($("#nt-form-row"), receipt);
  }

  function listFiles() {
    $("#nt-files").replaceChildren(...state.files.map((f) => el("li", {}, f.filename, " ",
      act("移除", () => { state.files = state.files.filter((x) => x.id !== f.id); listFiles(); }))));
  }

  async function upload() {
    const file = $("#nt-file").files[0];
    if (!file) return;
    try {
      const { media } = await api("POST", `/media/attachments?filename=${encodeURIComponent(file.name)}`, file);
      state.files.push(media);
      listFiles();
      setMessage($("#nt-compose-error"), "");
    } catch (e) {
      report($("#nt-compose-error"), e);
    }
    $("#nt-file").value = "";
  }

  const split = (text) => text.split(/[,，、\s]+/).map((x) => x.trim()).filter(Boolean);
  const checked = (name) => [...document.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);

  function draftBody() {
    const scope = $("#nt-scope").value;
    const targets = { scope };
    if (scope === "levels") targets.levels = checked("nt-level");
    if (scope === "city") targets.city_id = parseInt($("#nt-city").value || "0", 10);
    if (scope === "unions") targets.unions = split($("#nt-unions").value).map((x) => parseInt(x, 10));
    const roles = checked("nt-role");
    const departments = split($("#nt-departments").value);
    if (roles.length) targets.roles = roles;
    if (departments.length) targets.departments = departments;
    let receipt = null;
    if ($("#nt-has-receipt").checked) {
      let form;
      try { form = JSON.parse($("#nt-form").value); } catch (e) { throw new Error("回执表单不是有效的 JSON"); }
      receipt = { form, due_at: chinaTime($("#nt-due").value) };
    }
    return { title: $("#nt-title").value, body: $("#nt-body").value,
             attachments: state.files.map((f) => f.id), targets, receipt };
  }

  async function saveDraft(event) {
    event.preventDefault();
    let body;
    try { body = draftBody(); } catch (e) { setMessage($("#nt-compose-error"), e.message); return; }
    try {
      const { notice } = state.editing ? await api("PUT", `/notices/${state.editing}`, body)
        : await api("POST", "/notices", body);
      notify(`草稿“${notice.title}”已保存，可在通知页提交审核。`, "ok");
      setMessage($("#nt-compose-error"), "");
      state.editing = notice.id;
      $("#nt-compose-title").textContent = `修改草稿：${notice.title}`;
      loadSent();
      openNotice(notice.id);
    } catch (e) {
      report($("#nt-compose-error"), e);
    }
  }

  function newDraft() {
    state.editing = null;
    state.files = [];
    listFiles();
    $("#nt-compose").reset();
    $("#nt-compose-title").textContent = "起草通知";
    scopeFields();
  }

  function editDraft() {
    const n = state.notice;
    const t = n.manage.targets;
    state.editing = n.id;
    state.files = n.attachments.slice();
    listFiles();
    $("#nt-title").value = n.title;
    $("#nt-body").value = n.body || "";
    $("#nt-scope").value = t.scope;
    for (const box of document.querySelectorAll('input[name="nt-level"]')) box.checked = (t.levels || []).includes(box.value);
    for (const box of document.querySelectorAll('input[name="nt-role"]')) box.checked = (t.roles || []).includes(box.value);
    if (t.city_id) $("#nt-city").value = String(t.city_id);
    $("#nt-unions").value = (t.unions || []).join(",");
    $("#nt-departments").value = (t.departments || []).join(",");
    $("#nt-has-receipt").checked = n.has_receipt;
    if (n.receipt_form) $("#nt-form").value = JSON.stringify(n.receipt_form);
    if (n.receipt_due_at) $("#nt-due").value = formatTime(n.receipt_due_at).slice(0, 16).replace(" ", "T");
    $("#nt-compose-title").textContent = `修改草稿：${n.title}`;
    scopeFields();
    $("#nt-compose").scrollIntoView({ block: "start" });
  }

  function bind() {
    $("#nt-refresh").addEventListener("click", loadView);
    $("#nt-only-unread").addEventListener("change", loadInbox);
    $("#nt-d-close").addEventListener("click", () => show($("#nt-detail"), false));
    $("#nt-receipt").addEventListener("submit", sendReceipt);
    $("#nt-approve").addEventListener("click", () => decide("approve"));
    $("#nt-return").addEventListener("click", () => decide("return"));
    $("#nt-edit").addEventListener("click", editDraft);
    $("#nt-submit").addEventListener("click", () => manage("submit", {}, `“${state.notice.title}”已提交审核。`));
    $("#nt-recall").addEventListener("click", recall);
    $("#nt-stats-up").addEventListener("click", () => loadStats(null));
    $("#nt-status").addEventListener("change", loadSent);
    $("#nt-scope").addEventListener("change", scopeFields);
    $("#nt-has-receipt").addEventListener("change", scopeFields);
    $("#nt-file").addEventListener("change", upload);
    $("#nt-compose").addEventListener("submit", saveDraft);
    $("#nt-compose-new").addEventListener("click", newDraft);
  }

  /** After sign-in: unread notices and receipts still owed. */
  async function announce() {
    try {
      const { counts } = await api("GET", "/me/notices?limit=1");
      if (counts.unread || counts.unanswered) {
        notify(`您有 ${counts.unread} 条未读通知` + (counts.unanswered ? `、${counts.unanswered} 条待回执` : "") +
               "，请到“通知公告”查看。", "info");
      }
    } catch (e) { /* a convenience: the view shows the same */ }
  }

  registerView("notices", { perm: "", load: loadView });
  window.adminConsole.onEnter(announce);
  document.addEventListener("DOMContentLoaded", () => { if ($("#view-notices")) bind(); });
})();
