/* 工会干部工作台：频道与文章（撰写、三审、发布、发到公众号、访问统计）和自建频道的申请与验收。
   正文编辑区是同源 iframe（/admin/editor.html，其页面不运行任何脚本），由本脚本设为可编辑；
   粘贴的内容保留原有格式，保存时由服务器清理；粘贴进来的内嵌图片（data:）先上传再保存。 */
(function () {
  "use strict";

  const { $, show, el, setMessage } = window.dom;
  const { api, report, notify, formatTime, can, registerView, chinaTime } = window.adminConsole;
  const STAGES = { draft: "草稿", submitted: "待初审", first_passed: "待复审", approved: "待发布",
                   scheduled: "定时发布", returned: "已退回", live: "已发布" };
  const STEPS = { create: "创建", edit: "修改", submit: "送审", return: "退回", approve: "审核通过",
                  first_approve: "初审通过", second_approve: "复审通过", schedule: "定时发布",
                  unschedule: "取消定时", publish: "发布", withdraw: "撤回" };
  const APP_STATUS = { applied: "已申请", approved: "已批准建设", rejected: "未批准", accepted: "已验收",
                       connected: "已接入", suspended: "已暂停", retired: "已退出", checked: "符合性检查" };
  const state = { channels: [], editing: null, reviewing: null, cover: null, attachments: [], applyingFor: null,
                  applications: [] };

  const review = () => can("channel.review");
  const office = () => review() && state.channels.some((c) => c.slug === "sc");
  const act = (label, handler) => el("button", { type: "button", class: "btn small plain", onclick: handler }, label);

  // --- 频道 ---------------------------------------------------------------------------------------
  async function loadView() {
    try {
      state.channels = (await api("GET", "/channels")).channels;
      setMessage($("#channels-error"), "");
    } catch (e) {
      report($("#channels-error"), e);
      return;
    }
    $("#channels-table tbody").replaceChildren(...state.channels.map(channelRow));
    const options = state.channels.map((c) => el("option", { value: String(c.id) }, c.name));
    const filter = $("#articles-channel");
    const chosen = filter.value;
    filter.replaceChildren(el("option", { value: "" }, "全部"), ...options.map((o) => o.cloneNode(true)));
    filter.value = chosen;
    $("#ar-channel").replaceChildren(...options);
    loadArticles();
    loadApplications();
  }

  function channelRow(c) {
    const actions = [act("写文章", () => openArticle(null, c.id)), act("访问统计", () => openStats(c)),
                     el("a", { class: "btn small plain", href: c.page, target: "_blank" }, "频道页")];
    if (review()) {
      actions.push(act(c.second_review ? "取消复审" : "开启复审", () => setSecondReview(c)));
      if (["city", "industry"].includes(c.org_kind)) actions.push(act("申请自建", () => openApply(c)));
    }
    return el("tr", {}, el("td", {}, c.name), el("td", {}, c.mode_name),
      el("td", {}, c.second_review ? "需要复审" : "一级审核"), el("td", { class: "actions" }, ...actions));
  }

  async function setSecondReview(c) {
    try {
      await api("PATCH", `/channels/${c.id}`, { second_review: !c.second_review });
      notify(`“${c.name}”${c.second_review ? "已取消复审" : "已开启复审"}。`, "ok");
      loadView();
    } catch (e) {
      report($("#channels-error"), e);
    }
  }

  async function openStats(c) {
    try {
      const { stats } = await api("GET", `/channels/${c.id}/stats?days=30`);
      $("#channel-stats-title").textContent = `访问统计：${stats.channel.name}`;
      const months = stats.published_per_month.map((m) => `${m.month} 发布 ${m.articles} 篇`).join("，");
      $("#channel-stats-summary").textContent = `${stats.from} 至 ${stats.to} 共浏览 ${stats.views} 次。${months}`;
      $("#channel-stats-top tbody").replaceChildren(...stats.top_articles.map((a) =>
        el("tr", {}, el("td", {}, a.title), el("td", {}, String(a.views)))));
      $("#channel-stats-days tbody").replaceChildren(...stats.days.filter((d) => d.views).reverse().map((d) =>
        el("tr", {}, el("td", {}, d.day), el("td", {}, String(d.views)), el("td", {}, String(d.visitors)))));
      show($("#channel-stats"), true);
    } catch (e) {
      report($("#channels-error"), e);
    }
  }

  // --- 文章列表 -----------------------------------------------------------------------------------
  async function loadArticles() {
    const query = new URLSearchParams();
    if ($("#articles-channel").value) query.set("channel", $("#articles-channel").value);
    if ($("#articles-stage").value) query.set("stage", $("#articles-stage").value);
    try {
      const { articles } = await api("GET", `/articles?${query}`);
      setMessage($("#articles-error"), "");
      $("#articles-table tbody").replaceChildren(...articles.map(articleRow));
      show($("#articles-table"), articles.length > 0);
      show($("#articles-empty"), articles.length === 0);
    } catch (e) {
      report($("#articles-error"), e);
    }
  }

  function articleRow(a) {
    const actions = [act("修改", () => openArticle(a))];
    if (["draft", "returned"].includes(a.stage)) actions.push(act("送审", () => articleAction(a, "submit", {}, "已送审")));
    if (["submitted", "first_passed"].includes(a.stage) && review()) actions.push(act("审核", () => openReview(a)));
    if (a.stage === "approved") {
      actions.push(act("发布", () => articleAction(a, "publish", {}, "已发布")));
      actions.push(act("定时发布", () => schedule(a)));
    }
    if (a.stage === "scheduled") actions.push(act("取消定时", () => articleAction(a, "unschedule", {}, "已取消定时发布")));
    if (a.live_revision) {
      actions.push(el("a", { class: "btn small plain", href: a.page, target: "_blank" }, "查看"));
      actions.push(act("撤回", () => withdraw(a)));
      actions.push(act("发公众号", () => toOfficialAccount(a, false)));
      actions.push(act("群发", () => toOfficialAccount(a, true)));
    }
    actions.push(act("记录", () => openReview(a, true)));
    const stage = STAGES[a.stage] + (a.live_revision && a.stage !== "live" ? `（第 ${a.live_revision} 版在线）` : "");
    return el("tr", {}, el("td", {}, String(a.id)), el("td", {}, a.working.title), el("td", {}, a.channel_name),
      el("td", {}, stage), el("td", {}, formatTime(a.updated_at)), el("td", { class: "actions" }, ...actions));
  }

  async function articleAction(a, verb, body, done) {
    try {
      await api("POST", `/articles/${a.id}/${verb}`, body);
      notify(`“${a.working.title}”${done}。`, "ok");
      loadArticles();
      return true;
    } catch (e) {
      report($("#articles-error"), e);
      return false;
    }
  }

  function schedule(a) {
    const at = window.prompt("定时发布时间（北京时间，如 2026-12-01 09:00）");
    if (!at) return;
    articleAction(a, "publish", { at: chinaTime(at.trim().replace(" ", "T")) }, `将于 ${at} 发布`);
  }

  function withdraw(a) {
    const reason = window.prompt("撤回理由（必填）");
    if (reason) articleAction(a, "withdraw", { reason }, "已撤回");
  }

  async function toOfficialAccount(a, massSend) {
    const question = massSend ? "群发会推送给公众号的全部粉丝，每月次数有限。确定群发？"
      : "发布到公众号（不推送给粉丝，得到永久链接）。确定发布？";
    if (!window.confirm(question)) return;
    try {
      const { publication } = await api("POST", `/articles/${a.id}/oa`, { mass_send: massSend });
      notify(`“${a.working.title}”${massSend ? "已群发" : "已提交公众号发布，完成后可在记录中看到链接"}（${publication.status}）。`, "ok");
    } catch (e) {
      report($("#articles-error"), e);
    }
  }

  // --- 撰写 ---------------------------------------------------------------------------------------
  function editorOf(frame) {
    const doc = frame.contentDocument;
    return doc && doc.body ? doc : null;
  }

  function whenReady(frame) {
    return new Promise((resolve) => {
      const ready = () => (editorOf(frame) && frame.contentDocument.readyState === "complete");
      if (ready()) resolve(frame.contentDocument);
      else frame.addEventListener("load", () => resolve(frame.contentDocument), { once: true });
    });
  }

  async function openArticle(listed, channelId) {
    let a = null;
    if (listed) {
      try {
        a = (await api("GET", `/articles/${listed.id}`)).article;  // the list leaves bodies out
      } catch (e) {
        report($("#articles-error"), e);
        return;
      }
    }
    state.editing = a;
    state.cover = a ? a.working.cover_id : null;
    state.attachments = a ? a.working.attachments.map((id) => ({ id, filename: `附件 ${id}` })) : [];
    $("#article-form-title").textContent = a ? `修改：${a.working.title}` : "写文章";
    $("#ar-channel").value = String(a ? a.channel_id : channelId || (state.channels[0] || {}).id || "");
    $("#ar-channel").disabled = Boolean(a);
    $("#ar-title").value = a ? a.working.title : "";
    $("#ar-author").value = a ? a.working.author : "";
    $("#ar-summary").value = a ? a.working.summary : "";
    show($("#ar-cover"), false);
    renderAttachments();
    setMessage($("#article-form-error"), "");
    setMessage($("#article-warnings"), "");
    show($("#article-form"), true);
    const doc = await whenReady($("#ar-body-frame"));
    doc.body.innerHTML = a ? a.working.body : "<p><br></p>";
    doc.designMode = "on";
    $("#ar-title").focus();
  }

  function renderAttachments() {
    $("#ar-attachments").replaceChildren(...state.attachments.map((f) => el("li", {}, f.filename, " ",
      act("移除", () => { state.attachments = state.attachments.filter((x) => x.id !== f.id); renderAttachments(); }))));
  }

  async function upload(kind, file) {
    return (await api("POST", `/media/${kind}?filename=${encodeURIComponent(file.name || "image")}`, file)).media;
  }

  async function pickCover(event) {
    const file = event.target.files[0];
    if (!file) return;
    try {
      const media = await upload("images", file);
      state.cover = media.id;
      $("#ar-cover").src = media.thumb_url;
      show($("#ar-cover"), true);
    } catch (e) {
      report($("#article-form-error"), e);
    }
    event.target.value = "";
  }

  async function pickAttachment(event) {
    const file = event.target.files[0];
    if (!file) return;
    try {
      const media = await upload("attachments", file);
      state.attachments.push({ id: media.id, filename: media.filename });
      renderAttachments();
    } catch (e) {
      report($("#article-form-error"), e);
    }
    event.target.value = "";
  }

  async function insertImage(event) {
    const file = event.target.files[0];
    if (!file) return;
    try {
      const media = await upload("images", file);
      const doc = editorOf($("#ar-body-frame"));
      doc.body.focus();
      doc.execCommand("insertHTML", false, `<p><img src="${media.url}" alt=""></p>`);
    } catch (e) {
      report($("#article-form-error"), e);
    }
    event.target.value = "";
  }

  function format(event) {
    const button = event.target.closest("button[data-command]");
    const doc = editorOf($("#ar-body-frame"));
    if (!button || !doc) return;
    doc.execCommand(button.dataset.command, false, button.dataset.value || null);
  }

  /** 粘贴或拖入的内嵌图片（data: / blob:）先上传，换成本站地址。 */
  async function uploadInlineImages(doc) {
    for (const img of doc.querySelectorAll("img")) {
      const src = img.getAttribute("src") || "";
      if (!/^(data:image\/|blob:)/.test(src)) continue;
      const blob = await (await fetch(src)).blob();
      const media = await upload("images", new File([blob], "pasted", { type: blob.type }));
      img.setAttribute("src", media.url);
    }
  }

  async function saveArticle(event) {
    event.preventDefault();
    const doc = editorOf($("#ar-body-frame"));
    const button = $("#article-save");
    button.disabled = true;
    try {
      await uploadInlineImages(doc);
      const body = { title: $("#ar-title").value.trim(), author: $("#ar-author").value.trim(),
                     summary: $("#ar-summary").value.trim(), cover_id: state.cover,
                     attachments: state.attachments.map((f) => f.id), body: doc.body.innerHTML };
      const { article } = state.editing
        ? await api("PUT", `/articles/${state.editing.id}`, body)
        : await api("POST", `/channels/${$("#ar-channel").value}/articles`, body);
      state.editing = article;
      doc.body.innerHTML = article.working.body;  // 服务器清理后的内容
      setMessage($("#article-warnings"), (article.warnings || []).join("；"));
      setMessage($("#article-form-error"), "");
      notify(`“${article.working.title}”已保存为草稿，送审后由审核人审核。`, "ok");
      loadArticles();
    } catch (e) {
      report($("#article-form-error"), e);
    } finally {
      button.disabled = false;
    }
  }

  // --- 审核与记录 ---------------------------------------------------------------------------------
  async function openReview(a, readOnly = false) {
    let article;
    try {
      article = (await api("GET", `/articles/${a.id}`)).article;
    } catch (e) {
      report($("#articles-error"), e);
      return;
    }
    state.reviewing = article;
    $("#article-review-title").textContent = `${readOnly ? "记录" : "审核"}：${article.working.title}（${STAGES[article.stage]}）`;
    for (const id of ["#article-approve", "#article-return", "#article-review-reason"]) show($(id), !readOnly);
    show($("label[for=article-review-reason]"), !readOnly);
    $("#article-review-reason").value = "";
    setMessage($("#article-review-error"), "");
    const steps = article.history.map((h) => el("li", {},
      `${formatTime(h.at)} ${h.actor || "系统"} ${STEPS[h.step] || h.step}${h.reason ? `：${h.reason}` : ""}`));
    const versions = article.revisions.map((r) => el("li", {}, `第 ${r.number} 版 ${formatTime(r.published_at)} 由 ${r.published_by || "定时任务"} 发布`));
    $("#article-history").replaceChildren(...steps, ...versions);
    show($("#article-review"), true);
    const doc = await whenReady($("#article-review-frame"));
    doc.designMode = "off";
    doc.body.innerHTML = `<h1>${escapeText(article.working.title)}</h1>${article.working.body}`;
  }

  function escapeText(text) {
    const span = document.createElement("span");
    span.textContent = text;
    return span.innerHTML;
  }

  async function decide(approve) {
    const a = state.reviewing;
    try {
      await api("POST", `/articles/${a.id}/review`, { approve, reason: $("#article-review-reason").value.trim() });
      notify(`“${a.working.title}”${approve ? "审核通过" : "已退回"}。`, "ok");
      show($("#article-review"), false);
      loadArticles();
    } catch (e) {
      report($("#article-review-error"), e);
    }
  }

  // --- 自建频道 -----------------------------------------------------------------------------------
  async function loadApplications() {
    if (!review()) return;
    try {
      state.applications = (await api("GET", "/channel-applications")).applications;
      setMessage($("#applications-error"), "");
    } catch (e) {
      report($("#applications-error"), e);
      return;
    }
    $("#applications-table tbody").replaceChildren(...state.applications.map(applicationRow));
    show($("#applications-table"), state.applications.length > 0);
    show($("#applications-empty"), state.applications.length === 0);
  }

  function applicationRow(a) {
    const last = a.history[a.history.length - 1];
    const actions = [act("详情", () => showApplication(a))];
    if (office()) {
      const steps = { applied: ["approve", "reject"], approved: ["check", "accept", "retire"],
                      accepted: ["connect", "retire"], connected: ["suspend", "retire"], suspended: ["resume", "retire"] };
      const names = { approve: "批准", reject: "不批准", check: "符合性检查", accept: "验收通过", connect: "接入",
                      suspend: "暂停", resume: "恢复", retire: "退出" };
      for (const step of steps[a.status] || []) actions.push(act(names[step], () => decideApplication(a, step)));
    }
    return el("tr", {}, el("td", {}, String(a.id)), el("td", {}, a.channel_name),
      el("td", {}, a.status_name, a.news ? el("span", { class: "tag" }, "新进展") : null),
      el("td", {}, `${formatTime(last.at)} ${last.actor_org} ${last.actor || ""}`), el("td", { class: "actions" }, ...actions));
  }

  async function showApplication(listed) {
    let a = listed;
    try {
      a = (await api("GET", `/channel-applications/${listed.id}`)).application;  // marks it seen
    } catch (e) {
      report($("#applications-error"), e);
      return;
    }
    $("#application-detail-title").textContent = `${a.channel_name} 的自建频道申请（${a.status_name}）`;
    const checks = a.conformance ? a.conformance.checks : [];
    $("#application-checks").replaceChildren(...checks.map((c) => el("li", { class: c.passed ? "check-ok" : "check-failed" },
      `${c.passed ? "通过" : "未通过"}：${c.title}（${c.detail}）`)));
    $("#application-steps").replaceChildren(...a.history.map((h) => el("li", {},
      `${formatTime(h.at)} ${h.actor_org} ${h.actor || ""} ${APP_STATUS[h.status] || h.status}${h.reason ? `：${h.reason}` : ""}`)));
    show($("#application-detail"), true);
  }

  async function decideApplication(a, step) {
    try {
      let result;
      if (step === "check") {
        result = (await api("POST", `/channel-applications/${a.id}/conformance`)).application;
        notify(result.conformance.passed ? "自动符合性检查通过。" : "自动符合性检查未通过，详见申请详情。",
               result.conformance.passed ? "ok" : "warn");
        showApplication(result);
      } else {
        const body = { step };
        if (["reject", "suspend", "retire"].includes(step)) {
          body.reason = window.prompt("理由（必填）") || "";
          if (!body.reason) return;
        }
        if (step === "accept") {
          if (!window.confirm("确认标准统一、内容规范、网络安全三项验收均已通过？")) return;
          Object.assign(body, { uniformity: true, content: true, security: true });
        }
        result = (await api("POST", `/channel-applications/${a.id}/decisions`, body)).application;
        notify(`${a.channel_name}：${result.status_name}。`, "ok");
        if (result.platform_secret) {
          window.alert(`频道入口 ${result.platform_app_id} 的接口密钥（只显示这一次，请安全转交申请单位）：\n${result.platform_secret}`);
        }
      }
      loadView();
    } catch (e) {
      report($("#applications-error"), e);
    }
  }

  function openApply(c) {
    state.applyingFor = c;
    $("#apply-title").textContent = `申请自建频道：${c.name}`;
    setMessage($("#apply-error"), "");
    show($("#apply-form"), true);
  }

  async function submitApply(event) {
    event.preventDefault();
    const body = { plan: $("#ap-plan").value.trim(), reasons: $("#ap-reasons").value.trim(),
                   hosting: $("#ap-hosting").value.trim(), mlps_report: $("#ap-mlps").value.trim(),
                   police_filing: $("#ap-police").value.trim(), entrance_url: $("#ap-entrance").value.trim(),
                   redirect_uris: $("#ap-redirects").value.split(/\s+/).filter(Boolean), scopes: ["sso", "profile.read"] };
    try {
      await api("POST", `/channels/${state.applyingFor.id}/applications`, body);
      notify(`${state.applyingFor.name} 的自建频道申请已提交，等待平台办公室审批。`, "ok");
      show($("#apply-form"), false);
      loadApplications();
    } catch (e) {
      report($("#apply-error"), e);
    }
  }

  function bind() {
    $("#article-new").addEventListener("click", () => openArticle(null));
    $("#channels-refresh").addEventListener("click", loadView);
    for (const id of ["#articles-channel", "#articles-stage"]) $(id).addEventListener("change", loadArticles);
    $("#article-form").addEventListener("submit", saveArticle);
    $("#article-cancel").addEventListener("click", () => show($("#article-form"), false));
    $("#ar-cover-file").addEventListener("change", pickCover);
    $("#ar-attachment-file").addEventListener("change", pickAttachment);
    $("#ar-image-file").addEventListener("change", insertImage);
    document.querySelector("#article-form .editor-tools").addEventListener("click", format);
    $("#article-approve").addEventListener("click", () => decide(true));
    $("#article-return").addEventListener("click", () => decide(false));
    $("#article-review-close").addEventListener("click", () => show($("#article-review"), false));
    $("#apply-form").addEventListener("submit", submitApply);
    $("#apply-cancel").addEventListener("click", () => show($("#apply-form"), false));
  }

  /** After sign-in: the self-built channel applications with steps this cadre has not seen. */
  async function announce() {
    if (!review()) return;
    try {
      const { applications } = await api("GET", "/channel-applications");
      const fresh = applications.filter((a) => a.news);
      if (fresh.length) {
        notify(`自建频道申请有新进展：${fresh.map((a) => `${a.channel_name}（${a.status_name}）`).join("、")}。` +
               "请到“频道与文章”查看。", "info");
      }
    } catch (e) { /* the notice is a convenience; the view shows the same list */ }
  }

  registerView("channels", { perm: "channel.publish channel.review", load: loadView });
  window.adminConsole.onEnter(announce);
  document.addEventListener("DOMContentLoaded", () => { if ($("#view-channels")) bind(); });
})();
