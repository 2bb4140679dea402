/* 基础数据账本（省总工会平台办公室监看）：账本规模与最新检查点、已定稿的大小、待入账的变更、省级
   公钥；各城市节点联署到哪里、落后多少；最近的检查点及其联署；按序号查看条目并下载回执；节点和
   省平台发现的告警，写明处理情况后清除。视图显示期间每 10 秒刷新一次。所有数据都以文本写入页面。 */
(function () {
  "use strict";

  const { $, show, el, setMessage } = window.dom;
  const { api, report, notify, formatTime, can, saveBlob, registerView, onEnter } = window.adminConsole;

  const VIEW = "basedata-ledger";
  const PERMISSION = "basedata.ledger";
  const REFRESH_MS = 10000;
  const FAR_BEHIND = 1000;          // 节点落后超过这么多条目时标红：它可能已停止联署
  const CHECKPOINTS = 50;

  const KIND_NAMES = {
    fork: "日志分叉", log_shrank: "日志回退", bad_tile: "数据块不符", bad_entry: "条目不符",
    outside_subtree: "越界条目", bad_signature: "签名无效", unknown_key: "未知密钥",
    inconsistent: "一致性证明不成立", bad_cosignature: "联署签名无效", unknown_origin: "未知日志名称",
    bad_empty_root: "空树根哈希不符", bad_proof: "证明无效",
  };
  // 条目的字段按这个顺序显示（条目本身按键名排序编码，那个顺序不便阅读）；未列出的排在最后
  const FIELD_NAMES = {
    type: "条目类型", entity: "对象", id: "记录编号", action: "变更", data: "变更内容",
    org: "所属工会（编码路径）", actor: "操作人", at: "时间", change: "变更编号",
    seq: "审计记录序号", record_mac: "审计记录校验码", head_mac: "审计链头校验码", v: "版本",
  };
  const FIELD_ORDER = Object.keys(FIELD_NAMES);
  const ENTRY_KINDS = { change: "基础数据变更", audit_head: "审计记录头" };

  const state = { built: false, status: null, entry: null, clearing: null, showCleared: false,
                  timer: null, ticket: 0 };

  /** witness_403 之类：省平台推送检查点时节点拒绝联署（带上 HTTP 状态）。 */
  function kindName(kind) {
    if (KIND_NAMES[kind]) return KIND_NAMES[kind];
    if (kind.startsWith("witness_")) {
      const code = kind.slice("witness_".length);
      return /^\d+$/.test(code) ? `节点拒绝联署（HTTP ${code}）` : "节点拒绝联署";
    }
    return kind;
  }

  const sourceName = (source) => (source === "province" ? "省平台" : source);
  const count = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("zh-CN"));
  // 根哈希太长，表格里只显示开头；完整的值在提示中，供与节点核对
  const shortHash = (hash) => (hash ? el("span", { class: "mono", title: hash }, `${hash.slice(0, 12)}…`) : "—");

  // --- 页面骨架（第一次进入视图时建立）-------------------------------------------------------------
  function build() {
    const panel = (title, ...body) => el("section", { class: "panel" }, el("h3", null, ...title), ...body);
    const stat = (label, id, extra) => el("div", { class: "stat", id: `${id}-box` },
      el("span", null, label), el("strong", { id }), extra || null);
    const head = (...names) => el("thead", null, el("tr", null, ...names.map((h) => el("th", null, h))));
    $("#bl-console").replaceChildren(
      el("p", { class: "alert error", id: "bl-error", role: "alert", hidden: true }),
      el("p", { class: "alert warn", id: "bl-disabled", hidden: true },
        "账本未启用：未配置省级签名密钥，基础数据的变更暂存待入账。"),
      el("div", { class: "stats bl-stats" },
        stat("账本规模（条目）", "bl-size"),
        stat("最新检查点", "bl-signed", el("small", { class: "muted", id: "bl-root" })),
        stat("已定稿", "bl-final", el("small", { class: "muted", id: "bl-quorum" })),
        stat("待入账", "bl-queued")),
      el("div", { class: "panel" },
        el("dl", { class: "facts wide" },
          el("dt", null, "日志名称"), el("dd", { class: "mono", id: "bl-origin" }),
          el("dt", null, el("label", { htmlFor: "bl-key", class: "bl-inline" }, "省级公钥")),
          el("dd", { class: "input-row" },
            el("input", { type: "text", id: "bl-key", class: "mono", readOnly: true }),
            el("button", { type: "button", class: "btn", id: "bl-copy", onclick: copyKey }, "复制"))),
        el("p", { class: "hint" }, "城市节点和核验回执的人以这把公钥核对检查点的签名。")),
      panel(["城市节点"],
        el("p", { class: "hint" }, `落后超过 ${count(FAR_BEHIND)} 条或从未联署的节点标红。`),
        el("table", { class: "table compact", id: "bl-nodes" },
          head("节点", "地址", "已联署到", "落后", "情况"), el("tbody")),
        el("p", { class: "empty", id: "bl-nodes-empty", hidden: true }, "没有配置城市节点，检查点不会定稿。")),
      el("div", { class: "columns" },
        panel(["最近的检查点"],
          el("table", { class: "table compact", id: "bl-checkpoints" },
            head("大小", "时间", "根哈希", "联署节点", "定稿"), el("tbody")),
          el("p", { class: "empty", id: "bl-checkpoints-empty", hidden: true }, "还没有签署检查点。")),
        panel(["查看条目"],
          el("form", { class: "filters", id: "bl-entry-form", novalidate: true, onsubmit: lookUp },
            el("div", null, el("label", { htmlFor: "bl-index" }, "序号"),
              el("input", { type: "text", id: "bl-index", inputMode: "numeric", autocomplete: "off",
                            placeholder: "从 0 起" })),
            el("div", { class: "filter-actions" }, el("button", { type: "submit", class: "btn" }, "查看"))),
          el("p", { class: "alert error", id: "bl-entry-error", role: "alert", hidden: true }),
          el("div", { id: "bl-entry", hidden: true },
            el("h4", { id: "bl-entry-title" }),
            el("dl", { class: "facts wide", id: "bl-entry-fields" }),
            el("p", { class: "bl-receipt" },
              el("a", { id: "bl-receipt", download: "", onclick: downloadReceipt }, "下载回执"),
              el("span", { class: "muted", id: "bl-receipt-note" })),
            el("p", { class: "alert error", id: "bl-receipt-error", role: "alert", hidden: true })))),
      panel([el("span", { id: "bl-alarms-title" }, "告警")],
        el("label", { class: "inline-check" },
          el("input", { type: "checkbox", id: "bl-show-cleared",
                        onchange: (event) => { state.showCleared = event.target.checked; loadAlarms(); } }),
          "同时显示已处理的告警"),
        el("p", { class: "alert error", id: "bl-alarms-error", role: "alert", hidden: true }),
        el("table", { class: "table compact bl-alarms", id: "bl-alarms" },
          head("来源", "类型", "说明", "发现时间", "操作"), el("tbody")),
        el("p", { class: "empty", id: "bl-alarms-empty", hidden: true }, "没有未处理的告警。")));
    state.built = true;
  }

  // --- 读取与定时刷新 -------------------------------------------------------------------------------
  function load() {
    if (!state.built) build();
    refresh();
    schedule();
  }

  // 离开视图或退出登录后停下；回到视图时 load() 重新开始
  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(async () => {
      state.timer = null;
      if (!showing()) return;
      if (!document.hidden) await refresh();
      if (showing()) schedule();
    }, REFRESH_MS);
  }

  function showing() {
    const section = $(`#view-${VIEW}`);
    return Boolean(section && !section.hidden && !$("#shell").hidden);
  }

  async function refresh() {
    const ticket = ++state.ticket;   // 较早发出的刷新晚到时不覆盖较新的结果
    let status;
    let checkpoints;
    try {
      [status, { checkpoints }] = await Promise.all([
        api("GET", "/ledger/status"), api("GET", `/ledger/checkpoints?limit=${CHECKPOINTS}`)]);
    } catch (e) {
      if (ticket !== state.ticket) return;
      if (e.status === 403) hideMenu();
      report($("#bl-error"), e);
      return;
    }
    if (ticket !== state.ticket) return;
    setMessage($("#bl-error"), "");
    state.status = status;
    renderStatus(status);
    renderNodes(status);
    renderCheckpoints(checkpoints);
    renderReceipt();
    await loadAlarms();
  }

  // --- 状态与节点 -----------------------------------------------------------------------------------
  function renderStatus(s) {
    show($("#bl-disabled"), !s.enabled);
    $("#bl-size").textContent = count(s.size);
    $("#bl-signed").textContent = s.signed_at ? formatTime(s.signed_at) : "尚未签署";
    $("#bl-root").replaceChildren(s.root ? el("span", null, "根哈希 ", shortHash(s.root)) : "");
    $("#bl-final").textContent = s.final_size === null ? "尚未定稿" : count(s.final_size);
    $("#bl-quorum").textContent = `定稿需 ${s.quorum}/${s.witnesses.length} 个节点联署`;
    $("#bl-queued").textContent = count(s.queued);
    $("#bl-origin").textContent = s.origin;
    $("#bl-key").value = s.public_key || "";
    $("#bl-copy").disabled = !s.public_key;
    $("#bl-alarms-title").textContent = s.open_alarms ? `告警（未处理 ${s.open_alarms} 条）` : "告警";
  }

  function renderNodes(s) {
    $("#bl-nodes tbody").replaceChildren(...s.witnesses.map((w) => {
      const never = w.cosigned_size === null || w.cosigned_size === undefined;
      const behind = never ? null : Math.max(0, s.size - w.cosigned_size);
      const far = never || behind > FAR_BEHIND;
      return el("tr", { class: far ? "overdue" : "", dataset: { node: w.name } },
        el("td", { class: "nowrap", title: w.public_key }, w.name),
        el("td", { class: "mono" }, w.url),
        el("td", null, never ? "从未联署" : count(w.cosigned_size)),
        el("td", { class: far ? "bad" : "" }, never ? "—" : count(behind)),
        el("td", null, far ? el("span", { class: "badge overdue" }, never ? "从未联署" : "落后较多")
          : el("span", { class: "badge ok" }, "正常")));
    }));
    show($("#bl-nodes"), s.witnesses.length > 0);
    show($("#bl-nodes-empty"), s.witnesses.length === 0);
  }

  function renderCheckpoints(list) {
    $("#bl-checkpoints tbody").replaceChildren(...list.map((c) => el("tr", { dataset: { size: String(c.size) } },
      el("td", null, count(c.size)),
      el("td", { class: "nowrap" }, formatTime(c.signed_at)),
      el("td", null, shortHash(c.root)),
      el("td", null, c.witnesses.length ? c.witnesses.join("、") : el("span", { class: "muted" }, "—")),
      el("td", { class: "center" }, c.final ? el("span", { class: "check-ok", title: "已定稿" }, "✓") : ""))));
    show($("#bl-checkpoints"), list.length > 0);
    show($("#bl-checkpoints-empty"), list.length === 0);
  }

  async function copyKey() {
    const input = $("#bl-key");
    const button = $("#bl-copy");
    try {
      await navigator.clipboard.writeText(input.value);
      button.textContent = "已复制";
    } catch (e) {
      // 浏览器不允许写剪贴板时，选中公钥由使用人自己复制
      input.select();
      button.textContent = "请按 Ctrl+C 复制";
    }
    setTimeout(() => { button.textContent = "复制"; }, 2000);
  }

  /** 按权限显示的菜单之外，账本只由省总工会监看：服务端拒绝时不再显示这一项。 */
  function hideMenu() {
    show(document.querySelector(`#menu a[data-view="${VIEW}"]`), false);
  }

  // --- 条目与回执 -----------------------------------------------------------------------------------
  async function lookUp(event) {
    event.preventDefault();
    const text = $("#bl-index").value.trim();
    if (!/^\d+$/.test(text)) {
      setMessage($("#bl-entry-error"), "请输入条目序号（从 0 起的整数）");
      return;
    }
    const index = Number(text);
    setMessage($("#bl-receipt-error"), "");
    try {
      state.entry = await api("GET", `/ledger/entries/${index}`);
      setMessage($("#bl-entry-error"), "");
    } catch (e) {
      state.entry = null;
      show($("#bl-entry"), false);
      report($("#bl-entry-error"), e);
      return;
    }
    const entry = state.entry;
    $("#bl-entry-title").textContent = `条目 ${entry.index}（${ENTRY_KINDS[entry.kind] || entry.kind}）`;
    const rank = (key) => (FIELD_ORDER.includes(key) ? FIELD_ORDER.indexOf(key) : FIELD_ORDER.length);
    const fields = Object.entries(entry.entry).sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
    $("#bl-entry-fields").replaceChildren(...fields.flatMap(([key, value]) => [
      el("dt", { title: key }, FIELD_NAMES[key] || key),
      el("dd", { class: "bl-value", dataset: { field: key } }, fieldText(key, value))]));
    renderReceipt();
    show($("#bl-entry"), true);
  }

  function fieldText(key, value) {
    if (key === "org" && Array.isArray(value)) return value.length ? value.join(" › ") : "—";
    if (key === "at" && typeof value === "string") return `${formatTime(value)}（${value}）`;
    if (value === null || value === undefined) return "—";
    if (typeof value === "object") return Object.keys(value).length ? JSON.stringify(value, null, 1) : "（无）";
    return String(value);
  }

  /** 回执要等条目进入一个已定稿的检查点后才有；状态刷新后随之更新提示。 */
  function renderReceipt() {
    const entry = state.entry;
    if (!entry) return;
    const link = $("#bl-receipt");
    link.href = `/admin/v1/ledger/entries/${entry.index}/receipt`;
    const final = state.status ? state.status.final_size : null;
    $("#bl-receipt-note").textContent = final !== null && entry.index < final
      ? "（含包含证明和城市节点的联署，可离线核验）"
      : "（该条目尚未进入已定稿的检查点，定稿后才能下载回执）";
  }

  async function downloadReceipt(event) {
    event.preventDefault();
    if (!state.entry) return;
    const index = state.entry.index;
    try {
      const { blob, filename } = await api("GET", `/ledger/entries/${index}/receipt`, null, true);
      setMessage($("#bl-receipt-error"), "");
      saveBlob(blob, filename);
    } catch (e) {
      report($("#bl-receipt-error"), e);
    }
  }

  // --- 告警 -----------------------------------------------------------------------------------------
  async function loadAlarms() {
    // 正在填写处理情况时不重画列表，以免刷新冲掉写了一半的说明
    if (state.clearing !== null) return;
    let alarms;
    try {
      ({ alarms } = await api("GET", `/ledger/alarms${state.showCleared ? "?all=1" : ""}`));
      setMessage($("#bl-alarms-error"), "");
    } catch (e) {
      report($("#bl-alarms-error"), e);
      return;
    }
    if (state.clearing !== null) return;
    $("#bl-alarms tbody").replaceChildren(...alarms.map(alarmRow));
    show($("#bl-alarms"), alarms.length > 0);
    $("#bl-alarms-empty").textContent = state.showCleared ? "没有告警。" : "没有未处理的告警。";
    show($("#bl-alarms-empty"), alarms.length === 0);
  }

  function alarmRow(a) {
    const open = !a.cleared_at;
    const evidence = a.evidence && Object.keys(a.evidence).length
      ? el("details", null, el("summary", null, "证据"), el("pre", { class: "bl-evidence" },
        JSON.stringify(a.evidence, null, 2)))
      : null;
    return el("tr", { class: open ? "overdue bl-open" : "bl-cleared", dataset: { alarm: String(a.id) } },
      el("td", { class: "nowrap" }, sourceName(a.source)),
      el("td", { class: open ? "nowrap bad" : "nowrap", title: a.kind }, kindName(a.kind)),
      el("td", { class: "bl-message" }, a.message, evidence),
      el("td", { class: "nowrap" }, formatTime(a.raised_at)),
      el("td", { class: "actions" }, open
        ? el("button", { type: "button", class: "btn small danger", onclick: (event) => openClear(a, event.target) },
          "处理")
        : el("span", { class: "muted" }, `已于 ${formatTime(a.cleared_at)} 处理`)));
  }

  function openClear(alarm, button) {
    closeClear();
    state.clearing = alarm.id;
    const row = button.closest("tr");
    const note = el("textarea", { id: "bl-clear-note", class: "prose", rows: 2, maxLength: 500 });
    const form = el("form", { id: "bl-clear-form", novalidate: true, onsubmit: (event) => submitClear(event, alarm) },
      el("label", { htmlFor: "bl-clear-note" }, `处理情况（${kindName(alarm.kind)}，来自${sourceName(alarm.source)}）`),
      note,
      el("p", { class: "alert error", id: "bl-clear-error", role: "alert", hidden: true }),
      el("div", { class: "form-actions" },
        el("button", { type: "submit", class: "btn primary" }, "确认处理"),
        el("button", { type: "button", class: "btn plain", onclick: () => { closeClear(); loadAlarms(); } }, "取消")));
    row.after(el("tr", { class: "bl-clear-row" }, el("td", { colSpan: 5 }, form)));
    note.focus();
  }

  function closeClear() {
    state.clearing = null;
    const open = $("#bl-alarms .bl-clear-row");
    if (open) open.remove();
  }

  async function submitClear(event, alarm) {
    event.preventDefault();
    const note = $("#bl-clear-note").value.trim();
    if (!note) {
      setMessage($("#bl-clear-error"), "请写明处理情况");
      return;
    }
    const button = event.currentTarget.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await api("POST", `/ledger/alarms/${alarm.id}/clear`, { note });
    } catch (e) {
      report($("#bl-clear-error"), e);
      button.disabled = false;
      return;
    }
    closeClear();
    notify(`已处理告警：${kindName(alarm.kind)}（${sourceName(alarm.source)}）`, "ok");
    refresh();
  }

  // --- 注册 -----------------------------------------------------------------------------------------
  onEnter(() => {
    closeClear();
    // 市县工会的干部即使被授予了这项权限，也看不到账本：登录时问一次服务端
    if (!can(PERMISSION)) return;
    api("GET", "/ledger/status").catch((e) => { if (e.status === 403) hideMenu(); });
  });
  registerView(VIEW, { perm: PERMISSION, load });
})();
