/* 业务办理 (business.html): the business modules configured by the platform office that the worker
   may apply for, the application drawn from the module's form (shared/forms.js, the same renderer
   the console uses), and the progress of the worker's applications. */
(function () {
  "use strict";

  const { $, show, el, setMessage } = window.dom;
  const { api, upload, signedIn, loadingDone, formatTime, tag, fact, register } = window.h5;
  let services = [];
  let current = null;

  async function businessPage() {
    const me = await signedIn("/h5/business.html");
    if (!me) return;
    loadingDone();
    show($("#content"));
    $("#apply-cancel").addEventListener("click", () => { location.hash = ""; });
    $("#apply-form").addEventListener("submit", submit);
    window.addEventListener("hashchange", route);
    await route();
  }

  async function route() {
    const params = new URLSearchParams(location.hash.slice(1));
    show($("#apply-form"), false);
    show($("#application-detail"), false);
    show($("#list-view"), false);
    if (params.get("id")) return openDetail(params.get("id"));
    const offered = await api("GET", "business-services");
    services = offered.modules;
    if (params.get("apply")) return openForm(Number(params.get("apply")));
    show($("#list-view"));
    $("#service-list").replaceChildren(...(services.length ? services.map((s) =>
      el("a", { className: "card link", href: `#apply=${s.id}` },
        el("h3", { textContent: s.name }),
        el("p", { className: "muted", textContent: s.purpose || s.department }))) :
      [el("div", { className: "card" }, el("p", { className: "muted",
        textContent: offered.union ? "您所在的工会暂未开办在线业务。" : "会员业务需先入会或完成会员认证。" }))]));
    const mine = await api("GET", "business-applications");
    $("#application-list").replaceChildren(...(mine.applications.length ? mine.applications.map((a) =>
      el("a", { className: "card link", href: `#id=${a.item_id}` },
        el("h3", { textContent: a.title }),
        el("p", null, tag(a.status_name, a.status === "closed" ? "ok" : ""), " ",
          el("span", { className: "muted", textContent: `${a.org_name} · ${formatTime(a.filed_at)}` })))) :
      [el("div", { className: "card" }, el("p", { className: "muted", textContent: "还没有申请。" }))]));
  }

  function openForm(id) {
    current = services.find((s) => s.id === id);
    if (!current) { location.hash = ""; return; }
    $("#apply-title").textContent = current.name;
    $("#apply-purpose").textContent = current.purpose;
    window.forms.render($("#apply-fields"), current.form);
    setMessage($("#apply-error"), "");
    show($("#apply-form"));
  }

  async function submit(event) {
    event.preventDefault();
    const { values, errors, files } = window.forms.collect($("#apply-fields"));
    if (errors.length) { setMessage($("#apply-error"), errors[0]); return; }
    const button = $("#apply-form button[type=submit]");
    button.disabled = true;
    try {
      // Attachments go up first (cleaned and sealed one by one); the answers carry their ids.
      for (const [key, chosen] of Object.entries(files)) {
        if (!chosen.length) continue;
        values[key] = [];
        for (const file of chosen) {
          const kind = file.type.startsWith("image/") ? "image" : "document";
          const { file: saved } = await upload(
            `business-files?kind=${kind}&filename=${encodeURIComponent(file.name)}`, file);
          values[key].push(saved.id);
        }
      }
      const { application } = await api("POST", `business-services/${current.id}/applications`, { answers: values });
      location.hash = `id=${application.item_id}`;
    } catch (err) {
      setMessage($("#apply-error"), err.message);
    } finally {
      button.disabled = false;
    }
  }

  async function openDetail(id) {
    const { application: a } = await api("GET", `business-applications/${id}`);
    const box = $("#application-detail");
    const labels = Object.fromEntries(a.form.fields.map((f) => [f.key, f.label]));
    const shown = (v) => (Array.isArray(v) ? v.map((x) => (x && x.filename) || x).join("、")
      : v === true ? "是" : v === false ? "否" : String(v));
    box.replaceChildren(
      el("h2", { textContent: a.title }),
      el("p", null, tag(a.status_name, a.status === "closed" ? "ok" : "")),
      fact("受理工会", a.org_name),
      fact("提交时间", formatTime(a.filed_at)),
      a.due_at ? fact("办理时限", formatTime(a.due_at, false) + (a.due_provisional ? "（暂定）" : "")) : null,
      a.outcome ? fact("结果", a.outcome === "refused" ? "未通过" : "已办结") : null,
      ...Object.entries(a.answers).map(([k, v]) => fact(labels[k] || k, shown(v))),
      el("p", null, el("a", { href: "#", textContent: "返回" })));
    show(box);
  }

  register("business", businessPage);
})();
