/* A guided tour: the steps on the left, the page each step is about on the right. */
(function () {
  "use strict";
  const { $, el, show, setMessage } = window.dom;
  const json = window.sandbox.get;
  const state = { tour: null, step: 0, cadre: null };

  function render() {
    const steps = state.tour.steps;
    $("#tour-steps").replaceChildren(...steps.map((s, i) => el("li", {
      class: i === state.step ? "current" : (i < state.step ? "done" : ""), dataset: { step: String(i) },
    }, el("span", { class: "step-title" }, s.title),
       el("div", { class: "step-text" }, s.text, el("span", { class: "see" }, `你将看到：${s.see}`)))));
    $("#tour-progress").textContent = `第 ${state.step + 1} 步，共 ${steps.length} 步`;
    $("#tour-prev").disabled = state.step === 0;
    $("#tour-next").disabled = state.step === steps.length - 1;
  }

  function go(step) {
    const previous = state.tour.steps[state.step].page;
    state.step = step;
    const page = state.tour.steps[step].page;
    // The same page stays as the trainee left it (the phone keeps its chat); another one opens.
    if (page !== previous || $("#tour-frame").getAttribute("src") === "about:blank") $("#tour-frame").src = page;
    render();
  }

  async function account() {
    if (!state.tour || state.tour.account === "none") return;
    const people = await json("/sandbox/api/people");
    const who = state.tour.account === "verifier"
      ? people.verifiers[0]
      : people.cadres.find((c) => c.tour === state.tour.id);
    if (!who) return;
    $("#tour-username").textContent = who.username;
    $("#tour-password").textContent = who.password || people.password;
    $("#tour-totp").textContent = who.totp || "";
    show($("#tour-totp-line"), Boolean(who.totp));
    $("#tour-scope").textContent = (who.offerings || []).join("、");
    show($("#tour-scope-line"), Boolean(who.offerings && who.offerings.length));
    show($("#tour-account"), true);
  }

  document.addEventListener("DOMContentLoaded", async () => {
    try {
      const id = new URLSearchParams(location.search).get("tour") || "worker";
      const { tours } = await json("/sandbox/api/tours");
      state.tour = tours.find((t) => t.id === id) || tours[0];
      $("#tour-title").textContent = state.tour.title;
      $("#tour-who").textContent = `扮演：${state.tour.who}`;
      document.title = `${state.tour.title} · 操作培训`;
      go(0);
      await account();
      setInterval(() => account().catch(() => {}), 10000);
    } catch (err) {
      setMessage($("#error"), `读取培训内容失败：${err.message}`);
    }
    $("#tour-prev").addEventListener("click", () => go(state.step - 1));
    $("#tour-next").addEventListener("click", () => go(state.step + 1));
  });
})();
