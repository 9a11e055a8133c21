/*!
 * Bookkeeping Desk chat widget (在线客服挂件).
 *
 *   <script src="https://desk.example.com/widget.js" data-site="SITE_KEY" async></script>
 *
 * Optional attributes: data-agent (id of the agent the visitor asks for), data-user-id and
 * data-user-hash (identity verification: hex HMAC-SHA256 of the user id with the site's identity
 * secret, computed by the host site's server).
 *
 * Plain JavaScript and the Socket.IO client served next to this file. Everything the widget shows
 * lives in a shadow DOM; text from visitors and agents is inserted with textContent only. The
 * visitor token and the outbox of unacknowledged messages are kept in localStorage per site key.
 * A connection the server refuses (unknown key, origin not allowed, blocked) shows no widget.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script) {
    var candidates = document.querySelectorAll("script[data-site][src*='widget.js']");
    script = candidates.length ? candidates[candidates.length - 1] : null;
  }
  if (!script || !script.getAttribute("data-site")) return;
  var SITE_KEY = script.getAttribute("data-site");
  var BASE = script.src.replace(/\/widget\.js(?:[?#].*)?$/, "");
  var registry = (window.__bookkeepingDeskWidgets = window.__bookkeepingDeskWidgets || {});
  if (registry[SITE_KEY]) return; // the snippet was pasted twice
  registry[SITE_KEY] = "loading"; // then "shown", or "refused" when the desk turned it away

  // --- strings ----------------------------------------------------------------------------
  var STRINGS = {
    zh: {
      open: "在线咨询", title: "在线客服", close: "收起", end: "结束对话", you: "我", agent: "客服",
      placeholder: "请输入消息，回车发送", send: "发送", file: "发送文件或图片", sending: "发送中…",
      failed: "发送失败", typing: "客服正在输入…", queue: "您前面还有 {n} 位访客", eta: "预计等待约 {m} 分钟",
      connecting: "正在为您接通客服…", closed: "对话已结束", rateTitle: "请为本次服务评分",
      rateComment: "意见或建议（可不填）", rateSend: "提交评价", rated: "谢谢您的评价！",
      transcriptTitle: "把聊天记录发到我的邮箱", email: "电子邮箱", transcriptSend: "发送记录",
      transcriptSent: "聊天记录已发送，请查收邮件。", offlineTitle: "客服暂时不在线，请留言，我们会尽快联系您。",
      name: "您的称呼", phone: "手机号码", message: "留言内容", leave: "提交留言",
      contactNeeded: "请留下手机号码或电子邮箱。", nameNeeded: "请填写称呼和留言内容。",
      left: "留言已收到，我们会尽快联系您。", offline: "网络已断开，恢复后自动发送。", accept: "开始咨询",
      dismiss: "关闭", error: "出错了，请稍后再试。", fileTooBig: "文件太大了。", download: "下载",
      noAgent: "客服暂时不在线，您可以先留下消息。", bot: "智能助手", handoff: "转人工",
      ask: "有问题？先问问智能助手", askSend: "提问",
      prechatTitle: "开始咨询前，请留下您的信息，方便客服联系您。", prechatName: "您的称呼", prechatPhone: "手机号码",
      prechatEmail: "电子邮箱", prechatQuestion: "您想咨询的问题", required: "必填", optional: "选填",
      prechatSend: "开始咨询", prechatForm: "咨询前填写的信息"
    },
    en: {
      open: "Chat with us", title: "Live chat", close: "Minimise", end: "End chat", you: "You", agent: "Agent",
      placeholder: "Type a message, Enter to send", send: "Send", file: "Send a file or image", sending: "Sending…",
      failed: "Not sent", typing: "The agent is typing…", queue: "{n} visitor(s) ahead of you",
      eta: "about {m} min wait", connecting: "Connecting you to an agent…", closed: "The chat has ended",
      rateTitle: "How did we do?", rateComment: "Comments (optional)", rateSend: "Send rating",
      rated: "Thank you for your rating!", transcriptTitle: "Email me the transcript", email: "Email",
      transcriptSend: "Send transcript", transcriptSent: "The transcript is on its way to your inbox.",
      offlineTitle: "We are offline right now. Leave a message and we will get back to you.",
      name: "Your name", phone: "Phone", message: "Message", leave: "Leave message",
      contactNeeded: "Please give a phone number or an email address.",
      nameNeeded: "Please give your name and a message.", left: "Thank you, we will get back to you soon.",
      offline: "You are offline: messages are sent when the connection is back.", accept: "Start chat",
      dismiss: "Close", error: "Something went wrong, please try again.", fileTooBig: "The file is too large.",
      download: "Download", noAgent: "No agent is online right now; you can still leave a message here.",
      bot: "Assistant", handoff: "Talk to a person", ask: "A question? Ask our assistant", askSend: "Ask",
      prechatTitle: "Before we start, please tell us a little about you so that we can get back to you.",
      prechatName: "Your name", prechatPhone: "Phone", prechatEmail: "Email",
      prechatQuestion: "Your question", required: "required", optional: "optional", prechatSend: "Start chat",
      prechatForm: "Before the chat"
    }
  };
  var pageLanguage = (document.documentElement.getAttribute("lang") || navigator.language || "en");
  var T = /^zh/i.test(pageLanguage) ? STRINGS.zh : STRINGS.en;
  function t(key, values) {
    return String(T[key] || key).replace(/\{(\w+)\}/g, function (_, name) {
      return values && values[name] != null ? String(values[name]) : "";
    });
  }
  // Texts of the earlier conversations (历史对话) and of the transcript download.
  (function (more) {
    Object.keys(more).forEach(function (lang) {
      Object.keys(more[lang]).forEach(function (key) { STRINGS[lang][key] = more[lang][key]; });
    });
  })({
    zh: {
      history: "查看历史对话", historyMore: "查看更早的对话", historyNone: "没有更早的对话了。",
      historyTruncated: "这里只显示前 {n} 条消息，下载聊天记录可查看全部。", transcriptDownload: "下载聊天记录",
      transcriptPreparing: "正在生成…", transcriptFailed: "聊天记录下载失败"
    },
    en: {
      history: "Show earlier conversations", historyMore: "Show older conversations",
      historyNone: "There are no earlier conversations.",
      historyTruncated: "Only the first {n} messages are shown here: download the transcript for all of them.",
      transcriptDownload: "Download transcript", transcriptPreparing: "Preparing…",
      transcriptFailed: "The transcript could not be downloaded"
    }
  });

  // --- storage (localStorage may be unavailable: then the widget forgets on reload) -----------
  var memory = {};
  var PREFIX = "bookkeeping-desk:" + SITE_KEY + ":";
  function load(key, fallback) {
    var raw;
    try { raw = window.localStorage.getItem(PREFIX + key); } catch (e) { raw = memory[key]; }
    if (raw == null) return fallback;
    try { return JSON.parse(raw); } catch (e) { return fallback; }
  }
  function save(key, value) {
    var raw = JSON.stringify(value);
    try { window.localStorage.setItem(PREFIX + key, raw); } catch (e) { memory[key] = raw; }
  }
  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) window.crypto.getRandomValues(bytes);
    else for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" +
      hex.slice(20);
  }

  // --- state --------------------------------------------------------------------------------
  var state = {
    socket: null,
    token: load("token", null),
    outbox: load("outbox", []), // [{client_msg_id, text}] not yet acknowledged
    lastId: load("last_id", 0), // highest message id received
    resumeFrom: null, // lastId when the connection dropped: where the next session resumes from
    botChat: load("bot_chat", null), // the conversation opened by asking the assistant with nobody online
    asking: false, // a question to the assistant is on its way (its conversation is not known yet)
    maxConversation: load("max_conversation", 0),
    floor: null, // messages of conversations below this id belong to earlier visits: not shown
    conversationId: null,
    site: {},
    online: true,
    prechat: false, // the server asks for the pre-chat form before this visitor's next new chat
    prechatShape: "",
    sessions: 0,
    shown: false,
    open: load("open", false),
    pageViewSent: false,
    typingTimer: null,
    lastTypingSent: 0,
    closedShown: false,
    closedIds: {},
    statusKind: "",
    ready: false,
    invite: null,
    joined: false,
    unread: 0
  };
  var seen = {}; // message id -> element
  var pending = {}; // client_msg_id -> element
  var ui = null;

  // --- DOM helpers --------------------------------------------------------------------------
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function timeOf(iso) {
    var date = iso ? new Date(iso) : new Date();
    if (isNaN(date.getTime())) return "";
    return ("0" + date.getHours()).slice(-2) + ":" + ("0" + date.getMinutes()).slice(-2);
  }
  function absolute(url) {
    if (/^https?:\/\//i.test(url)) return url;
    return BASE + (url.charAt(0) === "/" ? "" : "/") + url;
  }

  var CSS = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:-apple-system,BlinkMacSystemFont,'PingFang SC','Microsoft YaHei',",
    "'Noto Sans CJK SC',sans-serif;font-size:14px;line-height:1.5}",
    ".launcher{position:fixed;bottom:20px;z-index:2147483646;border:0;border-radius:24px;padding:12px 18px;",
    "background:var(--theme);color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);font-weight:600}",
    ".right{right:20px}.left{left:20px}",
    ".badge{display:inline-block;min-width:18px;margin-left:6px;padding:0 5px;border-radius:9px;background:#ff4d4f;",
    "color:#fff;font-size:12px;text-align:center}",
    ".panel{position:fixed;bottom:84px;z-index:2147483647;width:360px;height:540px;max-height:calc(100vh - 104px);",
    "display:flex;flex-direction:column;background:#fff;color:#222;border-radius:12px;overflow:hidden;",
    "box-shadow:0 8px 30px rgba(0,0,0,.25)}",
    ".panel[hidden],[hidden]{display:none!important}",
    ".head{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--theme);color:#fff}",
    ".head .name{flex:1;font-weight:600}",
    ".head button{background:transparent;border:1px solid rgba(255,255,255,.6);color:#fff;border-radius:6px;",
    "padding:2px 8px;cursor:pointer;font-size:12px}",
    ".banner{background:#fff7e6;color:#ad6800;padding:6px 12px;font-size:12px;border-bottom:1px solid #ffe7ba}",
    ".status{background:#f0f5ff;color:#1d39c4;padding:6px 12px;font-size:12px}",
    ".log{flex:1;overflow-y:auto;padding:12px;background:#f7f8fa}",
    ".welcome{color:#555;background:#fff;border-radius:8px;padding:8px 10px;margin-bottom:10px}",
    ".msg{margin:8px 0;display:flex;flex-direction:column;align-items:flex-start}",
    ".msg.mine{align-items:flex-end}",
    ".meta{font-size:12px;color:#888;margin-bottom:2px}",
    ".bubble{max-width:80%;padding:8px 10px;border-radius:10px;background:#fff;white-space:pre-wrap;",
    "word-break:break-word;box-shadow:0 1px 2px rgba(0,0,0,.06)}",
    ".mine .bubble{background:var(--theme);color:#fff}",
    ".mine .bubble a{color:#fff}",
    ".msg.pending .bubble{opacity:.6}.msg.failed .bubble{background:#fff1f0;color:#a8071a}",
    ".msg.system{align-items:center}.msg.system .bubble{background:transparent;box-shadow:none;color:#888;",
    "font-size:12px}",
    ".bubble img{display:block;max-width:220px;max-height:220px;border-radius:6px}",
    ".typing{font-size:12px;color:#888;padding:0 12px 4px;background:#f7f8fa}",
    ".compose{display:flex;gap:6px;padding:8px;border-top:1px solid #eee;align-items:flex-end}",
    ".compose textarea{flex:1;resize:none;height:40px;max-height:120px;border:1px solid #d9d9d9;",
    "border-radius:8px;padding:8px}",
    "button.primary{background:var(--theme);color:#fff;border:0;border-radius:8px;padding:8px 12px;cursor:pointer}",
    "button.icon{background:#fff;border:1px solid #d9d9d9;border-radius:8px;padding:8px 10px;cursor:pointer}",
    "form.card{background:#fff;border-radius:8px;padding:10px;margin:10px 0;display:flex;flex-direction:column;",
    "gap:6px}",
    "form.card input,form.card textarea{border:1px solid #d9d9d9;border-radius:6px;padding:6px 8px;width:100%}",
    ".stars{display:flex;gap:4px}.stars button{border:1px solid #d9d9d9;background:#fff;border-radius:6px;",
    "padding:4px 8px;cursor:pointer}.stars button[aria-pressed=true]{background:var(--theme);color:#fff}",
    ".note{font-size:12px;color:#888}.err{font-size:12px;color:#cf1322}",
    ".msg .handoff{margin-top:4px;background:#fff;border:1px solid var(--theme);color:var(--theme);",
    "border-radius:12px;padding:2px 10px;font-size:12px;cursor:pointer}",
    "form.ask{flex-direction:row;align-items:center;margin:8px 10px 0}form.ask input{flex:1}",
    "form.card label{font-size:12px;color:#555;margin-top:2px}.req{color:#cf1322}",
    "form.card [aria-invalid=true]{border-color:#cf1322}",
    ".prechat-form{margin:10px 12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}",
    ".invite{position:fixed;bottom:84px;z-index:2147483647;width:280px;background:#fff;color:#222;",
    "border-radius:10px;padding:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);display:flex;flex-direction:column;",
    "gap:8px}",
    ".invite .actions{display:flex;gap:8px;justify-content:flex-end}",
    "@media (max-width:480px){.panel{left:0!important;right:0!important;top:0;bottom:0;width:100%;",
    "height:100%;max-height:none;border-radius:0}.invite{left:10px!important;right:10px!important;width:auto}",
    ".compose textarea,form.card input,form.card textarea{font-size:16px}}"
  ].join("");
  CSS += [
    ".history{text-align:center;margin-bottom:10px}",
    ".history button.history-more{background:transparent;border:0;color:var(--theme);cursor:pointer;",
    "font-size:12px;padding:4px}",
    ".history-conversation{border-bottom:1px dashed #d9d9d9;padding-bottom:6px;margin-bottom:8px;text-align:left}",
    ".history-separator{display:flex;align-items:center;justify-content:center;gap:8px;color:#888;font-size:12px;",
    "margin:6px 0}",
    ".history-separator button,.head button.download-transcript{font-size:12px;cursor:pointer}",
    ".history-separator button{background:#fff;border:1px solid #d9d9d9;border-radius:10px;padding:0 8px;",
    "color:#555}",
    "div.card{background:#fff;border-radius:8px;padding:10px;margin:10px 0;display:flex;flex-direction:column;",
    "gap:6px}",
    ".bubble a{color:inherit;text-decoration:underline;word-break:break-all}"
  ].join("");

  // --- building the widget ------------------------------------------------------------------
  function build() {
    var host = el("div");
    host.id = "bookkeeping-desk-chat";
    host.setAttribute("data-site", SITE_KEY);
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    var sheetDone = false;
    try {
      if (root.adoptedStyleSheets !== undefined && typeof CSSStyleSheet === "function") {
        var sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        root.adoptedStyleSheets = [sheet];
        sheetDone = true;
      }
    } catch (e) { sheetDone = false; }
    if (!sheetDone) root.appendChild(el("style", null, CSS));

    host.style.setProperty("--theme", "#1677ff");
    var u = { host: host, root: root };
    u.launcher = el("button", "launcher", t("open"));
    u.launcher.type = "button";
    u.launcher.setAttribute("part", "launcher");
    u.badge = el("span", "badge");
    u.badge.hidden = true;
    u.launcher.appendChild(u.badge);

    u.panel = el("div", "panel");
    u.panel.setAttribute("role", "dialog");
    u.panel.setAttribute("aria-label", t("title"));
    u.panel.hidden = true;
    var head = el("div", "head");
    u.title = el("span", "name", t("title"));
    u.endButton = el("button", null, t("end"));
    u.endButton.type = "button";
    u.endButton.hidden = true;
    u.closeButton = el("button", null, t("close"));
    u.closeButton.type = "button";
    head.appendChild(u.title);
    head.appendChild(u.endButton);
    head.appendChild(u.closeButton);
    u.banner = el("div", "banner");
    u.banner.hidden = true;
    u.status = el("div", "status");
    u.status.hidden = true;
    u.log = el("div", "log");
    u.log.setAttribute("aria-live", "polite");
    u.welcome = el("div", "welcome");
    u.welcome.hidden = true;
    u.log.appendChild(u.welcome);
    buildHistory(u, head);
    u.typing = el("div", "typing", t("typing"));
    u.typing.hidden = true;

    u.compose = el("form", "compose");
    u.input = el("textarea");
    u.input.placeholder = t("placeholder");
    u.input.maxLength = 2000;
    u.input.setAttribute("aria-label", t("placeholder"));
    u.fileInput = el("input");
    u.fileInput.type = "file";
    u.fileInput.hidden = true;
    u.fileButton = el("button", "icon");
    u.fileButton.appendChild(paperclip());
    u.fileButton.type = "button";
    u.fileButton.title = t("file");
    u.fileButton.setAttribute("aria-label", t("file"));
    u.sendButton = el("button", "primary", t("send"));
    u.sendButton.type = "submit";
    u.compose.appendChild(u.fileInput);
    u.compose.appendChild(u.fileButton);
    u.compose.appendChild(u.input);
    u.compose.appendChild(u.sendButton);

    u.offline = buildOfflineForm();
    u.offline.hidden = true;
    u.ask = buildAskForm();
    u.ask.hidden = true;
    u.prechat = el("form", "card prechat-form");
    u.prechat.hidden = true;

    u.panel.appendChild(head);
    u.panel.appendChild(u.banner);
    u.panel.appendChild(u.status);
    u.panel.appendChild(u.log);
    u.panel.appendChild(u.typing);
    u.panel.appendChild(u.ask);
    u.panel.appendChild(u.offline);
    u.panel.appendChild(u.prechat);
    u.panel.appendChild(u.compose);

    root.appendChild(u.launcher);
    root.appendChild(u.panel);

    u.launcher.addEventListener("click", function () { setOpen(u.panel.hidden); });
    u.closeButton.addEventListener("click", function () { setOpen(false); });
    u.endButton.addEventListener("click", endChat);
    u.compose.addEventListener("submit", function (event) { event.preventDefault(); sendFromInput(); });
    u.input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        sendFromInput();
      }
    });
    u.input.addEventListener("input", onDraft);
    u.fileButton.addEventListener("click", function () { u.fileInput.click(); });
    u.fileInput.addEventListener("change", function () {
      var file = u.fileInput.files && u.fileInput.files[0];
      u.fileInput.value = "";
      if (file) upload(file);
    });
    addEmojiPicker(u);
    return u;
  }

  function paperclip() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "18");
    svg.setAttribute("height", "18");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5");
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "1.8");
    path.setAttribute("stroke-linecap", "round");
    svg.appendChild(path);
    return svg;
  }

  function field(form, tag, name, label, type) {
    var input = el(tag);
    input.name = name;
    input.placeholder = label;
    input.setAttribute("aria-label", label);
    if (type) input.type = type;
    form.appendChild(input);
    return input;
  }

  function buildOfflineForm() {
    var form = el("form", "card");
    form.className = "card offline-form";
    form.appendChild(el("div", "note", t("offlineTitle")));
    var name = field(form, "input", "name", t("name"), "text");
    name.maxLength = 100;
    var phone = field(form, "input", "phone", t("phone"), "tel");
    phone.maxLength = 30;
    var email = field(form, "input", "email", t("email"), "email");
    email.maxLength = 254;
    var text = field(form, "textarea", "text", t("message"));
    text.maxLength = 2000;
    text.rows = 3;
    var error = el("div", "err");
    var button = el("button", "primary", t("leave"));
    button.type = "submit";
    form.appendChild(error);
    form.appendChild(button);
    var clientId = uuid();
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.textContent = "";
      var payload = { client_msg_id: clientId, name: name.value.trim(), text: text.value.trim() };
      if (phone.value.trim()) payload.phone = phone.value.trim();
      if (email.value.trim()) payload.email = email.value.trim();
      if (!payload.name || !payload.text) { error.textContent = t("nameNeeded"); return; }
      if (!payload.phone && !payload.email) { error.textContent = t("contactNeeded"); return; }
      if (!state.socket || !state.socket.connected) { error.textContent = t("offline"); return; }
      button.disabled = true;
      state.socket.emit("leave_message", payload, function (ack) {
        button.disabled = false;
        if (ack && ack.id != null) {
          clientId = uuid();
          clear(form);
          form.appendChild(el("div", "note left", t("left")));
        } else {
          error.textContent = (ack && ack.error) || t("error");
        }
      });
    });
    return form;
  }

  /** With nobody online: a question for the assistant (the knowledge base's bot) above the form. */
  function buildAskForm() {
    var form = el("form", "card ask");
    var input = field(form, "input", "question", t("ask"), "text");
    input.maxLength = 2000;
    var button = el("button", "primary", t("askSend"));
    button.type = "submit";
    form.appendChild(button);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text) return;
      input.value = "";
      var item = { client_msg_id: uuid(), text: text.slice(0, 2000), ask: true };
      state.asking = true;
      state.outbox.push(item);
      save("outbox", state.outbox);
      showPending(item);
      if (state.socket && state.socket.connected && state.ready) emitMessage(item);
      else setStatus(t("offline"), "offline");
    });
    return form;
  }

  /** 转人工: ask for a person. Queued: the chat stays in the queue; nobody online: the form. */
  function handOff(button, question) {
    button.disabled = true;
    if (!state.online && !ui.offline.hidden) {
      var text = ui.offline.querySelector("textarea[name=text]");
      var name = ui.offline.querySelector("input[name=name]");
      if (text && !text.value && question) text.value = question;
      if (name) name.focus();
      ui.offline.scrollIntoView && ui.offline.scrollIntoView({ block: "nearest" });
    }
    if (state.socket && state.socket.connected) state.socket.emit("handoff", {}, function () {});
  }

  // --- the pre-chat form (售前表单): the site's fields, checked by the server ---------------------
  var PRECHAT_FIELDS = {
    name: { label: "prechatName", tag: "input", type: "text", max: 100, autocomplete: "name" },
    phone: { label: "prechatPhone", tag: "input", type: "tel", max: 30, autocomplete: "tel" },
    email: { label: "prechatEmail", tag: "input", type: "email", max: 254, autocomplete: "email" },
    question: { label: "prechatQuestion", tag: "textarea", max: 2000 }
  };

  function buildPrechatForm(fields) {
    var form = ui.prechat;
    clear(form);
    form.noValidate = true; // the server checks every field and says what is wrong
    form.setAttribute("aria-label", t("prechatForm"));
    var intro = el("div", "note", t("prechatTitle"));
    intro.id = "bd-prechat-intro";
    form.setAttribute("aria-describedby", intro.id);
    form.appendChild(intro);
    var inputs = {};
    var errors = {};
    fields.forEach(function (f) {
      var spec = PRECHAT_FIELDS[f.name];
      if (!spec) return;
      var id = "bd-prechat-" + f.name;
      var label = el("label", null, t(spec.label) + " ");
      label.htmlFor = id;
      var mark = el("span", f.required ? "req" : "note", "(" + t(f.required ? "required" : "optional") + ")");
      label.appendChild(mark);
      var input = el(spec.tag);
      input.id = id;
      input.name = f.name;
      if (spec.type) input.type = spec.type;
      if (spec.autocomplete) input.setAttribute("autocomplete", spec.autocomplete);
      if (spec.tag === "textarea") input.rows = 3;
      input.maxLength = spec.max;
      if (f.required) input.setAttribute("aria-required", "true");
      var error = el("div", "err");
      error.id = id + "-error";
      error.hidden = true;
      input.setAttribute("aria-describedby", error.id);
      form.appendChild(label);
      form.appendChild(input);
      form.appendChild(error);
      inputs[f.name] = input;
      errors[f.name] = error;
    });
    var general = el("div", "err");
    general.setAttribute("role", "alert");
    var button = el("button", "primary", t("prechatSend"));
    button.type = "submit";
    form.appendChild(general);
    form.appendChild(button);
    var clientId = uuid();

    function showErrors(fieldErrors, message) {
      var first = null;
      Object.keys(inputs).forEach(function (name) {
        var problems = fieldErrors && fieldErrors[name];
        errors[name].textContent = problems ? problems.join(" ") : "";
        errors[name].hidden = !problems;
        if (problems) inputs[name].setAttribute("aria-invalid", "true");
        else inputs[name].removeAttribute("aria-invalid");
        if (problems && !first) first = inputs[name];
      });
      var others = [];
      Object.keys(fieldErrors || {}).forEach(function (name) {
        if (!inputs[name]) others = others.concat(fieldErrors[name]);
      });
      general.textContent = others.length ? others.join(" ") : (first || !message ? "" : message);
      if (first) first.focus();
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      showErrors(null, "");
      if (!state.socket || !state.socket.connected || !state.ready) { general.textContent = t("offline"); return; }
      var payload = {};
      Object.keys(inputs).forEach(function (name) { payload[name] = inputs[name].value.trim(); });
      var question = payload.question || "";
      if (question) payload.client_msg_id = clientId;
      button.disabled = true;
      state.socket.emit("prechat", payload, function (ack) {
        button.disabled = false;
        if (!ack || !ack.ok) {
          showErrors(ack && ack.errors, (ack && ack.error) || t("error"));
          return;
        }
        clientId = uuid();
        state.prechat = false;
        var message = ack.message;
        if (message && typeof message.id === "number") {
          if (state.closedShown) resetClosed();
          receive({ id: message.id, conversation_id: message.conversation_id, sender_type: "visitor",
                    text: question, client_msg_id: message.client_msg_id, created_at: message.created_at });
        }
        refreshMode();
        if (!ui.compose.hidden) ui.input.focus();
      });
    });
  }

  function applySite(site) {
    site = site || {};
    state.site = site;
    var colour = /^#[0-9a-fA-F]{6}$/.test(site.theme_color || "") ? site.theme_color : "#1677ff";
    ui.host.style.setProperty("--theme", colour);
    var side = site.button_position === "left" ? "left" : "right";
    ui.launcher.className = "launcher " + side;
    ui.panel.className = "panel " + side;
    ui.panel.style.left = side === "left" ? "20px" : "";
    ui.panel.style.right = side === "right" ? "20px" : "";
    if (site.name) ui.title.textContent = site.name;
    ui.welcome.textContent = site.welcome_text || "";
    ui.welcome.hidden = !site.welcome_text;
    ui.banner.textContent = site.warning_banner || "";
    ui.banner.hidden = !site.warning_banner;
    var fields = Object.prototype.toString.call(site.prechat_form) === "[object Array]" ? site.prechat_form : [];
    var shape = JSON.stringify(fields);
    if (shape !== state.prechatShape) {
      state.prechatShape = shape;
      buildPrechatForm(fields);
    }
  }

  function prechatShown() {
    return !!state.prechat && state.prechatShape !== "[]" && state.prechatShape !== "";
  }

  function show() {
    if (state.shown) return;
    state.shown = true;
    registry[SITE_KEY] = "shown";
    (document.body || document.documentElement).appendChild(ui.host);
    if (state.open) setOpen(true);
  }

  function refuse() {
    if (ui && ui.host.parentNode) ui.host.parentNode.removeChild(ui.host);
    state.shown = false;
    registry[SITE_KEY] = "refused";
  }

  function setOpen(open) {
    state.open = !!open;
    save("open", state.open);
    ui.panel.hidden = !state.open;
    lookAgain();
    if (state.open) {
      if (state.invite) dismissInvite(true);
      scrollDown();
      if (!ui.compose.hidden) ui.input.focus();
      else if (!ui.prechat.hidden) {
        var first = ui.prechat.querySelector("input,textarea");
        if (first) first.focus();
      }
    }
  }

  function scrollDown() { ui.log.scrollTop = ui.log.scrollHeight; }

  /** Chat, or the leave-a-message form when nobody can answer (offline or outside hours). */
  function refreshMode() {
    var chatting = !!state.conversationId;
    // a chat opened by asking the assistant keeps the form: nobody is there to answer it
    var asked = chatting && (state.asking || state.conversationId === state.botChat);
    var leave = !state.online && state.site.offline_form !== false && (!chatting || asked);
    // the pre-chat form comes before the first message of a new chat (never during one)
    var prechat = !leave && !chatting && prechatShown();
    ui.offline.hidden = !leave;
    ui.ask.hidden = !leave || !state.site.assistant;
    ui.prechat.hidden = !prechat;
    ui.compose.hidden = leave || prechat;
    ui.endButton.hidden = !chatting;
    ui.downloadButton.hidden = !chatting;
    if (!state.online && !leave && !chatting) setStatus(t("noAgent"), "noAgent");
    else if (state.statusKind === "noAgent") setStatus("");
  }

  function setStatus(text, kind) {
    ui.status.textContent = text || "";
    ui.status.hidden = !text;
    state.statusKind = text ? kind || "" : "";
  }

  // --- messages -----------------------------------------------------------------------------
  function senderLabel(message) {
    if (message.sender_type === "visitor") return t("you");
    if (message.sender_type === "bot") return t("bot");
    return message.sender_name || t("agent");
  }

  function fillBubble(bubble, message) {
    clear(bubble);
    var att = message.attachment;
    if (att && att.id != null) {
      var url = absolute(att.url || "/chat/files/" + encodeURIComponent(att.id));
      var link = el("a");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      if (/^image\//i.test(att.content_type || "")) {
        var img = el("img");
        img.src = url;
        img.alt = att.filename || "";
        img.loading = "lazy";
        link.appendChild(img);
      } else {
        link.textContent = (att.filename || t("download")) +
          (att.size ? " (" + Math.max(1, Math.round(att.size / 1024)) + " KB)" : "");
        link.setAttribute("download", att.filename || "");
      }
      bubble.appendChild(link);
      if (message.text && message.text !== att.filename) bubble.appendChild(el("div", null, message.text));
    } else {
      appendText(bubble, message.text || "");
    }
  }

  function messageNode(message, mine) {
    var node = el("div", "msg" + (mine ? " mine" : "") + (message.sender_type === "system" ? " system" : ""));
    if (message.sender_type !== "system") {
      node.appendChild(el("div", "meta", senderLabel(message) + " " + timeOf(message.created_at)));
    }
    var bubble = el("div", "bubble");
    fillBubble(bubble, message);
    node.appendChild(bubble);
    if (message.sender_type === "bot") {
      node.className += " bot";
      var handoff = el("button", "handoff", t("handoff"));
      handoff.type = "button";
      var question = lastQuestion();
      handoff.addEventListener("click", function () { handOff(handoff, question); });
      node.appendChild(handoff);
    }
    if (message.id != null) node.setAttribute("data-id", String(message.id));
    return node;
  }

  function lastQuestion() {
    var mine = ui.log.querySelectorAll(".msg.mine .bubble");
    return mine.length ? mine[mine.length - 1].textContent : "";
  }

  function systemLine(text) {
    var node = messageNode({ sender_type: "system", text: text }, false);
    ui.log.appendChild(node);
    scrollDown();
  }

  function noteConversation(conversationId) {
    if (typeof conversationId === "number" && conversationId > state.maxConversation) {
      state.maxConversation = conversationId;
      save("max_conversation", conversationId);
    }
  }

  /** Show a message once (by id; a pending message of ours becomes the acknowledged one). */
  function receive(message) {
    if (!message || typeof message.id !== "number") return;
    if (message.id > state.lastId) {
      state.lastId = message.id;
      save("last_id", message.id);
    }
    noteConversation(message.conversation_id);
    if (seen[message.id]) return;
    if (state.floor != null && message.conversation_id < state.floor) return;
    if (message.sender_type === "system" && message.text && message.text === state.site.welcome_text &&
        !ui.welcome.hidden) {
      seen[message.id] = ui.welcome; // the welcome text is on show already
      return;
    }
    var mine = message.sender_type === "visitor";
    if (mine && message.client_msg_id) dropFromOutbox(message.client_msg_id); // stored: never resent
    var node = mine && message.client_msg_id ? pending[message.client_msg_id] : null;
    if (node) {
      settle(message.client_msg_id, message);
      return;
    }
    node = messageNode(message, mine);
    seen[message.id] = node;
    ui.log.appendChild(node);
    if (message.conversation_id && !state.closedIds[message.conversation_id]) {
      state.conversationId = message.conversation_id;
      refreshMode();
    }
    if (message.sender_type === "agent" || message.sender_type === "bot") {
      ui.typing.hidden = true;
      countUnread(message);
    }
    markReceipts();
    scrollDown();
  }

  function settle(clientId, message) {
    var node = pending[clientId];
    delete pending[clientId];
    if (!node) return;
    node.className = "msg mine";
    node.setAttribute("data-id", String(message.id));
    node.firstChild.textContent = t("you") + " " + timeOf(message.created_at);
    seen[message.id] = node;
  }

  function dropFromOutbox(clientId) {
    var left = state.outbox.filter(function (item) { return item.client_msg_id !== clientId; });
    if (left.length === state.outbox.length) return;
    state.outbox = left;
    save("outbox", state.outbox);
  }

  var refusals = {}; // client_msg_id -> times refused with retry_after

  function emitMessage(item) {
    state.socket.emit("message", { client_msg_id: item.client_msg_id, text: item.text }, function (ack) {
      if (ack && typeof ack.id === "number") {
        dropFromOutbox(item.client_msg_id);
        noteConversation(ack.conversation_id);
        if (item.ask && ack.conversation_id) {
          state.botChat = ack.conversation_id;
          state.asking = false;
          save("bot_chat", state.botChat);
        }
        if (ack.conversation_id && !state.closedIds[ack.conversation_id] && ack.conversation_id >= (state.floor || 0)) {
          state.conversationId = ack.conversation_id;
        }
        if (seen[ack.id] && pending[item.client_msg_id]) {
          // the same message also arrived as an event: keep one bubble
          var extra = pending[item.client_msg_id];
          delete pending[item.client_msg_id];
          if (extra.parentNode) extra.parentNode.removeChild(extra);
        } else {
          settle(item.client_msg_id, { id: ack.id, created_at: ack.created_at });
        }
        refreshMode();
      } else if (ack && ack.error && typeof ack.retry_after === "number") {
        // the server was busy (or we sent too fast) and stored nothing: the message stays in the
        // outbox and goes again when the server said it may (a reconnect resends it too). Each
        // refusal of the same message doubles the wait (at most 30 s), plus up to a second at
        // random: an overloaded server is not flooded by every widget coming back at once.
        refusals[item.client_msg_id] = (refusals[item.client_msg_id] || 0) + 1;
        var wait = Math.min(30, Math.max(1, ack.retry_after) * Math.pow(2, refusals[item.client_msg_id] - 1));
        setTimeout(function () {
          var waiting = state.outbox.some(function (o) { return o.client_msg_id === item.client_msg_id; });
          if (waiting && state.socket && state.socket.connected && state.ready) emitMessage(item);
        }, (wait + Math.random()) * 1000);
      } else if (ack && ack.error) {
        // refused (too long, blocked...): resending would not help
        dropFromOutbox(item.client_msg_id);
        var node = pending[item.client_msg_id];
        delete pending[item.client_msg_id];
        if (node) {
          node.className = "msg mine failed";
          node.firstChild.textContent = t("failed") + ": " + ack.error;
        }
      }
    });
  }

  function showPending(item) {
    var node = messageNode({ sender_type: "visitor", text: item.text }, true);
    node.className = "msg mine pending";
    node.firstChild.textContent = t("you") + " · " + t("sending");
    node.setAttribute("data-client-id", item.client_msg_id);
    pending[item.client_msg_id] = node;
    ui.log.appendChild(node);
    scrollDown();
  }

  function sendFromInput() {
    var text = ui.input.value.trim();
    if (!text) return;
    ui.input.value = "";
    var item = { client_msg_id: uuid(), text: text.slice(0, 2000) };
    state.outbox.push(item);
    save("outbox", state.outbox);
    showPending(item);
    if (state.closedShown) resetClosed();
    if (state.socket && state.socket.connected && state.ready) emitMessage(item);
    else setStatus(t("offline"), "offline");
    sendTyping("");
  }

  // --- typing -------------------------------------------------------------------------------
  function sendTyping(draft) {
    if (!state.socket || !state.socket.connected || !state.conversationId) return;
    state.lastTypingSent = Date.now();
    state.socket.emit("typing", { draft: draft.slice(0, 2000) });
  }

  function onDraft() {
    var wait = 1000 - (Date.now() - state.lastTypingSent);
    clearTimeout(state.typingTimer);
    if (wait <= 0) sendTyping(ui.input.value);
    else state.typingTimer = setTimeout(function () { sendTyping(ui.input.value); }, wait);
  }

  var agentTypingTimer = null;
  function agentTyping() {
    ui.typing.hidden = false;
    clearTimeout(agentTypingTimer);
    agentTypingTimer = setTimeout(function () { ui.typing.hidden = true; }, 4000);
  }

  // --- files --------------------------------------------------------------------------------
  function upload(file) {
    if (!state.token) return;
    var form = new FormData();
    form.append("file", file);
    form.append("site_key", SITE_KEY);
    form.append("visitor_token", state.token);
    var note = el("div", "msg mine pending");
    note.appendChild(el("div", "meta", t("you") + " · " + t("sending")));
    note.appendChild(el("div", "bubble", file.name));
    ui.log.appendChild(note);
    scrollDown();
    fetch(BASE + "/chat/files", { method: "POST", body: form, mode: "cors", credentials: "omit" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          return { status: response.status, body: body };
        });
      })
      .then(function (result) {
        if (note.parentNode) note.parentNode.removeChild(note);
        if (result.status === 201 && result.body && result.body.message) {
          receive(result.body.message);
        } else {
          var message = (result.body && result.body.message) || (result.status === 413 ? t("fileTooBig") : t("error"));
          systemLine(t("failed") + ": " + (typeof message === "string" ? message : t("error")));
        }
      })
      .catch(function () {
        if (note.parentNode) note.parentNode.removeChild(note);
        systemLine(t("failed") + ": " + t("error"));
      });
  }

  // --- end of a chat: rating and transcript -------------------------------------------------
  function endChat() {
    if (!state.socket || !state.socket.connected) return;
    // Right after a burst of messages the visitor may be over the rate limit: the refusal carries
    // retry_after, and the chat is ended as soon as the server allows.
    emitRetrying("close", {}, function (ack) {
      if (ack && ack.closed) onClosed({ conversation_id: ack.closed, by: "visitor" });
      else if (ack && ack.error) setStatus(ack.error, "error");
    });
  }

  function resetClosed() {
    state.closedShown = false;
  }

  function onClosed(data) {
    if (data && data.conversation_id) state.closedIds[data.conversation_id] = true;
    if (state.closedShown) return;
    state.closedShown = true;
    state.conversationId = null;
    state.joined = false;
    ui.typing.hidden = true;
    setStatus("");
    systemLine(t("closed"));
    ui.log.appendChild(ratingForm());
    ui.log.appendChild(transcriptForm());
    ui.log.appendChild(downloadCard(data && data.conversation_id));
    refreshMode();
    scrollDown();
  }

  function ratingForm() {
    var form = el("form", "card rate-form");
    form.appendChild(el("div", null, t("rateTitle")));
    var stars = el("div", "stars");
    var score = 0;
    for (var i = 1; i <= 5; i++) {
      (function (value) {
        var star = el("button", null, value + "★");
        star.type = "button";
        star.setAttribute("aria-pressed", "false");
        star.setAttribute("data-score", String(value));
        star.addEventListener("click", function () {
          score = value;
          Array.prototype.forEach.call(stars.children, function (b) {
            b.setAttribute("aria-pressed", String(Number(b.getAttribute("data-score")) <= value));
          });
        });
        stars.appendChild(star);
      })(i);
    }
    form.appendChild(stars);
    var comment = el("textarea");
    comment.maxLength = 1000;
    comment.rows = 2;
    comment.placeholder = t("rateComment");
    comment.setAttribute("aria-label", t("rateComment"));
    form.appendChild(comment);
    var error = el("div", "err");
    form.appendChild(error);
    var button = el("button", "primary", t("rateSend"));
    button.type = "submit";
    form.appendChild(button);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!score || !state.socket || !state.socket.connected) return;
      state.socket.emit("rate", { score: score, comment: comment.value.trim() }, function (ack) {
        if (ack && ack.rating) {
          clear(form);
          form.appendChild(el("div", "note", t("rated")));
        } else {
          error.textContent = (ack && ack.error) || t("error");
        }
      });
    });
    return form;
  }

  function transcriptForm() {
    var form = el("form", "card transcript-form");
    form.appendChild(el("div", null, t("transcriptTitle")));
    var email = el("input");
    email.type = "email";
    email.maxLength = 254;
    email.placeholder = t("email");
    email.setAttribute("aria-label", t("email"));
    form.appendChild(email);
    var error = el("div", "err");
    form.appendChild(error);
    var button = el("button", "primary", t("transcriptSend"));
    button.type = "submit";
    form.appendChild(button);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var value = email.value.trim();
      if (!value || !state.socket || !state.socket.connected) return;
      button.disabled = true;
      state.socket.emit("transcript", { email: value }, function (ack) {
        button.disabled = false;
        if (ack && ack.ok) {
          clear(form);
          form.appendChild(el("div", "note", t("transcriptSent")));
        } else {
          error.textContent = (ack && ack.error) || t("error");
        }
      });
    });
    return form;
  }

  // --- earlier conversations (历史对话) and the transcript download ---------------------------
  // A returning visitor opens their closed conversations on demand, a page at a time ("history"),
  // each above the ones shown, with its date and a download button; nothing is sent unasked.
  var past = { before: null, loading: false, loaded: false };

  function buildHistory(u, head) {
    u.history = el("div", "history");
    u.history.hidden = true;
    u.historyList = el("div", "history-list");
    u.historyButton = el("button", "history-more", t("history"));
    u.historyButton.type = "button";
    u.history.appendChild(u.historyButton);
    u.history.appendChild(u.historyList);
    u.log.insertBefore(u.history, u.log.firstChild);
    u.historyButton.addEventListener("click", loadHistory);
    u.downloadButton = el("button", "download-transcript", t("transcriptDownload"));
    u.downloadButton.type = "button";
    u.downloadButton.hidden = true;
    head.insertBefore(u.downloadButton, u.endButton);
    u.downloadButton.addEventListener("click", function () {
      downloadTranscript(state.conversationId, u.downloadButton);
    });
  }

  function showHistoryEntry(any) {
    if (!past.loaded) ui.history.hidden = !any;
  }

  function loadHistory() {
    if (past.loading || !state.socket || !state.socket.connected) return;
    past.loading = true;
    ui.historyButton.disabled = true;
    emitRetrying("history", past.before ? { before_id: past.before } : {}, function (ack) {
      past.loading = false;
      ui.historyButton.disabled = false;
      if (!ack || !ack.conversations) {
        setStatus((ack && ack.error) || t("error"), "error");
        return;
      }
      past.loaded = true;
      var fromBottom = ui.log.scrollHeight - ui.log.scrollTop;
      ack.conversations.forEach(function (conversation) { // newest first: each older one goes above
        ui.historyList.insertBefore(pastConversation(conversation), ui.historyList.firstChild);
        past.before = conversation.conversation_id;
      });
      if (ack.more) {
        ui.historyButton.textContent = t("historyMore");
      } else {
        ui.historyButton.hidden = true;
        ui.historyList.insertBefore(el("div", "note history-none", t("historyNone")), ui.historyList.firstChild);
      }
      ui.log.scrollTop = ui.log.scrollHeight - fromBottom; // the visitor keeps their place
    });
  }

  function dateOf(iso) {
    var date = iso ? new Date(iso) : null;
    if (!date || isNaN(date.getTime())) return "";
    return date.getFullYear() + "-" + ("0" + (date.getMonth() + 1)).slice(-2) + "-" +
      ("0" + date.getDate()).slice(-2) + " " + timeOf(iso);
  }

  function pastConversation(conversation) {
    var box = el("section", "history-conversation");
    box.setAttribute("data-conversation-id", String(conversation.conversation_id));
    var separator = el("div", "history-separator");
    separator.appendChild(el("span", "history-date", dateOf(conversation.started_at) +
      (conversation.agent_name ? " · " + conversation.agent_name : "")));
    var download = el("button", "history-download", t("transcriptDownload"));
    download.type = "button";
    download.addEventListener("click", function () { downloadTranscript(conversation.conversation_id, download); });
    separator.appendChild(download);
    box.appendChild(separator);
    (conversation.messages || []).forEach(function (message) {
      var node = messageNode(message, message.sender_type === "visitor");
      node.removeAttribute("data-id"); // not a message of the chat on show
      var handoff = node.querySelector(".handoff");
      if (handoff) handoff.parentNode.removeChild(handoff);
      box.appendChild(node);
    });
    if (conversation.truncated) {
      box.appendChild(el("div", "note", t("historyTruncated", { n: (conversation.messages || []).length })));
    }
    return box;
  }

  function downloadCard(conversationId) {
    var card = el("div", "card download-card");
    var button = el("button", "primary transcript-download", t("transcriptDownload"));
    button.type = "button";
    button.addEventListener("click", function () { downloadTranscript(conversationId, button); });
    card.appendChild(button);
    return card;
  }

  /** The transcript of one of the visitor's conversations (the latest without an id) as a PDF:
   *  asked for with the visitor token in the body (never in an address); a long one is made in
   *  the background and fetched when ready. */
  function downloadTranscript(conversationId, button) {
    if (!state.token) return;
    var form = new FormData();
    form.append("site_key", SITE_KEY);
    form.append("visitor_token", state.token);
    if (conversationId) form.append("conversation_id", String(conversationId));
    form.append("language", pageLanguage.slice(0, 35));
    var userId = script.getAttribute("data-user-id");
    if (userId) {
      form.append("user_id", userId);
      form.append("user_hash", script.getAttribute("data-user-hash") || "");
    }
    var label = button ? button.textContent : "";
    if (button) {
      button.disabled = true;
      button.textContent = t("transcriptPreparing");
    }
    function finish(problem) {
      if (button) {
        button.disabled = false;
        button.textContent = label;
      }
      if (problem) setStatus(t("transcriptFailed") + ": " + problem, "error");
    }
    fetch(BASE + "/chat/transcript", { method: "POST", body: form, mode: "cors", credentials: "omit" })
      .then(function (response) { return pdfOf(response); })
      .then(function (file) {
        saveFile(file.blob, file.name);
        finish();
      })
      .catch(function (error) { finish((error && error.message) || t("error")); });
  }

  // A 200 answer is the PDF; a 202 names the background job to follow until its PDF is ready.
  function pdfOf(response) {
    if (response.status === 200) {
      return response.blob().then(function (blob) { return { blob: blob, name: fileName(response) }; });
    }
    return response.json().catch(function () { return {}; }).then(function (body) {
      if (response.status === 202 && body && typeof body.job_url === "string") return followJob(absolute(body.job_url), 0);
      throw new Error((body && typeof body.message === "string" && body.message) || t("error"));
    });
  }

  function followJob(url, polls) {
    return new Promise(function (resolve) { setTimeout(resolve, polls ? 1500 : 500); })
      .then(function () { return fetch(url, { mode: "cors", credentials: "omit" }); })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (response.status === 200 && body.status === "done" && typeof body.download_url === "string") {
            return fetch(absolute(body.download_url), { mode: "cors", credentials: "omit" }).then(pdfOf);
          }
          if (response.status !== 200 || body.status === "failed" || polls >= 400) {
            throw new Error((typeof body.message === "string" && body.message) || t("error"));
          }
          return followJob(url, polls + 1);
        });
      });
  }

  function fileName(response) {
    var disposition = response.headers.get("Content-Disposition") || "";
    var match = /filename\*=UTF-8''([^;]+)/i.exec(disposition) || /filename="([^"]+)"/i.exec(disposition);
    if (!match) return "transcript.pdf";
    try { return decodeURIComponent(match[1]); } catch (e) { return match[1]; }
  }

  function saveFile(blob, name) {
    var url = URL.createObjectURL(blob);
    var link = el("a");
    link.href = url;
    link.download = name;
    link.hidden = true;
    ui.root.appendChild(link);
    link.click();
    setTimeout(function () {
      URL.revokeObjectURL(url);
      if (link.parentNode) link.parentNode.removeChild(link);
    }, 10000);
  }

  // --- invitations --------------------------------------------------------------------------
  function dismissInvite(accepted) {
    var invite = state.invite;
    if (!invite) return;
    state.invite = null;
    if (invite.node.parentNode) invite.node.parentNode.removeChild(invite.node);
    if (state.socket && state.socket.connected) {
      state.socket.emit("invite_response", { invitation_id: invite.id, accepted: !!accepted }, function () {});
    }
  }

  function onInvite(data) {
    if (!data || data.invitation_id == null) return;
    if (state.invite) dismissInvite(false);
    var node = el("div", "invite " + (state.site.button_position === "left" ? "left" : "right"));
    node.style.left = state.site.button_position === "left" ? "20px" : "";
    node.style.right = state.site.button_position === "left" ? "" : "20px";
    if (data.agent_name) node.appendChild(el("strong", null, data.agent_name));
    node.appendChild(el("div", "invite-text", data.text || ""));
    var actions = el("div", "actions");
    var no = el("button", "icon", t("dismiss"));
    no.type = "button";
    var yes = el("button", "primary", t("accept"));
    yes.type = "button";
    actions.appendChild(no);
    actions.appendChild(yes);
    node.appendChild(actions);
    state.invite = { id: data.invitation_id, node: node };
    no.addEventListener("click", function () { dismissInvite(false); });
    yes.addEventListener("click", function () {
      dismissInvite(true);
      setOpen(true);
    });
    if (ui.panel.hidden) {
      ui.root.appendChild(node);
    } else {
      // already chatting: the invitation joins the conversation view
      systemLine(data.text || "");
      dismissInvite(true);
    }
  }

  // --- links, emoji, read receipts (已读), the unread count and the title ---------------------
  STRINGS.zh.read = "已读"; STRINGS.zh.emoji = "表情"; STRINGS.zh.newMessages = "新消息";
  STRINGS.en.read = "Read"; STRINGS.en.emoji = "Emoji"; STRINGS.en.newMessages = "New messages";
  CSS += [
    ".compose{flex-wrap:wrap}",
    ".emoji-picker{order:-1;flex-basis:100%;display:grid;grid-template-columns:repeat(8,1fr);gap:2px;padding:4px;",
    "border:1px solid #eee;border-radius:8px;background:#fff}",
    ".emoji-picker button{border:0;background:transparent;font-size:20px;line-height:1.3;padding:2px;cursor:pointer;",
    "border-radius:6px}.emoji-picker button:hover,.emoji-picker button:focus{background:#f0f0f0}",
    ".bubble a{color:inherit;text-decoration:underline}",
    ".msg .receipt{font-size:11px;color:#888;margin-top:2px}"
  ].join("");

  // http:// and https:// addresses in a message become links; everything else stays text (no
  // javascript:, data: or vbscript: link can be made). An address ends at a space, at anything
  // that is not ASCII (Chinese punctuation included) and before trailing punctuation.
  var URL_PATTERN = /\bhttps?:\/\/[A-Za-z0-9\-._~:\/?#\[\]@!$&'()*+,;=%]+/gi;

  function trimUrl(url) {
    for (;;) {
      var last = url.charAt(url.length - 1);
      var unbalanced = (last === ")" && url.split("(").length < url.split(")").length) ||
        (last === "]" && url.split("[").length < url.split("]").length);
      if (".,;:!?'\"*".indexOf(last) === -1 && !unbalanced) return url;
      url = url.slice(0, -1);
    }
  }

  /** Append *text* to *node* as text nodes, its web addresses as links (never as HTML). */
  function appendText(node, text) {
    var at = 0, match;
    URL_PATTERN.lastIndex = 0;
    while ((match = URL_PATTERN.exec(text)) !== null) {
      var url = trimUrl(match[0]);
      if (!/^https?:\/\/[A-Za-z0-9\[]/i.test(url)) continue;
      var link = el("a", null, url);
      link.href = url;
      if (link.protocol !== "http:" && link.protocol !== "https:") continue;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      if (match.index > at) node.appendChild(document.createTextNode(text.slice(at, match.index)));
      node.appendChild(link);
      at = match.index + url.length;
      URL_PATTERN.lastIndex = at;
    }
    if (at < text.length) node.appendChild(document.createTextNode(text.slice(at)));
  }

  var EMOJI = ["😀", "😂", "😊", "😉", "😍", "😘", "🤔", "😅", "😭", "😮", "👍", "👌", "👏", "🙏", "💪", "🤝",
               "🎉", "❤️", "🌹", "☕", "✅", "❌", "📄", "💰"];

  /** Put *text* into *input* at the caret (replacing a selection), as if typed. */
  function insertAtCaret(input, text) {
    var value = input.value;
    if (input.maxLength > 0 && value.length + text.length > input.maxLength) return;
    var start = typeof input.selectionStart === "number" ? input.selectionStart : value.length;
    var end = typeof input.selectionEnd === "number" ? input.selectionEnd : start;
    input.value = value.slice(0, start) + text + value.slice(end);
    input.focus();
    input.setSelectionRange(start + text.length, start + text.length);
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  /** The emoji button beside the message box and its small set of emoji (Unicode characters). */
  function addEmojiPicker(u) {
    var toggle = el("button", "icon emoji-toggle", "😊");
    toggle.type = "button";
    toggle.title = t("emoji");
    toggle.setAttribute("aria-label", t("emoji"));
    toggle.setAttribute("aria-expanded", "false");
    var picker = el("div", "emoji-picker");
    picker.setAttribute("role", "group");
    picker.setAttribute("aria-label", t("emoji"));
    picker.hidden = true;
    function show(open) {
      picker.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
    }
    EMOJI.forEach(function (emoji) {
      var choice = el("button", "emoji", emoji);
      choice.type = "button";
      choice.setAttribute("aria-label", emoji);
      choice.addEventListener("click", function () {
        show(false);
        insertAtCaret(u.input, emoji);
      });
      picker.appendChild(choice);
    });
    toggle.addEventListener("click", function () { show(picker.hidden); });
    picker.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { show(false); u.input.focus(); }
    });
    u.compose.insertBefore(toggle, u.input);
    u.compose.insertBefore(picker, u.compose.firstChild);
    u.emojiToggle = toggle;
  }

  // Read receipts: what the visitor has seen (the panel open on a visible page) is told to the
  // desk once per burst of messages; the agent's position marks our messages 已读. Positions only
  // grow and come back after a reload (resume sends them before the messages).
  var reading = { visitorRead: 0, agentRead: 0, readable: 0, sent: 0, sentAt: 0, timer: null, unread: {} };

  function looking() { return !!ui && state.shown && !ui.panel.hidden && !document.hidden; }

  /** An agent's (or the assistant's) message was shown: seen now, or one more unread. */
  function countUnread(message) {
    if (message.id > reading.readable) reading.readable = message.id;
    if (message.id <= reading.visitorRead) return;
    if (looking()) scheduleRead();
    else reading.unread[message.id] = true;
    showUnread();
  }

  /** The panel was opened or closed, or the page shown or hidden. */
  function lookAgain() {
    if (!ui) return;
    if (looking()) {
      reading.unread = {};
      scheduleRead();
    }
    showUnread();
  }

  function scheduleRead() {
    if (reading.timer) return;
    reading.timer = setTimeout(sendRead, 300);
  }

  function sendRead() {
    reading.timer = null;
    var upTo = reading.readable;
    var socket = state.socket;
    if (!looking() || upTo <= reading.visitorRead || !socket || !socket.connected || !state.ready) return;
    if (upTo <= reading.sent && Date.now() - reading.sentAt < 5000) return; // on its way
    reading.sent = upTo;
    reading.sentAt = Date.now();
    socket.emit("read", { message_id: upTo }, function (ack) {
      reading.sent = 0;
      if (ack && typeof ack.up_to === "number") onRead(ack);
      else if (ack && typeof ack.retry_after === "number") setTimeout(scheduleRead, Math.max(1, ack.retry_after) * 1000);
    });
  }

  function onRead(data) {
    if (!data || typeof data.up_to !== "number") return;
    if (data.reader === "agent" && data.up_to > reading.agentRead) {
      reading.agentRead = data.up_to;
      markReceipts();
    } else if (data.reader === "visitor" && data.up_to > reading.visitorRead) {
      reading.visitorRead = data.up_to; // (read in another tab of this visitor)
      Object.keys(reading.unread).forEach(function (id) {
        if (Number(id) <= data.up_to) delete reading.unread[id];
      });
      showUnread();
    }
  }

  /** 已读 under each of our messages the agent has seen. */
  function markReceipts() {
    if (!ui || !reading.agentRead) return;
    Array.prototype.forEach.call(ui.log.querySelectorAll(".msg.mine[data-id]:not(.read)"), function (node) {
      if (Number(node.getAttribute("data-id")) > reading.agentRead) return;
      node.classList.add("read");
      node.appendChild(el("div", "receipt", t("read")));
    });
  }

  // The unread count on the launcher; while the page is hidden the host page's title flashes
  // "(n) 新消息" and is put back exactly as it was afterwards.
  var flash = { timer: null, original: "", shown: "" };

  function showUnread() {
    var count = Object.keys(reading.unread).length;
    state.unread = count;
    ui.badge.textContent = count ? String(count) : "";
    ui.badge.hidden = !count;
    if (count && document.hidden) startFlash();
    else stopFlash();
  }

  function startFlash() {
    if (flash.timer) return;
    flash.original = flash.shown = document.title;
    flashTitle();
    flash.timer = setInterval(flashTitle, 1000);
  }

  function flashTitle() {
    if (document.title !== flash.shown) flash.original = document.title; // the page set a title of its own
    var ours = "(" + state.unread + ") " + t("newMessages");
    flash.shown = document.title === ours ? flash.original : ours;
    document.title = flash.shown;
  }

  function stopFlash() {
    if (!flash.timer) return;
    clearInterval(flash.timer);
    flash.timer = null;
    if (document.title === flash.shown) document.title = flash.original;
  }

  document.addEventListener("visibilitychange", lookAgain);
  setInterval(function () { if (looking() && reading.readable > reading.visitorRead) scheduleRead(); }, 2000);

  // --- the connection -----------------------------------------------------------------------
  function auth(callback) {
    var data = { site_key: SITE_KEY, url: location.href.slice(0, 2000), language: pageLanguage.slice(0, 35) };
    if (state.token) data.visitor_token = state.token;
    if (window.screen && screen.width) data.screen = screen.width + "x" + screen.height;
    var agent = parseInt(script.getAttribute("data-agent") || "", 10);
    if (!isNaN(agent)) data.agent = agent;
    var userId = script.getAttribute("data-user-id");
    if (userId) {
      data.user_id = userId;
      data.user_hash = script.getAttribute("data-user-hash") || "";
    }
    callback(data);
  }

  function onSession(data) {
    if (!data || !data.visitor_token) return;
    var first = state.sessions === 0;
    state.sessions += 1;
    state.token = data.visitor_token;
    save("token", state.token);
    state.online = data.online !== false;
    state.prechat = data.prechat === true;
    applySite(data.site);
    if (first) {
      state.conversationId = data.conversation_id || null;
      state.floor = data.conversation_id || state.maxConversation + 1;
    } else if (data.conversation_id) {
      state.conversationId = data.conversation_id;
    } else if (state.conversationId) {
      onClosed({ conversation_id: state.conversationId, by: "system" }); // closed while we were away
    }
    show();
    showHistoryEntry(data.history === true);
    refreshMode();
    if (state.statusKind === "offline") setStatus("");
    state.ready = true;
    // Resume from what this page had seen before resending: messages stored while we were away
    // come back, and our own resends are matched to their bubbles by client_msg_id. (A reload
    // while over the rate limit is refused with retry_after: both are asked again then.)
    // (From the last message received before this connection: one broadcast to this visitor may
    // arrive before "session" and must not hide the ones stored while we were away.)
    var resumeFrom = first ? (data.conversation_id ? 0 : state.lastId)
      : (state.resumeFrom === null ? state.lastId : state.resumeFrom);
    state.resumeFrom = null;
    emitRetrying("resume", { last_message_id: resumeFrom }, function () {});
    state.outbox.forEach(function (item) {
      if (!pending[item.client_msg_id]) showPending(item);
      emitMessage(item);
    });
    if (!state.pageViewSent) {
      state.pageViewSent = true;
      emitRetrying("page_view", {
        url: location.href.slice(0, 2000), title: (document.title || "").slice(0, 500),
        referrer: (document.referrer || "").slice(0, 2000)
      }, function (ack) {
        if (ack && typeof ack.page_view_id === "number") state.pageViewId = ack.page_view_id;
      });
    }
  }

  /** Emit *event*; refused with retry_after (too fast, or the server busy), emit it again when the
   *  server said it may, while this connection lasts (the next session starts over). */
  function emitRetrying(event, payload, onAck) {
    var socket = state.socket;
    socket.emit(event, payload, function (ack) {
      if (ack && ack.error && typeof ack.retry_after === "number") {
        setTimeout(function () {
          if (socket.connected && state.socket === socket) emitRetrying(event, payload, onAck);
        }, (Math.max(1, ack.retry_after) + Math.random()) * 1000);
        return;
      }
      onAck(ack);
    });
  }

  function onQueue(data) {
    if (!data || (state.conversationId && data.conversation_id && data.conversation_id !== state.conversationId)) return;
    if (state.joined && !(data.position > 0)) return; // an agent is here already
    if (data.position > 0) {
      var minutes = typeof data.eta_seconds === "number" ? Math.max(1, Math.round(data.eta_seconds / 60)) : null;
      var separator = T === STRINGS.zh ? "，" : ", ";
      setStatus(t("queue", { n: data.position }) + (minutes ? separator + t("eta", { m: minutes }) : ""), "queue");
    } else {
      setStatus(t("connecting"), "queue");
    }
  }

  function connect(io) {
    var socket = io(BASE + "/visitor", {
      auth: auth,
      withCredentials: false,
      reconnectionDelayMax: 10000
    });
    state.socket = socket;
    var failures = 0;
    socket.on("connect", function () { failures = 0; });
    socket.on("session", onSession);
    socket.on("connect_error", function () {
      state.ready = false;
      if (!socket.active) {
        // refused by the server: unknown key, origin not allowed, blocked visitor
        refuse();
        return;
      }
      failures += 1;
      if (state.sessions === 0 && failures >= 3) {
        // never reached the desk (or turned away by its origin check): give up quietly, show nothing
        socket.disconnect();
        refuse();
      }
    });
    socket.on("disconnect", function () {
      state.ready = false;
      if (state.resumeFrom === null) state.resumeFrom = state.lastId;
    });
    socket.on("message", receive);
    socket.on("agent_typing", agentTyping);
    // "<agent> is here to help you" and a transfer's line arrive as stored system messages (so
    // they come back after a reload); these events only change the state.
    socket.on("agent_joined", function () {
      state.joined = true;
      setStatus("");
    });
    socket.on("queue", onQueue);
    socket.on("closed", onClosed);
    socket.on("availability", function (data) {
      state.online = !data || data.online !== false;
      refreshMode();
    });
    socket.on("invite", onInvite);
    socket.on("read", onRead);

    window.addEventListener("offline", function () {
      if (registry[SITE_KEY] === "refused") return;
      socket.disconnect();
      setStatus(t("offline"), "offline");
    });
    window.addEventListener("online", function () {
      if (!socket.connected && registry[SITE_KEY] !== "refused") socket.connect();
    });
    setInterval(function () {
      if (socket.connected && state.ready && document.visibilityState === "visible") {
        // The page view's id keeps crediting this page after a reconnect (a new connection).
        socket.emit("heartbeat", state.pageViewId ? { page_view_id: state.pageViewId } : {}, function () {});
      }
    }, 15000);
  }

  function loadClient(callback) {
    var tag = document.createElement("script");
    var previous = window.io;
    tag.src = BASE + "/widget/socket.io.min.js";
    tag.async = true;
    tag.onload = function () {
      var io = window.io;
      // leave the page's own "io" (if any) as it was
      if (previous !== undefined) window.io = previous;
      else try { delete window.io; } catch (e) { window.io = undefined; }
      if (typeof io === "function") callback(io);
    };
    (document.head || document.documentElement).appendChild(tag);
  }

  function start() {
    ui = build();
    loadClient(connect);
  }

  window.BookkeepingDeskChat = {
    open: function () { if (state.shown) setOpen(true); },
    close: function () { if (state.shown) setOpen(false); }
  };

  // Never hold up the host page: start once it is parsed and the browser is idle.
  function later() {
    if (window.requestIdleCallback) window.requestIdleCallback(start, { timeout: 2000 });
    else setTimeout(start, 0);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", later);
  else later();
})();
