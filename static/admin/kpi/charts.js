/* 使用情况的图表：手写的小型 SVG 图表，window.charts = { bars, line, bullet, format }。
   为什么手写而不用图表库：工作台可能运行在隔离网络上，不能从 CDN 加载；需要的只有三种简单图形
   （排名用横条、趋势用折线、目标达成用子弹图），几百 KB 的库不值得随页面维护。
   颜色全由类名决定（admin.css 的 chart- 部分），不写内联样式，符合内容安全策略；每张图都是
   role="img"，带 aria-label 与 <title>，读屏软件能读出图名，旁边的表格给出完整数字。

   bars(container, rows, opts)   rows: [{ label, value, standard, meets, gap }]（gap 为省略行）；
                                 opts: { title, unit, onSelect(row) }，点击某一条时调用 onSelect
   line(container, points, opts) points: [{ month: "2026-03", value }]；opts: { title, unit }
   bullet(container, value, standard, opts)  opts: { title, unit }
   format(value, unit)           数字的中文写法："—"、"45.0%"、"1.2万"、"3,456" */
(function () {
  "use strict";

  const NS = "http://www.w3.org/2000/svg";

  /** 一个 SVG 元素：attrs 作为属性（位置、尺寸、类名），children 为元素或文字。 */
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(key, String(value));
    }
    for (const child of children) if (child != null && child !== false) node.append(child);
    return node;
  }

  /** 比例（0–1）按百分数，大数按万、亿，其余加千位分隔；没有数字时为“—”。 */
  function format(value, unit) {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    if (unit === "%") return `${(value * 100).toFixed(1)}%`;
    const trim = (n) => n.toFixed(n >= 100 ? 0 : 1).replace(/\.0$/, "");
    if (Math.abs(value) >= 1e8) return `${trim(value / 1e8)}亿`;
    if (Math.abs(value) >= 1e4) return `${trim(value / 1e4)}万`;
    return value.toLocaleString("zh-CN", { maximumFractionDigits: 2 });
  }

  // 图的宽度随所在区域（隐藏时退回 fallback）；画好后 CSS 只许它缩小，文字不会被放大。
  function frame(container, height, title, fallback) {
    const width = Math.max(container.clientWidth || 0, 0) || fallback;
    const root = svg("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`,
                              role: "img", "aria-label": title }, svg("title", null, title));
    container.replaceChildren(root);
    return { root, width };
  }

  const state = (meets) => (meets === false ? "below" : meets === true ? "met" : "plain");
  const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
  // 坐标轴的上限：略大于最大值，取整到 1、2、5 的倍数，刻度好读。
  function ceiling(max, unit) {
    if (!(max > 0)) return unit === "%" ? 1 : 10;
    if (unit === "%" && max <= 1) return max > 0.5 ? 1 : Math.ceil(max * 10.5) / 10;
    const step = 10 ** Math.floor(Math.log10(max));
    return [1, 2, 5, 10].map((m) => m * step).find((v) => v >= max * 1.05) || 10 * step;
  }

  /** 横向条形图（排名）：低于标准的条为红色，标准以竖线标出，点击一条可下钻。 */
  function bars(container, rows, opts = {}) {
    const unit = opts.unit || "";
    const ROW = 26, TOP = 8, LABEL = 170, VALUE = 72;
    const { root, width } = frame(container, TOP * 2 + ROW * Math.max(rows.length, 1), opts.title || "排名", 720);
    const span = Math.max(width - LABEL - VALUE, 60);
    const max = ceiling(Math.max(0, ...rows.flatMap((r) => [r.value || 0, r.standard || 0])), unit);
    const x = (v) => LABEL + (Math.max(v, 0) / max) * span;
    if (!rows.length) {
      root.append(svg("text", { x: width / 2, y: TOP + ROW / 2 + 4, class: "chart-empty", "text-anchor": "middle" },
        "没有可排名的单位"));
    }
    rows.forEach((row, i) => {
      const y = TOP + i * ROW;
      if (row.gap) {
        root.append(svg("text", { x: LABEL, y: y + ROW / 2 + 4, class: "chart-label" }, "……"));
        return;
      }
      const tone = state(row.meets);
      const group = svg("g", { class: `chart-row ${tone}${opts.onSelect ? " clickable" : ""}` },
        svg("title", null, `${row.label}：${format(row.value, unit)}` +
          (row.standard != null ? `，标准 ${format(row.standard, unit)}` : "") +
          (row.meets === false ? "，未达标" : row.meets === true ? "，达标" : "")),
        svg("text", { x: LABEL - 8, y: y + ROW / 2 + 4, class: "chart-label", "text-anchor": "end" }, clip(row.label, 12)),
        svg("rect", { x: LABEL, y: y + 4, width: span, height: ROW - 8, class: "chart-track" }),
        row.value == null ? null
          : svg("rect", { x: LABEL, y: y + 4, width: Math.max(x(row.value) - LABEL, 1), height: ROW - 8,
                          class: `chart-bar ${tone}` }),
        row.standard == null ? null
          : svg("line", { x1: x(row.standard), x2: x(row.standard), y1: y + 1, y2: y + ROW - 1, class: "chart-standard" }),
        svg("text", { x: width - VALUE + 6, y: y + ROW / 2 + 4, class: `chart-value ${tone}` }, format(row.value, unit)));
      if (opts.onSelect) group.addEventListener("click", () => opts.onSelect(row));
      root.append(group);
    });
    return root;
  }

  /** 折线图（趋势）：按月的点，没有数字的月份断开；纵轴三档刻度。 */
  function line(container, points, opts = {}) {
    const unit = opts.unit || "";
    const LEFT = 64, RIGHT = 16, TOP = 14, BOTTOM = 30, HEIGHT = 220;
    const { root, width } = frame(container, HEIGHT, opts.title || "趋势", 720);
    const plotW = Math.max(width - LEFT - RIGHT, 60), plotH = HEIGHT - TOP - BOTTOM;
    const values = points.map((p) => p.value).filter((v) => v != null);
    const max = ceiling(Math.max(0, ...values), unit);
    const x = (i) => LEFT + (points.length > 1 ? (i / (points.length - 1)) * plotW : plotW / 2);
    const y = (v) => TOP + plotH - (v / max) * plotH;
    for (const tick of [0, max / 2, max]) {
      root.append(svg("line", { x1: LEFT, x2: LEFT + plotW, y1: y(tick), y2: y(tick), class: "chart-grid" }),
        svg("text", { x: LEFT - 6, y: y(tick) + 4, class: "chart-axis", "text-anchor": "end" }, format(tick, unit)));
    }
    // 月份：每年一月和第一个点写出年份；点多时隔一个标一个，免得挤在一起。
    const every = points.length > 12 ? 2 : 1;
    points.forEach((p, i) => {
      if (i % every) return;
      const [year, month] = p.month.split("-").map(Number);
      const label = i === 0 || month === 1 ? `${year}年${month}月` : `${month}月`;
      root.append(svg("text", { x: x(i), y: HEIGHT - 10, class: "chart-axis", "text-anchor": "middle" }, label));
    });
    let d = "";
    points.forEach((p, i) => {
      if (p.value == null) return;
      const joined = i > 0 && points[i - 1].value != null;
      d += `${joined ? "L" : "M"}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`;
    });
    if (d) root.append(svg("path", { d, class: "chart-line" }));
    points.forEach((p, i) => {
      if (p.value == null) return;
      root.append(svg("circle", { cx: x(i), cy: y(p.value), r: 3.5, class: "chart-dot" },
        svg("title", null, `${p.month}：${format(p.value, unit)}`)));
    });
    if (!values.length) {
      root.append(svg("text", { x: LEFT + plotW / 2, y: TOP + plotH / 2, class: "chart-empty", "text-anchor": "middle" },
        "暂无数据"));
    }
    return root;
  }

  /** 子弹图（目标达成）：灰色底条、数值条（未达标为红色）、标准处一道竖线。 */
  function bullet(container, value, standard, opts = {}) {
    const unit = opts.unit || "";
    const HEIGHT = 34, PAD = 4, BAR = 12;
    const { root, width } = frame(container, HEIGHT, opts.title || "目标达成", 240);
    const meets = value == null || standard == null ? null : value >= standard;
    const max = unit === "%" ? 1 : ceiling(Math.max(value || 0, standard || 0), unit);
    const span = width - PAD * 2;
    const x = (v) => PAD + Math.min(Math.max(v, 0) / max, 1) * span;
    root.append(svg("rect", { x: PAD, y: 6, width: span, height: BAR + 4, class: "chart-track" }));
    if (value != null) {
      root.append(svg("rect", { x: PAD, y: 8, width: Math.max(x(value) - PAD, 1), height: BAR,
                                class: `chart-bar ${state(meets)}` }));
    }
    if (standard != null) {
      root.append(svg("line", { x1: x(standard), x2: x(standard), y1: 2, y2: BAR + 12, class: "chart-standard" }));
    }
    root.append(svg("text", { x: PAD, y: HEIGHT - 2, class: "chart-axis" }, format(0, unit)),
      svg("text", { x: width - PAD, y: HEIGHT - 2, class: "chart-axis", "text-anchor": "end" }, format(max, unit)));
    return root;
  }

  window.charts = Object.freeze({ bars, line, bullet, format });
})();
