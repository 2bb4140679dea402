/* 使用情况通报的打印页（/static/admin/kpi/briefing.html?id=通报编号）：按发布时的快照排版，与
   Excel 版内容相同。会话 Cookie 随请求发送；没有权限或通报不存在时只显示提示。 */
(function () {
  "use strict";

  const $ = (selector) => document.querySelector(selector);
  const MET = { true: "达标", false: "未达标", null: "—" };

  function node(tag, text, className) {
    const el = document.createElement(tag);
    if (text !== undefined) el.textContent = text;
    if (className) el.className = className;
    return el;
  }

  function shown(value, unit) {
    if (value === null || value === undefined) return "—";
    if (unit === "%") return `${(value * 100).toFixed(1)}%`;
    return Number(value).toLocaleString("zh-CN");
  }

  function fail(message) {
    const error = $("#bf-error");
    error.textContent = message;
    error.hidden = false;
  }

  function row(cells, belowColumn) {
    const tr = document.createElement("tr");
    cells.forEach((text, n) => tr.append(node("td", text, n === belowColumn ? "below" : "")));
    return tr;
  }

  function render(b) {
    const r = b.report;
    $("#bf-title").textContent = `${b.org_name}网上工作平台使用情况${b.kind_name}`;
    $("#bf-meta").textContent = `期间：${r.period}　发布：${b.issued_at.slice(0, 10)}　数据截至：${
      r.counted_at ? r.counted_at.slice(0, 16).replace("T", " ") : "—"}`;
    const moved = b.changes.indicators || {};
    $("#bf-figures tbody").replaceChildren(...r.indicators.map((i) => row(
      [`${i.name}（${i.unit}）`, shown(i.value, i.unit), shown(i.standard, i.unit), MET[i.meets],
       i.code in moved ? shown(moved[i.code], i.unit) : "—"], i.meets === false ? 3 : -1)));
    $("#bf-ranks").replaceChildren(...r.indicators.filter((i) => i.units.length).map((i) => {
      const table = node("table");
      const head = document.createElement("tr");
      ["名次", "单位", "数值", "标准"].forEach((t) => head.append(node("th", t)));
      table.append(node("thead"), node("tbody"));
      table.tHead.append(head);
      [...i.units].sort((a, c) => (a.rank || 1e9) - (c.rank || 1e9)).forEach((u) => table.tBodies[0].append(
        row([u.rank || "—", u.org_name, shown(u.value, i.unit), shown(u.standard, i.unit)],
            u.meets === false ? 2 : -1)));
      const box = node("section");
      box.append(node("h3", `${i.name}（${i.unit}）`), table);
      return box;
    }));
    $("#bf-below").replaceChildren(...(r.below_standard.length ? r.below_standard.map((u) =>
      node("li", `${u.org_name}：${u.indicators.join("、")}`, "below")) : [node("li", "无")]));
    const lines = b.changes.units || [];
    $("#bf-changes").replaceChildren(...(b.changes.previous
      ? (lines.length ? lines.map((u) => node("li", `${u.org_name}：${u.text}`)) : [node("li", `与 ${b.changes.previous} 相比，各单位达标情况没有变化`)])
      : [node("li", "这是本单位的第一份通报")]));
    $("#bf-page").hidden = false;
  }

  async function load() {
    const id = new URLSearchParams(location.search).get("id");
    if (!id || !/^[0-9]{1,12}$/.test(id)) { fail("缺少通报编号"); return; }
    $("#bf-xlsx").href = `/admin/v1/kpi/briefings/${id}/briefing.xlsx`;
    try {
      const response = await fetch(`/admin/v1/kpi/briefings/${id}`, { credentials: "same-origin",
                                                                      headers: { Accept: "application/json" } });
      const data = await response.json();
      if (!response.ok) throw new Error((data.error && data.error.message) || `请求失败（${response.status}）`);
      render(data.briefing);
    } catch (e) {
      fail(e.message || "网络连接失败");
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#bf-print").addEventListener("click", () => window.print());
    load();
  });
})();
