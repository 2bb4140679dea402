/* 川工之家 H5 pages: shared helpers, then the logic of each page (chosen by <body data-page>). */
(function () {
  "use strict";

  const API = "/h5/api/v1/";
  const PHONE = /^1[3-9]\d{9}$/;
  const OAUTH_TRIED = "h5.oauth_tried_at";
  let csrfToken = "";

  // --- small DOM helpers (static/shared/dom.js) -------------------------------------------------
  const { $, show, el, setMessage, pad } = window.dom;
  /** The trimmed text of the field that matches selector. */
  const value = (selector) => $(selector).value.trim();

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

  /** A file sent as the request body (streamed uploads); answers like api(). */
  async function upload(path, file) {
    let response;
    try {
      response = await fetch(API + path, { method: "POST", credentials: "same-origin", body: file,
        headers: { Accept: "application/json", "Content-Type": "application/octet-stream",
                   "X-CSRF-Token": csrfToken || "" } });
    } catch (e) {
      throw new ApiError(0, "network", "网络连接失败，请检查网络后重试");
    }
    let data = null;
    try { data = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok || data === null) {
      const error = (data && data.error) || {};
      throw new ApiError(response.status, error.code || `http_${response.status}`,
        error.message || "上传失败，请稍后再试", 0);
    }
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

  /** Hide #loading; with errorText, show it in #fatal. */
  function loadingDone(errorText) {
    show($("#loading"), false);
    if (errorText) {
      setMessage($("#fatal .error"), errorText);
      show($("#fatal"));
    }
  }

  /** The signed-in worker, or null when the page has been sent to sign in or shows why not. */
  async function signedIn(next) {
    try {
      return await loadMe();
    } catch (err) {
      if (isSignedOut(err)) requireSignIn(next);
      else loadingDone(err.message);
      return null;
    }
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

  // --- 注册 (register.html) ---------------------------------------------------------------------
  async function registerPage() {
    const me = await signedIn("/h5/register.html");
    if (!me) return;
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
    const me = await signedIn(next);
    if (!me) return;
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

  // --- 会员业务的共用部分（入会、认证、我的会员、建会） -------------------------------------------
  // The vocabularies of wxbackend/services/member_forms.py: the server accepts exactly these.
  const ETHNICITIES = ("汉族 蒙古族 回族 藏族 维吾尔族 苗族 彝族 壮族 布依族 朝鲜族 满族 侗族 瑶族 " +
    "白族 土家族 哈尼族 哈萨克族 傣族 黎族 傈僳族 佤族 畲族 高山族 拉祜族 水族 东乡族 纳西族 景颇族 " +
    "柯尔克孜族 土族 达斡尔族 仫佬族 羌族 布朗族 撒拉族 毛南族 仡佬族 锡伯族 阿昌族 普米族 塔吉克族 " +
    "怒族 乌孜别克族 俄罗斯族 鄂温克族 德昂族 保安族 裕固族 京族 塔塔尔族 独龙族 鄂伦春族 赫哲族 " +
    "门巴族 珞巴族 基诺族").split(" ");
  const EDUCATION = ["小学及以下", "初中", "高中", "中专", "大专", "本科", "硕士研究生", "博士研究生"];
  const POLITICAL_STATUS = ["中共党员", "中共预备党员", "共青团员", "民主党派", "无党派人士", "群众"];
  const HOUSEHOLD_TYPES = ["城镇", "农村"];
  const STATUS_TONES = { pending: "amber", approved: "green", rejected: "red", withdrawn: "" };
  // Errors about one field: the field is marked, the message stays next to the submit button.
  const FIELD_ERRORS = {
    name_invalid: "name", id_number_invalid: "id_number", id_number_checksum: "id_number",
    id_number_birth_date: "id_number", id_number_under_age: "id_number",
    credit_code_invalid: "credit_code", credit_code_checksum: "credit_code",
  };

  function fillSelect(select, values, placeholder) {
    select.replaceChildren(el("option", { value: "", textContent: placeholder }),
      ...values.map((v) => el("option", { value: v, textContent: v })));
  }

  function markInvalid(form, code) {
    form.querySelectorAll("[aria-invalid]").forEach((f) => f.removeAttribute("aria-invalid"));
    const field = FIELD_ERRORS[code] && form.querySelector(`[name=${FIELD_ERRORS[code]}]`);
    if (field) field.setAttribute("aria-invalid", "true");
  }

  /** 18 characters, an "x" typed as "X". */
  function idNumberInput(input) {
    input.addEventListener("input", () => {
      input.value = input.value.replace(/[^0-9xX]/g, "").toUpperCase().slice(0, 18);
    });
  }

  const maskId = (n) => (n.length > 8 ? `${n.slice(0, 4)}**********${n.slice(-4)}` : n);

  /** 查找基层工会 inside `box` (by name, region or credit code); the worker chooses one of the
   *  results and onPick(union) is called (onPick(null) when they search again). */
  function unionSearch(box, onPick) {
    const id = box.id;
    const text = (name, props) => el("input", { id: `${id}-${name}`, name: `${id}-${name}`, type: "text",
                                                autocomplete: "off", ...props });
    const q = text("q", { maxLength: 40, placeholder: "如：天府软件、锦江宾馆", enterKeyHint: "search" });
    const city = el("select", { id: `${id}-city` }, el("option", { value: "", textContent: "正在加载…" }));
    const county = el("select", { id: `${id}-county`, disabled: true },
      el("option", { value: "", textContent: "请先选择市（州）" }));
    const credit = text("credit", { maxLength: 18, placeholder: "18 位数字或字母", spellcheck: false,
                                    autocapitalize: "characters", enterKeyHint: "search" });
    const error = el("p", { className: "error", hidden: true, role: "alert" });
    const go = el("button", { type: "button", className: "button secondary", textContent: "查找工会" });
    const results = el("div", { className: "union-results", "aria-live": "polite" });
    const fields = el("div", null,
      el("label", { htmlFor: q.id, textContent: "工会或单位名称" }), q,
      el("div", { className: "pair" },
        el("div", null, el("label", { htmlFor: city.id, textContent: "市（州）（选填）" }), city),
        el("div", null, el("label", { htmlFor: county.id, textContent: "区（县）（选填）" }), county)),
      el("label", { htmlFor: credit.id, textContent: "单位统一社会信用代码（选填）" }), credit,
      error, go, results);
    const chosenText = el("p", { className: "chosen-text" });
    const change = el("button", { type: "button", className: "link-button", textContent: "重新选择" });
    const chosenBox = el("div", { className: "chosen", hidden: true }, chosenText, change);
    box.replaceChildren(fields, chosenBox);
    let chosen = null;

    regionPicker(city, county, null).catch(() => {
      city.replaceChildren(el("option", { value: "", textContent: "地区列表暂时无法加载" }));
      city.disabled = true;
    });

    function renderResults(unions) {
      if (!unions.length) {
        results.replaceChildren(el("p", { className: "notice" },
          "没有找到符合条件的工会。请换个关键词，或向单位了解工会的全称。单位还没有建立工会的，可以",
          el("a", { href: "/h5/found.html", textContent: "申请建会" }), "。"));
        return;
      }
      const many = unions.length >= 20;
      results.replaceChildren(
        el("p", { className: "muted", textContent: many ? "找到的工会较多，仅显示前 20 个，请输入更完整的名称："
          : `找到 ${unions.length} 个工会，请选择：` }),
        ...unions.map((union) => {
          const where = [union.employer_name, union.region_name, union.parent_name && `上级：${union.parent_name}`];
          const option = el("button", { type: "button", className: "union-option" },
            el("strong", { textContent: union.name }),
            el("span", { className: "muted", textContent: where.filter(Boolean).join(" · ") }));
          option.addEventListener("click", () => pick(union));
          return option;
        }));
    }

    async function search() {
      setMessage(error, "");
      const params = new URLSearchParams();
      const region = county.value || city.value;
      if (q.value.trim()) params.set("q", q.value.trim());
      if (region) params.set("region", region);
      if (credit.value.trim()) params.set("credit_code", credit.value.trim().toUpperCase());
      go.disabled = true;
      results.replaceChildren(el("p", { className: "loading", textContent: "正在查找…" }));
      try {
        renderResults((await api("GET", `unions?${params}`)).unions);
      } catch (err) {
        results.replaceChildren();
        setMessage(error, err.message);
      } finally {
        go.disabled = false;
      }
    }

    function pick(union) {
      chosen = union;
      chosenText.replaceChildren("已选择：", el("strong", { textContent: union.name }));
      show(fields, false);
      show(chosenBox);
      onPick(union);
    }

    change.addEventListener("click", () => {
      chosen = null;
      show(chosenBox, false);
      show(fields);
      onPick(null);
      q.focus();
    });
    go.addEventListener("click", search);
    for (const input of [q, credit]) {
      input.addEventListener("keydown", (event) => {
        if (event.key !== "Enter") return;
        event.preventDefault();     // not the surrounding form's submit
        search();
      });
    }
    return { chosen: () => chosen };
  }

  function applicationFacts(a) {
    const unionLabel = { found: "审核工会", transfer: "转入工会" }[a.kind] || "工会";
    const status = el("span", null, tag(a.status_label, STATUS_TONES[a.status]),
      a.status === "pending" && a.overdue ? tag("已超过审核期限", "red") : null);
    const facts = [fact("申请事项", a.kind_label), fact("办理状态", status), fact(unionLabel, a.union.name)];
    if (a.from_union) facts.push(fact("转出工会", a.from_union.name));
    if (a.kind === "found") facts.push(fact("拟建工会", a.form.union_name));
    facts.push(fact("提交时间", formatTime(a.created_at)));
    if (a.status === "pending") facts.push(fact("审核期限", `${formatTime(a.due_at, false)} 前`));
    else if (a.reviewed_at) facts.push(fact("办理时间", formatTime(a.reviewed_at)));
    if (a.status === "rejected" && a.reason) facts.push(fact("未通过原因", a.reason));
    if (a.status === "approved" && a.member_no) facts.push(fact("会员编号", a.member_no));
    return el("dl", { className: "facts" }, ...facts);
  }

  function memberFacts(m) {
    return [
      fact("会员编号", m.member_no),
      fact("姓名", m.name),
      fact("身份证号码", m.id_number),
      fact("手机号", m.phone || "未登记"),
      fact("所在工会", m.union.name),
      fact("入会日期", m.joined_on),
      fact("会籍状态", tag(m.status_label, m.status === "active" ? "green" : "amber")),
      fact("工作单位", m.employer || "—"),
    ];
  }

  function showSubmitted(application) {
    $("#submitted-body").replaceChildren(applicationFacts(application));
    show($("#submitted"));
  }

  /** The start of an application page (join, certify, found): sign in, load the membership and
   *  hide #loading; then onMember(member) for a member (when given), the pending application of
   *  this kind, or #need-phone without a verified phone. Returns the worker when the form is due. */
  async function applicationPage(path, kind, onMember) {
    const me = await signedIn(path);
    if (!me) return null;
    const overview = await api("GET", "membership");
    show($("#loading"), false);
    if (onMember && overview.member) { onMember(overview.member); return null; }
    const pending = overview.applications.find((a) => a.kind === kind && a.status === "pending");
    if (pending) { showSubmitted(pending); return null; }
    if (!me.account.phone_verified) { show($("#need-phone")); return null; }
    return me;
  }

  /** Submitting an application form: check() returns a message when something is missing, #agree
   *  must be ticked (it enables the submit button); send()'s application then replaces `hide`.
   *  A field the server refuses is marked unless markFields is false. */
  function applicationForm(form, { check, send, hide = [form], markFields = true }) {
    const errorBox = $(".error", form);
    const agree = $("#agree");
    const submit = $("[type=submit]", form);
    agree.addEventListener("change", () => { submit.disabled = !agree.checked; });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      setMessage(errorBox, "");
      const missing = check();
      if (missing) { setMessage(errorBox, missing); return; }
      if (!agree.checked) { setMessage(errorBox, "请阅读并同意《隐私政策》"); return; }
      submit.disabled = true;
      try {
        const { application } = await send();
        for (const node of hide) show(node, false);
        showSubmitted(application);
        window.scrollTo(0, 0);
      } catch (err) {
        if (markFields) markInvalid(form, err.code);
        setMessage(errorBox, err.message);
      } finally {
        submit.disabled = !agree.checked;
      }
    });
  }

  // --- 申请入会 (join.html) ---------------------------------------------------------------------
  async function joinPage() {
    const me = await applicationPage("/h5/join.html", "join", (m) => {
      $("#member-text").textContent = `您是${m.union.name}的会员，会员编号 ${m.member_no}。`;
      show($("#member"));
    });
    if (!me) return;

    const form = $("#join-form");
    fillSelect($("#ethnicity"), ETHNICITIES, "请选择民族");
    fillSelect($("#education"), EDUCATION, "请选择学历");
    fillSelect($("#political-status"), POLITICAL_STATUS, "请选择政治面貌");
    fillSelect($("#household-type"), HOUSEHOLD_TYPES, "请选择户籍类型");
    idNumberInput($("#id-number"));
    $("#phone").textContent = me.account.phone || "";
    $("[data-version]", form).textContent = me.privacy_version;

    const search = unionSearch($("#union-search"), (union) => {
      $("#step-union").className = `card step ${union ? "done" : "current"}`;
      show(form, Boolean(union));
      if (!union) return;
      form.className = "card step current";
      if (!value("#employer") && union.employer_name) $("#employer").value = union.employer_name;
      form.scrollIntoView({ behavior: "smooth", block: "start" });
    });

    applicationForm(form, {
      check: () => (search.chosen() ? "" : "请先选择要加入的工会"),
      send: () => api("POST", "membership/join", {
        union_id: search.chosen().id, name: value("#name"), id_number: value("#id-number"),
        ethnicity: value("#ethnicity"), education: value("#education"),
        political_status: value("#political-status"), household_type: value("#household-type"),
        migrant_worker: $("#migrant").checked, employer: value("#employer"), job: value("#job"),
        privacy_version: me.privacy_version,
      }),
      hide: [$("#apply")],
    });
    show($("#apply"));
  }

  // --- 会员认证 (certify.html) ------------------------------------------------------------------
  // Every miss gets one answer (it says nothing about the roster); the union settles it by
  // checking the worker's papers (认证申诉).
  const DISPUTABLE = new Set(["certify_no_match"]);

  async function certifyPage() {
    const certified = (member) => {
      $("#certified-facts").replaceChildren(...memberFacts(member));
      show($("#certified"));
    };
    const me = await applicationPage("/h5/certify.html", "certify", certified);
    if (!me) return;

    const form = $("#certify-form");
    const errorBox = $(".error", form);
    const submit = $("[type=submit]", form);
    const disputeForm = $("#dispute-form");
    const disputeError = $(".error", disputeForm);
    let disputeUnion = null;        // the union search, built when first needed
    idNumberInput($("#id-number"));
    $("[data-version]", disputeForm).textContent = me.privacy_version;
    const entered = () => ({ name: value("#name"), id_number: value("#id-number") });

    function openDispute() {
      const who = entered();
      if (!who.name || who.id_number.length !== 18) {
        setMessage(errorBox, "请先填写姓名和 18 位身份证号码，再提交认证申诉");
        return;
      }
      $("#dispute-who").textContent = `${who.name}（身份证号码 ${maskId(who.id_number)}）`;
      if (!disputeUnion) disputeUnion = unionSearch($("#dispute-union"), () => setMessage(disputeError, ""));
      show(disputeForm);
      disputeForm.scrollIntoView({ behavior: "smooth", block: "start" });
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      setMessage(errorBox, "");
      show(disputeForm, false);
      submit.disabled = true;
      let limited = false;
      try {
        const { member } = await api("POST", "membership/certify", entered());
        show(form, false);
        certified(member);
        window.scrollTo(0, 0);
      } catch (err) {
        markInvalid(form, err.code);
        setMessage(errorBox, err.message);
        limited = err.status === 429;
        if (limited || DISPUTABLE.has(err.code)) show($("#open-dispute"));
        if (DISPUTABLE.has(err.code)) openDispute();
      } finally {
        submit.disabled = limited;          // no more attempts from this page for now
      }
    });
    $("#open-dispute").addEventListener("click", openDispute);
    $("#close-dispute").addEventListener("click", () => {
      show(disputeForm, false);
      form.scrollIntoView({ behavior: "smooth", block: "start" });
    });

    applicationForm(disputeForm, {
      check: () => (disputeUnion && disputeUnion.chosen() ? "" : "请选择您所在的基层工会"),
      send: () => api("POST", "membership/certify/dispute", {
        ...entered(), union_id: disputeUnion.chosen().id, note: value("#note"), privacy_version: me.privacy_version,
      }),
      hide: [form, disputeForm],
      markFields: false,
    });
    show(form);
  }

  // --- 我的会员 (membership.html) ---------------------------------------------------------------
  async function membershipPage() {
    const me = await signedIn("/h5/membership.html");
    if (!me) return;
    let overview = await api("GET", "membership");
    const image = $("#card-image");
    const cardError = $("#card-error");
    const transferForm = $("#transfer-form");
    let transferUnion = null;

    function loadCard(fresh) {
      setMessage(cardError, "");
      show(image);
      image.src = `${API}membership/card.png${fresh ? `?t=${Date.now()}` : ""}`;
    }

    // An <img> cannot read the error: ask again through fetch to show the server's message.
    image.addEventListener("error", async () => {
      show(image, false);
      try {
        await api("GET", "membership/card.png");
        setMessage(cardError, "会员卡加载失败，请点击“刷新会员卡”重试");
      } catch (err) {
        setMessage(cardError, err.code === "bad_response" ? "会员卡加载失败，请点击“刷新会员卡”重试" : err.message);
      }
    });
    $("#card-refresh").addEventListener("click", () => loadCard(true));

    function withdrawControl(application) {
      const box = el("div", { className: "withdraw" });
      const start = el("button", { type: "button", className: "button plain small", textContent: "撤回申请" });
      const error = el("p", { className: "error", hidden: true, role: "alert" });
      const ask = () => {
        const yes = el("button", { type: "button", className: "button small", textContent: "确认撤回" });
        const no = el("button", { type: "button", className: "button plain small", textContent: "取消" });
        no.addEventListener("click", () => box.replaceChildren(start));
        yes.addEventListener("click", async () => {
          yes.disabled = true;
          try {
            await api("POST", `membership/applications/${application.id}/withdraw`);
            overview = await api("GET", "membership");
            render();
          } catch (err) {
            setMessage(error, err.message);
            yes.disabled = false;
          }
        });
        box.replaceChildren(el("div", { className: "notice action" },
          el("span", { textContent: "确定撤回这份申请吗？撤回后可以重新申请。" }),
          el("span", { className: "buttons" }, yes, no)), error);
      };
      start.addEventListener("click", ask);
      box.append(start);
      return box;
    }

    function render() {
      const m = overview.member;
      show($("#not-member"), !m);
      show($("#member"), Boolean(m));
      show($("#card"), Boolean(m) && m.status !== "withdrawn");
      if (m) {
        $("#member-facts").replaceChildren(...memberFacts(m));
        if (m.status !== "withdrawn" && !image.getAttribute("src")) loadCard(false);
      }
      const list = overview.applications;
      $("#applications").replaceChildren(...(list.length ? list.map((a) => el("div",
        { className: "application" }, applicationFacts(a), a.status === "pending" ? withdrawControl(a) : null))
        : [el("p", { className: "muted", textContent: "暂无申请记录。" })]));
      const transferring = list.some((a) => a.kind === "transfer" && a.status === "pending");
      const canTransfer = Boolean(m) && m.status === "active" && !transferring;
      show(transferForm, canTransfer);
      if (canTransfer && !transferUnion) {
        transferUnion = unionSearch($("#transfer-union"), () => setMessage($(".error", transferForm), ""));
      }
    }

    transferForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const errorBox = $(".error", transferForm);
      setMessage(errorBox, "");
      const union = transferUnion && transferUnion.chosen();
      if (!union) { setMessage(errorBox, "请选择要转入的工会"); return; }
      const button = $("[type=submit]", transferForm);
      button.disabled = true;
      try {
        await api("POST", "membership/transfer", { union_id: union.id, reason: value("#transfer-reason") });
        overview = await api("GET", "membership");
        render();
        $("#applications").scrollIntoView({ behavior: "smooth", block: "center" });
      } catch (err) {
        setMessage(errorBox, err.message);
      } finally {
        button.disabled = false;
      }
    });

    show($("#loading"), false);
    show($("#content"));
    render();
  }

  // --- 申请建会 (found.html) --------------------------------------------------------------------
  async function foundPage() {
    const me = await applicationPage("/h5/found.html", "found");
    if (!me) return;

    const form = $("#found-form");
    const errorBox = $(".error", form);
    const upper = $("#upper");
    $("#phone").textContent = me.account.phone || "";
    $("[data-version]", form).textContent = me.privacy_version;
    show(form);

    // 上级工会: those that may approve a union in the unit's region (its county's and city's
    // union, the provincial industry unions), nearest first.
    let pick = () => "";
    let asked = "";
    async function fillUpper() {
      const region = pick() || $("#city").value;
      if (region === asked) return;
      asked = region;
      upper.disabled = true;
      if (!region) {
        upper.replaceChildren(el("option", { value: "", textContent: "请先选择单位所在地区" }));
        return;
      }
      upper.replaceChildren(el("option", { value: "", textContent: "正在加载…" }));
      try {
        const { unions } = await api("GET", `unions/upper?region=${encodeURIComponent(region)}`);
        if (region !== asked) return;         // the worker has chosen another region meanwhile
        upper.replaceChildren(...unions.map((u) => el("option", { value: String(u.id), textContent: u.name })));
        upper.disabled = unions.length === 0;
      } catch (err) {
        asked = "";
        upper.replaceChildren(el("option", { value: "", textContent: "上级工会暂时无法加载" }));
        setMessage(errorBox, err.message);
      }
    }
    try {
      pick = await regionPicker($("#city"), $("#county"), null);
      $("#city").addEventListener("change", fillUpper);
      $("#county").addEventListener("change", fillUpper);
    } catch (err) {
      setMessage(errorBox, err.message);
    }

    const headcount = $("#headcount");
    headcount.addEventListener("input", () => {
      const n = parseInt(headcount.value, 10);
      setMessage($("#headcount-hint"), !(n > 0) ? "" : n >= 25 ? "职工 25 人以上的单位，应建立工会委员会。"
        : "职工不足 25 人的单位，可以建立工会委员会，也可以选举工会组织员一人。");
    });
    $("#credit-code").addEventListener("input", (event) => {
      event.target.value = event.target.value.replace(/\s/g, "").toUpperCase().slice(0, 18);
    });

    applicationForm(form, {
      check: () => (pick() ? "" : "请选择单位所在的市（州）和区（县）"),
      send: () => {
        const count = Number(headcount.value);
        return api("POST", "unions/found", {
          union_name: value("#union-name"), employer_name: value("#employer-name"),
          credit_code: value("#credit-code"), headcount: Number.isInteger(count) && count > 0 ? count : null,
          region_code: pick(), upper_union_id: Number(upper.value) || null, organiser_name: value("#organiser"),
          privacy_version: me.privacy_version,
        });
      },
    });
  }

  // --- 工会活动、普惠服务 (activities.html, services.html) ---------------------------------------
  const MODE_NAMES = { first_come: "先到先得", lottery: "报名抽签", review: "报名审核" };
  const ACTION_NAMES = { first_come: "立即抢", lottery: "报名参加抽签", review: "报名（需审核）" };
  const GATED = { quiz: "去答题", vote: "去投票" };

  /** When an item takes place (or, without a time of its own, its sign-up window). */
  function itemTime(o) {
    if (o.starts_at) return `${formatTime(o.starts_at)}${o.ends_at ? ` 至 ${formatTime(o.ends_at)}` : ""}`;
    return `${formatTime(o.opens_at)} 至 ${formatTime(o.closes_at)}`;
  }

  /** What a sign-up answered, in a sentence for the worker. */
  function signupSentence(signup) {
    if (signup.status === "held") return `已为您保留名额，请在 ${formatTime(signup.hold_until)} 前到“我的报名”确认`;
    return signup.status_name;
  }

  function offeringCard(o) {
    const facts = el("dl", { className: "facts" },
      fact("主办", o.org_name), fact("时间", itemTime(o)), o.place ? fact("地点", o.place) : null,
      fact("方式", MODE_NAMES[o.mode]),
      fact(o.mode === "first_come" ? "剩余" : "名额", o.mode === "first_come" ? `${o.left} / ${o.stock}` : String(o.stock)));
    const card = el("div", { className: "card", id: `item-${o.id}` },
      el("h2", { textContent: o.title }), o.summary ? el("p", { className: "muted", textContent: o.summary }) : null, facts);
    if (o.mode === "lottery" && o.seed_hash) {
      card.append(el("p", { className: "muted small-print",
        textContent: `抽签种子摘要（SHA-256）：${o.seed_hash}。报名截止后开奖并公布种子，任何人都可复核中签结果。` }));
    }
    if (o.state === "upcoming") {
      card.append(el("p", { className: "notice", textContent: `即将开始：${formatTime(o.opens_at)} 开放报名` }));
    } else if (o.state === "closed") {
      card.append(el("p", { className: "notice", textContent: "已结束" }));
    } else if (!o.eligible) {
      card.append(el("p", { className: "notice", textContent: `不能参加：${o.reason}` }));
    } else if (GATED[o.form]) {
      // Answering or voting comes first; its page offers the sign-up once it is done.
      card.append(el("a", { className: "button", href: `/h5/${o.form}.html#o=${o.id}`, textContent: GATED[o.form] }));
    } else {
      card.append(...signupControl(o));
    }
    return card;
  }

  /** The sign-up button of an open item, with the places its answer and its error appear. */
  function signupControl(o) {
    const answer = el("p", { className: "ok", hidden: true });
    const error = el("p", { className: "error", role: "alert", hidden: true });
    const button = el("button", { type: "button", className: "button", textContent: ACTION_NAMES[o.mode] });
    button.addEventListener("click", async () => {
      button.disabled = true;
      setMessage(error, "");
      try {
        const { signup } = await api("POST", `offerings/${o.id}/signup`);
        setMessage(answer, signupSentence(signup));
        show(button, false);
      } catch (err) {
        setMessage(error, err.code === "network" ? `${err.message}（可再次点击重试）` : err.message);
        // Sold out, over a cap, not open: the answer stands; a network failure may be retried.
        button.disabled = !["network", "drop_busy", "unavailable"].includes(err.code);
      }
    });
    return [button, answer, error];
  }

  async function offeringsPage() {
    const kind = document.body.dataset.kind;
    const me = await signedIn(location.pathname);
    if (!me) return;
    const { offerings } = await api("GET", "offerings");
    const mine = offerings.filter((o) => o.kind === kind);
    $("#offerings").replaceChildren(...mine.map(offeringCard));
    show($("#empty"), mine.length === 0);
    loadingDone();
    show($("#content"));
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  // --- 我的报名 (signups.html) -------------------------------------------------------------------
  function signupCard(s, reload) {
    const card = el("div", { className: "card" },
      el("h2", { textContent: s.title }),
      el("dl", { className: "facts" }, fact("主办", s.org_name), fact("状态", s.status_name),
        s.starts_at ? fact("时间", formatTime(s.starts_at)) : null, s.place ? fact("地点", s.place) : null,
        s.hold_until ? fact("请在此前确认", formatTime(s.hold_until)) : null));
    const error = el("p", { className: "error", role: "alert", hidden: true });
    const act = (label, path, tone) => {
      const button = el("button", { type: "button", className: `button ${tone || ""}`, textContent: label });
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await api("POST", path);
          await reload();
        } catch (err) {
          setMessage(error, err.message);
          button.disabled = false;
        }
      });
      return button;
    };
    if (s.status === "held") card.append(act("确认名额", `signups/${s.id}/confirm`));
    if (s.status === "confirmed") {
      const image = el("img", { className: "code", alt: "券码二维码：请出示给工作人员扫描", width: 240, height: 240 });
      const refresh = () => { image.src = `${API}signups/${s.id}/code.png?t=${Date.now()}`; };
      const box = el("div", { className: "code-box", hidden: true },
        el("p", { className: "muted", textContent: "请向工作人员出示此码；券码每分钟自动更新，截图无效。" }), image);
      const button = el("button", { type: "button", className: "button", textContent: "出示券码" });
      let timer = null;
      button.addEventListener("click", () => {
        const opening = box.hidden;
        show(box, opening);
        button.textContent = opening ? "收起券码" : "出示券码";
        clearInterval(timer);
        if (opening) { refresh(); timer = setInterval(refresh, 60000); }
      });
      image.addEventListener("error", () => setMessage(error, "券码加载失败，请刷新页面后重试"));
      card.append(button, box);
    }
    const cancellable = ["entered", "pending", "waitlisted", "held", "confirmed"].includes(s.status) &&
      (!s.cancel_until || new Date(s.cancel_until).getTime() > Date.now());
    if (cancellable) card.append(act("取消报名", `signups/${s.id}/cancel`, "plain"));
    card.append(error);
    return card;
  }

  async function signupsPage() {
    const me = await signedIn("/h5/signups.html");
    if (!me) return;
    const reload = async () => {
      const { signups } = await api("GET", "signups");
      $("#signups").replaceChildren(...signups.map((s) => signupCard(s, reload)));
      show($("#empty"), signups.length === 0);
    };
    await reload();
    loadingDone();
    show($("#content"));
  }

  // --- 现场签到 (checkin.html#o=<item>&code=<venue code>) ---------------------------------------
  async function checkinPage() {
    const params = new URLSearchParams(location.hash.slice(1));
    const me = await signedIn(`/h5/checkin.html${location.hash}`);
    if (!me) return;
    loadingDone();
    show($("#content"));
    try {
      await api("POST", `offerings/${encodeURIComponent(params.get("o") || "0")}/checkin`,
        { code: params.get("code") || "" });
      $("#checkin-title").textContent = "签到成功";
      setMessage($("#checkin-ok"), "欢迎参加，请按现场工作人员指引入场。");
    } catch (err) {
      $("#checkin-title").textContent = "签到未成功";
      setMessage($("#checkin-error"), err.message);
    }
  }

  // --- 线上答题 (quiz.html#o=<item>) and 线上投票 (vote.html#o=<item>) ---------------------------
  const LETTERS = "ABCDEFGH";
  const letters = (indexes) => indexes.map((i) => LETTERS[i]).join("") || "未作答";

  /** The item of a quiz or vote page (#o=<id>), after sign-in; null when signed out. */
  async function gatedItem(path) {
    const id = new URLSearchParams(location.hash.slice(1)).get("o") || "0";
    const me = await signedIn(`${path}${location.hash}`);
    if (!me) return null;
    const { offering } = await api("GET", `offerings/${encodeURIComponent(id)}`);
    $("#item-title").textContent = offering.title;
    document.title = `${offering.title} · 川工之家`;
    return offering;
  }

  /** Once the quiz is passed or the vote cast, the item's own sign-up (when it is still open). */
  function offerSignup(o, done, why) {
    const box = $("#item-signup");
    if (o.state !== "open" || !o.eligible) {
      show(box, false);
      return;
    }
    box.replaceChildren(el("h2", { textContent: "报名" }),
      ...(done ? signupControl(o) : [el("p", { className: "muted", textContent: why })]));
    show(box);
  }

  function questionItem(q, n, answered) {
    const head = el("p", { className: "prompt" }, `${n + 1}. ${q.prompt} `,
      q.multiple ? tag("多选", "amber") : null);
    const options = el("div", { className: "choices" }, ...q.options.map((text, i) => el("label",
      { className: "check" }, el("input", { type: q.multiple ? "checkbox" : "radio", name: `q${n}`, value: String(i),
        disabled: Boolean(answered), checked: Boolean(answered && answered.chosen.includes(i)) }),
      el("span", { textContent: `${LETTERS[i]}. ${text}` }))));
    const item = el("li", {}, head, options);
    if (answered) {
      item.append(el("p", { className: answered.right ? "ok" : "error",
        textContent: answered.right ? "回答正确" : `回答错误（您选 ${letters(answered.chosen)}）` +
          (answered.answer ? `，正确答案：${letters(answered.answer)}` : "") }));
      if (answered.explanation) item.append(el("p", { className: "muted", textContent: `解析：${answered.explanation}` }));
    }
    return item;
  }

  async function quizPage() {
    const o = await gatedItem("/h5/quiz.html");
    if (!o) return;
    let timer = null;
    const form = $("#quiz-round");
    const clock = (round) => {
      clearInterval(timer);
      const due = Date.now() + round.seconds_left * 1000;
      const tick = () => {
        const left = Math.max(0, Math.round((due - Date.now()) / 1000));
        $("#quiz-clock").textContent = `剩余 ${pad(Math.floor(left / 60))}:${pad(left % 60)}`;
        if (left === 0) {
          clearInterval(timer);
          form.requestSubmit();  // time is up: what was chosen is handed in
        }
      };
      tick();
      timer = setInterval(tick, 1000);
    };
    const showRound = (round) => {
      form.dataset.round = String(round.id);
      $("#quiz-questions").replaceChildren(...round.questions.map((q, n) => questionItem(q, n, null)));
      setMessage($("#round-error"), "");
      show(form);
      show($("#quiz-start"), false);
      clock(round);
    };
    const showResult = (round) => {
      $("#quiz-result").replaceChildren(
        el("h2", { textContent: round.passed ? "恭喜，本轮通过" : "本轮未通过" }),
        el("p", { className: round.passed ? "ok" : "notice",
          textContent: `答对 ${round.score} 题（及格 ${round.pass_mark} 题）` }),
        el("ol", { className: "questions" }, ...round.questions.map((q, n) => questionItem(q, n, q))));
      show($("#quiz-result"));
    };
    const render = async () => {
      const { quiz } = await api("GET", `offerings/${o.id}/quiz`);
      const r = quiz.rules;
      $("#quiz-rules").replaceChildren(fact("每轮", `${r.per_round} 题，限时 ${Math.round(r.round_seconds / 60)} 分钟`),
        fact("及格", `答对 ${r.pass_mark} 题`), fact("次数", `每天 ${r.rounds_per_day} 次` +
          (r.rounds_total ? `，共 ${r.rounds_total} 次` : "")),
        fact("今日剩余", `${quiz.rounds_left_today} 次`),
        quiz.best_score === null ? null : fact("最好成绩", `答对 ${quiz.best_score} 题`));
      const open = o.state === "open" && o.eligible;
      setMessage($("#quiz-status"), o.state === "upcoming" ? `即将开始：${formatTime(o.opens_at)}` :
        o.state === "closed" ? "答题已结束" : !o.eligible ? `不能参加：${o.reason}` :
          quiz.rounds_left_today === 0 && !quiz.current ? "今日答题次数已用完，明天再来吧" : "");
      show($("#quiz-start"), open && !quiz.current && quiz.rounds_left_today > 0);
      $("#quiz-start").textContent = quiz.rounds_used ? "再答一轮" : "开始答题";
      if (quiz.current) showRound(quiz.current); else show(form, false);
      $("#quiz-history").replaceChildren(...quiz.history.map((h) => el("li", {},
        `${formatTime(h.started_at)} · ${h.state_name}${h.score === null ? "" : ` · 答对 ${h.score} 题`}`)));
      show($("#quiz-no-history"), quiz.history.length === 0);
      offerSignup(o, quiz.passed, r.pass_daily ? "当天答题通过后即可报名。" : "答题通过后即可报名。");
    };
    $("#quiz-start").addEventListener("click", async () => {
      $("#quiz-start").disabled = true;
      setMessage($("#quiz-error"), "");
      show($("#quiz-result"), false);
      try {
        showRound((await api("POST", `offerings/${o.id}/quiz/rounds`)).round);
      } catch (err) {
        setMessage($("#quiz-error"), err.message);
      } finally {
        $("#quiz-start").disabled = false;
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      const answers = [...$("#quiz-questions").children].map((_, n) =>
        [...form.querySelectorAll(`input[name="q${n}"]:checked`)].map((input) => Number(input.value)));
      button.disabled = true;
      try {
        const { round } = await api("POST", `quiz-rounds/${form.dataset.round}/answers`, { answers });
        clearInterval(timer);
        show(form, false);
        showResult(round);
        await render();
      } catch (err) {
        setMessage($("#round-error"), err.message);
        if (err.code === "round_expired") {
          clearInterval(timer);
          await render();
        }
      } finally {
        button.disabled = false;
      }
    });
    await render();
    loadingDone();
    show($("#content"));
  }

  async function votePage() {
    const o = await gatedItem("/h5/vote.html");
    if (!o) return;
    const render = (poll) => {
      const r = poll.rules;
      $("#vote-rules").textContent = `每人每天 ${r.votes_per_day} 票，同一选项每天一票` +
        (r.votes_total ? `，共 ${r.votes_total} 票` : "") + `；${poll.show_counts_name}。今日还可投 ${poll.votes_left_today} 票。`;
      const open = o.state === "open" && o.eligible;
      $("#vote-options").replaceChildren(...poll.options.map((opt) => el("li", {},
        el("label", { className: "check" },
          el("input", { type: "checkbox", name: "option", value: String(opt.id),
            disabled: !open || opt.voted_today || poll.votes_left_today === 0 }),
          el("span", {}, el("strong", { textContent: opt.label }),
            opt.summary ? el("span", { className: "muted", textContent: ` ${opt.summary}` }) : null,
            opt.voted_today ? tag("今日已投", "green") : null)),
        opt.votes === null ? null : el("span", { className: "badge", textContent: `${opt.votes} 票` }))));
      show($("#vote-submit"), open && poll.votes_left_today > 0);
      if (!open) setMessage($("#vote-error"), o.state === "upcoming" ? `即将开始：${formatTime(o.opens_at)}` :
        o.state === "closed" ? "投票已结束" : `不能参加：${o.reason}`);
      offerSignup(o, poll.votes_cast > 0, "投票后即可报名。");
    };
    $("#vote-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const chosen = [...document.querySelectorAll("input[name=option]:checked")].map((i) => Number(i.value));
      setMessage($("#vote-ok"), "");
      if (!chosen.length) {
        setMessage($("#vote-error"), "请先选择要投票的选项");
        return;
      }
      $("#vote-submit").disabled = true;
      try {
        const { poll } = await api("POST", `offerings/${o.id}/poll/votes`, { option_ids: chosen });
        setMessage($("#vote-error"), "");
        setMessage($("#vote-ok"), `投票成功，共投 ${chosen.length} 票`);
        render(poll);
      } catch (err) {
        setMessage($("#vote-error"), err.message);
      } finally {
        $("#vote-submit").disabled = false;
      }
    });
    render((await api("GET", `offerings/${o.id}/poll`)).poll);
    loadingDone();
    show($("#content"));
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

  /** <main data-shell>: the cards every signed-in page starts with — #loading, #fatal (with a
   *  retry button) and #signin (WeChat sign-in, back to this page). */
  function insertShell(main) {
    main.prepend(
      el("div", { id: "loading", className: "card loading", textContent: "正在加载…" }),
      el("div", { id: "fatal", className: "card", hidden: true },
        el("h2", { textContent: "暂时无法加载" }),
        el("p", { className: "error", hidden: true }),
        el("button", { type: "button", className: "button", textContent: "重新加载",
          onclick: () => location.reload() })),
      el("div", { id: "signin", className: "card", hidden: true },
        el("h2", { textContent: "请先登录" }),
        el("p", { className: "muted", textContent: "请点击下方按钮使用微信登录。如果多次登录不成功，请稍后再试。" }),
        el("a", { className: "button", href: oauthUrl(location.pathname), textContent: "微信登录" })));
  }

  const shellHost = $("main[data-shell]");
  if (shellHost) insertShell(shellHost);

  const pages = {
    register: registerPage, me: mePage, login: loginPage,
    join: joinPage, certify: certifyPage, membership: membershipPage, found: foundPage,
    offerings: offeringsPage, signups: signupsPage, checkin: checkinPage, quiz: quizPage, vote: votePage,
  };
  // Pages of their own scripts (appeals.js …) register here; they run once every deferred
  // script has, so the order of the script tags does not matter.
  window.h5 = Object.freeze({
    api, upload, signedIn, loadingDone, formatTime, query, tag, fact,
    register(name, fn) { pages[name] = fn; },
  });
  document.addEventListener("DOMContentLoaded", () => {
    const page = pages[document.body.dataset.page];
    if (page) {
      page().catch((err) => loadingDone((err && err.message) || "页面加载失败，请刷新重试"));
    }
  });
})();
