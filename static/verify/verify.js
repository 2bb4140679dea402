/* The phone page of a merchant's or venue's staff: sign in, then redeem the code a worker shows.
   A worker's QR code opens this page as /verify/#code=<code>. Each code's redemption carries a
   request id kept for that code, so pressing again after a lost answer cannot redeem twice. */
(function () {
  "use strict";

  const { $, show, setMessage } = window.dom;
  const TOKEN = "verify.token";
  let token = localStorage.getItem(TOKEN) || "";

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(`/verify/v1/${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
    } catch (e) {
      return { status: 0, data: { error: { code: "network", message: "网络连接失败，请检查网络后重试" } } };
    }
    let data = null;
    try { data = await response.json(); } catch (e) { /* not JSON */ }
    return { status: response.status, data: data || { error: { message: "服务暂时不可用，请稍后再试" } } };
  }

  function requestIdFor(code) {
    const key = `verify.request.${code.slice(-16)}`;
    let id = sessionStorage.getItem(key);
    if (!id) {
      const bytes = new Uint8Array(12);
      crypto.getRandomValues(bytes);
      id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      sessionStorage.setItem(key, id);
    }
    return id;
  }

  function codeFromHash() {
    return new URLSearchParams(location.hash.slice(1)).get("code") || "";
  }

  function offerRedeem(code) {
    const button = $("#redeem");
    setMessage($("#result-ok"), "");
    setMessage($("#result-error"), "");
    show($("#scan"), Boolean(code));
    button.disabled = false;
    show(button);
    button.onclick = async () => {
      button.disabled = true;
      const { status, data } = await api("POST", "redeem", { code, request_id: requestIdFor(code) });
      if (status === 200) {
        setMessage($("#result-ok"), `核销成功：${data.title}（${data.holder || "职工"}）`);
        show(button, false);
      } else if (status === 401) {
        signedOut();
      } else {
        setMessage($("#result-error"), data.error.message);
        button.disabled = status === 409 || status === 403;
      }
    };
  }

  function signedOut() {
    token = "";
    localStorage.removeItem(TOKEN);
    show($("#desk"), false);
    show($("#login"));
  }

  async function start() {
    if (!token) { signedOut(); return; }
    const { status, data } = await api("GET", "me");
    if (status !== 200) { signedOut(); return; }
    $("#who").textContent = `${data.verifier.display_name}（${data.verifier.username}）`;
    show($("#login"), false);
    show($("#desk"));
    offerRedeem(codeFromHash());
  }

  $("#login").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const { status, data } = await api("POST", "login", {
      username: $("#username").value.trim(), password: $("#password").value });
    if (status !== 200) { setMessage($(".error", form), data.error.message); return; }
    token = data.token;
    localStorage.setItem(TOKEN, token);
    setMessage($(".error", form), "");
    start();
  });
  $("#manual").addEventListener("submit", (event) => {
    event.preventDefault();
    offerRedeem($("#code").value.trim());
  });
  $("#logout").addEventListener("click", async () => { await api("POST", "logout", {}); signedOut(); });
  window.addEventListener("hashchange", () => { if (token) offerRedeem(codeFromHash()); });
  start();
})();
