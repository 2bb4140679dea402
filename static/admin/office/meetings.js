/* 工会干部工作台：会议。我的会议（回复参会或请假）；会议管理（meeting.manage）：会议室与预订、
   新建内部会议并邀请、请假审批、会场签到码（全屏，定时刷新）、签到统计、纪要与督办事项、外部会议。 */
(function () {
  "use strict";

  const { $, show, el, setMessage } = window.dom;
  const { api, report, notify, formatTime, can, saveBlob, registerView, chinaTime } = window.adminConsole;
  const EXT_STEPS = {
    instruct: ["领导批示", [["leader", "批示领导", "input"], ["instruction", "批示意见", "textarea"]]],
    assign: ["指派参会", [["attendees", "参会人员（按住 Ctrl 多选）", "cadres"]]],
    answer: ["回执", [["reply", "回执内容（已答复召集单位的内容）", "textarea"]]],
    relay: ["传达", [["relay", "传达内容", "textarea"], ["relayed_to", "传达对象", "input"]]],
  };
  const state = { colleagues: [], rooms: [], orgs: [], meeting: null, leaveFor: null, venueTimer: null };

  const button = (label, handler, tone = "plain") =>
    el("button", { type: "button", class: `btn small ${tone}`, onclick: handler }, label);
  const span = (from, to) => `${formatTime(from)}–${formatTime(to).slice(-5)}`;
  const percent = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`);
  const cadreOption = (c) => el("option", { value: String(c.id) }, `${c.name}（${c.org_name}）`);

  async function load() {
    setMessage($("#mt-error"), "");
    if (!state.colleagues.length) {
      try { state.colleagues = (await api("GET", "/casework/colleagues")).cadres; } catch (e) { /* 可不选代会人 */ }
      $("#mt-leave-sub").replaceChildren(el("option", { value: "" }, "不指定"),
        ...state.colleagues.map(cadreOption));
    }
    loadInvitations();
    const manager = can("meeting.manage");
    show($("#mt-manage"), manager);
    if (!manager) return;
    if (!state.orgs.length) {
      try { state.orgs = (await api("GET", "/orgs")).orgs; } catch (e) { /* 督办事项可交给干部 */ }
    }
    for (const id of ["#mt-invitees", "#mt-d-more"]) $(id).replaceChildren(...state.colleagues.map(cadreOption));
    loadRooms();
    loadBookings();
    loadMeetings("internal");
    loadMeetings("external");
  }

  // --- 我的会议 -------------------------------------------------------------------------------------
  async function loadInvitations() {
    let data;
    try { data = await api("GET", "/meeting-invitations"); } catch (e) { report($("#mt-error"), e); return; }
    const names = { pending: "未回复", attend: "参会", leave: "请假" };
    const leaves = { pending: "（待审批）", approved: "（已批准）", refused: "（未批准）" };
    $("#mt-invitations tbody").replaceChildren(...data.meetings.map((m) => el("tr", {},
      el("td", {}, m.title, m.substitute ? el("span", { class: "tag" }, "代会") : ""),
      el("td", {}, span(m.starts_at, m.ends_at)),
      el("td", {}, m.place),
      el("td", {}, (names[m.answer] || m.answer) + (m.leave_status ? leaves[m.leave_status] : ""),
        m.signed_in_at ? el("span", { class: "tag" }, "已签到") : ""),
      el("td", {}, m.leave_status === "approved" ? "" : [
        button("参会", () => answer(m.id, { answer: "attend" }), "small"),
        button("请假", () => { state.leaveFor = m.id; show($("#mt-leave-form")); $("#mt-leave-reason").focus(); }),
      ]))));
    show($("#mt-invitations-empty"), data.meetings.length === 0);
  }

  async function answer(meetingId, body) {
    try {
      await api("POST", `/meetings/${meetingId}/answer`, body);
      notify(body.answer === "attend" ? "已回复参会" : "请假已提交，等待会议组织者审批", "ok");
      show($("#mt-leave-form"), false);
      loadInvitations();
    } catch (e) { report($("#mt-error"), e); }
  }

  // --- 会议室与预订 ---------------------------------------------------------------------------------
  async function loadRooms() {
    try { state.rooms = (await api("GET", "/meeting-rooms")).rooms; } catch (e) { report($("#mt-error"), e); return; }
    $("#mt-rooms tbody").replaceChildren(...state.rooms.map((r) => el("tr", {},
      el("td", {}, r.name), el("td", {}, r.org_name), el("td", {}, r.place), el("td", {}, String(r.capacity)))));
    $("#mt-room").replaceChildren(el("option", { value: "" }, "不使用会议室"),
      ...state.rooms.map((r) => el("option", { value: String(r.id) }, `${r.name}（${r.place}，${r.capacity} 人）`)));
  }

  async function loadBookings() {
    const params = new URLSearchParams({ days: $("#mt-days").value });
    if ($("#mt-day").value) params.set("day", $("#mt-day").value);
    let data;
    try { data = await api("GET", `/meeting-bookings?${params}`); } catch (e) { report($("#mt-error"), e); return; }
    $("#mt-bookings tbody").replaceChildren(...data.bookings.map((b) => el("tr", {},
      el("td", {}, b.room_name), el("td", {}, span(b.starts_at, b.ends_at)),
      el("td", {}, el("a", { href: "#meetings", onclick: (ev) => { ev.preventDefault(); openMeeting(b.meeting_id); } },
        b.title)),
      el("td", {}, b.organiser))));
    if (!data.bookings.length) {
      $("#mt-bookings tbody").append(el("tr", {}, el("td", { colSpan: 4, class: "muted" }, "该时段没有预订")));
    }
  }

  // --- 会议列表 -------------------------------------------------------------------------------------
  async function loadMeetings(kind) {
    let data;
    // From a week back: meetings just held still wait for their minutes or their relay.
    const from = new Date(Date.now() + 8 * 3600 * 1000 - 7 * 86400 * 1000).toISOString().slice(0, 10);
    try { data = await api("GET", `/meetings?kind=${kind}&day=${from}&days=31`); } catch (e) { report($("#mt-error"), e); return; }
    const open = (m) => button("详情", () => openMeeting(m.id));
    if (kind === "internal") {
      $("#mt-list tbody").replaceChildren(...data.meetings.map((m) => el("tr", {},
        el("td", {}, m.title), el("td", {}, span(m.starts_at, m.ends_at)), el("td", {}, m.place),
        el("td", {}, `${m.invited} / ${m.present}`), el("td", {}, m.status_name), el("td", {}, open(m)))));
    } else {
      $("#mt-external tbody").replaceChildren(...data.meetings.map((m) => el("tr", {},
        el("td", {}, m.title), el("td", {}, m.caller || ""), el("td", {}, span(m.starts_at, m.ends_at)),
        el("td", {}, m.place), el("td", {}, m.status_name), el("td", {}, open(m)))));
    }
  }

  async function uploadAll(files) {
    const ids = [];
    for (const file of files) {
      const done = await api("POST", `/meeting-files?filename=${encodeURIComponent(file.name)}`, file);
      ids.push(done.file.id);
    }
    return ids;
  }

  async function createMeeting(ev) {
    ev.preventDefault();
    const room = $("#mt-room").value;
    const body = {
      title: $("#mt-title").value.trim(), agenda: $("#mt-agenda").value.trim() || undefined,
      starts_at: chinaTime($("#mt-starts").value), ends_at: chinaTime($("#mt-ends").value),
      invitees: [...$("#mt-invitees").selectedOptions].map((o) => Number(o.value)),
    };
    if (room) body.room_id = Number(room); else body.place = $("#mt-place").value.trim();
    try {
      const { meeting } = await api("POST", "/meetings", body);
      notify(`已预订并通知 ${meeting.invitees.length} 人`, "ok");
      $("#mt-form").reset();
      loadBookings();
      loadMeetings("internal");
      render(meeting);
    } catch (e) { report($("#mt-error"), e); }
  }

  async function registerExternal(ev) {
    ev.preventDefault();
    try {
      const files = await uploadAll($("#mt-ext-file").files);
      const { meeting } = await api("POST", "/external-meetings", {
        title: $("#mt-ext-title").value.trim(), caller: $("#mt-ext-caller").value.trim(),
        place: $("#mt-ext-place").value.trim(), notice: $("#mt-ext-notice").value.trim() || undefined,
        starts_at: chinaTime($("#mt-ext-starts").value), ends_at: chinaTime($("#mt-ext-ends").value), files,
      });
      notify("会议通知已登记，请办理领导批示", "ok");
      $("#mt-ext-form").reset();
      loadMeetings("external");
      render(meeting);
    } catch (e) { report($("#mt-error"), e); }
  }

  // --- 会议详情 -------------------------------------------------------------------------------------
  async function openMeeting(id) {
    try { render((await api("GET", `/meetings/${id}`)).meeting); } catch (e) { report($("#mt-error"), e); }
  }

  async function reload() { if (state.meeting) await openMeeting(state.meeting.id); }

  async function act(path, body, done) {
    try {
      const answerBody = await api("POST", path, body);
      if (done) notify(done, "ok");
      if (answerBody.meeting) render(answerBody.meeting); else await reload();
      loadMeetings(state.meeting.kind);
    } catch (e) { report($("#mt-d-error"), e); }
  }

  function render(m) {
    state.meeting = m;
    const internal = m.kind === "internal";
    const live = m.status === "scheduled";
    show($("#mt-detail"));
    setMessage($("#mt-d-error"), "");
    $("#mt-d-title").textContent = `${internal ? "" : "【外部】"}${m.title}`;
    $("#mt-d-info").textContent = [span(m.starts_at, m.ends_at), m.place, `组织：${m.organiser}`,
      m.caller ? `召集：${m.caller}` : "", m.status_name, m.due_at ? `办结时限 ${formatTime(m.due_at, false)}` : ""]
      .filter(Boolean).join(" · ");
    const a = m.attendance;
    $("#mt-d-stats").textContent = internal
      ? `应到 ${a.expected} · 实到 ${a.present} · 迟到 ${a.late} · 请假 ${a.leave}` +
        (a.leave_pending ? `（待审批 ${a.leave_pending}）` : "") + ` · 参会率 ${percent(a.rate)}`
      : (m.instruction ? `批示（${m.leader}）：${m.instruction}` : "") + (m.reply ? ` 回执：${m.reply}` : "") +
        (m.relay ? ` 传达（${m.relayed_to}）：${m.relay}` : "");
    show($("#mt-d-qr"), internal && live);
    show($("#mt-d-cancel"), internal && live);
    show($("#mt-d-invite"), internal && live);
    $("#mt-d-people tbody").replaceChildren(...m.invitees.map((v) => el("tr", {},
      el("td", {}, v.name, el("span", { class: "muted" }, ` ${v.org_name}`),
        v.substitute_for_name ? el("span", { class: "tag" }, `代${v.substitute_for_name}`) : ""),
      el("td", {}, v.answer_name),
      el("td", {}, v.leave_status ? `${v.leave_reason || ""}${v.substitute_name ? "，代会人 " + v.substitute_name : ""}` +
        `（${v.leave_status_name}）` : ""),
      el("td", {}, v.signed_in_at ? formatTime(v.signed_in_at) + (v.late ? " 迟到" : "") +
        (v.signed_by_hand ? `（${v.signed_by_name} 代签）` : "") : "未签到"),
      el("td", {}, internal && live ? [
        v.leave_status === "pending" ? button("批准请假", () => act(`/meetings/${m.id}/leave-decisions`,
          { cadre_id: v.cadre_id, approve: true }, "已批准请假")) : "",
        v.leave_status === "pending" ? button("不批准", () => act(`/meetings/${m.id}/leave-decisions`,
          { cadre_id: v.cadre_id, approve: false }, "已通知不批准")) : "",
        !v.signed_in_at ? button("代为签到", () => act(`/meetings/${m.id}/signins`,
          { cadre_id: v.cadre_id }, `已为 ${v.name} 签到`)) : "",
      ] : ""))));
    show($("#mt-d-minutes-view"), Boolean(m.minutes));
    $("#mt-d-minutes-text").textContent = m.minutes || "";
    $("#mt-d-minutes-text").style.whiteSpace = "pre-wrap";
    $("#mt-d-files").replaceChildren(...m.files.map((f) => el("li", {},
      el("a", { href: "#meetings", onclick: (ev) => { ev.preventDefault(); download(f); } }, f.filename))));
    show($("#mt-d-actions"), m.actions.length > 0);
    $("#mt-d-actions tbody").replaceChildren(...m.actions.map((x) => el("tr", {},
      el("td", {}, x.what), el("td", {}, x.cadre_name || x.org_name), el("td", {}, x.deadline),
      el("td", {}, x.status === "closed" ? `已办结 ${formatTime(x.closed_at, false)}` : "办理中"))));
    show($("#mt-minutes-form"), internal && live && Boolean(m.task_id));
    renderExternalStep(m);
    $("#mt-detail").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  async function download(file) {
    try {
      const got = await api("GET", `/meeting-files/${file.id}`, null, true);
      saveBlob(got.blob, file.filename);
    } catch (e) { report($("#mt-d-error"), e); }
  }

  function actionRow() {
    const who = el("select", { class: "mt-action-who" },
      el("optgroup", { label: "承办工会（办公室办理）" },
        ...state.orgs.map((o) => el("option", { value: `org:${o.id}` }, o.name))),
      el("optgroup", { label: "承办干部" },
        ...state.colleagues.map((c) => el("option", { value: `cadre:${c.id}` }, `${c.name}（${c.org_name}）`))));
    const row = el("div", { class: "filters mt-action" },
      el("div", {}, el("label", {}, "事项"), el("input", { class: "mt-action-what", maxLength: 500 })),
      el("div", {}, el("label", {}, "承办"), who),
      el("div", {}, el("label", {}, "办结期限"), el("input", { class: "mt-action-deadline", type: "date" })),
      el("div", {}, button("删除", () => row.remove())));
    $("#mt-action-rows").append(row);
  }

  async function fileMinutes(ev) {
    ev.preventDefault();
    const m = state.meeting;
    const actions = [...document.querySelectorAll("#mt-action-rows .mt-action")].map((row) => {
      const [kind, id] = $(".mt-action-who", row).value.split(":");
      return { what: $(".mt-action-what", row).value.trim(), [`${kind}_id`]: Number(id),
               deadline: $(".mt-action-deadline", row).value || undefined };
    });
    try {
      const files = await uploadAll($("#mt-minutes-file").files);
      await act(`/meetings/${m.id}/minutes`, { task_id: m.task_id, version: m.version,
        minutes: $("#mt-minutes").value.trim(), files, actions }, "纪要已提交，督办事项已交办");
      $("#mt-minutes-form").reset();
      $("#mt-action-rows").replaceChildren();
    } catch (e) { report($("#mt-d-error"), e); }
  }

  function renderExternalStep(m) {
    const step = m.kind === "external" && EXT_STEPS[m.step] ? m.step : null;
    show($("#mt-ext-step"), Boolean(step));
    if (!step) return;
    const [name, fields] = EXT_STEPS[step];
    $("#mt-ext-step-name").textContent = name;
    $("#mt-ext-step").dataset.step = step;
    $("#mt-ext-step-fields").replaceChildren(...fields.map(([key, label, kind]) => el("div", {},
      el("label", { for: `mt-x-${key}` }, label),
      kind === "textarea" ? el("textarea", { id: `mt-x-${key}`, rows: 3 })
        : kind === "cadres" ? el("select", { id: `mt-x-${key}`, multiple: true, size: 6 },
          ...state.colleagues.map(cadreOption))
          : el("input", { id: `mt-x-${key}` }))));
  }

  async function externalStep(ev) {
    ev.preventDefault();
    const m = state.meeting;
    const step = $("#mt-ext-step").dataset.step;
    const body = { step, task_id: m.task_id, version: m.version };
    for (const [key, , kind] of EXT_STEPS[step][1]) {
      const input = $(`#mt-x-${key}`);
      body[key] = kind === "cadres" ? [...input.selectedOptions].map((o) => Number(o.value)) : input.value.trim();
    }
    await act(`/external-meetings/${m.id}/steps`, body, `${EXT_STEPS[step][0]}已办理`);
  }

  // --- 会场签到码（全屏） -----------------------------------------------------------------------------
  async function openVenue() {
    const m = state.meeting;
    let shown;
    try { shown = await api("GET", `/meetings/${m.id}/venue-code`); } catch (e) { report($("#mt-d-error"), e); return; }
    const screen = $("#mt-venue");
    Object.assign(screen.style, { position: "fixed", inset: "0", zIndex: "1000", background: "#fff",
                                  textAlign: "center", padding: "24px", overflow: "auto" });
    $("#mt-venue-title").textContent = shown.title;
    const image = $("#mt-venue-code");
    Object.assign(image.style, { width: "min(75vmin, 720px)", height: "auto", imageRendering: "pixelated" });
    const refresh = () => { image.src = `/admin/v1/meetings/${m.id}/venue-code.png?t=${Date.now()}`; };
    image.onload = () => setMessage($("#mt-venue-error"), "");
    image.onerror = () => setMessage($("#mt-venue-error"), "签到码加载失败：请确认仍在登录状态，且会议未取消。");
    refresh();
    clearInterval(state.venueTimer);
    state.venueTimer = setInterval(refresh, shown.refresh_in * 1000);
    show(screen);
    if (screen.requestFullscreen) screen.requestFullscreen().catch(() => { /* 浏览器不允许时仍以遮罩显示 */ });
  }

  function closeVenue() {
    clearInterval(state.venueTimer);
    state.venueTimer = null;
    show($("#mt-venue"), false);
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    reload();
  }

  function bind() {
    $("#mt-refresh").addEventListener("click", load);
    $("#mt-leave-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const sub = $("#mt-leave-sub").value;
      answer(state.leaveFor, { answer: "leave", reason: $("#mt-leave-reason").value.trim(),
                               substitute_id: sub ? Number(sub) : undefined });
    });
    $("#mt-leave-cancel").addEventListener("click", () => show($("#mt-leave-form"), false));
    $("#mt-bookings-filter").addEventListener("submit", (ev) => { ev.preventDefault(); loadBookings(); });
    $("#mt-room-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", "/meeting-rooms", { name: $("#mt-room-name").value.trim(),
          place: $("#mt-room-place").value.trim(), capacity: Number($("#mt-room-capacity").value) });
        notify("会议室已新增", "ok");
        $("#mt-room-form").reset();
        loadRooms();
      } catch (e) { report($("#mt-error"), e); }
    });
    $("#mt-form").addEventListener("submit", createMeeting);
    $("#mt-ext-form").addEventListener("submit", registerExternal);
    $("#mt-d-close").addEventListener("click", () => { show($("#mt-detail"), false); state.meeting = null; });
    $("#mt-d-cancel").addEventListener("click", () => {
      const reason = window.prompt("请填写取消会议的原因（将通知参会人员）");
      if (reason) act(`/meetings/${state.meeting.id}/cancel`, { reason }, "会议已取消，会议室已释放");
    });
    $("#mt-d-more-add").addEventListener("click", () => act(`/meetings/${state.meeting.id}/invitees`,
      { invitees: [Number($("#mt-d-more").value)] }, "已邀请"));
    $("#mt-d-qr").addEventListener("click", openVenue);
    $("#mt-venue-close").addEventListener("click", closeVenue);
    document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && state.venueTimer) closeVenue(); });
    $("#mt-action-add").addEventListener("click", actionRow);
    $("#mt-minutes-form").addEventListener("submit", fileMinutes);
    $("#mt-ext-step").addEventListener("submit", externalStep);
  }

  bind();
  registerView("meetings", { perm: "", load });
})();
