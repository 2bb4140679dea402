/* 川工之家 H5 pages: shared helpers, then the logic of each page (chosen by <body data-page>). */
(function () {
  "use strict";

  const API = "/h5/api/v1/";
  const PHONE = /^1[3-9]\d{9}$/;
  const OAUTH_TRIED = "h5.oauth_tried_at";
  let csrfToken = "";

  // --- small DOM helpers ------------------------------------------------------------------------
  const $ = (selector, root) => (root || document).querySelector(selector);
  const show = (node, on = true) => { if (node) node.hidden = !on; };

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children) {
      if (child != null) node.append(child);
    }
    return node;
  }

  function setMessage(node, text) {
    if (!node) return;
    node.textContent = text || "";
    show(node, Boolean(text));
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  /** An ISO time as Beijing time, "2026-11-24 09:30" (or just the day). */
  function formatTime(iso, withClock = true) {
    if (!iso) return "—";
    const t = new Date(iso).getTime();
    if (Number.isNaN(t)) return iso;
    const d = new Date(t + 8 * 3600 * 1000);
    const day = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    return withClock ? `${day} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}` : day;
  }

  function inWeChat() { return /MicroMessenger/i.test(navigator.userAgent); }

  function query(name) { return new URLSearchParams(location.search).get(name); }

  // --- the JSON API -----------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, message, retryAfter) {
      super(message);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter;
    }
  }

  async function api(method, path, body) {
    const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      options.headers["Content-Type"] = "application/json";
      if (csrfToken) options.headers["X-CSRF-Token"] = csrfToken;
      options.body = JSON.stringify(body || {});
    }
    let response;
    try {
      response = await fetch(API + path, options);
    } catch (e) {
      throw new ApiError(0, "network", "网络连接失败，请检查网络后重试");
    }
    let data = null;
    try { data = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(response.status, error.code || `http_${response.status}`,
        error.message || "服务暂时不可用，请稍后再试",
        parseInt(response.headers.get("Retry-After") || "", 10) || 0);
    }
    if (data === null) throw new ApiError(response.status, "bad_response", "服务暂时不可用，请稍后再试");
    return data;
  }

  async function loadMe() {
    const me = await api("GET", "me");
    csrfToken = me.csrf_token || "";
    sessionStorage.removeItem(OAUTH_TRIED);
    return me;
  }

  const isSignedOut = (err) => err instanceof ApiError && err.status === 401;

  // --- signing in -------------------------------------------------------------------------------
  /** Where to go after signing in: only our own H5 pages or the platform's authorize endpoint. */
  function safeNext(next) {
    if (typeof next !== "string") return "/h5/me.html";
    const allowed = next.startsWith("/h5/") || next.startsWith("/api/v1/oauth/authorize?");
    if (!allowed || next.slice(1).includes("//") || next.includes("\\")) return "/h5/me.html";
    return next;
  }

  function oauthUrl(next, scope) {
    let url = `/wechat/oauth/start?next=${encodeURIComponent(next)}`;
    if (scope) url += `&scope=${scope}`;
    return url;
  }

  /** Not signed in: WeChat's OAuth inside WeChat (once a minute at most), else the SMS login page. */
  function requireSignIn(next) {
    if (!inWeChat()) {
      location.replace(`/h5/login.html?next=${encodeURIComponent(next)}`);
      return;
    }
    const tried = Number(sessionStorage.getItem(OAUTH_TRIED) || 0);
    if (Date.now() - tried > 60000) {
      sessionStorage.setItem(OAUTH_TRIED, String(Date.now()));
      location.replace(oauthUrl(next));
      return;
    }
    // Came straight back without a session (cookies blocked, login refused): let the worker retry.
    const card = $("#signin");
    $("a.button", card).href = oauthUrl(next);
    show($("#loading"), false);
    show(card);
  }

  // --- pieces used by several pages -----------------------------------------------------------
  function countdown(button, seconds) {
    const label = "重新获取";
    let left = seconds;
    button.disabled = true;
    const tick = () => {
      if (left <= 0) {
        clearInterval(timer);
        button.disabled = false;
        button.textContent = label;
        return;
      }
      button.textContent = `${left} 秒后重新获取`;
      left -= 1;
    };
    const timer = setInterval(tick, 1000);
    tick();
  }

  /** Phone + SMS code form (inputs name=phone and name=code, a [data-send] button); calls
   *  onVerified(account) once the code is accepted. */
  function phoneForm(form, onVerified) {
    const phone = $("[name=phone]", form);
    const code = $("[name=code]", form);
    const send = $("[data-send]", form);
    const submit = $("[type=submit]", form);
    const error = $(".error", form);
    const info = $(".ok", form);
    const digits = (input, max) => { input.value = input.value.replace(/\D/g, "").slice(0, max); };
    phone.addEventListener("input", () => digits(phone, 11));
    code.addEventListener("input", () => digits(code, 6));

    function checkPhone() {
      if (PHONE.test(phone.value)) return true;
      setMessage(error, "请输入正确的 11 位手机号码");
      phone.focus();
      return false;
    }

    send.addEventListener("click", async () => {
      setMessage(error, "");
      setMessage(info, "");
      if (!checkPhone()) return;
      send.disabled = true;
      try {
        const sent = await api("POST", "sms/send", { phone: phone.value });
        setMessage(info, `验证码已发送至 ${phone.value.slice(0, 3)}****${phone.value.slice(-4)}，` +
          `${Math.round((sent.expires_in || 300) / 60)} 分钟内有效`);
        countdown(send, sent.resend_after || 60);
        code.focus();
      } catch (err) {
        setMessage(error, err.message);
        if (err.status === 429 && err.retryAfter > 0 && err.retryAfter <= 600) countdown(send, err.retryAfter);
        else send.disabled = false;
      }
    });

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      setMessage(error, "");
      if (!checkPhone()) return;
      if (!/^\d{6}$/.test(code.value)) {
        setMessage(error, "请输入 6 位数字验证码");
        code.focus();
        return;
      }
      submit.disabled = true;
      try {
        const result = await api("POST", "phone/verify", { phone: phone.value, code: code.value });
        await onVerified(result.account);
      } catch (err) {
        setMessage(error, err.message);
      } finally {
        submit.disabled = false;
      }
    });
  }

  /** Sichuan's 市州 and 区县, loaded once. */
  let regionsPromise = null;
  function loadRegions() {
    if (!regionsPromise) {
      regionsPromise = api("GET", "regions").then(({ regions }) => {
        const byCode = new Map(regions.map((r) => [r.code, r]));
        const cities = regions.filter((r) => r.level === "city").sort((a, b) => a.code.localeCompare(b.code));
        const counties = new Map(cities.map((c) => [c.code, []]));
        for (const r of regions) {
          if (r.level === "county" && counties.has(r.city_code)) counties.get(r.city_code).push(r);
        }
        counties.forEach((list) => list.sort((a, b) => a.code.localeCompare(b.code)));
        return { byCode, cities, counties };
      });
      regionsPromise.catch(() => { regionsPromise = null; });
    }
    return regionsPromise;
  }

  function regionLabel(region, regions) {
    if (!region) return "未选择";
    const county = regions && regions.byCode.get(region.code);
    const city = county && regions.byCode.get(county.city_code);
    return city && city.code !== county.code ? `${city.name} ${county.name}` : region.name;
  }

  /** Two selects, 市（州） then 区（县）; returns a function giving the chosen code ("" if none). */
  async function regionPicker(citySelect, countySelect, current) {
    const regions = await loadRegions();
    const option = (value, text) => el("option", { value, textContent: text });
    citySelect.replaceChildren(option("", "请选择市（州）"),
      ...regions.cities.map((c) => option(c.code, c.name)));

    function fillCounties(cityCode) {
      const list = regions.counties.get(cityCode) || [];
      if (!cityCode) {
        countySelect.replaceChildren(option("", "请先选择市（州）"));
      } else if (list.length === 0) {          // a 市州 without 区县 rows: the city itself
        const city = regions.byCode.get(cityCode);
        countySelect.replaceChildren(option(city.code, city.name));
      } else {
        countySelect.replaceChildren(option("", "请选择区（县）"), ...list.map((c) => option(c.code, c.name)));
      }
      countySelect.disabled = !cityCode;
    }

    citySelect.onchange = () => {
      fillCounties(citySelect.value);
      if (citySelect.value) countySelect.focus();
    };
    const known = current && regions.byCode.get(current.code);
    citySelect.value = known ? known.city_code : "";
    fillCounties(citySelect.value);
    if (known) countySelect.value = known.code;
    return () => countySelect.value;
  }

  function loadingDone(errorText) {
    show($("#loading"), false);
    if (errorText) {
      setMessage($("#fatal .error"), errorText);
      show($("#fatal"));
    }
  }

  // --- 注册 (register.html) ---------------------------------------------------------------------
  async function registerPage() {
    const next = "/h5/register.html";
    let me;
    try {
      me = await loadMe();
    } catch (err) {
      if (isSignedOut(err)) { requireSignIn(next); return; }
      loadingDone(err.message);
      return;
    }
    const regions = await loadRegions().catch(() => null);
    let editingRegion = false;
    let pickerReady = null;
    $("[data-version]").textContent = me.privacy_version;

    async function render() {
      const a = me.account;
      const done = {
        phone: a.phone_verified,
        region: Boolean(a.region),
        privacy: a.privacy_version === me.privacy_version,
      };
      const current = ["phone", "region", "privacy"].find((s) => !done[s]);
      for (const step of ["phone", "region", "privacy"]) {
        const card = $(`#step-${step}`);
        const state = done[step] ? "done" : step === current ? "current" : "waiting";
        card.className = `card step ${state}`;
        $(".badge", card).textContent = { done: "已完成", current: "请完成此步", waiting: "待完成" }[state];
        const open = state === "current" || (step === "region" && editingRegion);
        show($(".step-body", card), open);
        show($(".summary", card), !open);
      }
      $("#step-phone .summary").textContent = done.phone ? `已验证手机号 ${a.phone}` : "请先完成此步";
      $("#step-region .summary-text").textContent = done.region ? regionLabel(a.region, regions)
        : "完成上一步后继续";
      show($("#edit-region"), done.region);
      $("#step-privacy .summary").textContent = done.privacy ? `已同意《隐私政策》（版本 ${a.privacy_version}）`
        : a.privacy_version ? `隐私政策已更新（您同意的是版本 ${a.privacy_version}），请阅读后重新同意`
          : "完成上一步后继续";
      show($("#done"), a.registered);
      show($("#steps"));
      if ((current === "region" || editingRegion) && !pickerReady) {
        pickerReady = regionPicker($("#city"), $("#county"), a.region).catch((err) => {
          pickerReady = null;
          setMessage($("#step-region .error"), err.message);
        });
      }
    }

    phoneForm($("#phone-form"), async (account) => {
      me.account = account;
      await render();
    });

    $("#edit-region").addEventListener("click", () => {
      editingRegion = true;
      render();
    });

    $("#save-region").addEventListener("click", async (event) => {
      const errorBox = $("#step-region .error");
      setMessage(errorBox, "");
      const pick = pickerReady && await pickerReady;
      const code = pick ? pick() : "";
      if (!code) { setMessage(errorBox, "请选择您所在的市（州）和区（县）"); return; }
      event.target.disabled = true;
      try {
        me.account = (await api("PUT", "me/region", { region_code: code })).account;
        editingRegion = false;
        await render();
      } catch (err) {
        setMessage(errorBox, err.message);
      } finally {
        event.target.disabled = false;
      }
    });

    const agree = $("#agree");
    const accept = $("#accept");
    agree.addEventListener("change", () => { accept.disabled = !agree.checked; });
    accept.addEventListener("click", async () => {
      const errorBox = $("#step-privacy .error");
      setMessage(errorBox, "");
      accept.disabled = true;
      try {
        me.account = (await api("POST", "me/privacy", { version: me.privacy_version })).account;
        await render();
        if (me.account.registered) $("#done").scrollIntoView({ behavior: "smooth" });
      } catch (err) {
        setMessage(errorBox, err.message);
        accept.disabled = !agree.checked;
      }
    });

    show($("#loading"), false);
    await render();
  }

  // --- 我的账号 (me.html) -----------------------------------------------------------------------
  const IDENTITY_KINDS = {
    oa_openid: "微信公众号 openid",
    mp_openid: "微信小程序 openid",
    unionid: "微信 unionid",
    app_user: "平台接入入口的用户编号",
  };

  function fact(label, value) {
    return el("div", null, el("dt", { textContent: label }),
      value instanceof Node ? el("dd", null, value) : el("dd", { textContent: value == null ? "—" : value }));
  }

  function tag(text, tone) { return el("span", { className: `tag ${tone || ""}`, textContent: text }); }

  function renderData(data, regions) {
    const a = data.account || {};
    const facts = el("dl", { className: "facts" },
      fact("账号编号", el("code", { textContent: a.id })),
      fact("账号状态", a.status === "active" ? "正常" : a.status),
      fact("手机号", a.phone || "未绑定"),
      fact("微信昵称", a.nickname || "未获取"),
      fact("所在地区", regionLabel(a.region, regions)),
      fact("账号创建时间", formatTime(a.created_at)),
      fact("注册完成时间", a.registered ? formatTime(a.registered_at) : "未完成注册"),
      fact("同意的隐私政策版本", a.privacy_version || "未同意"),
      fact("同意隐私政策时间", formatTime(data.privacy_accepted_at)),
      fact("待处理的账号冲突", `${data.open_conflicts || 0} 项`));
    const idents = (data.identities || []).map((i) => el("div", { className: "ident" },
      el("div", { textContent: IDENTITY_KINDS[i.kind] || i.kind }),
      el("code", { textContent: i.subject }),
      el("div", { className: "muted",
        textContent: `签发方：${i.issuer === "open" ? "微信开放平台" : i.issuer}　自 ${formatTime(i.since, false)} 起` })));
    return [
      el("h2", { textContent: "我的个人信息" }),
      el("p", { className: "muted", textContent: "以下是川工之家平台保存的与您账号有关的全部信息。" }),
      facts,
      el("h2", { className: "sub", textContent: "关联的登录标识" }),
      idents.length ? el("div", null, ...idents) : el("p", { className: "muted", textContent: "暂无" }),
      el("details", null, el("summary", { textContent: "查看原始数据（JSON）" }),
        el("pre", { textContent: JSON.stringify(data, null, 2) })),
    ];
  }

  async function mePage() {
    const next = "/h5/me.html";
    let me;
    try {
      me = await loadMe();
    } catch (err) {
      if (isSignedOut(err)) { requireSignIn(next); return; }
      loadingDone(err.message);
      return;
    }
    let regions = await loadRegions().catch(() => null);
    const panels = ["#data-view", "#region-editor", "#cancel-box"];
    const openPanel = (id) => {
      panels.forEach((p) => show($(p), p === id));
      if (id) $(id).scrollIntoView({ behavior: "smooth", block: "start" });
    };

    function render() {
      const a = me.account;
      const facts = $("#facts");
      const privacyOk = a.privacy_version === me.privacy_version;
      const nickname = a.nickname ? a.nickname : inWeChat()
        ? el("a", { href: oauthUrl(next, "snsapi_userinfo"), textContent: "授权获取微信昵称" }) : "未获取";
      facts.replaceChildren(
        fact("手机号", a.phone || "未绑定"),
        fact("所在地区", regionLabel(a.region, regions)),
        fact("注册状态", a.registered ? tag(`已注册 · ${formatTime(a.registered_at, false)}`, "green")
          : tag("未完成注册", "amber")),
        fact("隐私政策", a.privacy_version ? tag(`已同意 ${a.privacy_version} 版`, privacyOk ? "green" : "amber")
          : tag("未同意", "amber")),
        fact("微信昵称", nickname));
      const todo = !a.registered ? "您还没有完成注册，完成后即可办理入会、认证和活动报名。"
        : !privacyOk ? `隐私政策已更新为 ${me.privacy_version} 版，请阅读后重新同意。` : "";
      setMessage($("#todo-text"), todo);
      show($("#todo"), Boolean(todo));
      show($("#account"));
    }

    $("#btn-data").addEventListener("click", async () => {
      const box = $("#data-view");
      box.replaceChildren(el("p", { className: "loading", textContent: "正在加载…" }));
      openPanel("#data-view");
      try {
        const data = await api("GET", "me/data");
        box.replaceChildren(...renderData(data, regions),
          el("button", { className: "button plain", textContent: "收起", onclick: () => openPanel(null) }));
      } catch (err) {
        box.replaceChildren(el("p", { className: "error", textContent: err.message }));
      }
    });

    let pick = null;
    $("#btn-region").addEventListener("click", async () => {
      setMessage($("#region-editor .error"), "");
      openPanel("#region-editor");
      try {
        pick = await regionPicker($("#city"), $("#county"), me.account.region);
        regions = await loadRegions();
      } catch (err) {
        setMessage($("#region-editor .error"), err.message);
      }
    });
    $("#save-region").addEventListener("click", async (event) => {
      const errorBox = $("#region-editor .error");
      const code = pick ? pick() : "";
      if (!code) { setMessage(errorBox, "请选择您所在的市（州）和区（县）"); return; }
      event.target.disabled = true;
      try {
        me.account = (await api("PUT", "me/region", { region_code: code })).account;
        render();
        openPanel(null);
        window.scrollTo(0, 0);
        setMessage($("#saved"), "地区已更新");
        setTimeout(() => setMessage($("#saved"), ""), 3000);
      } catch (err) {
        setMessage(errorBox, err.message);
      } finally {
        event.target.disabled = false;
      }
    });

    $("#btn-logout").addEventListener("click", async (event) => {
      event.target.disabled = true;
      try {
        await api("POST", "logout");
        csrfToken = "";
        sessionStorage.setItem(OAUTH_TRIED, String(Date.now()));
        show($("#account"), false);
        show($("#signed-out"));
      } catch (err) {
        if (isSignedOut(err)) { show($("#account"), false); show($("#signed-out")); return; }
        setMessage($("#action-error"), err.message);
        event.target.disabled = false;
      }
    });

    const confirmInput = $("#confirm");
    const confirmButton = $("#confirm-cancel");
    $("#btn-cancel").addEventListener("click", () => {
      confirmInput.value = "";
      confirmButton.disabled = true;
      setMessage($("#cancel-box .error"), "");
      openPanel("#cancel-box");
    });
    confirmInput.addEventListener("input", () => { confirmButton.disabled = confirmInput.value.trim() !== "注销"; });
    document.querySelectorAll("[data-close]").forEach((b) => b.addEventListener("click", () => openPanel(null)));
    confirmButton.addEventListener("click", async () => {
      confirmButton.disabled = true;
      try {
        const result = await api("POST", "me/cancel", { confirm: "注销" });
        csrfToken = "";
        sessionStorage.setItem(OAUTH_TRIED, String(Date.now()));
        $("#cancelled-id").textContent = result.cancelled;
        show($("#account"), false);
        show($("#cancelled"));
        window.scrollTo(0, 0);
      } catch (err) {
        setMessage($("#cancel-box .error"), err.message);
        confirmButton.disabled = confirmInput.value.trim() !== "注销";
      }
    });

    show($("#loading"), false);
    render();
  }

  // --- 手机号登录 (login.html) -----------------------------------------------------------------
  async function loginPage() {
    const next = safeNext(query("next"));
    const go = () => location.replace(next);
    const showLogin = () => {
      show($("#already"), false);
      show($("#login"));
      $("#wechat-login").href = oauthUrl(next);
      show($("#wechat-box"), inWeChat() && next.startsWith("/h5/"));
    };
    try {
      const me = await loadMe();
      $("#current-phone").textContent = me.account.phone || "（未绑定手机号的微信账号）";
      $("#continue").href = next;
      show($("#already"));
    } catch (err) {
      showLogin();
    }
    show($("#loading"), false);

    $("#switch").addEventListener("click", async () => {
      try { await api("POST", "logout"); } catch (err) { /* already signed out */ }
      csrfToken = "";
      showLogin();
    });

    phoneForm($("#phone-form"), async () => go());
  }

  // --- every page -------------------------------------------------------------------------------
  /** <a data-back href="fallback">: back to the previous page of this site, else to href. */
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[data-back]");
    if (!link) return;
    if (document.referrer.startsWith(location.origin + "/") && history.length > 1) {
      event.preventDefault();
      history.back();
    }
  });

  const retry = $("#fatal [data-retry]");
  if (retry) retry.addEventListener("click", () => location.reload());

  const pages = { register: registerPage, me: mePage, login: loginPage };
  const page = pages[document.body.dataset.page];
  if (page) {
    page().catch((err) => loadingDone((err && err.message) || "页面加载失败，请刷新重试"));
  }
})();
