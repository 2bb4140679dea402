/* 工会干部工作台：事项办理（我的待办、事项页与办理操作、诉求受理台、逾期督办、办结率、委托、
   微信提醒绑定）和提案办理（会议、代表名单、立案交办、办理情况）。 */
(function () {
  "use strict";

  const { $, show, el, setMessage } = window.dom;
  const { api, report, notify, formatTime, can, saveBlob, registerView, chinaTime } = window.adminConsole;
  const ACTION_FIELDS = { transfer: "to", delegate: "to", add_signer: "to", circulate: "to", copy: "to",
                          return: "node", request_extension: "days", route: "org" };
  const PROPOSAL_STATUS = { seconding: "征集附议", lapsed: "附议不足", reviewing: "立案审查", filed: "承办中",
                            merged: "已并案", suggestion: "转为意见建议", replied: "已答复", closed: "已办结" };
  const state = { item: null, colleagues: [], session: null };

  const act = (label, handler, tone = "plain") =>
    el("button", { type: "button", class: `btn small ${tone}`, onclick: handler }, label);
  // Where each module's own steps (its desk) are handled in the console.
  const DESK_VIEWS = { proposal: "提案办理", notice: "通知公告", info_report: "信息报送", document_out: "公文流转",
                       document_in: "公文流转", meeting: "会议", meeting_action: "会议", meeting_external: "会议",
                       business_request: "业务配置" };
  const deskView = (module) => DESK_VIEWS[module] || (module.startsWith("biz_") ? "业务配置" : "事项办理");
  const percent = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`);

  function due(value, provisional, urgency) {
    if (!value) return el("span", { class: "muted" }, "无时限");
    return el("span", { class: `due ${urgency || ""}` },
      formatTime(value, false) + (provisional ? "（暂定）" : "") +
      (urgency === "overdue" ? " 已逾期" : urgency === "soon" ? " 临近到期" : ""));
  }

  // --- 我的待办 -----------------------------------------------------------------------------------
  async function loadView() {
    loadTodo();
    loadOverdue();
    loadProxies();
    loadBinding();
    if (!state.colleagues.length) {
      try { state.colleagues = (await api("GET", "/casework/colleagues")).cadres; } catch (e) { /* 不影响待办 */ }
      const options = state.colleagues.map((c) =>
        el("option", { value: String(c.id) }, `${c.name}（${c.org_name}${c.department ? "·" + c.department : ""}）`));
      $("#px-cadre").replaceChildren(...options.map((o) => o.cloneNode(true)));
      $("#wi-to").replaceChildren(...options);
    }
  }

  async function loadTodo() {
    const params = new URLSearchParams();
    for (const [key, id] of [["module", "#work-module"], ["state", "#work-state"], ["q", "#work-q"]]) {
      if ($(id).value.trim()) params.set(key, $(id).value.trim());
    }
    let data;
    try {
      data = await api("GET", `/casework/todo?${params}`);
      setMessage($("#work-error"), "");
    } catch (e) {
      report($("#work-error"), e);
      return;
    }
    $("#work-total").textContent = data.counts.total;
    $("#work-soon").textContent = data.counts.soon;
    $("#work-overdue").textContent = data.counts.overdue;
    $("#work-overdue").closest(".stat").classList.toggle("on", data.counts.overdue > 0);
    $("#work-soon").closest(".stat").classList.toggle("on", data.counts.soon > 0);
    $("#work-table tbody").replaceChildren(...data.tasks.map((t) => el("tr", { class: t.urgency },
      el("td", {}, t.title, t.for ? el("span", { class: "tag" }, `代${t.for}`) : "",
        t.delegated ? el("span", { class: "tag" }, "委派") : ""),
      el("td", {}, t.module_name), el("td", {}, t.step), el("td", {}, t.org_name),
      el("td", {}, due(t.due_at, t.provisional, t.urgency)),
      el("td", { class: "actions" }, act("办理", () => openItem(t.item_id, t.module))))));
    show($("#work-empty"), data.tasks.length === 0);
  }

  // 逾期督办 is for cadres who handle a module; anyone may have a task (a meeting's action item).
  const HANDLES = ["appeal.handle", "proposal.handle", "notice.publish", "info.report", "document.handle",
                   "meeting.manage", "business.handle", "business.approve"];

  async function loadOverdue() {
    show($("#overdue-table").closest(".panel"), HANDLES.some(can));
    if (!HANDLES.some(can)) return;
    try {
      const { items } = await api("GET", "/casework/overdue");
      $("#overdue-table tbody").replaceChildren(...items.map((i) => el("tr", { class: "overdue" },
        el("td", {}, i.title), el("td", {}, i.module_name), el("td", {}, i.org_name),
        el("td", {}, due(i.due_at, i.provisional, "overdue")), el("td", {}, i.steps || "—"),
        el("td", { class: "actions" }, act("查看", () => openItem(i.item_id, i.module))))));
      show($("#overdue-empty"), items.length === 0);
      setMessage($("#overdue-error"), "");
    } catch (e) {
      report($("#overdue-error"), e);
    }
  }

  // --- 事项页 ---------------------------------------------------------------------------------------
  async function openItem(id, module) {
    let item;
    try {
      const path = module === "appeal" ? `/appeals/${id}` : module === "proposal" ? `/proposal-items/${id}`
        : `/casework/items/${id}`;
      item = (await api("GET", path)).item;
    } catch (e) {
      report($("#work-error"), e);
      return;
    }
    state.item = item;
    $("#wi-title").textContent = item.title;
    const fact = (label, value) => [el("dt", {}, label), el("dd", {}, value)];
    $("#wi-facts").replaceChildren(
      ...fact("业务", item.module_name), ...fact("工会", item.org_name), ...fact("状态", item.status_name),
      ...fact("提交时间", formatTime(item.opened_at)),
      ...fact("办理时限", due(item.due_at, item.due_provisional)),
      ...(item.extension_pending ? fact("延期申请", `${item.extension_pending.days} 天：${item.extension_pending.reason}`) : []));
    renderAppeal(item.appeal);
    if (item.proposal) renderProposal(item.proposal);
    $("#wi-steps").replaceChildren(...item.steps.map((s) => el("li", {},
      `${s.name}（${{ open: "办理中", passed: "已通过", rejected: "未通过", cancelled: "已取消" }[s.status]}）：`,
      s.tasks.map((t) => `${t.assignee}${t.acted_by ? `（${t.acted_by}${t.acted_for ? `代${t.acted_for}` : ""}）` : ""}`).join("、"))));
    $("#wi-timeline").replaceChildren(...item.timeline.map((e) => el("li", {},
      el("strong", {}, e.name), ` ${formatTime(e.at)} `, e.actor ? `${e.actor}${e.actor_org ? `（${e.actor_org}）` : ""}` : "",
      e.due_at && e.kind === "due" ? ` 时限至 ${formatTime(e.due_at, false)}` : "",
      e.opinion ? el("span", { class: "opinion" }, e.opinion) : "")));
    $("#wi-action").replaceChildren(...item.actions.map((a) => el("option", { value: a.action }, a.name)));
    $("#wi-node").replaceChildren(...item.return_to.map((n) => el("option", { value: n },
      (item.steps.find((s) => s.node === n) || { name: n }).name)));
    show($("#wi-form"), item.actions.length > 0);
    fieldsFor();
    const desk = item.desk_steps;
    show($("#wi-desk"), desk.length > 0 || (item.module === "appeal" && item.status === "closed"));
    const appeal = item.module === "appeal";
    show($("#wi-accept"), appeal && desk.includes("accept"));
    show($("#wi-decline"), appeal && desk.includes("accept"));
    show($("#wi-send-reply"), appeal && (desk.includes("handle") || desk.includes("review")));
    show($("#wi-revisit"), item.module === "appeal" && item.status === "closed");
    const answering = item.module === "proposal" && (desk.includes("reply") || desk.includes("reprocess"));
    show($("#wi-class-row"), answering);
    show($("#wi-proposal-reply"), answering);
    $("#wi-desk-title").textContent = appeal ? "诉求受理台" : answering ? "主办单位答复"
      : `本环节请在“${deskView(item.module)}”中办理`;
    setMessage($("#wi-error"), "");
    setMessage($("#wi-desk-error"), "");
    show($("#work-item"));
    $("#work-item").scrollIntoView({ block: "start" });
  }

  function renderAppeal(appeal) {
    if (!appeal) { $("#wi-appeal").replaceChildren(); return; }
    const files = appeal.files.map((f) => act(`附件：${f.filename}`, () => download(`/appeal-files/${f.id}`)));
    $("#wi-appeal").replaceChildren(
      el("h4", {}, `诉求内容（${appeal.category}${appeal.anonymous ? "，匿名" : ""}）`),
      el("p", { class: "story" }, appeal.erased ? "（职工已注销账号，内容已删除）" : appeal.description || ""),
      el("p", {}, `工作单位：${appeal.employer || "—"}　联系方式：${appeal.contact || "—"}　手机：${appeal.phone || "—"}`),
      ...(appeal.reply ? [el("h4", {}, "答复"), el("p", { class: "story" }, appeal.reply)] : []),
      ...(appeal.rating_name ? [el("p", {}, `职工评价：${appeal.rating_name}`)] : []), ...files);
  }

  function renderProposal(p) {
    $("#wi-appeal").replaceChildren(
      el("h4", {}, `提案${p.number ? `（第${p.number}号）` : ""}：${p.title}`),
      el("p", {}, `提案人：${p.proposer}　附议：${p.seconders.join("、") || "—"}`),
      el("h4", {}, "案由"), el("p", { class: "story" }, p.reasons),
      el("h4", {}, "建议措施"), el("p", { class: "story" }, p.measures),
      ...(p.reply ? [el("h4", {}, `答复（${p.class} 类）`), el("p", { class: "story" }, p.reply)] : []));
  }

  function proposalReply() {
    const item = state.item;
    run(`/proposals/${item.proposal.id}/reply`, { task_id: myTask(), version: item.version,
      class: $("#wi-class").value, reply: $("#wi-reply").value }, $("#wi-desk-error"));
  }

  async function download(path) {
    try {
      const file = await api("GET", path, null, true);
      saveBlob(file.blob, file.filename);
    } catch (e) {
      report($("#wi-desk-error"), e);
    }
  }

  function fieldsFor() {
    const field = ACTION_FIELDS[$("#wi-action").value];
    show($("#wi-to-row"), field === "to");
    show($("#wi-node-row"), field === "node");
    show($("#wi-days-row"), field === "days");
    show($("#wi-org-row"), field === "org");
  }

  function myTask() { return state.item.my_tasks[0]; }

  async function submitAction(event) {
    event.preventDefault();
    const item = state.item;
    const action = $("#wi-action").value;
    const body = { action, version: item.version, task_id: myTask(), opinion: $("#wi-opinion").value };
    const field = ACTION_FIELDS[action];
    if (field === "to") {
      const to = parseInt($("#wi-to").value, 10);
      if (action === "circulate" || action === "copy") body.cadres = [to]; else body.to = to;
    }
    if (field === "node") body.node = $("#wi-node").value;
    if (field === "days") body.days = parseInt($("#wi-days").value || "0", 10);
    if (field === "org") body.org_id = parseInt($("#wi-org").value || "0", 10);
    await run(`/casework/items/${item.id}/actions`, body, $("#wi-error"));
  }

  async function run(path, body, errorBox) {
    const item = state.item;
    try {
      await api("POST", path, body);
      notify(`“${item.title}”已办理。`, "ok");
      $("#wi-opinion").value = "";
      $("#wi-reply").value = "";
      await openItem(item.id, item.module);
      loadTodo();
      loadOverdue();
    } catch (e) {
      report(errorBox, e);
    }
  }

  function deskDecision(accept) {
    const item = state.item;
    run(`/appeals/${item.id}/decision`, { task_id: myTask(), version: item.version, accept,
                                          opinion: $("#wi-opinion").value }, $("#wi-desk-error"));
  }

  function deskReply() {
    const item = state.item;
    run(`/appeals/${item.id}/reply`, { task_id: myTask(), version: item.version, reply: $("#wi-reply").value },
        $("#wi-desk-error"));
  }

  function deskRevisit() {
    const item = state.item;
    run(`/appeals/${item.id}/revisit`, { note: $("#wi-reply").value || $("#wi-opinion").value },
        $("#wi-desk-error"));
  }

  // --- 办结率 ---------------------------------------------------------------------------------------
  async function loadRates(event) {
    if (event) event.preventDefault();
    const period = $("#rates-period").value.trim();
    try {
      const { rates } = await api("GET", `/casework/rates?period=${encodeURIComponent(period)}`);
      const row = (name, f) => el("tr", {}, el("td", {}, name), el("td", {}, String(f.due)), el("td", {}, String(f.closed)),
        el("td", {}, percent(f.completion_rate)), el("td", {}, percent(f.on_time_rate)),
        el("td", {}, percent(f.satisfaction_rate)), el("td", {}, percent(f.revisit_rate)));
      $("#rates-table tbody").replaceChildren(row("本单位及下级合计", rates.total.all),
        ...rates.unions.map((u) => row(u.org_name, u.all)));
      setMessage($("#rates-error"), "");
    } catch (e) {
      report($("#rates-error"), e);
    }
  }

  async function exportLedger() {
    const query = new URLSearchParams({ module: $("#ledger-module").value, period: $("#rates-period").value.trim() });
    try {
      const file = await api("GET", `/casework/ledger.xlsx?${query}`, null, true);
      saveBlob(file.blob, file.filename);
      setMessage($("#rates-error"), "");
    } catch (e) {
      report($("#rates-error"), e);
    }
  }

  // --- 委托 -----------------------------------------------------------------------------------------
  async function loadProxies() {
    try {
      const { proxies } = await api("GET", "/casework/proxies");
      $("#proxies-table tbody").replaceChildren(...proxies.map((p) => el("tr", {},
        el("td", {}, p.cadre), el("td", {}, p.proxy), el("td", {}, formatTime(p.starts_at)),
        el("td", {}, formatTime(p.ends_at)),
        el("td", { class: "actions" }, p.mine ? act("收回", () => revokeProxy(p.id)) : ""))));
    } catch (e) {
      report($("#proxy-error"), e);
    }
  }

  async function addProxy(event) {
    event.preventDefault();
    try {
      await api("POST", "/casework/proxies", { proxy_id: parseInt($("#px-cadre").value, 10),
        starts_at: chinaTime($("#px-from").value), ends_at: chinaTime($("#px-to").value) });
      notify("委托已生效。", "ok");
      setMessage($("#proxy-error"), "");
      loadProxies();
    } catch (e) {
      report($("#proxy-error"), e);
    }
  }

  async function revokeProxy(id) {
    try {
      await api("DELETE", `/casework/proxies/${id}`);
      loadProxies();
    } catch (e) {
      report($("#proxy-error"), e);
    }
  }

  // --- 微信提醒 ------------------------------------------------------------------------------------
  async function loadBinding() {
    try {
      const status = await api("GET", "/me/wechat");
      $("#wechat-status").textContent = status.bound ?
        `已绑定微信（${formatTime(status.bound_at)}），待办提醒、催办和逾期督办将通过公众号发送。` :
        "尚未绑定微信：待办只在本工作台显示。绑定后，新待办、催办和逾期提醒会发到您的微信。";
      show($("#wechat-unbind"), status.bound);
    } catch (e) { /* 不影响待办 */ }
  }

  async function bindCode() {
    try {
      const code = await api("POST", "/me/wechat");
      // Parsed in an inert document (nothing in it runs), then moved into the page.
      const svg = document.adoptNode(new DOMParser().parseFromString(code.svg, "text/html").querySelector("svg"));
      $("#wechat-qr").replaceChildren(svg, el("p", { class: "muted" },
        `请用微信扫码（${Math.round(code.expires_in / 60)} 分钟内有效），扫码后刷新本页查看绑定结果。`));
    } catch (e) {
      notify(e.message, "error");
    }
  }

  async function unbind() {
    try {
      await api("DELETE", "/me/wechat");
      $("#wechat-qr").replaceChildren();
      loadBinding();
    } catch (e) {
      notify(e.message, "error");
    }
  }

  // --- 提案办理 -------------------------------------------------------------------------------------
  async function loadSessions() {
    try {
      const { sessions } = await api("GET", "/congress-sessions");
      $("#sessions-table tbody").replaceChildren(...sessions.map((s) => el("tr", {},
        el("td", {}, s.name, el("span", { class: "tag" }, s.kind_name)),
        el("td", {}, `${formatTime(s.opens_at, false)} 至 ${formatTime(s.closes_at, false)}${s.open ? "（征集中）" : ""}`),
        el("td", {}, String(s.representatives)), el("td", {}, String(s.proposals)),
        el("td", { class: "actions" }, act("打开", () => openSession(s.id))))));
      setMessage($("#sessions-error"), "");
    } catch (e) {
      report($("#sessions-error"), e);
    }
  }

  async function createSession(event) {
    event.preventDefault();
    try {
      const { session } = await api("POST", "/congress-sessions", {
        name: $("#ss-name").value, kind: $("#ss-kind").value, opens_at: chinaTime($("#ss-opens").value),
        closes_at: chinaTime($("#ss-closes").value), seconders: parseInt($("#ss-seconders").value || "0", 10),
        reply_days: parseInt($("#ss-days").value || "0", 10) });
      notify(`已新建“${session.name}”。`, "ok");
      loadSessions();
      openSession(session.id);
    } catch (e) {
      report($("#sessions-error"), e);
    }
  }

  async function openSession(id) {
    let s;
    try {
      s = (await api("GET", `/congress-sessions/${id}`)).session;
    } catch (e) {
      report($("#sessions-error"), e);
      return;
    }
    state.session = s;
    const r = s.report;
    $("#sd-title").textContent = `${s.name}（代表 ${s.roster.length} 人）`;
    $("#sd-report").textContent = `提交 ${r.submitted} 件，立案 ${r.filed} 件（A 类 ${r.by_class.A}、B 类 ${r.by_class.B}、` +
      `C 类 ${r.by_class.C}），并案 ${r.merged} 件，转为意见建议 ${r.suggestions} 件，附议不足 ${r.lapsed} 件；` +
      `按时答复率 ${percent(r.on_time_rate)}，满意率 ${percent(r.satisfaction_rate)}。`;
    $("#sd-proposals tbody").replaceChildren(...s.proposal_list.map(proposalRow));
    show($("#session-detail"));
  }

  function proposalRow(p) {
    const actions = [];
    if (p.status === "reviewing") {
      actions.push(act("立案交办", () => fileProposal(p, "file")), act("并案", () => fileProposal(p, "merge")),
                   act("转为意见建议", () => fileProposal(p, "suggest")));
    }
    return el("tr", {}, el("td", {}, p.number ? `第${p.number}号` : "—"),
      el("td", {}, p.title, p.class ? el("span", { class: "tag" }, `${p.class} 类`) : ""),
      el("td", {}, p.proposer), el("td", {}, p.seconders.join("、") || "—"),
      el("td", {}, PROPOSAL_STATUS[p.status] || p.status), el("td", { class: "actions" }, ...actions));
  }

  async function fileProposal(p, action) {
    const body = { action };
    if (action === "file") {
      const lead = window.prompt("主办单位的工会编号：");
      if (!lead) return;
      const help = window.prompt("协办单位的工会编号（多个用逗号分隔，可不填）：") || "";
      body.lead_unit = parseInt(lead, 10);
      body.help_units = help.split(/[,，\s]+/).filter(Boolean).map((x) => parseInt(x, 10));
    } else {
      if (action === "merge") body.into = parseInt(window.prompt("并入的提案编号（提案 id）：") || "0", 10);
      body.reason = window.prompt(action === "merge" ? "并案理由：" : "转为意见建议的理由：") || "";
    }
    try {
      await api("POST", `/proposals/${p.id}/filing`, body);
      notify(`“${p.title}”已处理。`, "ok");
      openSession(state.session.id);
    } catch (e) {
      report($("#sd-error"), e);
    }
  }

  async function addRoster() {
    const lines = $("#sd-roster").value.split("\n").map((l) => l.trim()).filter(Boolean);
    const representatives = lines.map((line) => {
      const [name, phone, delegation] = line.split(/[,，]/).map((x) => (x || "").trim());
      return { name, phone, delegation };
    });
    try {
      await api("POST", `/congress-sessions/${state.session.id}/representatives`, { representatives });
      $("#sd-roster").value = "";
      setMessage($("#sd-error"), "");
      openSession(state.session.id);
    } catch (e) {
      report($("#sd-error"), e);
    }
  }

  async function reportXlsx(event) {
    event.preventDefault();
    try {
      const file = await api("GET", `/congress-sessions/${state.session.id}/report.xlsx`, null, true);
      saveBlob(file.blob, file.filename);
    } catch (e) {
      report($("#sd-error"), e);
    }
  }

  function bind() {
    $("#work-refresh").addEventListener("click", loadView);
    for (const id of ["#work-module", "#work-state"]) $(id).addEventListener("change", loadTodo);
    $("#work-q").addEventListener("change", loadTodo);
    $("#wi-close").addEventListener("click", () => show($("#work-item"), false));
    $("#wi-action").addEventListener("change", fieldsFor);
    $("#wi-form").addEventListener("submit", submitAction);
    $("#wi-accept").addEventListener("click", () => deskDecision(true));
    $("#wi-decline").addEventListener("click", () => deskDecision(false));
    $("#wi-send-reply").addEventListener("click", deskReply);
    $("#wi-revisit").addEventListener("click", deskRevisit);
    $("#wi-proposal-reply").addEventListener("click", proposalReply);
    $("#rates-form").addEventListener("submit", loadRates);
    $("#ledger-export").addEventListener("click", exportLedger);
    $("#proxy-form").addEventListener("submit", addProxy);
    $("#wechat-bind").addEventListener("click", bindCode);
    $("#wechat-unbind").addEventListener("click", unbind);
    $("#sessions-refresh").addEventListener("click", loadSessions);
    $("#session-form").addEventListener("submit", createSession);
    $("#sd-roster-add").addEventListener("click", addRoster);
    $("#sd-xlsx").addEventListener("click", reportXlsx);
    const now = new Date(Date.now() + 8 * 3600 * 1000);
    $("#rates-period").value = now.toISOString().slice(0, 7);
  }

  /** After sign-in: overdue work for those who handle it; missing holiday years for the office. */
  async function announce() {
    try {
      if (can("appeal.handle") || can("proposal.handle")) {
        const { counts } = await api("GET", "/casework/todo?limit=1");
        if (counts.overdue) notify(`您有 ${counts.overdue} 件待办已逾期，请到“事项办理”尽快办理。`, "info");
      }
      if (can("org.manage")) {
        const year = new Date(Date.now() + 8 * 3600 * 1000).getUTCFullYear();
        const { missing_years: missing } = await api("GET", `/calendar/${year}`);
        if (missing.length) {
          notify(`尚未导入 ${missing.join("、")} 年的放假安排：跨入这些年份的办理时限按周末计算（暂定）。` +
                 "国务院办公厅发布通知后请及时导入。", "info");
        }
      }
    } catch (e) { /* a convenience: the views show the same */ }
  }

  registerView("work", { load: loadView });
  window.adminConsole.onEnter(announce);
  registerView("proposals", { perm: "proposal.handle", load: loadSessions });
  document.addEventListener("DOMContentLoaded", () => { if ($("#view-work")) bind(); });
})();
