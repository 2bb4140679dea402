/* A venue's screen: /admin/venue.html?o=<item id>, opened by a signed-in cadre managing the item;
   the check-in code rotates every 30 seconds (a photo of the screen soon stops working). */
(function () {
  "use strict";
  const item = new URLSearchParams(location.search).get("o") || "";
  const image = document.getElementById("venue-code");
  const error = document.getElementById("venue-error");
  function refresh() {
    image.src = `/admin/v1/offerings/${encodeURIComponent(item)}/venue-code.png?t=${Date.now()}`;
  }
  image.addEventListener("load", () => { error.hidden = true; });
  image.addEventListener("error", () => {
    error.textContent = "签到码加载失败：请确认已在本浏览器登录工会干部控制台，且有权管理该活动。";
    error.hidden = false;
  });
  refresh();
  setInterval(refresh, 30000);
})();
