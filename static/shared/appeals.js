/* 职工诉求 (appeals.html): the worker's appeals, filing one with photos and documents, progress,
   the reply, rating and the review request; and the cadre's WeChat binding (bind.html). */
(function () {
  "use strict";

  const { $, show, el, setMessage } = window.dom;
  const { api, upload, signedIn, loadingDone, formatTime, tag, fact, register } = window.h5;
  const RATINGS = { satisfied: "满意", basically: "基本满意", dissatisfied: "不满意" };
  let categories = [];
  let files = [];

  async function appealsPage() {
    const me = await signedIn("/h5/appeals.html");
    if (!me) return;
    loadingDone();
    show($("#content"));
    $("#appeal-new").addEventListener("click", () => openForm(me));
    $("#ap-cancel").addEventListener("click", () => { show($("#appeal-form"), false); show($("#list-view")); });
    $("#ap-union-find").addEventListener("click", findUnions);
    $("#ap-category").addEventListener("change", () => {
      const c = categories.find((x) => x.name === $("#ap-category").value);
      show($("#ap-anonymous-row"), Boolean(c && c.anonymous));
    });
    $("#ap-files").addEventListener("change", addFiles);
    $("#appeal-form").addEventListener("submit", submit);
    window.addEventListener("hashchange", route);
    await route();
  }

  async function route() {
    const id = new URLSearchParams(location.hash.slice(1)).get("id");
    if (id) return openDetail(id);
    show($("#appeal-detail"), false);
    show($("#list-view"));
    const data = await api("GET", "appeals");
    categories = data.categories;
    $("#appeal-list").replaceChildren(...(data.appeals.length ? data.appeals.map(item) :
      [el("div", { className: "card" }, el("p", { className: "muted", textContent: "还没有提交过诉求。" }))]));
  }

  function item(a) {
    return el("a", { className: "card link", href: `#id=${a.id}` },
      el("h3", { textContent: a.title }),
      el("p", null, tag(a.status_name, a.status === "closed" ? "ok" : ""), " ",
        el("span", { className: "muted", textContent: `${a.org_name} · ${formatTime(a.submitted_at)}` })));
  }

  async function openForm(me) {
    show($("#list-view"), false);
    show($("#appeal-form"));
    files = [];
    $("#ap-file-list").replaceChildren();
    $("#ap-category").replaceChildren(...categories.map((c) => el("option", { value: c.name, textContent: c.name })));
    $("#ap-category").dispatchEvent(new Event("change"));
    const region = me.account && me.account.region && me.account.region.code;
    if (region) {
      const { unions } = await api("GET", `unions/upper?region=${encodeURIComponent(region)}`);
      fillUnions(unions);
    }
  }

  function fillUnions(unions) {
    $("#ap-union").replaceChildren(...unions.map((u) => el("option", { value: String(u.id), textContent: u.name })));
  }

  async function findUnions() {
    const q = $("#ap-union-q").value.trim();
    try {
      fillUnions((await api("GET", `unions?q=${encodeURIComponent(q)}`)).unions);
      setMessage($("#ap-error"), "");
    } catch (err) {
      setMessage($("#ap-error"), err.message);
    }
  }

  async function addFiles(event) {
    for (const file of event.target.files) {
      const kind = file.type.startsWith("image/") ? "image" : "document";
      try {
        const { file: saved } = await upload(
          `appeal-files?kind=${kind}&filename=${encodeURIComponent(file.name)}`, file);
        files.push(saved);
        $("#ap-file-list").append(el("li", { textContent: `${saved.filename}（已上传）` }));
      } catch (err) {
        setMessage($("#ap-error"), `${file.name}：${err.message}`);
      }
    }
    event.target.value = "";
  }

  async function submit(event) {
    event.preventDefault();
    const body = {
      category: $("#ap-category").value, org_id: parseInt($("#ap-union").value || "0", 10),
      description: $("#ap-description").value, employer: $("#ap-employer").value,
      contact: $("#ap-contact").value, anonymous: $("#ap-anonymous").checked,
      files: files.map((f) => f.id) };
    try {
      const { appeal } = await api("POST", "appeals", body);
      show($("#appeal-form"), false);
      location.hash = `id=${appeal.id}`;
    } catch (err) {
      setMessage($("#ap-error"), err.message);
    }
  }

  async function openDetail(id) {
    show($("#list-view"), false);
    show($("#appeal-form"), false);
    const box = $("#appeal-detail");
    show(box);
    let a;
    try {
      a = (await api("GET", `appeals/${encodeURIComponent(id)}`)).appeal;
    } catch (err) {
      box.replaceChildren(el("p", { className: "error", textContent: err.message }));
      return;
    }
    const facts = el("dl", { className: "facts" },
      fact("类别", a.category), fact("受理工会", a.org_name), fact("状态", a.status_name),
      fact("提交时间", formatTime(a.submitted_at)),
      fact("办理时限", a.due_at ? `${formatTime(a.due_at, false)}${a.due_provisional ? "（暂定）" : ""}` : null));
    const progress = el("ol", { className: "timeline" }, ...a.progress.map((p) =>
      el("li", null, el("strong", { textContent: p.name }), ` ${formatTime(p.at)}`,
        p.note ? el("p", { className: "muted", textContent: p.note }) : "")));
    const parts = [el("h2", { textContent: a.title }), facts,
                   el("h3", { textContent: "诉求内容" }), el("p", { textContent: a.description || "（已删除）" }),
                   el("h3", { textContent: "办理进度" }), progress];
    if (a.reply) parts.push(el("h3", { textContent: "答复" }), el("p", { textContent: a.reply }));
    if (a.review_reply) parts.push(el("h3", { textContent: "复查答复" }), el("p", { textContent: a.review_reply }));
    const message = el("p", { className: "error", role: "alert", hidden: true });
    if (a.can_rate) {
      parts.push(el("h3", { textContent: "评价答复" }), el("div", { className: "row" },
        ...Object.entries(RATINGS).map(([value, label]) => el("button", {
          type: "button", className: "button secondary", textContent: label,
          onclick: () => act(`appeals/${a.id}/rating`, { rating: value }, message) }))));
    }
    if (a.can_request_review) {
      const reason = el("textarea", { rows: 3, maxLength: 1000, placeholder: "申请复查的理由" });
      parts.push(el("h3", { textContent: "申请复查（收到答复后 30 日内，限一次）" }), reason,
        el("button", { type: "button", className: "button secondary", textContent: "申请复查",
          onclick: () => act(`appeals/${a.id}/review`, { reason: reason.value }, message) }));
    }
    parts.push(message, el("a", { className: "button secondary", href: "#", textContent: "返回列表" }));
    box.replaceChildren(...parts);
  }

  async function act(path, body, message) {
    try {
      await api("POST", path, body);
      await route();
    } catch (err) {
      setMessage(message, err.message);
    }
  }

  async function bindPage() {
    const token = new URLSearchParams(location.hash.slice(1)).get("t") || "";
    const me = await signedIn(`/h5/bind.html${location.hash}`);
    if (!me) return;
    loadingDone();
    show($("#content"));
    try {
      const done = await api("POST", "cadre-binding", { token });
      $("#bind-title").textContent = "绑定成功";
      setMessage($("#bind-ok"), `${done.cadre}，今后的待办提醒将通过公众号发到本微信。`);
    } catch (err) {
      $("#bind-title").textContent = "绑定未成功";
      setMessage($("#bind-error"), err.message);
    }
  }

  register("appeals", appealsPage);
  register("bind", bindPage);
})();
