/* Article pages inside WeChat: the share card (title, summary, cover) through the JS-SDK. */
(function () {
  "use strict";
  if (!/MicroMessenger/i.test(navigator.userAgent)) return;
  const meta = (name) => {
    const node = document.querySelector(`meta[property="${name}"]`);
    return node ? node.getAttribute("content") : "";
  };
  const share = { title: meta("og:title"), desc: meta("og:description"),
                  link: meta("og:url") || location.href.split("#")[0], imgUrl: meta("og:image") };
  const url = location.href.split("#")[0];
  fetch(`/wechat/jssdk?url=${encodeURIComponent(url)}`, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
    .then((config) => {
      const sdk = document.createElement("script");
      sdk.src = "https://res.wx.qq.com/open/js/jweixin-1.6.0.js";
      sdk.onload = () => {
        window.wx.config({ debug: false, appId: config.appId, timestamp: config.timestamp,
                           nonceStr: config.nonceStr, signature: config.signature,
                           jsApiList: ["updateAppMessageShareData", "updateTimelineShareData"] });
        window.wx.ready(() => {
          window.wx.updateAppMessageShareData(share);
          window.wx.updateTimelineShareData({ title: share.title, link: share.link, imgUrl: share.imgUrl });
        });
      };
      document.head.appendChild(sdk);
    })
    .catch(() => { /* no share card: the page itself is unaffected */ });
})();
