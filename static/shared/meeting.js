/* 会议签到 (meeting.html#m=<meeting>&code=<venue code>): the page the venue's QR code opens in
   WeChat. Signed in through the Official Account, it signs in the cadre who bound this WeChat. */
(function () {
  "use strict";

  const { $, show, setMessage } = window.dom;
  const { api, signedIn, loadingDone, formatTime, register } = window.h5;

  async function meetingPage() {
    const params = new URLSearchParams(location.hash.slice(1));
    const me = await signedIn(`/h5/meeting.html${location.hash}`);
    if (!me) return;
    loadingDone();
    show($("#content"));
    try {
      const { signin } = await api("POST", "meeting-signins",
        { meeting_id: Number(params.get("m") || 0), code: params.get("code") || "" });
      $("#meeting-title").textContent = signin.late ? "签到成功（迟到）" : "签到成功";
      setMessage($("#meeting-ok"), `“${signin.title}”，签到时间 ${formatTime(signin.signed_in_at)}。`);
    } catch (err) {
      $("#meeting-title").textContent = err.code === "already_signed" ? "您已签到" : "签到未成功";
      setMessage($("#meeting-error"), err.message);
    }
  }

  register("meeting", meetingPage);
})();
