/* 川工之家 工会干部工作台：登录、账号管理、定期核实、备案记录、审计记录、会员审核、会员名册、
   会员卡核验、修改密码；以及会员卡二维码打开的核验页（card.html）。
   会话是 HttpOnly Cookie；每个写请求带上会话的 X-CSRF-Token。界面按权限显示菜单，
   是否允许由服务端决定，这里只显示服务端返回的结果和提示。 */
(function () {
  "use strict";

  const API = "/admin/v1";
  const ROLE_NAMES = { operator: "平台管理员", super_admin: "超级管理员", cadre: "工会干部" };
  const DUTY_NAMES = { system: "系统管理", security: "安全管理", audit: "安全审计", business: "业务" };
  const STATUS_NAMES = { active: "正常", disabled: "已停用" };
  const STATE_NAMES = { ok: "正常", due_soon: "即将到期", overdue: "已逾期" };
  const FILING_NAMES = { appointed: "任命", replaced: "更换", removed: "撤销" };
  const ACTION_NAMES = {
    "login": "登录", "login.new_device": "新设备登录", "login.failed": "登录失败", "logout": "退出登录",
    "operator.create": "创建平台账号", "super_admin.create": "创建超级管理员", "cadre.create": "创建干部账号",
    "permissions.set": "变更权限", "cadre.verify": "定期核实", "cadre.disable_overdue": "逾期未核实停用",
    "password.change": "修改密码", "ledger.export": "导出工作台账",
    "application.approve": "通过会员业务申请", "application.reject": "驳回会员业务申请",
    "card.verify": "核验会员卡", "org.create": "新建基层工会",
    "roster.import": "导入会员名册", "roster.export": "导出会员名册",
  };
  const DETAIL_NAMES = {
    username: "用户名", org: "工会", duty: "岗位", permissions: "权限", replaced: "替换账号",
    before: "变更前", after: "变更后", failures: "连续失败次数", user_agent: "浏览器", rows: "行数",
    kind: "申请类型", reason: "原因", member_no: "会员编号", purpose: "用途", filename: "文件",
    org_code: "工会编码", status: "结果",
  };
  const NOTICE_TEXT = {
    new_device: "检测到新的登录设备，已记录。如非本人操作，请立即修改密码并联系平台。",
    ended_other_session: "您在其他地方的登录已被结束。",
    failed_attempts: "自上次登录以来，您的账号有登录失败记录（可能已被暂时锁定）。如非本人操作，请立即修改密码并联系平台。",
  };

  const state = {
    me: null, csrf: "", catalogue: {}, orgs: null, view: "",
    cadres: [], editing: null, editingOffering: null, verifying: null, auditNext: null, pendingCreate: null,
    reviewsNext: null, reviewing: null, membersNext: null, importTimer: null, standalone: false,
  };

  // --- 小工具（DOM 部分在 static/shared/dom.js）--------------------------------------------------
  const { $, show, el, setMessage, pad } = window.dom;

  /** ISO 时间按北京时间显示："2026-11-24 09:30"（或只显示日期）。 */
  function formatTime(iso, withClock = true) {
    if (!iso) return "—";
    const t = new Date(iso).getTime();
    if (Number.isNaN(t)) return String(iso);
    const d = new Date(t + 8 * 3600 * 1000);
    const day = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    return withClock ? `${day} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}` : day;
  }

  function permName(code) { return state.catalogue[code] || code; }

  /** 权限按目录中的顺序排列（与勾选框一致）。 */
  function inCatalogueOrder(codes) {
    const order = Object.keys(state.catalogue);
    const rank = (code) => (order.includes(code) ? order.indexOf(code) : order.length);
    return [...codes].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  }
  function can(permission) { return Boolean(state.me && state.me.permissions.includes(permission)); }
  function who(c) { return `${c.display_name}（${c.username}）`; }

  function orgName(id) {
    const org = (state.orgs || []).find((o) => o.id === id);
    return org ? org.name : "";
  }

  // --- 接口 ---------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
      this.handled = false;
    }
  }

  /** 调用 /admin/v1；会话失效（401）时回到登录页并显示原因，调用方不必再显示。
   *  body 为文件（Blob）时原样上传；download 为 true 时返回 { blob, filename }。 */
  async function api(method, path, body, download = false) {
    const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      const raw = body instanceof Blob;
      options.headers["Content-Type"] = raw ? "application/octet-stream" : "application/json";
      options.headers["X-CSRF-Token"] = state.csrf;
      options.body = raw ? body : JSON.stringify(body || {});
    }
    let response;
    try {
      response = await fetch(API + path, options);
    } catch (e) {
      throw new ApiError(0, "network", "网络连接失败，请检查网络后重试");
    }
    if (response.ok && download) return { blob: await response.blob(), filename: attachmentName(response) };
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (response.ok) return data;
    const error = (data && data.error) || {};
    const failure = new ApiError(response.status, error.code || `http_${response.status}`,
                                 error.message || `请求失败（${response.status}），请稍后重试`);
    if (response.status === 401 && path !== "/login" && !state.standalone) {
      failure.handled = true;
      // 首次打开页面时尚未登录，不必提示；会话中途失效时说明原因（超时、在其他地方登录等）
      const quiet = failure.code === "unauthenticated" && !state.me;
      signedOut(quiet ? "" : failure.message, "warn");
    }
    throw failure;
  }

  /** Content-Disposition 中的文件名（filename*=UTF-8''…）。 */
  function attachmentName(response) {
    const header = response.headers.get("Content-Disposition") || "";
    const match = header.match(/filename\*=UTF-8''([^;]+)/i) || header.match(/filename="?([^";]+)"?/i);
    try { return match ? decodeURIComponent(match[1]) : "download"; } catch (e) { return "download"; }
  }

  function saveBlob(blob, filename) {
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: filename, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  /** 显示错误；会话失效的错误已由 api() 处理。 */
  function report(node, error) {
    if (error && error.handled) return;
    setMessage(node, (error && error.message) || "操作失败，请稍后重试");
  }

  /** 读取列表（GET path）：读取期间停用 button（如“加载更多”，可为 null）；失败时在 errorNode 显示原因并返回 null。 */
  async function fetchPage(path, button, errorNode) {
    if (button) button.disabled = true;
    try {
      const data = await api("GET", path);
      setMessage(errorNode, "");
      return data;
    } catch (e) {
      report(errorNode, e);
      return null;
    } finally {
      if (button) button.disabled = false;
    }
  }

  // --- 提示条 -------------------------------------------------------------------------------------
  function notify(text, kind = "info") {
    const box = $("#notices");
    const item = el("div", { class: `alert ${kind} notice`, role: kind === "error" ? "alert" : "status" },
      el("span", {}, text),
      el("button", { type: "button", onclick: () => item.remove() }, "关闭"));
    box.append(item);
    return item;
  }

  function clearNotices() { $("#notices").replaceChildren(); }

  // --- 登录与退出 ---------------------------------------------------------------------------------
  function signedOut(message, kind = "warn") {
    const username = state.me ? state.me.username : "";
    state.me = null;
    state.csrf = "";
    state.orgs = null;
    state.cadres = [];
    state.reviewing = null;
    clearTimeout(state.importTimer);
    closeCreated();
    show($("#create-form"), false);
    for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
    show($("#loading"), false);
    show($("#shell"), false);
    show($("#signin"), true);
    clearNotices();
    if (!message && pendingReturn()) {
      message = "请先登录，登录后将继续核验会员卡。";
      kind = "info";
    }
    const notice = $("#signin-notice");
    notice.className = `alert ${kind}`;
    setMessage(notice, message || "");
    setMessage($("#signin-error"), "");
    const form = $("#signin-form");
    form.password.value = "";
    form.totp.value = "";
    if (username && !form.username.value) form.username.value = username;
    (form.username.value ? form.password : form.username).focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const error = $("#signin-error");
    const username = form.username.value.trim();
    const password = form.password.value;
    const totp = form.totp.value.trim();
    if (!username || !password) {
      setMessage(error, "请输入用户名和密码");
      return;
    }
    if (totp && !/^\d{6}$/.test(totp)) {
      setMessage(error, "动态验证码为 6 位数字");
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    setMessage(error, "");
    try {
      const result = await api("POST", "/login", { username, password, totp });
      state.csrf = result.csrf_token;
      form.password.value = "";
      form.totp.value = "";
      await enter(result.notices || {});
    } catch (e) {
      form.totp.value = "";
      report(error, e);
    } finally {
      button.disabled = false;
    }
  }

  async function signOut() {
    try {
      await api("POST", "/logout", {});
    } catch (e) {
      if (e.handled) return;
    }
    location.hash = "";
    signedOut("您已退出登录。", "info");
  }

  /** 读取当前账号和权限目录，进入工作台。 */
  async function enter(notices) {
    const me = await api("GET", "/me");
    state.me = me.me;
    state.csrf = me.csrf_token;
    state.catalogue = me.catalogue || {};
    const back = pendingReturn();
    if (back) {
      sessionStorage.removeItem(RETURN_KEY);
      location.replace(back);
      return;
    }
    try {
      state.orgs = (await api("GET", "/orgs")).orgs;
    } catch (e) {
      if (e.handled) return;
      state.orgs = [];
    }
    renderShell();
    show($("#loading"), false);
    show($("#signin"), false);
    show($("#shell"), true);
    clearNotices();
    for (const key of ["ended_other_session", "new_device", "failed_attempts"]) {
      if (notices && notices[key]) notify(NOTICE_TEXT[key], key === "ended_other_session" ? "info" : "warn");
    }
    route();
    for (const hook of ENTER_HOOKS) hook();
  }

  function renderShell() {
    const me = state.me;
    const org = orgName(me.org_id);
    $("#who-name").textContent = me.username;
    $("#who-org").textContent = org;
    $("#who-role").textContent = `${ROLE_NAMES[me.role] || me.role} · ${DUTY_NAMES[me.duty] || me.duty}`;
    for (const link of document.querySelectorAll("#menu a[data-view]")) {
      show(link, allowed(link.dataset.perm));
    }
    $("#home-username").textContent = me.username;
    $("#home-org").textContent = org || "—";
    $("#home-role").textContent = ROLE_NAMES[me.role] || me.role;
    $("#home-duty").textContent = DUTY_NAMES[me.duty] || me.duty;
    const perms = $("#home-permissions");
    perms.replaceChildren(...inCatalogueOrder(me.permissions).map((p) => el("span", { class: "perm-tag" }, permName(p))));
    if (!me.permissions.length) perms.textContent = "（暂无，请联系本单位超级管理员授权）";
  }

  // --- 页面切换 -----------------------------------------------------------------------------------
  const VIEWS = {
    home: { load: () => {} },
    accounts: { perm: "account.manage", load: loadAccounts },
    verification: { perm: "account.manage", load: loadVerification },
    filings: { perm: "account.manage", load: loadFilings },
    audit: { perm: "audit.read", load: loadAudit },
    reviews: { perm: "member.review", load: loadReviews },
    members: { perm: "member.review member.import member.export", load: loadMembersView },
    cards: { load: resetCardCheck },
    offerings: { perm: "activity.manage service.manage", load: () => { loadOfferings(); loadVerifiers(); } },
    password: { load: resetPasswordForm },
  };

  /** perm：空格分隔的权限，持有其中任何一项即可。 */
  function allowed(perm) { return !perm || perm.split(" ").some(can); }

  function defaultView() {
    if (can("account.manage")) return "accounts";
    if (can("audit.read")) return "audit";
    if (can("member.review")) return "reviews";
    return "home";
  }

  function route() {
    if (!state.me) return;
    let name = location.hash.replace(/^#/, "");
    if (!VIEWS[name] || !allowed(VIEWS[name].perm)) name = defaultView();
    state.view = name;
    for (const done of document.querySelectorAll("#notices .notice.ok")) done.remove();
    if (name !== "accounts") closeCreated();   // 新账号的绑定信息只显示一次
    for (const section of document.querySelectorAll("main .view")) show(section, section.id === `view-${name}`);
    for (const link of document.querySelectorAll("#menu a[data-view]")) {
      link.classList.toggle("active", link.dataset.view === name);
      if (link.dataset.view === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    VIEWS[name].load();
  }

  // --- 账号管理 -----------------------------------------------------------------------------------
  async function loadAccounts() {
    const data = await fetchPage("/cadres", null, $("#accounts-error"));
    if (data === null) return;
    state.cadres = data.cadres;
    renderAccounts();
    const creator = state.me.role === "operator" || state.me.role === "super_admin";
    show($("#new-account"), creator);
  }

  function renderAccounts() {
    const filter = $("#accounts-filter").value.trim().toLowerCase();
    const rows = state.cadres.filter((c) => !filter ||
      [c.username, c.display_name, c.org.name].some((v) => String(v).toLowerCase().includes(filter)));
    const body = $("#accounts-table tbody");
    body.replaceChildren(...rows.map((c) => {
      const self = c.id === state.me.id;
      return el("tr", { class: self ? "me" : "", dataset: { username: c.username } },
        el("td", { class: "nowrap mono" }, c.username),
        el("td", { class: "nowrap" }, c.display_name, self ? el("span", { class: "tag" }, "本人") : null),
        el("td", {}, c.org.name),
        el("td", { class: "nowrap" }, ROLE_NAMES[c.role] || c.role),
        el("td", { class: "nowrap" }, DUTY_NAMES[c.duty] || c.duty),
        el("td", {}, el("span", { class: `badge ${c.status}` }, STATUS_NAMES[c.status] || c.status)),
        el("td", { class: "perms" }, ...(c.permissions.length
          ? inCatalogueOrder(c.permissions).map((p) => el("span", { class: "perm-tag", title: p }, permName(p)))
          : [el("span", { class: "muted" }, "无")])),
        el("td", { class: "nowrap" }, formatTime(c.verified_at, false)),
        el("td", { class: "nowrap" }, self || c.status !== "active" ? "" :
          el("button", { type: "button", class: "btn small", onclick: () => openPermissions(c) }, "编辑权限")));
    }));
    show($("#accounts-table"), rows.length > 0);
    show($("#accounts-empty"), rows.length === 0);
  }

  /** 权限复选框：只能授予本人持有的（平台管理员可授予目录中的任何权限）。 */
  function permissionChecks(container, checked, idPrefix) {
    const unlimited = state.me.role === "operator";
    container.replaceChildren(...Object.entries(state.catalogue).map(([code, name]) => {
      const allowed = unlimited || can(code);
      const has = checked.includes(code);
      const box = el("input", { type: "checkbox", value: code, id: `${idPrefix}-${code}`,
                                checked: has, disabled: !allowed && !has });
      return el("label", { class: allowed ? "" : "off", htmlFor: box.id,
                           title: allowed ? code : `您未持有“${name}”，不能授予` }, box, name);
    }));
  }

  function checkedValues(container) {
    return [...container.querySelectorAll("input[type=checkbox]:checked")].map((b) => b.value);
  }

  function openCreate() {
    const form = $("#create-form");
    form.reset();
    setMessage($("#create-error"), "");
    show($("#create-replace"), false);
    show($("#created"), false);
    state.pendingCreate = null;
    const me = state.me;
    const role = $("#create-role");
    const roles = me.role === "operator" ? ["super_admin"] : ["cadre"];
    role.replaceChildren(...roles.map((r) => el("option", { value: r }, ROLE_NAMES[r])));
    $("#create-scope").textContent = me.role === "operator"
      ? "平台统一创建各级工会的超级管理员；更换超级管理员将记入备案。"
      : "超级管理员为本单位创建工会干部账号，并授予本人持有的权限。";
    fillOrgs();
    $("#create-duty").value = me.role === "operator" ? "system" : "business";
    permissionChecks($("#create-permissions"), [], "create-perm");
    show(form, true);
    $("#create-username").focus();
  }

  /** 本单位及下级工会，按树排列（同级按代码，即行政区划顺序），带层级。 */
  function orgTree() {
    const orgs = state.orgs || [];
    const ids = new Set(orgs.map((o) => o.id));
    const children = new Map();
    for (const o of orgs) {
      const parent = ids.has(o.parent_id) ? o.parent_id : null;
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(o);
    }
    const out = [];
    const walk = (parent, depth) => {
      const list = (children.get(parent) || []).slice()
        .sort((a, b) => String(a.code || "~").localeCompare(String(b.code || "~")) || a.id - b.id);
      for (const o of list) {
        out.push({ org: o, depth });
        walk(o.id, depth + 1);
      }
    };
    walk(null, 0);
    return out;
  }

  function fillOrgs() {
    const select = $("#create-org");
    const ownOnly = $("#create-role").value === "cadre";
    const list = orgTree().filter((item) => !ownOnly || item.org.id === state.me.org_id);
    select.replaceChildren(...list.map(({ org, depth }) =>
      el("option", { value: String(org.id) }, `${"\u3000".repeat(ownOnly ? 0 : depth)}${org.name}`)));
    select.disabled = ownOnly;
    if (ownOnly) select.value = String(state.me.org_id);
  }

  function randomPassword() {
    const sets = ["ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnpqrstuvwxyz", "23456789", "-_.@#%+="];
    const all = sets.join("");
    const pick = (chars) => chars[crypto.getRandomValues(new Uint32Array(1))[0] % chars.length];
    const chars = sets.map(pick);
    while (chars.length < 16) chars.push(pick(all));
    for (let i = chars.length - 1; i > 0; i--) {
      const j = crypto.getRandomValues(new Uint32Array(1))[0] % (i + 1);
      [chars[i], chars[j]] = [chars[j], chars[i]];
    }
    return chars.join("");
  }

  function readCreateForm() {
    return {
      username: $("#create-username").value.trim().toLowerCase(),
      display_name: $("#create-display-name").value.trim(),
      org_id: Number($("#create-org").value),
      role: $("#create-role").value,
      duty: $("#create-duty").value,
      permissions: checkedValues($("#create-permissions")),
      password: $("#create-password").value,
      replace: false,
    };
  }

  async function submitCreate(event) {
    event.preventDefault();
    const body = readCreateForm();
    const error = $("#create-error");
    show($("#create-replace"), false);
    if (!body.username || !body.display_name) return setMessage(error, "请填写用户名和姓名");
    if (!body.org_id) return setMessage(error, "请选择所属工会");
    if (!body.password) return setMessage(error, "请设置初始密码");
    await createAccount(body);
  }

  async function createAccount(body) {
    const error = $("#create-error");
    const buttons = $("#create-form").querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    setMessage(error, "");
    try {
      const created = await api("POST", "/cadres", body);
      state.pendingCreate = null;
      show($("#create-form"), false);
      showCreated(created);
      notify(`已创建账号 ${body.display_name}（${created.username}）。`, "ok");
      await loadAccounts();
    } catch (e) {
      report(error, e);
      if (e.code === "super_admin_exists") {
        state.pendingCreate = { ...body, replace: true };
        show($("#create-replace"), true);
      }
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  function showCreated(created) {
    $("#created-username").textContent = created.username;
    const uri = created.totp_uri;
    show($("#created-totp"), Boolean(uri));
    show($("#created-no-totp"), !uri);
    const qr = $("#created-qr");
    qr.replaceChildren();
    if (uri) {
      $("#created-uri").value = uri;
      let secret = "";
      try { secret = new URL(uri).searchParams.get("secret") || ""; } catch (e) { secret = ""; }
      $("#created-secret").value = secret.replace(/(.{4})/g, "$1 ").trim();
      try {
        qr.append(qrSvg(uri, 4));
      } catch (e) {
        show(qr, false);
      }
    }
    show($("#created"), true);
    $("#created").scrollIntoView({ block: "start" });
  }

  function closeCreated() {
    $("#created-uri").value = "";
    $("#created-secret").value = "";
    $("#created-qr").replaceChildren();
    show($("#created"), false);
  }

  // 编辑权限
  function openPermissions(cadre) {
    state.editing = cadre;
    $("#permissions-who").textContent =
      `${who(cadre)} · ${cadre.org.name} · ${ROLE_NAMES[cadre.role] || cadre.role} · ${DUTY_NAMES[cadre.duty] || cadre.duty}`;
    permissionChecks($("#permissions-checks"), cadre.permissions, "edit-perm");
    setMessage($("#permissions-error"), "");
    $("#permissions-dialog").showModal();
  }

  async function savePermissions(event) {
    event.preventDefault();
    const cadre = state.editing;
    if (!cadre) return;
    const button = $("#permissions-save");
    button.disabled = true;
    try {
      const result = await api("PUT", `/cadres/${cadre.id}/permissions`,
                               { permissions: checkedValues($("#permissions-checks")) });
      $("#permissions-dialog").close();
      state.editing = null;
      notify(`已更新 ${who(cadre)}的权限：${inCatalogueOrder(result.permissions).map(permName).join("、") || "无"}。`, "ok");
      await loadAccounts();
    } catch (e) {
      report($("#permissions-error"), e);
    } finally {
      button.disabled = false;
    }
  }

  // --- 定期核实 -----------------------------------------------------------------------------------
  async function loadVerification() {
    const data = await fetchPage("/verification", null, $("#verification-error"));
    if (data === null) return;
    $("#verification-intro").textContent =
      `账号须每 ${data.days} 天核实一次：确认使用人仍在岗、账号及权限仍需保留。逾期未核实的账号将被停用。` +
      "超级管理员核实本单位干部和下级工会超级管理员的账号，平台核实各级超级管理员的账号。";
    const count = (s) => data.cadres.filter((c) => c.state === s).length;
    $("#verification-summary").replaceChildren(
      "共 ", el("strong", {}, String(data.cadres.length)), " 个账号，其中已逾期 ",
      el("strong", { class: "text-red" }, String(count("overdue"))), " 个，即将到期 ",
      el("strong", {}, String(count("due_soon"))), " 个。");
    $("#verification-table tbody").replaceChildren(...data.cadres.map((c) =>
      el("tr", { dataset: { username: c.username } },
        el("td", { class: "nowrap" }, c.display_name),
        el("td", { class: "nowrap mono" }, c.username),
        el("td", {}, c.org.name),
        el("td", { class: "nowrap" }, formatTime(c.verified_at, false)),
        el("td", { class: "nowrap" }, formatTime(c.due_at, false)),
        el("td", {}, el("span", { class: `badge ${c.state}` }, STATE_NAMES[c.state] || c.state)),
        el("td", {}, el("button", { type: "button", class: "btn small", onclick: () => openVerify(c) }, "核实")))));
    show($("#verification-table"), data.cadres.length > 0);
    show($("#verification-empty"), data.cadres.length === 0);
  }

  function openVerify(cadre) {
    state.verifying = cadre;
    $("#verify-who").textContent = `${who(cadre)} · ${cadre.org.name}`;
    setMessage($("#verify-error"), "");
    $("#verify-dialog").showModal();
  }

  async function confirmVerify(event) {
    event.preventDefault();
    const cadre = state.verifying;
    if (!cadre) return;
    const button = $("#verify-confirm");
    button.disabled = true;
    try {
      const result = await api("POST", `/cadres/${cadre.id}/verify`, {});
      $("#verify-dialog").close();
      state.verifying = null;
      notify(`已核实 ${who(cadre)}，核实时间 ${formatTime(result.verified_at)}。`, "ok");
      await loadVerification();
    } catch (e) {
      report($("#verify-error"), e);
    } finally {
      button.disabled = false;
    }
  }

  // --- 备案记录 -----------------------------------------------------------------------------------
  async function loadFilings() {
    const data = await fetchPage("/filings", null, $("#filings-error"));
    if (data === null) return;
    const filings = data.filings;
    $("#filings-table tbody").replaceChildren(...filings.map((f) =>
      el("tr", {},
        el("td", {}, f.union),
        el("td", { class: "nowrap" }, FILING_NAMES[f.action] || f.action),
        el("td", { class: "nowrap" }, f.name),
        el("td", { class: "nowrap mono" }, f.username),
        el("td", { class: "nowrap" }, formatTime(f.filed_at)))));
    show($("#filings-table"), filings.length > 0);
    show($("#filings-empty"), filings.length === 0);
  }

  // --- 审计记录 -----------------------------------------------------------------------------------
  function detailText(detail) {
    if (detail == null || detail === "") return "";
    let value = detail;
    if (typeof value === "string") {
      try { value = JSON.parse(value); } catch (e) { return value; }
    }
    if (typeof value !== "object") return String(value);
    return Object.entries(value).filter(([, v]) => v !== null && v !== "").map(([key, v]) => {
      let text = v;
      if (Array.isArray(v)) {
        const perms = key === "permissions" || key === "before" || key === "after";
        text = (perms ? inCatalogueOrder(v).map(permName) : v).join("、") || "无";
      } else if (key === "replaced") {
        text = `cadre:${v}`;
      } else if (key === "duty") {
        text = DUTY_NAMES[v] || v;
      } else if (key === "org") {
        text = orgName(v) || v;
      } else if (typeof v === "object") {
        text = JSON.stringify(v);
      }
      return `${DETAIL_NAMES[key] || key}：${text}`;
    }).join("；");
  }

  function auditRow(r) {
    return el("tr", { dataset: { action: r.action } },
      el("td", { class: "mono" }, String(r.id)),
      el("td", { class: "nowrap" }, formatTime(r.at)),
      el("td", { class: "nowrap" }, r.actor || "—"),
      el("td", {}, r.union || ""),
      el("td", { class: "nowrap", title: r.action }, ACTION_NAMES[r.action] || r.action),
      el("td", { class: "nowrap mono" }, r.target || ""),
      el("td", { class: "detail" }, detailText(r.detail)),
      el("td", { class: "nowrap mono" }, r.ip || ""));
  }

  async function loadAudit(more = false) {
    const error = $("#audit-error");
    const body = $("#audit-table tbody");
    const query = new URLSearchParams({ limit: "50" });
    if (more === true && state.auditNext != null) query.set("before", String(state.auditNext));
    const button = $("#audit-more");
    const data = await fetchPage(`/audit?${query}`, button, error);
    if (data === null) return;
    if (more !== true) body.replaceChildren();
    body.append(...data.records.map(auditRow));
    state.auditNext = data.next_before;
    show(button, data.next_before != null);
    show($("#audit-table"), body.children.length > 0);
    show($("#audit-empty"), body.children.length === 0);
  }

  // --- 会员审核 -----------------------------------------------------------------------------------
  const PAGE = 50;
  // 申请表中各项的名称（入会、认证申诉、接转、建会），按此顺序显示
  const FORM_NAMES = {
    gender: "性别", birth_date: "出生日期", ethnicity: "民族", education: "学历", political_status: "政治面貌",
    household_type: "户籍类型", migrant_worker: "农民工", employer: "工作单位", job: "职务/岗位",
    note: "申诉说明", reason: "接转原因", union_name: "拟建工会名称", employer_name: "单位名称",
    credit_code: "统一社会信用代码", region_code: "所在地区代码", headcount: "职工人数",
    form_of_union: "组织形式", organiser_name: "申请人",
  };

  function formValue(key, value) {
    if (key === "gender") return { 1: "男", 2: "女" }[value] || String(value);
    if (typeof value === "boolean") return value ? "是" : "否";
    if (key === "headcount") return `${value} 人`;
    return String(value);
  }

  function facts(pairs) {
    return pairs.filter(([, value]) => value != null && value !== "")
      .flatMap(([label, value]) => [el("dt", {}, label), el("dd", {}, value)]);
  }

  function pendingOverdue(a) { return a.status === "pending" && a.overdue; }

  function renderCounts(c) {
    $("#count-pending").textContent = String(c.pending);
    $("#count-overdue").textContent = String(c.overdue);
    $("#count-decided").textContent = String(c.decided);
    $("#count-rate").textContent = c.decided ? `${(Math.round((c.decided_on_time * 1000) / c.decided) / 10)}%` : "—";
    $("#reviews-stats .alarm").classList.toggle("on", c.overdue > 0);
  }

  function applicationRow(a) {
    return el("tr", { class: pendingOverdue(a) ? "overdue" : "", dataset: { id: String(a.id), kind: a.kind } },
      el("td", { class: "mono" }, String(a.id)),
      el("td", { class: "nowrap" }, a.kind_label),
      el("td", { class: "nowrap" }, a.name),
      el("td", {}, a.from_union ? `${a.from_union.name} → ${a.union.name}` : a.union.name),
      el("td", { class: "nowrap" }, formatTime(a.created_at)),
      el("td", { class: "nowrap" }, formatTime(a.due_at, false),
        pendingOverdue(a) ? el("span", { class: "badge overdue" }, "已逾期") : null),
      el("td", {}, el("span", { class: `badge app-${a.status}` }, a.status_label)),
      el("td", { class: "nowrap" }, el("button", { type: "button", class: a.decidable ? "btn small primary" : "btn small",
                                                   onclick: () => openApplication(a.id) }, a.decidable ? "审核" : "查看")));
  }

  async function loadReviews(more = false) {
    const error = $("#reviews-error");
    const body = $("#reviews-table tbody");
    const query = new URLSearchParams({ limit: String(PAGE) });
    if ($("#reviews-kind").value) query.set("kind", $("#reviews-kind").value);
    if ($("#reviews-status").value) query.set("status", $("#reviews-status").value);
    if ($("#reviews-overdue").checked) query.set("overdue", "1");
    if (more === true && state.reviewsNext != null) query.set("before", String(state.reviewsNext));
    const button = $("#reviews-more");
    const data = await fetchPage(`/applications?${query}`, button, error);
    if (data === null) return;
    renderCounts(data.counts);
    const list = data.applications;
    if (more !== true) body.replaceChildren();
    body.append(...list.map(applicationRow));
    state.reviewsNext = list.length === PAGE ? list[list.length - 1].id : null;
    show(button, state.reviewsNext != null);
    show($("#reviews-table"), body.children.length > 0);
    show($("#reviews-empty"), body.children.length === 0);
  }

  async function openApplication(id) {
    let a;
    try {
      a = (await api("GET", `/applications/${id}`)).application;
    } catch (e) {
      report($("#reviews-error"), e);
      return;
    }
    state.reviewing = a;
    const form = a.form || {};
    $("#application-title").textContent = `${a.kind_label} · ${a.name}`;
    $("#application-sub").textContent = `申请编号 ${a.id}` + (a.decidable ? "" : "（您可以查看，不能审核）");
    const status = el("span", {}, el("span", { class: `badge app-${a.status}` }, a.status_label),
      pendingOverdue(a) ? el("span", { class: "badge overdue" }, "已逾期") : null);
    $("#application-facts").replaceChildren(...facts([
      ["办理状态", status],
      [a.kind === "found" ? "审核工会" : a.kind === "transfer" ? "转入工会" : "申请工会", a.union.name],
      ["转出工会", a.from_union && a.from_union.name],
      [a.kind === "found" ? "联系人" : "申请人", a.name],
      ["身份证号码", a.id_number],
      ["手机号", a.phone],
      ["名册核对", a.roster_check && a.roster_check.label],
      ...Object.keys(FORM_NAMES).filter((k) => k in form && form[k] != null && !(a.kind === "found" && k === "organiser_name"))
        .map((k) => [FORM_NAMES[k], formValue(k, form[k])]),
      ["提交时间", formatTime(a.created_at)],
      ["审核期限", formatTime(a.due_at, false)],
      ["审核时间", a.reviewed_at && formatTime(a.reviewed_at)],
      ["不通过原因", a.status === "rejected" ? a.reason : null],
      ["会员编号", a.status === "approved" ? a.member_no : null],
    ]));
    $("#reject-reason").value = "";
    setMessage($("#application-error"), "");
    show($("#application-decide"), a.decidable);
    show($("#application-approve"), a.decidable);
    show($("#application-reject"), a.decidable);
    $("#application-dialog").showModal();
  }

  async function decideApplication(approve) {
    const a = state.reviewing;
    if (!a) return;
    const error = $("#application-error");
    const reason = $("#reject-reason").value.trim();
    if (!approve && !reason) {
      setMessage(error, "请填写不通过的原因，申请人会收到这条说明");
      $("#reject-reason").focus();
      return;
    }
    const buttons = $("#application-form").querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    setMessage(error, "");
    try {
      const done = (approve ? await api("POST", `/applications/${a.id}/approve`, {})
        : await api("POST", `/applications/${a.id}/reject`, { reason })).application;
      $("#application-dialog").close();
      state.reviewing = null;
      notify(approve ? `已通过 ${done.name} 的${done.kind_label}${done.member_no ? `，会员编号 ${done.member_no}` : ""}。`
        : `已驳回 ${done.name} 的${done.kind_label}，申请人将收到不通过的原因。`, "ok");
      await loadReviews();
    } catch (e) {
      report(error, e);
      if (e.code === "application_decided") loadReviews();
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  // --- 会员名册 -----------------------------------------------------------------------------------
  const SOURCE_NAMES = { platform: "平台入会", roster: "名册导入" };
  const IMPORT_STATUS = { running: "导入中", done: "已完成", failed: "导入失败" };

  /** 工会下拉框：本单位及下级工会按树排列；first 为第一项（如“全部”），保留当前选择。 */
  function fillOrgSelect(select, first, preferred) {
    const current = select.value || preferred || "";
    const options = orgTree().map(({ org, depth }) =>
      el("option", { value: String(org.id) }, `${"\u3000".repeat(depth)}${org.name}`));
    select.replaceChildren(...(first ? [el("option", { value: "" }, first)] : []), ...options);
    if ([...select.options].some((o) => o.value === String(current))) select.value = String(current);
  }

  function loadMembersView() {
    show($("#members-panel"), can("member.review"));
    show($("#import-panel"), can("member.import"));
    show($("#export-form"), can("member.export"));
    if (can("member.review")) {
      fillOrgSelect($("#members-org"), "全部（本单位及下级工会）");
      loadMembers();
    }
    if (can("member.import")) {
      const grassroots = orgTree().filter(({ org }) => org.kind === "grassroots");
      $("#org-codes-table tbody").replaceChildren(...grassroots.map(({ org }) =>
        el("tr", {}, el("td", {}, org.name), el("td", { class: "mono nowrap" }, org.code))));
      show($("#org-codes-table"), grassroots.length > 0);
      show($("#org-codes-empty"), grassroots.length === 0);
      loadImports();
    }
    if (can("member.export")) {
      fillOrgSelect($("#export-org"), null, state.me.org_id);
      setMessage($("#export-error"), "");
    }
  }

  function memberRow(m) {
    return el("tr", { dataset: { memberNo: m.member_no } },
      el("td", { class: "nowrap mono" }, m.member_no),
      el("td", { class: "nowrap" }, m.name),
      el("td", { class: "nowrap" }, m.gender),
      el("td", { class: "nowrap mono" }, m.id_number || ""),
      el("td", { class: "nowrap mono" }, m.phone || "—"),
      el("td", {}, m.union.name),
      el("td", {}, m.employer || "—"),
      el("td", { class: "nowrap" }, m.joined_on),
      el("td", { class: "nowrap" }, SOURCE_NAMES[m.source] || m.source),
      el("td", {}, el("span", { class: `badge member-${m.status}` }, m.status_label)),
      el("td", { class: "nowrap" }, m.certified ? "已认证" : el("span", { class: "muted" }, "未认证")));
  }

  async function loadMembers(more = false) {
    const error = $("#members-error");
    const body = $("#members-table tbody");
    const query = new URLSearchParams({ limit: String(PAGE) });
    if ($("#members-org").value) query.set("org_id", $("#members-org").value);
    if ($("#members-name").value.trim()) query.set("name", $("#members-name").value.trim());
    if (more === true && state.membersNext != null) query.set("before", String(state.membersNext));
    const button = $("#members-more");
    const data = await fetchPage(`/members?${query}`, button, error);
    if (data === null) return;
    const members = data.members;
    if (more !== true) body.replaceChildren();
    body.append(...members.map(memberRow));
    state.membersNext = members.length === PAGE ? members[members.length - 1].id : null;
    show(button, state.membersNext != null);
    show($("#members-table"), body.children.length > 0);
    show($("#members-empty"), body.children.length === 0);
  }

  function countsText(c) {
    return `共 ${c.total} 行：新增 ${c.created}，更新 ${c.updated}，无变化 ${c.unchanged}，未导入 ${c.error}`;
  }

  /** 一次导入的报告：进度、各项行数、未导入的行及原因。 */
  function showImport(r) {
    show($("#import-report"), true);
    $("#import-report").dataset.id = String(r.id);
    $("#import-title").textContent = r.filename;
    const badge = $("#import-status");
    badge.className = `badge import-${r.status}`;
    badge.textContent = IMPORT_STATUS[r.status] || r.status;
    const progress = $("#import-progress");
    if (r.status === "running") progress.removeAttribute("value");
    else progress.value = 1;
    show(progress, r.status === "running");
    const c = r.counts;
    $("#import-counts").textContent = r.status === "running" ? `正在导入，已处理 ${c.total} 行…`
      : r.status === "failed" ? "名册未导入。" : `${countsText(c)}。`;
    const message = $("#import-message");
    message.className = `alert ${r.status === "failed" ? "error" : "warn"}`;
    setMessage(message, r.message || "");
    let errors = r.errors || [];
    if (typeof errors === "string") {
      try { errors = JSON.parse(errors); } catch (e) { errors = []; }
    }
    $("#import-errors-table tbody").replaceChildren(...errors.map((x) =>
      el("tr", {}, el("td", { class: "mono" }, `第 ${x.row} 行`), el("td", {}, x.message),
        el("td", { class: "mono muted" }, x.code))));
    show($("#import-errors"), r.status !== "running" && errors.length > 0);
    setMessage($("#import-errors-more"), c.error > errors.length
      ? `共 ${c.error} 行未导入，这里列出前 ${errors.length} 行。改正后请重新导入整个文件。` : "");
  }

  function pollImport(id, delay = 1000) {
    clearTimeout(state.importTimer);
    state.importTimer = setTimeout(async () => {
      if (!state.me || state.view !== "members") return;
      let r;
      try {
        r = (await api("GET", `/rosters/imports/${id}`)).import;
      } catch (e) {
        report($("#import-error"), e);
        return;
      }
      showImport(r);
      if (r.status === "running") {
        pollImport(id, Math.min(delay * 1.5, 5000));
      } else {
        loadImports();
        if (can("member.review")) loadMembers();
      }
    }, delay);
  }

  async function openImport(id) {
    try {
      const r = (await api("GET", `/rosters/imports/${id}`)).import;
      setMessage($("#import-error"), "");
      showImport(r);
      if (r.status === "running") pollImport(id);
      $("#import-report").scrollIntoView({ block: "nearest" });
    } catch (e) {
      report($("#import-error"), e);
    }
  }

  async function loadImports() {
    let imports;
    try {
      imports = (await api("GET", "/rosters/imports")).imports;
    } catch (e) {
      report($("#import-error"), e);
      return;
    }
    $("#imports-table tbody").replaceChildren(...imports.map((r) =>
      el("tr", { dataset: { id: String(r.id) } },
        el("td", { class: "nowrap" }, formatTime(r.started_at)),
        el("td", { class: "filename" }, r.filename),
        el("td", { class: "nowrap mono" }, r.cadre),
        el("td", {}, el("span", { class: `badge import-${r.status}` }, IMPORT_STATUS[r.status] || r.status)),
        el("td", { class: "muted" }, r.status === "done" ? countsText(r.counts) : r.message || ""),
        el("td", {}, el("button", { type: "button", class: "btn small", onclick: () => openImport(r.id) }, "查看")))));
    show($("#imports-table"), imports.length > 0);
    show($("#imports-empty"), imports.length === 0);
    const running = imports.find((r) => r.status === "running");
    if (running && $("#import-report").hidden) openImport(running.id);
  }

  async function startImport() {
    const input = $("#import-file");
    const error = $("#import-error");
    const file = input.files && input.files[0];
    if (!file) {
      setMessage(error, "请选择要导入的名册文件（.xlsx 或 .csv）");
      return;
    }
    const button = $("#import-start");
    button.disabled = true;
    setMessage(error, "");
    try {
      const started = (await api("POST", `/rosters/imports?filename=${encodeURIComponent(file.name)}`, file)).import;
      input.value = "";
      showImport(started);
      if (started.status === "running") pollImport(started.id, 500);
      else loadImports();
    } catch (e) {
      report(error, e);
    } finally {
      button.disabled = false;
    }
  }

  async function submitExport(event) {
    event.preventDefault();
    const error = $("#export-error");
    const orgId = $("#export-org").value;
    const purpose = $("#export-purpose").value.trim();
    if (!orgId) return setMessage(error, "请选择要导出的工会");
    if (!purpose) {
      setMessage(error, "请填写导出用途");
      $("#export-purpose").focus();
      return;
    }
    const button = $("#export-form button[type=submit]");
    button.disabled = true;
    setMessage(error, "");
    try {
      const file = await api("GET", `/rosters/export.xlsx?${new URLSearchParams({ org_id: orgId, purpose })}`,
                             null, true);
      saveBlob(file.blob, file.filename);
      notify(`已导出会员名册（${file.filename}），用途：${purpose}。导出已记入审计记录，请妥善保管文件。`, "ok");
    } catch (e) {
      report(error, e);
    } finally {
      button.disabled = false;
    }
  }

  // --- 活动与普惠 ---------------------------------------------------------------------------------
  const FORMS = { activity: { offline: "线下活动", quiz: "线上答题", vote: "线上投票", lottery: "抽奖" },
                  service: { ticket: "票券", coupon: "优惠券", checkup: "体检", discount: "商户优惠" } };
  const MODES = { first_come: "先到先得", lottery: "报名抽签", review: "报名审核" };
  const ITEM_STATES = { draft: "草稿", upcoming: "未开始", open: "报名中", closed: "已结束" };

  /** datetime-local（北京时间）→ 带 +08:00 的 ISO 时间；空为 null。 */
  function chinaTime(value) { return value ? `${value}:00+08:00` : null; }

  function fillForms() {
    const kind = $("#of-kind").value;
    $("#of-form").replaceChildren(...Object.entries(FORMS[kind]).map(([v, t]) => el("option", { value: v }, t)));
  }

  async function loadOfferings() {
    const query = new URLSearchParams();
    if ($("#offerings-kind").value) query.set("kind", $("#offerings-kind").value);
    if ($("#offerings-status").value) query.set("status", $("#offerings-status").value);
    const data = await fetchPage(`/offerings?${query}`, null, $("#offerings-error"));
    if (data === null) return;
    const body = $("#offerings-table tbody");
    body.replaceChildren(...data.offerings.map(offeringRow));
    show($("#offerings-table"), data.offerings.length > 0);
    show($("#offerings-empty"), data.offerings.length === 0);
  }

  function offeringRow(o) {
    const act = (label, handler) => el("button", { type: "button", class: "btn small plain", onclick: handler }, label);
    const actions = [];
    if (o.status === "draft") actions.push(act("发布", () => offeringAction(o, "publish", "发布后职工即可看到，确定发布？")));
    if (o.status !== "closed") actions.push(act("修改", () => openOfferingForm(o)));
    if (o.status !== "closed") actions.push(act("结束", () => offeringAction(o, "close", "结束后不能再报名，确定结束？")));
    actions.push(act("名单", () => openParticipants(o)));
    if (o.form === "quiz") actions.push(act("题库", () => openQuiz(o)), act("统计", () => openQuizStats(o)));
    if (o.form === "vote") actions.push(act("投票选项", () => openPoll(o)));
    if (o.mode === "lottery" && o.state === "closed") actions.push(act("开奖", () => offeringAction(o, "draw", "")));
    actions.push(el("a", { class: "btn small plain", href: `/admin/v1/offerings/${o.id}/poster.png`, target: "_blank" }, "海报"));
    if (o.kind === "activity") actions.push(el("a", { class: "btn small plain", href: `/admin/venue.html?o=${o.id}`, target: "_blank" }, "签到屏"));
    return el("tr", {},
      el("td", {}, String(o.id)), el("td", {}, o.title), el("td", {}, `${FORMS[o.kind][o.form] || o.form} · ${MODES[o.mode]}`),
      el("td", {}, `${formatTime(o.opens_at)} 至 ${formatTime(o.closes_at)}`), el("td", {}, `${o.stock} / ${o.left}`),
      el("td", {}, ITEM_STATES[o.state] || o.state), el("td", { class: "actions" }, ...actions));
  }

  async function offeringAction(o, verb, question) {
    if (question && !window.confirm(question)) return;
    try {
      await api("POST", `/offerings/${o.id}/${verb}`);
      notify(`“${o.title}”已${{ publish: "发布", close: "结束", draw: "开奖" }[verb]}。`, "ok");
      loadOfferings();
    } catch (e) {
      report($("#offerings-error"), e);
    }
  }

  /** ISO 时间 → datetime-local 的北京时间文本。 */
  function localChina(iso) {
    return iso ? new Date(new Date(iso).getTime() + 8 * 3600 * 1000).toISOString().slice(0, 16) : "";
  }

  function openOfferingForm(o) {
    state.editingOffering = o || null;
    $("#offering-form-title").textContent = o ? `修改：${o.title}` : "新建活动或服务（保存为草稿，发布后职工可见）";
    $("#of-kind").value = o ? o.kind : "activity";
    fillForms();
    const values = o ? {
      "#of-form": o.form, "#of-mode": o.mode, "#of-title": o.title, "#of-summary": o.summary, "#of-place": o.place,
      "#of-opens": localChina(o.opens_at), "#of-closes": localChina(o.closes_at), "#of-starts": localChina(o.starts_at),
      "#of-ends": localChina(o.ends_at), "#of-stock": o.stock, "#of-per-person": o.per_person, "#of-hold": o.hold_minutes,
      "#of-level": o.audience.level || "registered", "#of-orgs": (o.audience.orgs || []).join(","),
      "#of-campaign": o.campaign_id || "",
    } : { "#of-title": "", "#of-summary": "", "#of-place": "", "#of-orgs": "", "#of-campaign": "" };
    for (const [selector, value] of Object.entries(values)) $(selector).value = value;
    // 已发布的项目：参与方式、条件和限额不能再改（职工是按这些报名的）
    const fixed = Boolean(o && o.status === "published");
    for (const id of ["#of-kind", "#of-form", "#of-mode", "#of-per-person", "#of-level", "#of-orgs", "#of-campaign"]) {
      $(id).disabled = fixed;
    }
    $("#of-opens").disabled = fixed && o.state !== "upcoming";
    $("#offering-submit").textContent = o ? "保存修改" : "保存草稿";
    setMessage($("#offering-form-error"), "");
    show($("#offering-form"));
  }

  async function submitOffering(event) {
    event.preventDefault();
    const error = $("#offering-form-error");
    const orgs = $("#of-orgs").value.split(/[,，\s]+/).filter(Boolean).map(Number);
    const editing = state.editingOffering;
    const campaign = $("#of-campaign").value.trim();
    const body = {
      kind: $("#of-kind").value, form: $("#of-form").value, mode: $("#of-mode").value,
      title: $("#of-title").value.trim(), summary: $("#of-summary").value.trim(), place: $("#of-place").value.trim(),
      opens_at: chinaTime($("#of-opens").value), closes_at: chinaTime($("#of-closes").value),
      starts_at: chinaTime($("#of-starts").value), ends_at: chinaTime($("#of-ends").value),
      stock: Number($("#of-stock").value), per_person: Number($("#of-per-person").value),
      hold_minutes: Number($("#of-hold").value), no_show_ban_days: Number($("#of-ban").value),
      audience: { level: $("#of-level").value, orgs }, campaign_id: campaign ? Number(campaign) : null,
    };
    if (editing && editing.status === "published") {
      for (const key of ["kind", "form", "mode", "per_person", "audience", "campaign_id"]) delete body[key];
      if ($("#of-opens").disabled) delete body.opens_at;
    }
    try {
      const { offering } = editing ? await api("PATCH", `/offerings/${editing.id}`, body)
                                   : await api("POST", "/offerings", body);
      setMessage(error, "");
      show($("#offering-form"), false);
      notify(editing ? `已保存“${offering.title}”的修改。`
                     : `已保存草稿“${offering.title}”（编号 ${offering.id}），发布后职工可见。`, "ok");
      loadOfferings();
    } catch (e) {
      report(error, e);
    }
  }

  async function createCampaign(event) {
    event.preventDefault();
    try {
      const { campaign } = await api("POST", "/campaigns", { title: $("#campaign-title").value.trim(),
        per_person: Number($("#campaign-cap").value) });
      setMessage($("#campaign-error"), "");
      notify(`已创建专项活动“${campaign.title}”（编号 ${campaign.id}，每人限领 ${campaign.per_person}）。新建项目时填写此编号即可归入。`, "ok");
    } catch (e) {
      report($("#campaign-error"), e);
    }
  }

  async function openParticipants(o) {
    state.offering = o;
    $("#participants-title").textContent = `名单：${o.title}`;
    show($("#participants"));
    await loadParticipants();
  }

  async function loadParticipants() {
    const o = state.offering;
    const query = new URLSearchParams();
    if ($("#participants-status").value) query.set("status", $("#participants-status").value);
    const data = await fetchPage(`/offerings/${o.id}/signups?${query}`, null, $("#participants-error"));
    if (data === null) return;
    const decide = (p, verb) => async () => {
      let body;
      if (verb === "reject") {
        const reason = window.prompt("请填写不通过的原因");
        if (!reason) return;
        body = { reason };
      }
      try {
        await api("POST", `/signups/${p.id}/${verb}`, body);
        loadParticipants();
      } catch (e) {
        report($("#participants-error"), e);
      }
    };
    $("#participants-table tbody").replaceChildren(...data.signups.map((p) => el("tr", {},
      el("td", {}, String(p.id)), el("td", {}, p.name || "—"), el("td", {}, p.phone || "—"),
      el("td", {}, p.union_name || "—"), el("td", {}, p.status_name), el("td", {}, formatTime(p.created_at)),
      el("td", { class: "actions" }, ...(o.mode === "review" && p.status === "pending" ? [
        el("button", { type: "button", class: "btn small", onclick: decide(p, "approve") }, "通过"),
        el("button", { type: "button", class: "btn small plain", onclick: decide(p, "reject") }, "不通过")] : [])))));
    show($("#participants-empty"), data.signups.length === 0);
  }

  // 题库：粘贴的文字 ⇄ 接口的题目列表
  const OPTION_LINE = /^([A-Ha-h])[.．、:：\s]\s*(.+)$/;
  const ANSWER_LINE = /^(?:正确)?答案[:：]\s*([A-Ha-h\s,，、]+)$/;
  const NOTE_LINE = /^解析[:：]\s*(.*)$/;

  /** Questions pasted as text (a blank line between questions) → the API's question list; an
   *  Error naming the question when one cannot be read. */
  function parseQuestions(text) {
    const blocks = text.replace(/\r/g, "").split(/\n\s*\n/).map((b) => b.trim()).filter(Boolean);
    return blocks.map((block, n) => {
      const q = { prompt: "", options: [], answer: [], explanation: "" };
      for (const raw of block.split("\n")) {
        const line = raw.trim();
        let m;
        if (!line) continue;
        if ((m = line.match(ANSWER_LINE))) {
          q.answer = [...m[1].toUpperCase().replace(/[^A-H]/g, "")].map((c) => c.charCodeAt(0) - 65);
        } else if ((m = line.match(NOTE_LINE))) {
          q.explanation = m[1];
        } else if (q.options.length || q.prompt) {
          if ((m = line.match(OPTION_LINE)) && m[1].toUpperCase().charCodeAt(0) - 65 === q.options.length) q.options.push(m[2].trim());
          else if (!q.options.length) q.prompt += line;
          else throw new Error(`第 ${n + 1} 题的第 ${q.options.length + 1} 个选项应以 ${"ABCDEFGH"[q.options.length]}. 开头`);
        } else {
          q.prompt = line.replace(/^\d+[.．、]\s*/, "");
        }
      }
      if (!q.answer.length) throw new Error(`第 ${n + 1} 题缺少“答案：”一行`);
      return q;
    });
  }

  function questionsText(questions) {
    return questions.map((q, n) => [`${n + 1}. ${q.prompt}`, ...q.options.map((o, i) => `${"ABCDEFGH"[i]}. ${o}`),
      `答案：${q.answer.map((i) => "ABCDEFGH"[i]).join("")}`, q.explanation ? `解析：${q.explanation}` : null]
      .filter(Boolean).join("\n")).join("\n\n");
  }

  function lockForm(form, locked, submit) {
    for (const input of form.querySelectorAll("input, select, textarea")) input.disabled = locked;
    show(submit, !locked);
  }

  async function openQuiz(o) {
    state.contest = o;
    $("#quiz-title").textContent = `题库与答题规则：${o.title}`;
    setMessage($("#quiz-form-error"), "");
    let quiz;
    try {
      ({ quiz } = await api("GET", `/offerings/${o.id}/quiz`));
    } catch (e) {
      report($("#offerings-error"), e);
      return;
    }
    const r = quiz.rules || { per_round: 6, pass_mark: 4, round_seconds: 600, rounds_per_day: 3, rounds_total: null,
      show_answers: true, pass_daily: false };
    $("#qz-per-round").value = r.per_round;
    $("#qz-pass").value = r.pass_mark;
    $("#qz-minutes").value = Math.round(r.round_seconds / 60);
    $("#qz-per-day").value = r.rounds_per_day;
    $("#qz-total").value = r.rounds_total || "";
    $("#qz-show").checked = r.show_answers;
    $("#qz-daily").checked = r.pass_daily;
    $("#qz-questions").value = questionsText(quiz.questions);
    lockForm($("#quiz-form"), !quiz.editable, $("#quiz-submit"));
    if (!quiz.editable) setMessage($("#quiz-form-error"), "活动已开始，题库不能再修改。");
    show($("#quiz-form"));
    $("#quiz-form").scrollIntoView();
  }

  async function saveQuiz(event) {
    event.preventDefault();
    const error = $("#quiz-form-error");
    const total = $("#qz-total").value.trim();
    let questions;
    try {
      questions = parseQuestions($("#qz-questions").value);
    } catch (e) {
      setMessage(error, e.message);
      return;
    }
    const body = { per_round: Number($("#qz-per-round").value), pass_mark: Number($("#qz-pass").value),
      round_seconds: Number($("#qz-minutes").value) * 60, rounds_per_day: Number($("#qz-per-day").value),
      rounds_total: total ? Number(total) : null, show_answers: $("#qz-show").checked,
      pass_daily: $("#qz-daily").checked, questions };
    try {
      const { quiz } = await api("PUT", `/offerings/${state.contest.id}/quiz`, body);
      setMessage(error, "");
      notify(`已保存“${state.contest.title}”的题库，共 ${quiz.questions.length} 题。`, "ok");
    } catch (e) {
      report(error, e);
    }
  }

  async function openQuizStats(o) {
    $("#quiz-stats-title").textContent = `答题统计：${o.title}`;
    const data = await fetchPage(`/offerings/${o.id}/quiz/stats`, null, $("#offerings-error"));
    if (data === null) return;
    const s = data.stats;
    const percent = (x) => (x === null ? "—" : `${(x * 100).toFixed(1)}%`);
    $("#quiz-stats-totals").replaceChildren(...[["参与人数", s.participants], ["答题轮数", s.rounds],
      ["通过人数", s.passed_workers], ["通过率", percent(s.pass_rate)],
      ["平均答对题数", s.average_score === null ? "—" : s.average_score]].flatMap(([k, v]) =>
      [el("dt", {}, k), el("dd", {}, String(v))]));
    $("#quiz-stats-questions tbody").replaceChildren(...s.questions.map((q) => el("tr", {},
      el("td", {}, String(q.position)), el("td", {}, q.prompt), el("td", {}, String(q.answered)),
      el("td", {}, String(q.answered_right)), el("td", {}, percent(q.accuracy)))));
    $("#quiz-stats-unions tbody").replaceChildren(...s.by_union.map((u) => el("tr", {},
      el("td", {}, u.name), el("td", {}, String(u.participants)), el("td", {}, String(u.passed)),
      el("td", {}, String(u.rounds)))));
    show($("#quiz-stats"));
    $("#quiz-stats").scrollIntoView();
  }

  async function openPoll(o) {
    state.contest = o;
    $("#poll-title").textContent = `投票规则与选项：${o.title}`;
    setMessage($("#poll-form-error"), "");
    let poll;
    try {
      ({ poll } = await api("GET", `/offerings/${o.id}/poll`));
    } catch (e) {
      report($("#offerings-error"), e);
      return;
    }
    const r = poll.rules || { votes_per_day: 1, votes_total: null, show_counts: "live" };
    $("#pl-per-day").value = r.votes_per_day;
    $("#pl-total").value = r.votes_total || "";
    $("#pl-show").value = r.show_counts;
    $("#pl-options").value = poll.options.map((x) => (x.summary ? `${x.label}｜${x.summary}` : x.label)).join("\n");
    $("#poll-counts tbody").replaceChildren(...poll.options.map((x) => el("tr", {},
      el("td", {}, x.label), el("td", {}, String(x.votes)))));
    show($("#poll-counts"), poll.options.length > 0 && !poll.editable);
    setMessage($("#poll-voters"), poll.editable ? "" : `共 ${poll.voters} 人参与投票。`);
    lockForm($("#poll-form"), !poll.editable, $("#poll-submit"));
    show($("#poll-form"));
    $("#poll-form").scrollIntoView();
  }

  async function savePoll(event) {
    event.preventDefault();
    const total = $("#pl-total").value.trim();
    const options = $("#pl-options").value.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
      const [label, ...rest] = line.split(/[｜|]/);
      return { label: label.trim(), summary: rest.join("｜").trim() };
    });
    try {
      const { poll } = await api("PUT", `/offerings/${state.contest.id}/poll`, {
        votes_per_day: Number($("#pl-per-day").value), votes_total: total ? Number(total) : null,
        show_counts: $("#pl-show").value, options });
      setMessage($("#poll-form-error"), "");
      notify(`已保存“${state.contest.title}”的投票选项，共 ${poll.options.length} 项。`, "ok");
    } catch (e) {
      report($("#poll-form-error"), e);
    }
  }

  async function loadVerifiers() {
    const data = await fetchPage("/verifiers", null, $("#verifiers-error"));
    if (data === null) return;
    $("#verifiers-table tbody").replaceChildren(...data.verifiers.map((v) => el("tr", {},
      el("td", {}, v.username), el("td", {}, v.display_name), el("td", {}, v.offering_ids.join("、")),
      el("td", {}, v.disabled_at ? `已停用（${formatTime(v.disabled_at)}）` : "正常"),
      el("td", { class: "actions" }, v.disabled_at ? "" : el("button", { type: "button", class: "btn small plain",
        onclick: async () => {
          if (!window.confirm(`停用核销员 ${v.display_name}？停用后立即退出登录。`)) return;
          try { await api("POST", `/verifiers/${v.id}/disable`); loadVerifiers(); } catch (e) { report($("#verifiers-error"), e); }
        } }, "停用")))));
    show($("#verifiers-table"), data.verifiers.length > 0);
  }

  async function createVerifier(event) {
    event.preventDefault();
    const items = $("#verifier-items").value.split(/[,，\s]+/).filter(Boolean).map(Number);
    try {
      const made = await api("POST", "/verifiers", { username: $("#verifier-username").value.trim(),
        display_name: $("#verifier-name").value.trim(), offering_ids: items });
      setMessage($("#verifiers-error"), "");
      setMessage($("#verifier-created"),
        `已创建核销员 ${made.verifier.username}，初始密码：${made.password}（只显示这一次，请当面交给工作人员）`);
      loadVerifiers();
    } catch (e) {
      report($("#verifiers-error"), e);
    }
  }

  async function exportParticipants() {
    const o = state.offering;
    const query = new URLSearchParams();
    if ($("#participants-status").value) query.set("status", $("#participants-status").value);
    const purpose = $("#participants-purpose").value.trim();
    if (purpose) query.set("purpose", purpose);
    try {
      const file = await api("GET", `/offerings/${o.id}/signups.xlsx?${query}`, null, true);
      saveBlob(file.blob, file.filename);
      notify(`已导出名单（${file.filename}）${purpose ? `，用途：${purpose}` : "（已脱敏）"}。导出已记入审计记录。`, "ok");
    } catch (e) {
      report($("#participants-error"), e);
    }
  }

  // --- 会员卡核验（工作台中的视图和 card.html） -----------------------------------------------------
  /** 扫码得到的内容：card.html 的网址（核验码在 # 之后）或核验码本身。 */
  function cardToken(text) {
    const value = String(text || "").trim();
    return (value.includes("#") ? value.slice(value.lastIndexOf("#") + 1) : value).trim();
  }

  /** 核验结果：card 为服务端的回答；card 为空时 problem 说明为什么无效。 */
  function cardOutcome(card, problem) {
    if (!card) {
      return [el("div", { class: "verdict bad", role: "status" }, el("strong", {}, "会员卡无效"), el("span", {}, problem))];
    }
    return [
      el("div", { class: `verdict ${card.valid ? "good" : "bad"}`, role: "status" },
        el("strong", {}, card.valid ? "会员卡有效" : "会籍异常"),
        el("span", {}, card.valid ? "会籍正常，可以按会员办理。" : `会籍状态为“${card.status_label}”，不能按会员办理。`)),
      el("dl", { class: "facts card-facts" }, ...facts([
        ["姓名", card.name], ["会员编号", card.member_no], ["所在工会", card.union && card.union.name],
        ["入会日期", card.joined_on], ["会籍状态", card.status_label]])),
      el("p", { class: "hint" }, `核验时间 ${formatTime(new Date().toISOString())}。`,
        "为保护会员隐私，姓名只显示姓氏；本次核验已记入审计记录。"),
    ];
  }

  /** 核验；无效的会员卡（4xx）作为结果显示，其他错误交给 onError。 */
  async function verifyCard(token, onError) {
    try {
      return cardOutcome((await api("POST", "/cards/verify", { token })).card);
    } catch (e) {
      if (e.status >= 400 && e.status < 500 && e.status !== 401 && e.status !== 403 && e.code !== "csrf_failed") {
        return cardOutcome(null, e.message);
      }
      onError(e);
      return null;
    }
  }

  function resetCardCheck() {
    setMessage($("#cardcheck-error"), "");
  }

  async function submitCardCheck(event) {
    event.preventDefault();
    const error = $("#cardcheck-error");
    const result = $("#cardcheck-result");
    const token = cardToken($("#cardcheck-token").value);
    show(result, false);
    if (!token) {
      setMessage(error, "请粘贴会员卡二维码的内容");
      return;
    }
    const button = $("#cardcheck-form button[type=submit]");
    button.disabled = true;
    setMessage(error, "");
    const outcome = await verifyCard(token, (e) => report(error, e));
    button.disabled = false;
    if (!outcome) return;
    result.replaceChildren(...outcome);
    show(result, true);
  }

  // card.html：会员卡二维码打开的页面。未登录时先到工作台登录，登录后回到这里。
  const RETURN_KEY = "admin.card_return";
  const RETURN_PATH = /^\/(static\/)?admin\/card\.html#[A-Za-z0-9_-]{1,200}$/;

  /** 登录后要回到的会员卡核验页（10 分钟内由 card.html 记下的）。 */
  function pendingReturn() {
    let saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(RETURN_KEY) || "null"); } catch (e) { saved = null; }
    if (!saved || typeof saved.path !== "string" || !RETURN_PATH.test(saved.path) ||
        !(Date.now() - saved.at < 600000)) {
      sessionStorage.removeItem(RETURN_KEY);
      return null;
    }
    return saved.path;
  }

  function cardPage() {
    state.standalone = true;
    window.addEventListener("hashchange", checkCardFromAddress);   // another code opened in this tab
    checkCardFromAddress();
  }

  async function checkCardFromAddress() {
    const box = $("#card-outcome");
    show(box, false);
    show($("#card-loading"), true);
    const finish = (...nodes) => {
      show($("#card-loading"), false);
      box.replaceChildren(...nodes);
      show(box, true);
    };
    const token = cardToken(location.hash);
    if (!token) {
      finish(...cardOutcome(null, "二维码内容不完整，请重新扫描会员的电子会员卡。"));
      return;
    }
    try {
      if (!state.csrf) {
        const me = await api("GET", "/me");
        state.csrf = me.csrf_token;
        $("#card-who").textContent = `核验人：${me.me.username}`;
      }
    } catch (e) {
      failed(e);
      return;
    }
    const outcome = await verifyCard(token, failed);
    if (outcome) finish(...outcome);

    function failed(e) {
      if (e.status !== 401) {
        finish(el("p", { class: "alert error", role: "alert" }, e.message));
        return;
      }
      // 未登录或登录已失效：到工作台登录，登录后回到这里
      sessionStorage.setItem(RETURN_KEY, JSON.stringify({ path: location.pathname + location.hash, at: Date.now() }));
      location.replace("/admin/");
    }
  }

  // --- 修改密码 -----------------------------------------------------------------------------------
  function resetPasswordForm() {
    $("#password-form").reset();
    setMessage($("#password-error"), "");
    setMessage($("#password-ok"), "");
  }

  async function changePassword(event) {
    event.preventDefault();
    const error = $("#password-error");
    const ok = $("#password-ok");
    setMessage(ok, "");
    const old = $("#password-old").value;
    const fresh = $("#password-new").value;
    if (!old || !fresh) return setMessage(error, "请输入原密码和新密码");
    if (fresh !== $("#password-again").value) return setMessage(error, "两次输入的新密码不一致");
    if (fresh === old) return setMessage(error, "新密码不能与原密码相同");
    const button = $("#password-form button[type=submit]");
    button.disabled = true;
    try {
      await api("POST", "/me/password", { old, new: fresh });
      $("#password-form").reset();
      setMessage(error, "");
      setMessage(ok, "密码已修改，下次登录请使用新密码。");
    } catch (e) {
      report(error, e);
    } finally {
      button.disabled = false;
    }
  }

  // --- 二维码（QR Code，字节模式，纠错等级 M），用于绑定身份验证器 -------------------------------------
  // 按 GB/T 18284（ISO/IEC 18004）生成，只依赖本文件。
  const QR_ECC_PER_BLOCK = [-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26,
    26, 26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28];
  const QR_BLOCKS = [-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21,
    23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49];

  function qrRawModules(version) {
    let result = (16 * version + 128) * version + 64;
    if (version >= 2) {
      const align = Math.floor(version / 7) + 2;
      result -= (25 * align - 10) * align - 55;
      if (version >= 7) result -= 36;
    }
    return result;
  }

  function qrDataCodewords(version) {
    return Math.floor(qrRawModules(version) / 8) - QR_ECC_PER_BLOCK[version] * QR_BLOCKS[version];
  }

  function gfMultiply(x, y) {
    let z = 0;
    for (let i = 7; i >= 0; i--) {
      z = (z << 1) ^ ((z >>> 7) * 0x11d);
      z ^= ((y >>> i) & 1) * x;
    }
    return z;
  }

  function rsDivisor(degree) {
    const result = new Array(degree).fill(0);
    result[degree - 1] = 1;
    let root = 1;
    for (let i = 0; i < degree; i++) {
      for (let j = 0; j < result.length; j++) {
        result[j] = gfMultiply(result[j], root);
        if (j + 1 < result.length) result[j] ^= result[j + 1];
      }
      root = gfMultiply(root, 0x02);
    }
    return result;
  }

  function rsRemainder(data, divisor) {
    const result = divisor.map(() => 0);
    for (const b of data) {
      const factor = b ^ result.shift();
      result.push(0);
      divisor.forEach((coef, i) => { result[i] ^= gfMultiply(coef, factor); });
    }
    return result;
  }

  /** 文本 → 模块矩阵（true 为深色）。 */
  function qrMatrix(text) {
    const bytes = Array.from(new TextEncoder().encode(text));
    let version = 1;
    for (; version <= 40; version++) {
      const countBits = version <= 9 ? 8 : 16;
      if (4 + countBits + bytes.length * 8 <= qrDataCodewords(version) * 8) break;
    }
    if (version > 40) throw new Error("内容过长，无法生成二维码");
    const capacity = qrDataCodewords(version) * 8;
    const bits = [];
    const put = (value, length) => { for (let i = length - 1; i >= 0; i--) bits.push((value >>> i) & 1); };
    put(0x4, 4);
    put(bytes.length, version <= 9 ? 8 : 16);
    for (const b of bytes) put(b, 8);
    put(0, Math.min(4, capacity - bits.length));
    put(0, (8 - (bits.length % 8)) % 8);
    for (let padByte = 0xec; bits.length < capacity; padByte ^= 0xec ^ 0x11) put(padByte, 8);
    const data = [];
    for (let i = 0; i < bits.length; i += 8) data.push(parseInt(bits.slice(i, i + 8).join(""), 2));

    // 分块、纠错码、交织
    const numBlocks = QR_BLOCKS[version];
    const eccLen = QR_ECC_PER_BLOCK[version];
    const rawCodewords = Math.floor(qrRawModules(version) / 8);
    const numShort = numBlocks - (rawCodewords % numBlocks);
    const shortLen = Math.floor(rawCodewords / numBlocks);
    const divisor = rsDivisor(eccLen);
    const blocks = [];
    for (let i = 0, k = 0; i < numBlocks; i++) {
      const dat = data.slice(k, k + shortLen - eccLen + (i < numShort ? 0 : 1));
      k += dat.length;
      const ecc = rsRemainder(dat, divisor);
      if (i < numShort) dat.push(0);
      blocks.push(dat.concat(ecc));
    }
    const codewords = [];
    for (let i = 0; i < blocks[0].length; i++) {
      blocks.forEach((block, j) => {
        if (i !== shortLen - eccLen || j >= numShort) codewords.push(block[i]);
      });
    }

    // 功能图形
    const size = version * 4 + 17;
    const modules = Array.from({ length: size }, () => new Array(size).fill(false));
    const reserved = Array.from({ length: size }, () => new Array(size).fill(false));
    const setFn = (x, y, dark) => { modules[y][x] = dark; reserved[y][x] = true; };
    for (let i = 0; i < size; i++) { setFn(6, i, i % 2 === 0); setFn(i, 6, i % 2 === 0); }
    const finder = (cx, cy) => {
      for (let dy = -4; dy <= 4; dy++) {
        for (let dx = -4; dx <= 4; dx++) {
          const x = cx + dx;
          const y = cy + dy;
          const dist = Math.max(Math.abs(dx), Math.abs(dy));
          if (x >= 0 && x < size && y >= 0 && y < size) setFn(x, y, dist !== 2 && dist !== 4);
        }
      }
    };
    finder(3, 3);
    finder(size - 4, 3);
    finder(3, size - 4);
    const align = [];
    if (version > 1) {
      const count = Math.floor(version / 7) + 2;
      const step = Math.floor((version * 8 + count * 3 + 5) / (count * 4 - 4)) * 2;
      for (let pos = size - 7; align.length < count - 1; pos -= step) align.unshift(pos);
      align.unshift(6);
    }
    align.forEach((ax, i) => align.forEach((ay, j) => {
      if ((i === 0 && j === 0) || (i === 0 && j === align.length - 1) || (i === align.length - 1 && j === 0)) return;
      for (let dy = -2; dy <= 2; dy++) {
        for (let dx = -2; dx <= 2; dx++) setFn(ax + dx, ay + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
      }
    }));
    const drawFormat = (mask) => {
      const value = (0 << 3) | mask; // 纠错等级 M 的格式位为 00
      let rem = value;
      for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
      const format = ((value << 10) | rem) ^ 0x5412;
      const bit = (i) => ((format >>> i) & 1) !== 0;
      for (let i = 0; i <= 5; i++) setFn(8, i, bit(i));
      setFn(8, 7, bit(6));
      setFn(8, 8, bit(7));
      setFn(7, 8, bit(8));
      for (let i = 9; i < 15; i++) setFn(14 - i, 8, bit(i));
      for (let i = 0; i < 8; i++) setFn(size - 1 - i, 8, bit(i));
      for (let i = 8; i < 15; i++) setFn(8, size - 15 + i, bit(i));
      setFn(8, size - 8, true);
    };
    drawFormat(0);
    if (version >= 7) {
      let rem = version;
      for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
      const value = (version << 12) | rem;
      for (let i = 0; i < 18; i++) {
        const dark = ((value >>> i) & 1) !== 0;
        const a = size - 11 + (i % 3);
        const b = Math.floor(i / 3);
        setFn(a, b, dark);
        setFn(b, a, dark);
      }
    }

    // 数据（之字形排布）
    let index = 0;
    for (let right = size - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5;
      for (let vert = 0; vert < size; vert++) {
        for (let j = 0; j < 2; j++) {
          const x = right - j;
          const upward = ((right + 1) & 2) === 0;
          const y = upward ? size - 1 - vert : vert;
          if (!reserved[y][x] && index < codewords.length * 8) {
            modules[y][x] = ((codewords[index >>> 3] >>> (7 - (index & 7))) & 1) !== 0;
            index++;
          }
        }
      }
    }

    // 掩模：逐个试，取罚分最低者
    const maskFns = [
      (x, y) => (x + y) % 2 === 0, (x, y) => y % 2 === 0, (x) => x % 3 === 0, (x, y) => (x + y) % 3 === 0,
      (x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0, (x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
      (x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0, (x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
    ];
    const applyMask = (mask) => {
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          if (!reserved[y][x] && maskFns[mask](x, y)) modules[y][x] = !modules[y][x];
        }
      }
    };
    let best = 0;
    let bestPenalty = Infinity;
    for (let mask = 0; mask < 8; mask++) {
      applyMask(mask);
      drawFormat(mask);
      const penalty = qrPenalty(modules);
      if (penalty < bestPenalty) { best = mask; bestPenalty = penalty; }
      applyMask(mask);
    }
    applyMask(best);
    drawFormat(best);
    return modules;
  }

  function qrPenalty(modules) {
    const size = modules.length;
    let penalty = 0;
    const lines = [];
    for (let i = 0; i < size; i++) {
      lines.push(modules[i]);
      lines.push(modules.map((row) => row[i]));
    }
    const finderLike = [true, false, true, true, true, false, true];
    for (const line of lines) {
      let run = 1;
      for (let i = 1; i <= size; i++) {
        if (i < size && line[i] === line[i - 1]) { run++; continue; }
        if (run >= 5) penalty += run - 2;
        run = 1;
      }
      for (let i = 0; i + 7 <= size; i++) {
        if (!finderLike.every((v, k) => line[i + k] === v)) continue;
        const lightBefore = i >= 4 && [1, 2, 3, 4].every((k) => !line[i - k]);
        const lightAfter = i + 11 <= size && [0, 1, 2, 3].every((k) => !line[i + 7 + k]);
        if (lightBefore || lightAfter) penalty += 40;
      }
    }
    let dark = 0;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        if (modules[y][x]) dark++;
        if (y + 1 < size && x + 1 < size) {
          const c = modules[y][x];
          if (c === modules[y][x + 1] && c === modules[y + 1][x] && c === modules[y + 1][x + 1]) penalty += 3;
        }
      }
    }
    const total = size * size;
    penalty += (Math.ceil(Math.abs(dark * 20 - total * 10) / total) - 1) * 10;
    return penalty;
  }

  /** 二维码的 SVG（四个模块宽的空白边）。 */
  function qrSvg(text, scale) {
    const modules = qrMatrix(text);
    const quiet = 4;
    const size = modules.length + quiet * 2;
    let path = "";
    modules.forEach((row, y) => row.forEach((dark, x) => {
      if (dark) path += `M${x + quiet},${y + quiet}h1v1h-1z`;
    }));
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
    svg.setAttribute("width", String(size * scale));
    svg.setAttribute("height", String(size * scale));
    svg.setAttribute("shape-rendering", "crispEdges");
    const background = document.createElementNS(ns, "rect");
    background.setAttribute("width", String(size));
    background.setAttribute("height", String(size));
    background.setAttribute("fill", "#fff");
    const marks = document.createElementNS(ns, "path");
    marks.setAttribute("d", path);
    marks.setAttribute("fill", "#000");
    svg.append(background, marks);
    return svg;
  }

  // --- 启动 ---------------------------------------------------------------------------------------
  function bind() {
    $("#signin-form").addEventListener("submit", signIn);
    $("#topbar-logout").addEventListener("click", signOut);
    $("#menu-logout").addEventListener("click", signOut);
    window.addEventListener("hashchange", route);
    // 再次点击当前菜单也重新加载（并借此发现会话已失效）
    for (const link of document.querySelectorAll("#menu a[data-view]")) {
      link.addEventListener("click", () => { if (location.hash === `#${link.dataset.view}`) route(); });
    }
    $("#new-account").addEventListener("click", openCreate);
    $("#create-cancel").addEventListener("click", () => { show($("#create-form"), false); });
    $("#create-form").addEventListener("submit", submitCreate);
    $("#create-role").addEventListener("change", fillOrgs);
    $("#create-generate").addEventListener("click", () => { $("#create-password").value = randomPassword(); });
    $("#create-replace-confirm").addEventListener("click", () => {
      if (state.pendingCreate) createAccount(state.pendingCreate);
    });
    $("#created-close").addEventListener("click", closeCreated);
    $("#accounts-filter").addEventListener("input", renderAccounts);
    $("#permissions-form").addEventListener("submit", savePermissions);
    $("#permissions-cancel").addEventListener("click", () => $("#permissions-dialog").close());
    $("#verify-form").addEventListener("submit", confirmVerify);
    $("#verify-cancel").addEventListener("click", () => $("#verify-dialog").close());
    $("#audit-more").addEventListener("click", () => loadAudit(true));
    $("#password-form").addEventListener("submit", changePassword);
    for (const id of ["#reviews-kind", "#reviews-status", "#reviews-overdue"]) {
      $(id).addEventListener("change", () => loadReviews());
    }
    $("#reviews-filters").addEventListener("submit", (event) => { event.preventDefault(); loadReviews(); });
    $("#reviews-refresh").addEventListener("click", () => loadReviews());
    $("#reviews-more").addEventListener("click", () => loadReviews(true));
    $("#application-approve").addEventListener("click", () => decideApplication(true));
    $("#application-reject").addEventListener("click", () => decideApplication(false));
    $("#application-close").addEventListener("click", () => $("#application-dialog").close());
    $("#members-filters").addEventListener("submit", (event) => { event.preventDefault(); loadMembers(); });
    $("#members-org").addEventListener("change", () => loadMembers());
    $("#members-more").addEventListener("click", () => loadMembers(true));
    $("#import-start").addEventListener("click", startImport);
    $("#export-form").addEventListener("submit", submitExport);
    $("#cardcheck-form").addEventListener("submit", submitCardCheck);
    $("#offering-new").addEventListener("click", () => openOfferingForm(null));
    $("#campaign-form").addEventListener("submit", createCampaign);
    $("#offering-cancel").addEventListener("click", () => show($("#offering-form"), false));
    $("#of-kind").addEventListener("change", fillForms);
    $("#offering-form").addEventListener("submit", submitOffering);
    $("#offerings-refresh").addEventListener("click", () => loadOfferings());
    for (const id of ["#offerings-kind", "#offerings-status"]) $(id).addEventListener("change", () => loadOfferings());
    $("#participants-status").addEventListener("change", () => loadParticipants());
    $("#participants-export").addEventListener("click", exportParticipants);
    $("#verifier-form").addEventListener("submit", createVerifier);
    $("#quiz-form").addEventListener("submit", saveQuiz);
    $("#quiz-cancel").addEventListener("click", () => show($("#quiz-form"), false));
    $("#poll-form").addEventListener("submit", savePoll);
    $("#poll-cancel").addEventListener("click", () => show($("#poll-form"), false));
  }

  const ENTER_HOOKS = [];  // 登录后各功能要做的事（如提示新进展）

  // 其他功能的脚本（如 channels.js）在同一页面中注册自己的视图，并共用这些工具
  window.adminConsole = Object.freeze({
    api, report, notify, formatTime, can, saveBlob,
    registerView(name, view) { VIEWS[name] = view; },
    onEnter(fn) { ENTER_HOOKS.push(fn); },
    chinaTime(value) { return value ? `${value}:00+08:00` : null; },
  });

  async function start() {
    bind();
    try {
      await enter(null);
    } catch (e) {
      if (!e.handled) signedOut(e.message, "error");
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.body.dataset.page === "card") cardPage();
    else start();
  });
})();
