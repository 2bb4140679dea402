/* The simulated WeChat sign-in: choose who is signing in, then go on to WeChat's (simulated) page. */
(function () {
  "use strict";
  const { $, el, setMessage } = window.dom;
  document.addEventListener("DOMContentLoaded", async () => {
    try {
      const response = await fetch("/sandbox/api/people", { credentials: "same-origin" });
      const people = await response.json();
      $("#workers").replaceChildren(...people.workers.map((w) => el("li", {},
        el("button", { type: "button", onclick: () => {
          document.cookie = `sandbox_openid=${encodeURIComponent(w.openid)}; path=/; SameSite=Lax`;
          location.replace(`/sandbox/wechat/authorize${location.search}`);
        } }, `${w.name}（${w.member ? "会员" : "职工"}，${w.phone}）`))));
    } catch (err) {
      setMessage($("#error"), `读取演示职工失败：${err.message}`);
    }
  });
})();
