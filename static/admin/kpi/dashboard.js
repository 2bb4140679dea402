/* 使用情况：各项指标对照标准（月度、季度、年度）、下级工会排名、逐月趋势、未达标单位，可逐级
   下钻（市 → 县 → 基层）并沿层级返回。图表由 kpi/charts.js 画。其他部分（目标设定）通过
   window.kpiView.add(load) 加入本视图，进入视图时一并加载。 */
(function () {
  "use strict";

  const { $, show, el, setMessage, pad } = window.dom;
  const { api, report, formatTime, registerView } = window.adminConsole;
  const charts = window.charts;
  const parts = [];

  const FIRST_YEAR = 2020;          // 使用安排的第一年：此前没有统计
  const TREND_MONTHS = 12;
  const NO_TREND = new Set(["completion"]);   // 办结率按期间计算，没有逐月的计数
  const KINDS = [["month", "月度"], ["quarter", "季度"], ["year", "年度"]];
  const QUARTERS = "一二三四";
  // 排名图最多画这么多行；更多时画前后各一半，中间省略（完整名单在下面的表格里）
  const CHART_ROWS = 40;

  const state = { built: false, kind: "month", anchor: null, indicator: "registered", trail: [], report: null,
                  reportTicket: 0, trendTicket: 0 };

  const withUnit = (value, unit) => (value === null || value === undefined ? "—"
    : unit === "%" ? charts.format(value, unit) : `${charts.format(value, unit)} ${unit}`);
  const tone = (meets) => (meets === false ? "below" : meets === true ? "met" : "plain");

  // --- 期间 ---------------------------------------------------------------------------------------
  /** 中国时间的今天所在年月（工作台可能在别的时区打开）。 */
  function chinaMonth() {
    const now = new Date(Date.now() + 8 * 3600 * 1000);
    return { year: now.getUTCFullYear(), month: now.getUTCMonth() + 1 };
  }

  /** 某种期间从今天往前到平台启用的全部选项：[值, 名称]，最近的在前。 */
  function periods(kind) {
    const today = chinaMonth();
    const list = [];
    for (let year = today.year; year >= FIRST_YEAR; year--) {
      const last = year === today.year ? today.month : 12;
      if (kind === "year") list.push([String(year), `${year}年`]);
      for (let q = Math.ceil(last / 3); kind === "quarter" && q >= 1; q--) {
        list.push([`${year}-Q${q}`, `${year}年第${QUARTERS[q - 1]}季度`]);
      }
      for (let m = last; kind === "month" && m >= 1; m--) list.push([`${year}-${pad(m)}`, `${year}年${m}月`]);
    }
    return list;
  }

  /** 期间换了种类时，选中包含原来那个月的期间：2026-03 → 2026-Q1 → 2026。 */
  function fillPeriods() {
    const options = periods(state.kind);
    const { year, month } = state.anchor;
    const wanted = state.kind === "year" ? String(year)
      : state.kind === "quarter" ? `${year}-Q${Math.ceil(month / 3)}` : `${year}-${pad(month)}`;
    $("#kpi-period").replaceChildren(...options.map(([value, name]) => el("option", { value }, name)));
    $("#kpi-period").value = options.some(([value]) => value === wanted) ? wanted : options[0][0];
  }

  /** 所选期间的最后一个月（不晚于本月）：再换种类时以它为准。 */
  function anchorOf(period) {
    const today = chinaMonth();
    const [year, rest] = period.split("-");
    const month = !rest ? 12 : rest.startsWith("Q") ? Number(rest.slice(1)) * 3 : Number(rest);
    return Number(year) === today.year ? { year: today.year, month: Math.min(month, today.month) }
      : { year: Number(year), month };
  }

  // --- 页面骨架（第一次进入视图时建立）-------------------------------------------------------------
  function build() {
    const field = (id, label, control) => el("div", null, el("label", { htmlFor: id }, label), control);
    const panel = (title, ...body) => el("section", { class: "panel" }, el("h3", null, ...title), ...body);
    $("#kpi-dashboard").replaceChildren(
      el("div", { class: "panel kpi-toolbar" },
        el("div", { class: "filters" },
          field("kpi-kind", "期间类型", el("select", { id: "kpi-kind", onchange: changeKind },
            ...KINDS.map(([value, name]) => el("option", { value }, name)))),
          field("kpi-period", "期间", el("select", { id: "kpi-period", onchange: changePeriod })),
          field("kpi-indicator", "排名与趋势的指标", el("select", { id: "kpi-indicator", onchange: () => choose($("#kpi-indicator").value) })),
          el("div", { class: "filter-actions" },
            el("button", { type: "button", class: "btn", id: "kpi-refresh", onclick: () => loadDashboard() }, "刷新"))),
        el("nav", { class: "kpi-crumbs", id: "kpi-crumbs", "aria-label": "工会层级" }),
        el("p", { class: "hint", id: "kpi-counted" }),
        el("p", { class: "alert error", id: "kpi-error", role: "alert", hidden: true })),
      el("div", { class: "kpi-cards", id: "kpi-cards" }),
      el("div", { class: "kpi-grid" },
        panel([el("span", { id: "kpi-rank-title" }, "下级工会排名")],
          el("p", { class: "hint" }, "红色为未达标的单位，竖线为标准；点击条形或表格中的一行查看该工会。"),
          el("div", { class: "chart-box", id: "kpi-rank-chart" }),
          el("table", { class: "table compact kpi-rank", id: "kpi-rank" },
            el("thead", null, el("tr", null, ...["名次", "工会", "数值", "标准", "情况", ""].map((h) => el("th", null, h)))),
            el("tbody")),
          el("p", { class: "empty", id: "kpi-rank-empty", hidden: true }, "本级以下没有工会。")),
        el("div", null,
          panel([el("span", { id: "kpi-trend-title" }, "趋势")],
            el("div", { class: "chart-box", id: "kpi-trend" }),
            el("p", { class: "hint", id: "kpi-trend-note", hidden: true }),
            el("p", { class: "alert error", id: "kpi-trend-error", role: "alert", hidden: true })),
          panel(["未达标单位"],
            el("ul", { class: "kpi-below", id: "kpi-below" }),
            el("p", { class: "empty", id: "kpi-below-empty", hidden: true }, "下级工会没有未达标的指标。")))));
    state.anchor = chinaMonth();
    fillPeriods();
    state.built = true;
  }

  function changeKind() {
    state.anchor = anchorOf($("#kpi-period").value);
    state.kind = $("#kpi-kind").value;
    fillPeriods();
    loadReport();
  }

  function changePeriod() {
    state.anchor = anchorOf($("#kpi-period").value);
    loadReport();
  }

  // --- 读取 ---------------------------------------------------------------------------------------
  const here = () => (state.trail.length ? state.trail[state.trail.length - 1].id : null);
  const query = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null)).toString();

  function loadDashboard() {
    if (!state.built) build();
    loadReport();
    loadTrend();
  }

  /** 读取并显示报告；只有这次读取失败时返回 false（被更新的读取取代时不算失败）。 */
  async function loadReport() {
    const ticket = ++state.reportTicket;   // 较早发出的请求晚到时不覆盖较新的结果
    let data;
    try {
      data = (await api("GET", `/kpi/report?${query({ period: $("#kpi-period").value, org_id: here() })}`)).report;
      setMessage($("#kpi-error"), "");
    } catch (e) {
      if (ticket !== state.reportTicket) return true;
      report($("#kpi-error"), e);
      return false;
    }
    if (ticket !== state.reportTicket) return true;
    state.report = data;
    if (!state.trail.length) state.trail = [{ id: data.org_id, name: data.org_name }];
    renderHeader(data);
    renderCards(data);
    renderRanking();
    renderBelow(data);
    return true;
  }

  async function loadTrend() {
    const ticket = ++state.trendTicket;
    const code = state.indicator;
    setMessage($("#kpi-trend-error"), "");
    setMessage($("#kpi-trend-note"), "");
    if (NO_TREND.has(code)) {
      $("#kpi-trend-title").textContent = "趋势";
      $("#kpi-trend").replaceChildren();
      setMessage($("#kpi-trend-note"), "业务办结率按所选期间计算，没有逐月趋势；请选择其他指标查看趋势。");
      return;
    }
    try {
      const { trend } = await api("GET", `/kpi/trend?${query({ indicator: code, months: TREND_MONTHS, org_id: here() })}`);
      if (ticket !== state.trendTicket) return;
      $("#kpi-trend-title").textContent = `${trend.name}：近 ${TREND_MONTHS} 个月（${trend.org_name}）`;
      charts.line($("#kpi-trend"), trend.points,
        { title: `${trend.org_name}${trend.name}近 ${TREND_MONTHS} 个月趋势`, unit: trend.unit });
    } catch (e) {
      if (ticket !== state.trendTicket) return;
      $("#kpi-trend").replaceChildren();
      report($("#kpi-trend-error"), e);
    }
  }

  // --- 下钻与返回 ---------------------------------------------------------------------------------
  // 读不到下级的报告（如权限已变）时退回原处，层级导航不留下打不开的一级
  async function drill(orgId, name) {
    if (orgId === here()) return;
    state.trail.push({ id: orgId, name });
    if (await loadReport()) loadTrend();
    else state.trail.pop();
  }

  function backTo(index) {
    state.trail = state.trail.slice(0, index + 1);
    loadReport();
    loadTrend();
  }

  /** 选定排名与趋势的指标（下拉框或点击指标卡片）。 */
  function choose(code) {
    state.indicator = code;
    $("#kpi-indicator").value = code;
    for (const card of document.querySelectorAll("#kpi-cards .kpi-card")) {
      card.classList.toggle("selected", card.dataset.code === code);
      card.setAttribute("aria-pressed", String(card.dataset.code === code));
    }
    renderRanking();
    loadTrend();
  }

  // --- 显示 ---------------------------------------------------------------------------------------
  function renderHeader(data) {
    const last = state.trail.length - 1;
    state.trail[last].name = data.org_name;
    $("#kpi-crumbs").replaceChildren(el("ol", null, ...state.trail.map((step, i) => el("li", null, i === last
      ? el("strong", { "aria-current": "page" }, step.name)
      : el("button", { type: "button", class: "kpi-link", onclick: () => backTo(i) }, step.name)))));
    $("#kpi-counted").textContent = `${$("#kpi-period").selectedOptions[0].textContent} · ${data.org_name} · ` +
      (data.counted_at ? `数据截至 ${formatTime(data.counted_at)}` : "数据尚未统计");
  }

  function renderCards(data) {
    const select = $("#kpi-indicator");
    if (!select.options.length) {
      select.replaceChildren(...data.indicators.map((i) => el("option", { value: i.code }, i.name)));
    }
    if (!data.indicators.some((i) => i.code === state.indicator)) state.indicator = data.indicators[0].code;
    select.value = state.indicator;
    $("#kpi-cards").replaceChildren(...data.indicators.map((i) => {
      const verdict = !i.connected ? el("span", { class: "badge disabled" }, "未接入")
        : i.standard === null ? el("span", { class: "badge" }, "无标准，仅统计排名")
        : i.meets === null ? el("span", { class: "badge" }, "暂无数据")
          : el("span", { class: `badge ${i.meets ? "ok" : "overdue"}` }, i.meets ? "达标" : "未达标");
      const gauge = el("span", { class: "kpi-bullet" });
      const card = el("button", { type: "button", class: `kpi-card ${tone(i.meets)}`, dataset: { code: i.code },
                                  "aria-pressed": String(i.code === state.indicator), onclick: () => choose(i.code) },
        el("span", { class: "kpi-card-name" }, i.name),
        el("strong", { class: `kpi-card-value ${i.meets === false ? "bad" : ""}` }, withUnit(i.value, i.unit)),
        el("span", { class: "kpi-card-standard" },
          i.standard === null ? "" : `标准 ${withUnit(i.standard, i.unit)}`, verdict),
        gauge);
      card.classList.toggle("selected", i.code === state.indicator);
      // 子弹图要知道自己的宽度：先放进页面再画
      queueMicrotask(() => charts.bullet(gauge, i.value, i.standard,
        { title: `${i.name}：${withUnit(i.value, i.unit)}，标准 ${withUnit(i.standard, i.unit)}`, unit: i.unit }));
      return card;
    }));
  }

  function renderRanking() {
    const data = state.report;
    if (!data) return;
    const indicator = data.indicators.find((i) => i.code === state.indicator) || data.indicators[0];
    const units = [...indicator.units].sort((a, b) =>
      (a.rank ?? Infinity) - (b.rank ?? Infinity) || a.org_name.localeCompare(b.org_name, "zh-CN"));
    $("#kpi-rank-title").textContent = `下级工会排名：${indicator.name}`;
    show($("#kpi-rank-empty"), units.length === 0);
    show($("#kpi-rank"), units.length > 0);
    show($("#kpi-rank-chart"), units.length > 0);
    const rows = units.map((u) => ({ id: u.org_id, label: u.org_name, value: u.value, standard: u.standard, meets: u.meets }));
    const half = CHART_ROWS / 2;
    const drawn = rows.length > CHART_ROWS ? [...rows.slice(0, half), { gap: true }, ...rows.slice(-half)] : rows;
    if (units.length) {
      charts.bars($("#kpi-rank-chart"), drawn, { title: `${data.org_name}下级工会${indicator.name}排名`,
        unit: indicator.unit, onSelect: (row) => drill(row.id, row.label) });
    }
    $("#kpi-rank tbody").replaceChildren(...units.map((u) => el("tr", {
      class: `clickable ${u.meets === false ? "below" : ""}`, onclick: () => drill(u.org_id, u.org_name) },
    el("td", null, u.rank === null ? "—" : String(u.rank)),
    el("td", { class: u.meets === false ? "bad" : "" }, u.org_name),
    el("td", { class: u.meets === false ? "bad" : "" }, withUnit(u.value, indicator.unit)),
    el("td", null, withUnit(u.standard, indicator.unit)),
    el("td", null, u.meets === null ? "—" : u.meets ? "达标" : el("span", { class: "bad" }, "未达标")),
    el("td", { class: "actions" }, el("button", { type: "button", class: "btn small plain",
      onclick: (event) => { event.stopPropagation(); drill(u.org_id, u.org_name); } }, "查看下级")))));
  }

  function renderBelow(data) {
    $("#kpi-below").replaceChildren(...data.below_standard.map((u) => el("li", null,
      el("button", { type: "button", class: "kpi-link bad", onclick: () => drill(u.org_id, u.org_name) }, u.org_name),
      el("span", { class: "muted" }, `：${u.indicators.join("、")}`))));
    show($("#kpi-below-empty"), data.below_standard.length === 0);
  }

  window.kpiView = Object.freeze({ add(load) { parts.push(load); } });
  registerView("kpi", { perm: "kpi.read", load: () => { loadDashboard(); parts.forEach((load) => load()); } });
})();
