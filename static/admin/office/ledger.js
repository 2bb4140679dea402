/* 线下台账与使用率：本单位及下级各业务模块的使用率（平台办理 ÷（平台 + 线下台账）），低于当年标准的
   标红；登记线下办理的事项，错误的记录作废（保留原记录）。 */
(function () {
  "use strict";

  const { $, show, el, setMessage } = window.dom;
  const { api, report, notify, can, registerView } = window.adminConsole;
  const percent = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`);

  function period() {
    const value = $("#lg-period").value.trim();
    if (value) return value;
    const now = new Date(Date.now() + 8 * 3600 * 1000);   // 中国时间的本月
    return now.toISOString().slice(0, 7);
  }

  async function load() {
    if (!$("#lg-period").value) $("#lg-period").value = period();
    for (const node of $("#view-ledger").querySelectorAll("[data-perm]")) show(node, can(node.dataset.perm));
    loadRates();
    if (can("ledger.record")) loadEntries();
  }

  async function loadRates() {
    setMessage($("#lg-rates-error"), "");
    try {
      const { usage } = await api("GET", `/usage-rates?period=${encodeURIComponent(period())}`);
      const modules = usage.modules;
      $("#lg-module").replaceChildren(...modules.map((m) => el("option", { value: m.module }, m.name)));
      $("#lg-rates tbody").replaceChildren(...modules.map((m) => el("tr", { class: m.meets === false ? "below" : "" },
        el("td", null, m.name),
        el("td", null, String(m.online)),
        el("td", null, String(m.offline)),
        el("td", { class: m.meets === false ? "bad" : "" }, percent(m.usage_rate)),
        el("td", null, m.standard === null ? "—" : percent(m.standard)),
        el("td", null, ...m.units.filter((u) => u.online + u.offline > 0).map((u) =>
          el("span", { class: `perm-tag ${u.meets === false ? "bad" : ""}`,
                       title: `平台 ${u.online}，线下 ${u.offline}` }, `${u.org_name} ${percent(u.usage_rate)}`))))));
    } catch (e) { report($("#lg-rates-error"), e); }
  }

  async function loadEntries() {
    try {
      const { entries } = await api("GET", `/usage-ledger?period=${encodeURIComponent(period())}`);
      $("#lg-entries tbody").replaceChildren(...entries.map((e) => el("tr", { class: e.voided_at ? "muted" : "" },
        el("td", null, e.handled_on), el("td", null, e.org_name), el("td", null, e.module),
        el("td", null, String(e.items)), el("td", null, e.title + (e.void_reason ? `（已作废：${e.void_reason}）` : "")),
        el("td", null, e.recorded_by),
        el("td", null, e.voided_at ? "" : el("button", { type: "button", class: "btn small plain",
          onclick: () => voidEntry(e) }, "作废")))));
    } catch (e) { report($("#lg-error"), e); }
  }

  async function record(event) {
    event.preventDefault();
    setMessage($("#lg-error"), "");
    try {
      await api("POST", "/usage-ledger", { module: $("#lg-module").value, handled_on: $("#lg-day").value,
        items: Number($("#lg-items").value), title: $("#lg-title").value.trim(),
        note: $("#lg-note").value.trim() || null });
      notify("已登记。", "ok");
      $("#lg-title").value = "";
      $("#lg-note").value = "";
      load();
    } catch (e) { report($("#lg-error"), e); }
  }

  async function voidEntry(entry) {
    const reason = prompt(`作废“${entry.title}”（${entry.items} 件）的原因：`, "");
    if (!reason) return;
    try {
      await api("POST", `/usage-ledger/${entry.id}/void`, { reason });
      load();
    } catch (e) { report($("#lg-error"), e); }
  }

  function bind() {
    $("#lg-refresh").addEventListener("click", load);
    $("#lg-form").addEventListener("submit", record);
  }

  registerView("ledger", { perm: "ledger.record kpi.read", load });
  document.addEventListener("DOMContentLoaded", () => { if ($("#view-ledger")) bind(); });
})();
