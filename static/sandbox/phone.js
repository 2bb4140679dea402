/* The phone simulator: the worker's WeChat. Each action goes to the sandbox, which sends it to the
   product as WeChat would; replies and later messages appear in the chat. */
(function () {
  "use strict";
  const { $, el, show, setMessage } = window.dom;
  const { call, holdPhone } = window.sandbox;
  const state = { openid: "", chat: [], pushed: 0, mpToken: "" };

  const fail = (err) => setMessage($("#error"), err.message);

  function choose(openid) {
    state.openid = openid;
    state.chat = [];
    state.pushed = 0;
    state.mpToken = "";
    holdPhone(openid);   // WeChat's sign-in on the worker's pages signs in who holds the phone
    $("#openid").textContent = openid || "—";
    render();
  }

  function bubble(item) {
    const node = el("li", { class: item.mine ? "mine" : (item.kind ? "pushed" : "") },
      item.kind ? el("span", { class: "kind" }, item.kind) : null);
    if (item.articles) {
      for (const a of item.articles) {
        node.append(el("a", { onclick: () => openPage(a.url) }, a.title), el("br"));
      }
    } else {
      // Links in a reply open in the phone's browser tab.
      const parts = String(item.text || "").split(/(https?:\/\/\S+|\/h5\/\S*)/);
      for (const part of parts) {
        if (/^(https?:\/\/|\/h5\/)/.test(part)) node.append(el("a", { onclick: () => openPage(part) }, part));
        else if (part) node.append(part);
      }
    }
    return node;
  }

  function render() {
    $("#messages").replaceChildren(...state.chat.map(bubble));
    $("#messages").scrollTop = $("#messages").scrollHeight;
  }

  async function push(action, value) {
    if (!state.openid) return fail(new Error("请先选择职工"));
    setMessage($("#error"), "");
    if (action === "text") state.chat.push({ mine: true, text: value });
    if (action === "click") state.chat.push({ mine: true, text: `点击菜单「${value}」` });
    if (action === "follow") state.chat.push({ mine: true, text: value ? `扫码关注（${value}）` : "关注了公众号" });
    if (action === "unfollow") state.chat.push({ mine: true, text: "取消关注" });
    if (action === "scan") state.chat.push({ mine: true, text: `扫描二维码 ${value}` });
    render();
    try {
      const { reply } = await call("POST", "/sandbox/api/phone/push", { openid: state.openid, action, value });
      if (reply) state.chat.push(reply.type === "news" ? { articles: reply.articles } : { text: reply.content });
      render();
    } catch (err) { fail(err); }
  }

  async function poll() {
    if (!state.openid) return;
    try {
      const phone = $("#sms-phone").value.trim();
      const query = new URLSearchParams({ openid: state.openid, phone });
      const { messages } = await call("GET", `/sandbox/api/phone/messages?${query}`);
      for (const m of messages.slice(state.pushed)) state.chat.push({ kind: m.kind, text: m.text });
      if (messages.length > state.pushed) { state.pushed = messages.length; render(); }
    } catch (err) { fail(err); }
  }

  function tab(name) {
    for (const b of document.querySelectorAll(".tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
    for (const s of document.querySelectorAll(".screen")) show(s, s.dataset.screen === name);
  }

  function openPage(url) {
    const target = new URL(url, location.origin);
    const path = target.pathname + target.search + target.hash;
    // WeChat's own browser signs the worker in to the union's pages; this frame is not WeChat's
    // browser, so the page opens through the product's WeChat sign-in, as a signed-in page would.
    if (target.origin === location.origin && target.pathname.startsWith("/h5/")) {
      $("#web").src = `/wechat/oauth/start?next=${encodeURIComponent(path)}`;
    } else {
      $("#web").src = target.origin === location.origin ? path : url;
    }
    tab("web");
  }

  async function menu() {
    const { button } = await call("GET", "/sandbox/api/phone/menu");
    $("#menu").replaceChildren(...button.map((b) => {
      const box = el("div", {});
      const sub = b.sub_button ? el("div", { class: "sub", hidden: true }, ...b.sub_button.map((s) => item(s, box))) : null;
      box.append(el("button", { type: "button", onclick: () => (sub ? show(sub, sub.hidden) : act(b)) }, b.name));
      if (sub) box.append(sub);
      return box;
    }));
  }
  function item(b, box) {
    return el("button", { type: "button", onclick: () => { show(box.querySelector(".sub"), false); act(b); } }, b.name);
  }
  function act(b) {
    if (b.type === "view") openPage(b.url);
    else push("click", b.key || b.name);
  }

  // --- the Mini Program: its calls to /mp/v1, as the Mini Program would make them ----------------
  function log(data) { $("#mp-log").textContent = JSON.stringify(data, null, 2); }
  const mp = (method, path, body) => call(method, path, body, state.mpToken ? { Authorization: `Bearer ${state.mpToken}` } : {});

  async function mpLogin() {
    const { code } = await call("POST", "/sandbox/api/phone/codes", { openid: state.openid });
    const session = await mp("POST", "/mp/v1/session", { code });
    state.mpToken = session.token;
    log(session);
  }
  async function mpPhone() {
    const phone = $("#sms-phone").value.trim();
    if (!phone) throw new Error("请先填写手机号");
    const { code } = await call("POST", "/sandbox/api/phone/codes", { phone });
    log(await mp("POST", "/mp/v1/phone", { code }));
  }
  async function mpOfferings() {
    const { offerings } = await mp("GET", "/mp/v1/offerings");
    $("#mp-list").replaceChildren(...offerings.map((o) => el("li", {}, o.title, " ",
      el("button", { type: "button", onclick: () => run(async () => log(await mp("POST", `/mp/v1/offerings/${o.id}/signup`, {}))) }, "报名"))));
    log({ offerings: offerings.length });
  }
  async function mpSignups() {
    const { signups } = await mp("GET", "/mp/v1/signups");
    $("#mp-list").replaceChildren(...signups.map((s) => {
      const item = el("li", { dataset: { status: s.status } }, `${s.title} · ${s.status_name}`, " ");
      if (s.status !== "confirmed") return item;      // a code is shown for a confirmed place only
      item.append(el("button", { type: "button", onclick: () => run(async () => {
        const shown = await mp("GET", `/mp/v1/signups/${s.id}/code`);
        log(shown);
        // What the merchant's camera would read from the QR code: the code, and the page it opens.
        item.replaceChildren(`${s.title} · 券码`, el("br"),
          el("code", { class: "claim-code" }, shown.code), el("br"),
          el("a", { href: shown.url.replace(/^https?:\/\/[^/]+/, ""), target: "_blank", rel: "noopener" }, "在核销页打开（扫码）"));
      }) }, "出示核销码"));
      return item;
    }));
    log({ signups: signups.length });
  }
  const run = (fn) => fn().catch(fail);

  document.addEventListener("DOMContentLoaded", async () => {
    try {
      const people = await call("GET", "/sandbox/api/people");
      $("#worker").replaceChildren(el("option", { value: "" }, "请选择"),
        ...people.workers.map((w) => el("option", { value: w.openid, dataset: { phone: w.phone } }, `${w.name}（${w.member ? "会员" : "职工"}）`)));
      await menu();
    } catch (err) { fail(err); }
    $("#worker").addEventListener("change", (e) => {
      $("#sms-phone").value = e.target.selectedOptions[0].dataset.phone || "";
      choose(e.target.value);
    });
    $("#new-user").addEventListener("click", () => run(async () => {
      const { openid } = await call("POST", "/sandbox/api/phone/users");
      $("#worker").value = "";
      $("#sms-phone").value = "";
      choose(openid);
    }));
    // With a scene filled in, the follow comes from scanning that union's QR code (qrscene_…).
    $("#follow").addEventListener("click", () => push("follow", $("#scene").value.trim()));
    $("#unfollow").addEventListener("click", () => push("unfollow", ""));
    $("#scan").addEventListener("click", () => push("scan", $("#scene").value.trim()));
    $("#send").addEventListener("submit", (e) => {
      e.preventDefault();
      const text = $("#text").value.trim();
      if (text) { $("#text").value = ""; push("text", text); }
    });
    for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => tab(b.dataset.tab));
    $("#mp-login").addEventListener("click", () => run(mpLogin));
    $("#mp-phone").addEventListener("click", () => run(mpPhone));
    $("#mp-offerings").addEventListener("click", () => run(mpOfferings));
    $("#mp-signups").addEventListener("click", () => run(mpSignups));
    setInterval(poll, 3000);
  });
})();
