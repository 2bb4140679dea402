/* 使用情况 › 目标设定：各工会的注册用户年度目标（新增人数）与上线年份（第 1 年）。持 kpi.read 的干部
   查看本单位及下级工会的目标和变更历史、下载目标表；平台办公室（省总工会，kpi.manage）逐个修改或
   上传 XLSX 整表导入。导入有任何错误时整表不写入，错误逐条列出（含行号）。 */
(function () {
  "use strict";

  const { $, show, el, setMessage } = window.dom;
  const { api, report, notify, can, saveBlob, formatTime } = window.adminConsole;

  const SOURCES = { seed: "工作安排附件", console: "控制台设定", import: "表格导入" };
  const state = { built: false, data: null };

  const number = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString("zh-CN"));
  /** 中国时间的今年（工作台可能在别的时区打开）。 */
  const chinaYear = () => new Date(Date.now() + 8 * 3600 * 1000).getUTCFullYear();
  // 控件排成一行（本面板的几处表单都很短）；数字右对齐
  const ROW = "display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin:8px 0";
  const NUM = { style: "text-align:right" };
  const field = (label, input) => el("label", { style: "display:flex;gap:4px;align-items:center;margin:0" },
    label, input);

  function build() {
    const root = $("#kpi-targets");
    const manage = can("kpi.manage");
    root.replaceChildren(el("div", { class: "panel", id: "kt-panel" },
      el("div", { class: "table-head" },
        el("h3", {}, "目标设定"),
        el("form", { id: "kt-query", style: ROW, novalidate: true },
          field("年份 ", el("input", { id: "kt-year", type: "number", min: "2020", step: "1",
                                        value: String(chinaYear()), style: "width:7em" })),
          el("button", { type: "submit", class: "btn small plain" }, "查看"),
          el("button", { type: "button", id: "kt-download", class: "btn small plain" }, "下载目标表（XLSX）"))),
      el("p", { class: "muted" },
        "目标为每年新增注册用户数（单位：人），累计为截至该年的合计；“第几年”从各工会的上线年份算起（未单独设定的为 2020 年）。"),
      el("p", { id: "kt-error", class: "alert error", role: "alert", hidden: true }),
      el("table", { class: "table", id: "kt-table" },
        el("thead", {}, el("tr", {}, ...["工会", "代码", "上线年份", "第几年", "当年目标", "累计目标", "操作"]
          .map((h) => el("th", {}, h)))),
        el("tbody")),
      el("p", { id: "kt-empty", class: "empty", hidden: true }, "没有目标。"),
      manage ? editor() : null,
      manage ? importer() : null,
      el("div", { id: "kt-history", hidden: true },
        el("h4", { id: "kt-history-title" }),
        el("p", { id: "kt-history-error", class: "alert error", role: "alert", hidden: true }),
        el("table", { class: "table" },
          el("thead", {}, el("tr", {}, ...["时间", "项目", "原值", "新值", "来源", "设定人"].map((h) => el("th", {}, h)))),
          el("tbody", { id: "kt-history-rows" })))));
    $("#kt-query").addEventListener("submit", (event) => { event.preventDefault(); load(); });
    $("#kt-download").addEventListener("click", download);
    state.built = true;
  }

  // --- 修改一个工会 --------------------------------------------------------------------------------
  function editor() {
    const form = el("form", { id: "kt-edit", class: "panel", novalidate: true, hidden: true },
      el("h4", { id: "kt-edit-title" }),
      el("fieldset", {},
        el("legend", {}, "修改"),
        el("label", {}, el("input", { type: "radio", name: "kt-what", value: "target", checked: true }), " 年度目标"),
        el("label", {}, el("input", { type: "radio", name: "kt-what", value: "first_year" }), " 上线年份")),
      el("div", { id: "kt-edit-target", style: ROW },
        field("年份", el("input", { id: "kt-edit-year", type: "number", min: "2020", step: "1", style: "width:7em" })),
        field("新增注册用户目标（人）", el("input", { id: "kt-edit-users", type: "number", min: "0", step: "1" }))),
      el("div", { id: "kt-edit-first", style: ROW, hidden: true },
        field("上线年份（第 1 年）", el("input", { id: "kt-edit-first-year", type: "number", min: "2020", step: "1", style: "width:7em" }))),
      el("p", { id: "kt-edit-error", class: "alert error", role: "alert", hidden: true }),
      el("div", { class: "actions" },
        el("button", { type: "submit", class: "btn primary" }, "保存"),
        el("button", { type: "button", class: "btn plain", onclick: () => show(form, false) }, "取消")));
    form.addEventListener("change", () => {
      const first = form.querySelector("input[name=kt-what]:checked").value === "first_year";
      show($("#kt-edit-target"), !first);
      show($("#kt-edit-first"), first);
    });
    form.addEventListener("submit", save);
    return form;
  }

  function openEditor(row) {
    const form = $("#kt-edit");
    form.dataset.org = String(row.org_id);
    $("#kt-edit-title").textContent = `修改：${row.name}`;
    const year = state.data ? state.data.year : chinaYear();
    $("#kt-edit-year").value = String(year);
    $("#kt-edit-users").value = row.target === null ? "" : String(row.target);
    $("#kt-edit-first-year").value = String(row.first_year);
    setMessage($("#kt-edit-error"), "");
    show(form, true);
    $("#kt-edit-users").focus();
  }

  async function save(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const orgId = Number(form.dataset.org);
    const first = form.querySelector("input[name=kt-what]:checked").value === "first_year";
    const whole = (id) => {
      const text = $(id).value.trim();
      return /^\d+$/.test(text) ? Number(text) : null;
    };
    const body = first ? { org_id: orgId, first_year: whole("#kt-edit-first-year") }
      : { org_id: orgId, year: whole("#kt-edit-year"), new_users: whole("#kt-edit-users") };
    if (Object.values(body).some((v) => v === null)) {
      setMessage($("#kt-edit-error"), "请填写不小于 0 的整数");
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const result = await api("PUT", "/kpi/targets", body);
      show(form, false);
      notify(result.changed ? `已保存：${result.target.name}` : "与现值相同，未作修改", "ok");
      await load();
      if (!$("#kt-history").hidden && Number($("#kt-history").dataset.org) === orgId) history(orgId);
    } catch (e) {
      report($("#kt-edit-error"), e);
    } finally {
      button.disabled = false;
    }
  }

  // --- 整表导入 ------------------------------------------------------------------------------------
  function importer() {
    const form = el("form", { id: "kt-import", style: ROW, novalidate: true },
      field("导入目标表 ", el("input", { id: "kt-file", type: "file",
                                        accept: ".xlsx,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" })),
      el("button", { type: "submit", class: "btn small primary" }, "上传导入"));
    form.addEventListener("submit", upload);
    return el("div", { class: "panel" },
      el("p", { class: "muted" },
        "先下载目标表，在表中修改或在右侧年份列填写新一年的目标后上传。工会按代码或准确名称识别；空格表示不修改；年份列应从左到右递增。表中有任何错误时整表不导入。"),
      form,
      el("div", { id: "kt-import-faults", class: "alert error", role: "alert", hidden: true }));
  }

  async function upload(event) {
    event.preventDefault();
    const file = $("#kt-file").files[0];
    const box = $("#kt-import-faults");
    if (!file) {
      box.replaceChildren("请选择要上传的 .xlsx 文件");
      show(box, true);
      return;
    }
    const button = event.currentTarget.querySelector("button[type=submit]");
    button.disabled = true;
    show(box, false);
    try {
      const result = await api("POST", "/kpi/targets/import", file);
      notify(`已导入 ${result.import.rows} 行，变更 ${result.import.changes} 项（导入编号 ${result.import.id}）。`, "ok");
      $("#kt-file").value = "";
      await load();
    } catch (e) {
      if (e.handled) return;
      // 导入的错误逐条列出：“导入未写入任何数据……。第 3 行：……；第 5 行：……”
      const [head, ...rest] = String(e.message || "导入失败").split("。");
      const faults = rest.join("。").split("；").filter(Boolean);
      box.replaceChildren(el("p", {}, faults.length ? `${head}。` : head),
        faults.length ? el("ul", {}, ...faults.map((f) => el("li", {}, f))) : "");
      show(box, true);
    } finally {
      button.disabled = false;
    }
  }

  // --- 表格、下载、历史 ----------------------------------------------------------------------------
  async function load() {
    if (!state.built) build();
    const year = $("#kt-year").value.trim();
    try {
      state.data = await api("GET", `/kpi/targets${/^\d+$/.test(year) ? `?year=${year}` : ""}`);
      setMessage($("#kt-error"), "");
    } catch (e) {
      report($("#kt-error"), e);
      return;
    }
    const manage = state.data.editable;
    $("#kt-table tbody").replaceChildren(...state.data.targets.map((t) => el("tr", {},
      el("td", {}, t.name), el("td", { class: "nowrap" }, t.code),
      el("td", {}, String(t.first_year), t.first_year_set ? "" : el("span", { class: "muted" }, "（默认）")),
      el("td", {}, t.year_index === null ? "未上线" : `第 ${t.year_index} 年`),
      el("td", NUM, number(t.target)), el("td", NUM, number(t.cumulative)),
      el("td", { class: "actions" },
        el("button", { type: "button", class: "btn small plain", onclick: () => history(t.org_id) }, "历史"),
        manage ? el("button", { type: "button", class: "btn small plain", onclick: () => openEditor(t) }, "修改")
          : null))));
    show($("#kt-empty"), state.data.targets.length === 0);
  }

  async function download(event) {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const file = await api("GET", "/kpi/targets.xlsx", null, true);
      saveBlob(file.blob, file.filename);
    } catch (e) {
      report($("#kt-error"), e);
    } finally {
      button.disabled = false;
    }
  }

  async function history(orgId) {
    const box = $("#kt-history");
    box.dataset.org = String(orgId);
    show(box, true);
    let data;
    try {
      data = await api("GET", `/kpi/targets/history?org_id=${orgId}`);
      setMessage($("#kt-history-error"), "");
    } catch (e) {
      report($("#kt-history-error"), e);
      return;
    }
    $("#kt-history-title").textContent = `${data.org.name}：变更历史（上线年份 ${data.first_year}）`;
    $("#kt-history-rows").replaceChildren(...data.changes.map((c) => el("tr", {},
      el("td", { class: "nowrap" }, formatTime(c.at)),
      el("td", {}, c.kind === "first_year" ? "上线年份" : `${c.year} 年目标`),
      el("td", NUM, c.kind === "first_year" ? String(c.from ?? "—") : number(c.from)),
      el("td", NUM, c.kind === "first_year" ? String(c.to) : number(c.to)),
      el("td", {}, SOURCES[c.source] + (c.import_id ? `（编号 ${c.import_id}）` : "")),
      el("td", {}, c.by || "—"))));
  }

  window.kpiView.add(load);
})();
