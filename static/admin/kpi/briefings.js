/* 使用情况 · 情况通报：本单位、上级（点名本单位的）和下级的通报，打印页与 Excel 版（含图表），
   以及按需生成本单位某一期间的通报。每月 1 日的月度通报由系统生成。 */
(function () {
  "use strict";

  const { $, el, setMessage } = window.dom;
  const { api, report, notify, formatTime, saveBlob } = window.adminConsole;

  function panel() {
    let box = $("#kpi-briefings");
    if (box) return box;
    box = el("div", { id: "kpi-briefings", class: "panel" },
      el("h3", null, "情况通报"),
      el("p", { class: "muted" }, "每月 1 日生成上月的月度通报并通过微信告知；通报发布后不再改变，之后的数据更正体现在下一期。"),
      el("form", { id: "kb-form", class: "filters", novalidate: true, onsubmit: issue },
        el("div", null, el("label", { for: "kb-period" }, "期间"),
          el("input", { id: "kb-period", maxLength: 7, placeholder: "2026-03、2026-Q1 或 2026" })),
        el("div", null, el("button", { type: "submit", class: "btn" }, "生成本单位通报"))),
      el("p", { id: "kb-error", class: "alert error", role: "alert", hidden: true }),
      el("table", { class: "table", id: "kb-table" },
        el("thead", null, el("tr", null, ...["单位", "期间", "类别", "发布时间", "操作"].map((t) => el("th", null, t)))),
        el("tbody")));
    $("#view-kpi").append(box);
    return box;
  }

  async function load() {
    panel();
    setMessage($("#kb-error"), "");
    try {
      const { briefings } = await api("GET", "/kpi/briefings");
      $("#kb-table tbody").replaceChildren(...(briefings.length ? briefings.map((b) => el("tr", null,
        el("td", null, b.org_name), el("td", null, b.period), el("td", null, b.kind_name),
        el("td", null, formatTime(b.issued_at)),
        el("td", { class: "actions" },
          el("a", { class: "btn small plain", href: `/static/admin/kpi/briefing.html?id=${b.id}`, target: "_blank",
                    rel: "noopener" }, "打印页"),
          el("button", { type: "button", class: "btn small plain", onclick: () => workbook(b) }, "下载 Excel"))))
        : [el("tr", null, el("td", { colSpan: 5, class: "muted" }, "还没有通报。"))]));
    } catch (e) { report($("#kb-error"), e); }
  }

  async function workbook(b) {
    try {
      const response = await fetch(`/admin/v1/kpi/briefings/${b.id}/briefing.xlsx`, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`下载失败（${response.status}）`);
      saveBlob(await response.blob(), `${b.org_name}使用情况通报-${b.period}.xlsx`);
    } catch (e) { report($("#kb-error"), e); }
  }

  async function issue(event) {
    event.preventDefault();
    setMessage($("#kb-error"), "");
    try {
      const { briefing } = await api("POST", "/kpi/briefings", { period: $("#kb-period").value.trim() });
      notify(`已生成 ${briefing.org_name} ${briefing.period} 的通报。`, "ok");
      load();
    } catch (e) { report($("#kb-error"), e); }
  }

  window.kpiView.add(load);
})();
