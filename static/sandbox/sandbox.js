/* The sandbox page: the demo's cadres with their current authenticator codes, and its workers. */
(function () {
  "use strict";
  const { $, el, setMessage } = window.dom;
  const TOURS = { office: "平台办公室", city: "市总工会超级管理员", grassroots: "基层工会干部",
                  merchant: "商户核销员", worker: "职工" };

  async function load() {
    try {
      const people = await window.sandbox.get("/sandbox/api/people");
      $("#password").textContent = people.password;
      $("#cadres tbody").replaceChildren(...people.cadres.map((c) => el("tr", { dataset: { username: c.username } },
        el("td", {}, TOURS[c.tour] || c.tour || ""), el("td", {}, c.display_name), el("td", {}, c.org_name),
        el("td", {}, el("code", {}, c.username)), el("td", { class: "totp" }, c.totp || "（无需动态码）"))));
      $("#verifiers tbody").replaceChildren(...people.verifiers.map((v) => el("tr", {},
        el("td", {}, v.display_name), el("td", {}, v.org_name), el("td", {}, el("code", {}, v.username)),
        el("td", {}, el("code", {}, v.password)), el("td", {}, v.offerings.join("、")))));
      $("#workers tbody").replaceChildren(...people.workers.map((w) => el("tr", {},
        el("td", {}, w.name), el("td", {}, w.phone), el("td", {}, w.member ? "是" : "否"))));
      setMessage($("#error"), "");
    } catch (err) {
      setMessage($("#error"), `读取演示账号失败：${err.message}`);
    }
  }

  async function tours() {
    try {
      const { tours } = await window.sandbox.get("/sandbox/api/tours");
      $("#tours").replaceChildren(...tours.map((t) => el("li", {},
        el("a", { href: `/sandbox/tour.html?tour=${encodeURIComponent(t.id)}` }, t.title),
        `（${t.steps.length} 步，扮演${t.who}）`)));
    } catch (err) {
      setMessage($("#error"), `读取培训内容失败：${err.message}`);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    tours();
    load();
    setInterval(load, 10000);
  });
})();
