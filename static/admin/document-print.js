/* 公文打印页：按 GB/T 9704-2012 的版式填入一份公文（/static/admin/document-print.html?id=公文id）。
   会话 Cookie 随请求发送；没有权限或公文不存在时只显示提示。 */
(function () {
  "use strict";

  const $ = (selector) => document.querySelector(selector);

  /** 成文日期用阿拉伯数字标全年、月、日，月、日不编虚位（GB/T 9704-2012 7.3.5.1）。 */
  function chineseDate(iso) {
    if (!iso) return "";
    const [y, m, d] = iso.slice(0, 10).split("-").map(Number);
    return `${y}年${m}月${d}日`;
  }

  function fill(id, text, hideEmpty = true) {
    const node = $(id);
    node.textContent = text || "";
    if (hideEmpty) node.hidden = !text;
  }

  function paragraphs(container, text) {
    container.replaceChildren(...String(text || "").split(/\n+/).filter((line) => line.trim())
      .map((line) => { const p = document.createElement("p"); p.textContent = line.trim(); return p; }));
  }

  async function load() {
    const id = new URLSearchParams(location.search).get("id");
    if (!id || !/^[0-9]{1,12}$/.test(id)) {
      fail("缺少公文编号");
      return;
    }
    let data;
    try {
      const response = await fetch(`/admin/v1/documents/${id}`, { credentials: "same-origin",
                                                                   headers: { Accept: "application/json" } });
      data = await response.json();
      if (!response.ok) throw new Error((data.error && data.error.message) || `请求失败（${response.status}）`);
    } catch (e) {
      fail(e.message || "网络连接失败");
      return;
    }
    render(data.document);
  }

  function render(doc) {
    document.title = `${doc.title} · 公文打印`;
    fill("#dp-copy-no", doc.copy_no);
    fill("#dp-urgency", doc.urgency);
    fill("#dp-mark", doc.issuer_mark, false);
    fill("#dp-number", doc.doc_number || "（尚未编号）", false);
    // 上行文标注签发人，发文字号居左、签发人居右（7.2.5、7.2.6）。
    const upward = doc.direction === "out" && doc.flow === "up";
    $(".number-row").classList.toggle("upward", upward);
    if (upward) {
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = doc.signer || "　　　";
      $("#dp-signer").replaceChildren("签发人：", name);
      $("#dp-signer").hidden = false;
    }
    fill("#dp-title", doc.title, false);
    fill("#dp-main-to", doc.main_to ? `${doc.main_to}：` : "");
    paragraphs($("#dp-body"), doc.body);
    if (doc.attachment_note) {
      const lines = doc.attachment_note.split(/\n+/).filter((l) => l.trim());
      $("#dp-attachment-note").replaceChildren(...lines.map((line, n) => {
        const p = document.createElement("p");
        p.textContent = (n === 0 ? "附件：" : "　　　") + line.trim();
        return p;
      }));
      $("#dp-attachment-note").hidden = false;
    }
    fill("#dp-issuer", doc.issuer, false);
    fill("#dp-date", chineseDate(doc.written_on), false);
    $("#dp-seal").hidden = !doc.sealed;
    fill("#dp-note", doc.note ? `（${doc.note}）` : "");
    fill("#dp-copy-to", doc.copy_to ? `抄送：${doc.copy_to}。` : "");
    fill("#dp-printer", doc.printer || doc.issuer, false);
    fill("#dp-printed-on", doc.printed_on ? `${chineseDate(doc.printed_on)}印发` : "", false);
    $("#dp-page").hidden = false;
  }

  function fail(message) {
    const node = $("#dp-error");
    node.textContent = message;
    node.hidden = false;
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#dp-print").addEventListener("click", () => window.print());
    load();
  });
})();
