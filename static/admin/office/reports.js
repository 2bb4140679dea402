/* 工会干部工作台：信息报送（报送工作信息、本单位报送的信息及各级审核情况、审核台：采用、退回修改、
   不采用、上报、登记全总采用，排名与导出）。 */
(function () {
  "use strict";

  const { $, show, el, setMessage } = window.dom;
  const { api, report, notify, formatTime, saveBlob, registerView } = window.adminConsole;
  const BASE = "/info-reports";
  const MAX_PICTURES = 9;
  const state = { pictures: [], editing: null, detail: null };

  const act = (label, handler, tone = "plain") =>
    el("button", { type: "button", class: `btn small ${tone}`, onclick: handler }, label);
  const chinaToday = () => new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);

  function levels(r) {
    const parts = r.levels.map((lv) => el("span", { class: "tag" }, `${lv.org_name}：${lv.status_name}`));
    if (r.national) parts.push(el("span", { class: "tag" }, `全国总工会：${r.national.status_name}`));
    return parts;
  }

  async function loadView() {
    $("#rp-date").max = chinaToday();
    if (!$("#rp-period").value) $("#rp-period").value = chinaToday().slice(0, 7);
    loadMine();
    loadDesk();
    loadRankings();
  }

  // --- 本单位报送 -----------------------------------------------------------------------------------
  async function loadMine() {
    try {
      const { reports } = await api("GET", `${BASE}?box=mine`);
      $("#rp-mine tbody").replaceChildren(...reports.map((r) => el("tr", {},
        el("td", {}, r.title, r.late ? el("span", { class: "tag" }, r.late_note) : ""),
        el("td", {}, r.event_date), el("td", {}, formatTime(r.filed_at)),
        el("td", {}, ...levels(r)), el("td", {}, String(r.points)),
        el("td", { class: "actions" }, act("查看", () => openReport(r.id)),
          r.can.resubmit ? act("修改后重新报送", () => editReport(r.id), "primary") : ""))));
      show($("#rp-mine-empty"), reports.length === 0);
    } catch (e) {
      report($("#rp-error"), e);
    }
  }

  // --- 审核台 -----------------------------------------------------------------------------------------
  async function loadDesk() {
    try {
      const open = $("#rp-open").checked ? "&open=1" : "";
      const { reports } = await api("GET", `${BASE}?box=desk${open}`);
      $("#rp-desk tbody").replaceChildren(...reports.map((r) => el("tr", {},
        el("td", {}, r.title, r.late ? el("span", { class: "tag" }, r.late_note) : ""),
        el("td", {}, r.org_name), el("td", {}, formatTime(r.filed_at)),
        el("td", {}, ...levels(r)),
        el("td", { class: "actions" }, act("查看", () => openReport(r.id)), ...deskActions(r)))));
      show($("#rp-desk-empty"), reports.length === 0);
    } catch (e) {
      report($("#rp-error"), e);
    }
  }

  function deskActions(r) {
    const out = [];
    if (r.can.review) {
      out.push(act("采用", () => review(r, "adopt"), "primary"), act("退回修改", () => review(r, "return")),
               act("不采用", () => review(r, "reject")));
    }
    if (r.can.pass_up) out.push(act(r.levels.some((lv) => lv.level === "province") ? "报送全总" : "上报", () => passUp(r)));
    if (r.can.national_adoption) out.push(act("登记全总采用", () => national(r)));
    return out;
  }

  async function review(r, action) {
    const body = { action };
    if (action !== "adopt") {
      const reason = window.prompt(action === "return" ? "退回修改的意见：" : "不采用的理由：");
      if (!reason) return;
      body.reason = reason;
    }
    try {
      await api("POST", `${BASE}/${r.id}/review`, body);
      notify(`“${r.title}”${{ adopt: "已采用", return: "已退回修改", reject: "未采用" }[action]}。`, "ok");
      refresh(r.id);
    } catch (e) {
      report($("#rp-error"), e);
    }
  }

  async function passUp(r) {
    try {
      await api("POST", `${BASE}/${r.id}/pass-up`);
      notify(`“${r.title}”已上报。`, "ok");
      refresh(r.id);
    } catch (e) {
      report($("#rp-error"), e);
    }
  }

  async function national(r) {
    const note = window.prompt("全国总工会采用情况（如刊发的刊物和期数，可不填）：");
    if (note === null) return;
    try {
      await api("POST", `${BASE}/${r.id}/national-adoption`, note ? { note } : {});
      notify(`已登记“${r.title}”被全国总工会采用。`, "ok");
      refresh(r.id);
    } catch (e) {
      report($("#rp-error"), e);
    }
  }

  function refresh(id) {
    setMessage($("#rp-error"), "");
    loadMine();
    loadDesk();
    if (state.detail && state.detail.id === id) openReport(id);
  }

  // --- 一条信息 ---------------------------------------------------------------------------------------
  async function openReport(id) {
    let r;
    try {
      r = (await api("GET", `${BASE}/${id}`)).report;
    } catch (e) {
      report($("#rp-error"), e);
      return;
    }
    state.detail = r;
    $("#rp-d-title").textContent = r.title;
    $("#rp-d-facts").textContent = [`${r.org_name} ${r.submitted_by}`, `事件日期 ${r.event_date}`,
      `报送于 ${formatTime(r.filed_at)}`, r.round > 1 ? `第 ${r.round} 次报送` : "", r.category || "",
      `积分 ${r.points}`, r.late_note || ""].filter(Boolean).join(" · ");
    $("#rp-d-body").textContent = r.body;
    $("#rp-d-body").style.whiteSpace = "pre-wrap";
    $("#rp-d-pictures").replaceChildren(...r.pictures.map((p) =>
      el("a", { href: p.url, target: "_blank", rel: "noopener" }, el("img", { src: p.thumb_url, alt: "配图", height: 90 }))));
    const rows = r.levels.map((lv) => el("tr", {},
      el("td", {}, lv.org_name), el("td", {}, lv.level_name), el("td", {}, lv.status_name),
      el("td", {}, lv.reason || ""), el("td", {}, String(lv.points)),
      el("td", {}, formatTime(lv.decided_at || lv.opened_at))));
    if (r.national) {
      rows.push(el("tr", {}, el("td", {}, "全国总工会"), el("td", {}, "全国"), el("td", {}, r.national.status_name),
        el("td", {}, r.national.note || ""), el("td", {}, String(r.national.points)),
        el("td", {}, formatTime(r.national.adopted_at || r.national.passed_at))));
    }
    $("#rp-d-levels tbody").replaceChildren(...rows);
    $("#rp-d-actions").replaceChildren(...deskActions(r),
      r.can.resubmit ? act("修改后重新报送", () => editReport(r.id), "primary") : "");
    show($("#rp-detail"), true);
    $("#rp-detail").scrollIntoView({ behavior: "smooth" });
  }

  // --- 报送与修改 ---------------------------------------------------------------------------------------
  function renderPictures() {
    $("#rp-pictures").replaceChildren(...state.pictures.map((p) => el("span", {},
      el("img", { src: p.thumb_url, alt: "配图", height: 60 }),
      act("移除", () => { state.pictures = state.pictures.filter((x) => x.id !== p.id); renderPictures(); }))));
  }

  async function addPictures() {
    const files = [...$("#rp-files").files];
    $("#rp-files").value = "";
    for (const file of files) {
      if (state.pictures.length >= MAX_PICTURES) {
        setMessage($("#rp-form-error"), `每条信息最多 ${MAX_PICTURES} 张图片`);
        break;
      }
      try {
        const { picture } = await api("POST", `${BASE}/pictures`, file);
        state.pictures.push(picture);
        renderPictures();
      } catch (e) {
        report($("#rp-form-error"), e);
        break;
      }
    }
  }

  async function editReport(id) {
    let r;
    try {
      r = (await api("GET", `${BASE}/${id}`)).report;
    } catch (e) {
      report($("#rp-error"), e);
      return;
    }
    state.editing = r;
    $("#rp-title").value = r.title;
    $("#rp-date").value = r.event_date;
    $("#rp-category").value = r.category || "";
    $("#rp-body").value = r.body;
    state.pictures = r.pictures.slice();
    renderPictures();
    const returned = r.levels.find((lv) => lv.status === "returned");
    $("#rp-form-title").textContent = `修改后重新报送：${returned ? `${returned.org_name}退回意见“${returned.reason || ""}”` : ""}`;
    $("#rp-submit").textContent = "重新报送";
    show($("#rp-cancel"), true);
    $("#rp-form").scrollIntoView({ behavior: "smooth" });
  }

  function resetForm() {
    state.editing = null;
    state.pictures = [];
    renderPictures();
    for (const id of ["#rp-title", "#rp-date", "#rp-category", "#rp-body"]) $(id).value = "";
    $("#rp-form-title").textContent = "报送工作信息";
    $("#rp-submit").textContent = "报送上一级工会";
    show($("#rp-cancel"), false);
    setMessage($("#rp-form-error"), "");
  }

  async function submit(event) {
    event.preventDefault();
    const body = { title: $("#rp-title").value.trim(), body: $("#rp-body").value.trim(),
                   event_date: $("#rp-date").value, category: $("#rp-category").value.trim() || null,
                   pictures: state.pictures.map((p) => p.id) };
    try {
      if (state.editing) {
        const level = state.editing.levels.find((lv) => lv.status === "returned");
        await api("POST", `${BASE}/${state.editing.id}/resubmission`, { ...body, version: level ? level.version : undefined });
        notify("已重新报送。", "ok");
      } else {
        const { report: r } = await api("POST", BASE, body);
        notify(`已报送${r.levels[0].org_name}。${r.late ? "事件发生后报送较晚：逾期报送，不计分。" : ""}`, "ok");
      }
      resetForm();
      loadMine();
    } catch (e) {
      report($("#rp-form-error"), e);
    }
  }

  // --- 排名 ---------------------------------------------------------------------------------------------
  async function loadRankings(event) {
    if (event) event.preventDefault();
    const period = $("#rp-period").value.trim();
    if (!period) return;
    try {
      const data = await api("GET", `${BASE}/rankings?period=${encodeURIComponent(period)}`);
      const line = (rank, name, t) => el("tr", {}, el("td", {}, String(rank)), el("td", {}, name),
        el("td", {}, String(t.submitted)), el("td", {}, String(t.adopted.county)),
        el("td", {}, String(t.adopted.city)), el("td", {}, String(t.adopted.province)),
        el("td", {}, String(t.adopted.national)), el("td", {}, String(t.points)), el("td", {}, String(t.late)));
      $("#rp-rank tbody").replaceChildren(...data.unions.map((u) => line(u.rank, u.org_name, u)),
        line("本级", data.org_name, data.own), line("合计", data.org_name, data.total));
      $("#rp-rank-note").textContent = `积分：市级采用 ${data.points.city}、省级 ${data.points.province}、` +
        `全国总工会 ${data.points.national}；县级采用计数不计分；事件发生 ${data.late_days} 天后报送的不计分。` +
        "各工会的积分含其下级工会。";
      $("#rp-rule").textContent = `信息逐级报送给上一级工会；事件发生 ${data.late_days} 天后报送的信息不计积分。`;
      setMessage($("#rp-error"), "");
    } catch (e) {
      report($("#rp-error"), e);
    }
  }

  async function exportRankings() {
    const period = $("#rp-period").value.trim();
    try {
      const file = await api("GET", `${BASE}/rankings.xlsx?period=${encodeURIComponent(period)}`, null, true);
      saveBlob(file.blob, file.filename);
    } catch (e) {
      report($("#rp-error"), e);
    }
  }

  function bind() {
    $("#rp-refresh").addEventListener("click", loadView);
    $("#rp-form").addEventListener("submit", submit);
    $("#rp-cancel").addEventListener("click", resetForm);
    $("#rp-files").addEventListener("change", addPictures);
    $("#rp-open").addEventListener("change", loadDesk);
    $("#rp-rank-form").addEventListener("submit", loadRankings);
    $("#rp-rank-xlsx").addEventListener("click", exportRankings);
  }

  registerView("reports", { perm: "info.report", load: loadView });
  document.addEventListener("DOMContentLoaded", () => { if ($("#rp-form")) bind(); });
})();
