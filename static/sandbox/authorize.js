/* The simulated WeChat sign-in: choose who is signing in, then go on to WeChat's (simulated) page. */
(function () {
  "use strict";
  const { $, el, setMessage } = window.dom;
  document.addEventListener("DOMContentLoaded", async () => {
    try {
      const people = await window.sandbox.get("/sandbox/api/people");
      $("#workers").replaceChildren(...people.workers.map((w) => el("li", {},
        el("button", { type: "button", onclick: () => {
          window.sandbox.holdPhone(w.openid);
          location.replace(`/sandbox/wechat/authorize${location.search}`);
        } }, `${w.name}（${w.member ? "会员" : "职工"}，${w.phone}）`))));
    } catch (err) {
      setMessage($("#error"), `读取演示职工失败：${err.message}`);
    }
  });
})();
