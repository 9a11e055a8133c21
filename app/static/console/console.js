/* The agent console (客服工作台): live visitors, queue, offers, chats as tabs, visitor details with
 * the client card, team room and the supervisor's live list, over the /agent Socket.IO namespace.
 *
 * Every text that came from a visitor (messages, drafts, page titles, URLs, names) is inserted with
 * textContent, never as HTML. Events the server does not send yet simply never arrive; the console
 * keeps working without them.
 */
(function () {
  "use strict";

  var root = document.getElementById("chat-console");
  var configNode = document.getElementById("console-config");
  if (!root || !configNode) { return; }
  var config = JSON.parse(configNode.textContent);
  var T = config.strings;
  var urls = config.urls;

  var state = config.state;
  var me = state.me;
  var clockOffset = state.now ? Date.parse(state.now) - Date.now() : 0;  // server time − local time
  var loadedAt = Date.now();
  var visitors = [];                  // online visitors as last listed
  var chats = {};                     // conversation id → {id, visitor, pane, tab, lastId, unread, closed, mode}
  var activeChat = null;
  var selectedVisitorId = null;
  var socket = null;
  var audio = null;
  var seenTeam = {};

  // --- small helpers -------------------------------------------------------------------------

  function fmt(text, values) {
    return String(text).replace(/%\((\w+)\)s/g, function (_, key) {
      return values && values[key] !== undefined && values[key] !== null ? String(values[key]) : "";
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function button(label, className, onClick) {
    var node = el("button", "btn btn-xs " + (className || "btn-default"), label);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  function clear(node) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
  }

  function now() { return Date.now() + clockOffset; }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)), ss = String(s).padStart(2, "0");
    return (h ? h + ":" : "") + mm + ":" + ss;
  }

  function clock(iso) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  function uuid() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return "m" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function visitorLabel(v) {
    if (!v || (!v.name && (v.id === undefined || v.id === null))) { return T.visitor; }
    return v.name || (T.visitor + " #" + v.id);
  }

  function place(v) {
    return [v.city, v.region, v.country].filter(Boolean).join(", ");
  }

  function alertBox(text, kind) {
    var box = el("div", "alert alert-" + (kind || "info") + " console-alert", text);
    var area = document.getElementById("console-alerts");
    area.appendChild(box);
    setTimeout(function () { if (box.parentNode) { box.parentNode.removeChild(box); } }, 6000);
  }

  function ackError(ack) {
    if (ack && ack.error) {
      alertBox(ack.error, "danger");
      return true;
    }
    return false;
  }

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}}).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.json();
    });
  }

  // Events sent with an ack that has not come back yet: a refusal of one comes both as an
  // "error" event and in the ack; the ack's callback reports it, so the event is not shown too.
  var awaiting = {};

  function emit(event, payload, callback) {
    if (!socket || !socket.connected) { return false; }
    if (callback) {
      awaiting[event] = (awaiting[event] || 0) + 1;
      socket.emit(event, payload, function (ack) {
        awaiting[event] -= 1;
        callback(ack);
      });
    } else {
      socket.emit(event, payload);
    }
    return true;
  }

  document.addEventListener("visibilitychange", function () {
    var c = activeChat !== null ? chats[activeChat] : null;
    if (!document.hidden && c) { c.unread = 0; updateTab(c); }
  });

  // --- sound and desktop notifications -------------------------------------------------------

  function beep() {
    if (!audio) { return; }
    try {
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.08;
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.15);
    } catch (e) { /* no audio: silent */ }
  }

  function notify(title, body, conversationId) {
    // a new chat always sounds; a message unless its own chat is on screen in a visible tab
    var elsewhere = !conversationId || document.hidden || activeChat !== conversationId;
    if (!elsewhere) { return; }
    beep();
    if (document.hidden && window.Notification && Notification.permission === "granted") {
      try { new Notification(title, {body: body || "", tag: "chat-" + (conversationId || "")}); } catch (e) { /* ignore */ }
    }
  }

  document.addEventListener("click", function () {
    if (!audio && (window.AudioContext || window.webkitAudioContext)) {
      audio = new (window.AudioContext || window.webkitAudioContext)();
    }
  }, {once: true});

  document.getElementById("console-notify").addEventListener("click", function (event) {
    var btn = event.currentTarget;
    if (!window.Notification) { btn.disabled = true; return; }
    Notification.requestPermission().then(function (permission) {
      if (permission === "granted") { btn.textContent = T.notifications_on; btn.disabled = true; }
    });
  });

  // --- visitors ------------------------------------------------------------------------------

  var visitorQuery = document.getElementById("visitor-q");

  function matches(v, q) {
    if (!q) { return true; }
    q = q.toLowerCase();
    return [v.current_url, v.current_title, v.city, v.region, v.country, v.uid, v.name, v.external_user_id,
            String(v.id)].some(function (field) { return field && String(field).toLowerCase().indexOf(q) !== -1; });
  }

  function renderVisitors() {
    var list = document.getElementById("visitors");
    clear(list);
    var shown = visitors.filter(function (v) { return v.online !== false && matches(v, visitorQuery.value.trim()); });
    document.getElementById("visitors-count").textContent = String(shown.length);
    if (!shown.length) { list.appendChild(el("li", "list-group-item text-muted", T.no_visitors)); return; }
    shown.forEach(function (v) {
      var item = el("li", "list-group-item visitor-row" + (v.id === selectedVisitorId ? " active-row" : ""));
      item.dataset.visitorId = String(v.id);
      var head = el("div", "visitor-head");
      head.appendChild(el("strong", "visitor-name", visitorLabel(v)));
      if (v.conversation_id) { head.appendChild(el("span", "label label-success", T.chatting)); }
      head.appendChild(el("span", "visitor-time pull-right", ""));
      item.appendChild(head);
      item.appendChild(el("div", "visitor-title", v.current_title || v.current_url || ""));
      if (v.current_url) { item.appendChild(el("div", "visitor-url text-muted small", v.current_url)); }
      var source = v.source || {};
      var origin = source.keyword ? (source.search_engine || "") + " “" + source.keyword + "”"
        : (source.search_engine || source.utm_source || source.referrer || T.direct);
      var meta = [place(v), origin, fmt(T.visits, {n: v.visits})].filter(Boolean).join(" · ");
      item.appendChild(el("div", "visitor-meta text-muted small", meta));
      var actions = el("div", "visitor-actions");
      actions.appendChild(button(T.details, "btn-default", function () { showVisitor(v.id); }));
      if (me.agent_id) {
        actions.appendChild(button(T.invite, "btn-info visitor-invite", function () { showVisitor(v.id, true); }));
      }
      item.appendChild(actions);
      list.appendChild(item);
    });
    tickVisitors();
  }

  function tickVisitors() {
    var elapsed = (Date.now() - loadedAt) / 1000;
    document.querySelectorAll("#visitors .visitor-row").forEach(function (item) {
      var v = visitors.find(function (x) { return String(x.id) === item.dataset.visitorId; });
      var cell = item.querySelector(".visitor-time");
      if (v && cell) { cell.textContent = fmt(T.on_site, {t: duration((v.seconds_on_site || 0) + elapsed - (v._base || 0))}); }
    });
  }

  // Visitor updates heard lately: a state snapshot that was asked for before one of them arrived
  // does not know it, so they are applied again on top of the snapshot (loadState).
  var heard = [];

  function upsertVisitor(update, replay) {
    if (!replay) {
      var now = Date.now();
      heard = heard.filter(function (h) { return now - h.at < 60000; });
      heard.push({at: now, update: update});
    }
    var elapsed = (Date.now() - loadedAt) / 1000;
    var found = visitors.find(function (v) { return v.id === update.id; });
    if (found) {
      Object.keys(update).forEach(function (key) { found[key] = update[key]; });
    } else {
      update._base = elapsed;  // its time on site starts counting now
      update.seconds_on_site = update.seconds_on_site || 0;
      visitors.unshift(update);
    }
    if (update.online === false) { visitors = visitors.filter(function (v) { return v.id !== update.id; }); }
    if (!replay) { renderVisitors(); }
  }

  var queryTimer = null;
  visitorQuery.addEventListener("input", function () {
    renderVisitors();
    clearTimeout(queryTimer);
    queryTimer = setTimeout(function () { refresh(); }, 400);  // the server searches the full list
  });

  // --- queue, offers, live list --------------------------------------------------------------

  function renderQueue() {
    var list = document.getElementById("queue");
    clear(list);
    document.getElementById("queue-count").textContent = String(state.queue.length);
    if (!state.queue.length) { list.appendChild(el("li", "list-group-item text-muted", T.no_queue)); }
    state.queue.forEach(function (entry) {
      var item = el("li", "list-group-item queue-row");
      item.dataset.conversationId = String(entry.conversation_id);
      item.dataset.queuedAt = entry.queued_at || "";
      var head = el("div", "");
      head.appendChild(entry.status === "offered"
        ? el("span", "badge queue-offered", T.being_offered)  // waiting for an agent to accept
        : el("span", "badge", fmt(T.position, {n: entry.position})));
      head.appendChild(document.createTextNode(" "));
      head.appendChild(el("strong", "queue-visitor", visitorLabel(entry.visitor)));
      head.appendChild(el("span", "queue-waited text-muted small pull-right", ""));
      item.appendChild(head);
      var page = entry.entry_url || entry.visitor.current_title || "";
      if (page) { item.appendChild(el("div", "text-muted small queue-entry", page)); }
      if (entry.group) { item.appendChild(el("div", "text-muted small", entry.group)); }
      if (me.agent_id && entry.status === "queued") {
        item.appendChild(button(T.accept, "btn-success queue-accept", function () { accept(entry.conversation_id); }));
      }
      list.appendChild(item);
    });
    tickQueue();
  }

  function tickQueue() {
    document.querySelectorAll("#queue .queue-row").forEach(function (item) {
      var cell = item.querySelector(".queue-waited");
      if (cell && item.dataset.queuedAt) {
        cell.textContent = fmt(T.waited, {t: duration((now() - Date.parse(item.dataset.queuedAt)) / 1000)});
      }
    });
  }

  function renderOffers() {
    var list = document.getElementById("offers");
    clear(list);
    document.getElementById("offers-count").textContent = String(state.offers.length);
    if (!state.offers.length) { list.appendChild(el("li", "list-group-item text-muted", T.no_offers)); }
    state.offers.forEach(function (offer) {
      var item = el("li", "list-group-item offer-row list-group-item-warning");
      item.dataset.conversationId = String(offer.conversation_id);
      item.dataset.expiresAt = offer.expires_at || "";
      item.appendChild(el("strong", "offer-visitor", visitorLabel(offer.visitor)));
      item.appendChild(el("span", "offer-countdown pull-right small", ""));
      var v = offer.visitor || {};
      if (v.current_title || v.current_url) { item.appendChild(el("div", "small", v.current_title || v.current_url)); }
      var actions = el("div", "offer-actions");
      actions.appendChild(button(T.accept, "btn-success offer-accept", function () { accept(offer.conversation_id); }));
      actions.appendChild(button(T.decline, "btn-default offer-decline", function () { decline(offer.conversation_id); }));
      item.appendChild(actions);
      list.appendChild(item);
    });
    tickOffers();
  }

  function tickOffers() {
    document.querySelectorAll("#offers .offer-row").forEach(function (item) {
      var cell = item.querySelector(".offer-countdown");
      if (cell && item.dataset.expiresAt) {
        var left = Math.max(0, Math.round((Date.parse(item.dataset.expiresAt) - now()) / 1000));
        cell.textContent = fmt(T.seconds_left, {n: left});
      }
    });
  }

  function renderLive() {
    var list = document.getElementById("live");
    if (!list) { return; }
    clear(list);
    document.getElementById("live-count").textContent = String(state.live.length);
    if (!state.live.length) { list.appendChild(el("li", "list-group-item text-muted", T.no_live)); }
    state.live.forEach(function (row) {
      var item = el("li", "list-group-item live-row");
      item.dataset.conversationId = String(row.conversation_id);
      item.appendChild(el("strong", "", visitorLabel(row.visitor)));
      item.appendChild(el("span", "label label-default pull-right", T["conversation_" + row.status] || row.status));
      item.appendChild(el("div", "small text-muted", [row.site_name, row.agent_name || "—",
        row.messages + " " + T.messages].join(" · ")));
      item.appendChild(button(T.watch, "btn-default live-watch", function () {
        watch(row.conversation_id, row.visitor);
      }));
      list.appendChild(item);
    });
  }

  function renderAll() {
    renderOffers();
    renderQueue();
    renderVisitors();
    renderLive();
    syncChats();
  }

  var refreshTimer = null;
  function refresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      var q = visitorQuery.value.trim();
      var askedAt = Date.now();
      getJSON(urls.state + (q ? "?q=" + encodeURIComponent(q) : "")).then(function (data) { loadState(data, askedAt); })
        .catch(function () { /* next event retries */ });
    }, 250);
  }

  function loadState(data, askedAt) {
    state = data;
    me = data.me;
    clockOffset = data.now ? Date.parse(data.now) - Date.now() : clockOffset;
    loadedAt = Date.now();
    visitors = data.visitors.slice();
    heard.forEach(function (h) { if (h.at >= askedAt) { upsertVisitor(h.update, true); } });
    renderAll();
  }

  // --- chats ---------------------------------------------------------------------------------

  function syncChats() {
    var listed = {};
    state.chats.forEach(function (row) {
      listed[row.conversation_id] = true;
      if (!chats[row.conversation_id]) {
        openChat(row.conversation_id, row.visitor, row.role === "owner" ? "chat" : (row.role === "watcher" ? "watch" : "invited"));
        loadHistory(row.conversation_id);
      }
      var c = chats[row.conversation_id];
      if (c && row.role === "owner" && c.mode === "invited") { setMode(c, "chat"); }  // transferred to us
      if (c && row.visitor) { setVisitor(c, row.visitor); }
      if (c && row.topics) { showTopics(c, row.topics); }
      if (c && c.id !== activeChat && row.unread > c.unread) { c.unread = row.unread; updateTab(c); }
    });
    Object.keys(chats).forEach(function (id) {
      var c = chats[id];
      if (c.mode !== "watch" && !listed[id] && !c.closed && !c.pending) { verifyChat(c); }
    });
  }

  // A chat the state no longer lists (the list may be older than an accept): ask before ending it.
  function verifyChat(c) {
    c.pending = true;
    getJSON(urls.conversation + c.id).then(function (data) {
      c.pending = false;
      var conv = data.conversation || {};
      var handedOn = c.mode === "chat" && conv.agent_id !== me.agent_id;  // transferred to someone else
      if (conv.status === "closed" || handedOn) { markClosed(c, null, true); }
    }).catch(function () { c.pending = false; markClosed(c, null, true); });
  }

  function openChat(id, visitor, mode) {
    if (chats[id]) { selectChat(id); return chats[id]; }
    var c = {id: id, visitor: visitor || {}, lastId: 0, unread: 0, closed: false, mode: mode || "chat", ids: {}};
    var tab = el("li", "chat-tab");
    tab.dataset.conversationId = String(id);
    var link = el("a", "", "");
    link.href = "#";
    link.appendChild(el("span", "chat-tab-name", visitorLabel(c.visitor)));
    link.appendChild(el("span", "badge chat-unread", ""));
    link.addEventListener("click", function (event) { event.preventDefault(); selectChat(id); });
    tab.appendChild(link);
    document.getElementById("chat-tabs").appendChild(tab);
    c.tab = tab;

    var pane = el("div", "chat-pane");
    pane.dataset.conversationId = String(id);
    var toolbar = el("div", "chat-toolbar clearfix");
    c.title = el("strong", "chat-title", "");
    c.page = el("span", "text-muted small chat-page", "");
    toolbar.appendChild(c.title);
    toolbar.appendChild(c.page);
    c.tools = el("span", "pull-right chat-tools");
    toolbar.appendChild(c.tools);
    c.pane = pane;
    c.tab = tab;
    buildTools(c);
    setVisitor(c, c.visitor);
    pane.appendChild(toolbar);
    c.forms = el("div", "chat-forms");
    pane.appendChild(c.forms);
    if (c.mode === "watch") { pane.appendChild(el("div", "alert alert-info small chat-readonly", T.read_only)); }
    c.list = el("ul", "list-unstyled console-messages chat-messages");
    pane.appendChild(c.list);
    c.draft = el("div", "chat-draft text-muted small");
    c.draft.hidden = true;
    c.draftLabel = el("span", "chat-draft-label", T.typing + " ");
    c.draftText = el("span", "chat-draft-text", "");
    c.draft.appendChild(c.draftLabel);
    c.draft.appendChild(c.draftText);
    pane.appendChild(c.draft);
    pane.appendChild(composer(c));
    chatExtras(c);
    document.getElementById("chat-panes").appendChild(pane);
    c.pane = pane;
    chats[id] = c;
    document.getElementById("no-chats").hidden = true;
    if (activeChat === null) { selectChat(id); } else { pane.hidden = true; }
    return c;
  }

  // The toolbar's buttons for the agent's part in the chat: its owner ("chat"), an invited agent or
  // a watching supervisor. A part can change while the tab is open (an invited agent receives the
  // chat by transfer).
  function buildTools(c) {
    clear(c.tools);
    c.tools.appendChild(button(T.details, "btn-default chat-details", function () { if (c.visitor.id) { showVisitor(c.visitor.id); } }));
    if (c.mode === "chat") {
      c.tools.appendChild(button(T.transfer, "btn-default chat-transfer", function () { toggleForm(c, "transfer"); }));
      c.tools.appendChild(button(T.invite_agent, "btn-default chat-invite", function () { toggleForm(c, "invite"); }));
      c.tools.appendChild(button(T.close_chat, "btn-danger chat-close", function () { closeChat(c); }));
      c.tools.appendChild(button(T.block_visitor, "btn-default chat-block", function () { blockVisitor(c); }));
    } else if (c.mode === "invited") {
      c.tools.appendChild(button(T.leave, "btn-default chat-leave", function () { leaveChat(c); }));
    } else {
      c.tools.appendChild(button(T.unwatch, "btn-default chat-unwatch", function () { dropChat(c); }));
    }
  }

  function setMode(c, mode) {
    if (c.mode === mode || c.closed) { return; }
    c.mode = mode;
    if (c.forms) { clear(c.forms); c.openForm = null; }
    buildTools(c);
  }

  // The visitor shown in the tab and the chat's header (name, the page they are on now).
  function setVisitor(c, visitor) {
    var merged = c.visitor || {};
    Object.keys(visitor || {}).forEach(function (key) { merged[key] = visitor[key]; });
    c.visitor = merged;
    c.title.textContent = visitorLabel(merged);
    c.page.textContent = merged.current_title || merged.current_url ? " " + (merged.current_title || merged.current_url) : "";
    c.tab.querySelector(".chat-tab-name").textContent = visitorLabel(merged);
  }

  function composer(c) {
    var form = el("form", "chat-composer");
    var suggestions = el("ul", "list-group canned-list");
    suggestions.hidden = true;
    var text = el("textarea", "form-control chat-input");
    text.rows = 2;
    text.maxLength = 2000;
    text.placeholder = c.mode === "watch" ? T.whisper : "";
    var row = el("div", "chat-composer-row");
    if (c.mode !== "watch") {
      var noteLabel = el("label", "checkbox-inline chat-note-label");
      var note = el("input", "chat-note-toggle");
      note.type = "checkbox";
      noteLabel.appendChild(note);
      noteLabel.appendChild(document.createTextNode(" " + T.note));
      row.appendChild(noteLabel);
      var fileLabel = el("label", "btn btn-default btn-xs chat-file-label", T.attach);
      var file = el("input", "chat-file");
      file.type = "file";
      file.hidden = true;
      fileLabel.appendChild(file);
      file.addEventListener("change", function () {
        if (file.files.length) { upload(c, file.files[0]); }
        file.value = "";
      });
      row.appendChild(fileLabel);
      row.appendChild(button(T.faq, "btn-default chat-faq-toggle", function () {
        faqBox.hidden = !faqBox.hidden;
        if (!faqBox.hidden) { faqInput.focus(); }
      }));
      c.note = note;
      var faqBox = faqSearchBox(c);
      var faqInput = faqBox.querySelector("input");
      faqBox.hidden = true;
      form.appendChild(faqBox);
    }
    var send = el("button", "btn btn-primary btn-sm pull-right chat-send", c.mode === "watch" ? T.whisper : T.send);
    send.type = "submit";
    row.appendChild(send);
    form.appendChild(suggestions);
    form.appendChild(text);
    form.appendChild(row);
    var hint = el("div", "small text-muted chat-send-hint", sendHint());
    hint.id = "chat-send-hint-" + c.id + (c.mode === "watch" ? "-w" : "");
    text.setAttribute("aria-describedby", hint.id);
    form.appendChild(hint);
    c.input = text;
    c.suggestions = suggestions;
    c.matches = [];

    addEmojiPicker(form, row, text);
    form.addEventListener("submit", function (event) { event.preventDefault(); sendText(c); });
    text.addEventListener("keydown", function (event) {
      if ((event.key === "Tab" || event.key === "Enter") && !event.shiftKey && c.matches.length && !suggestions.hidden) {
        event.preventDefault();
        expandCanned(c, c.matches[0]);
        return;
      }
      if (event.key === "Enter" && !event.isComposing && sendsOn(event)) {
        event.preventDefault();
        sendText(c);
      }
    });
    var lastTyping = 0;
    text.addEventListener("input", function () {
      cannedLookup(c);
      if (c.mode !== "watch" && Date.now() - lastTyping > 2000 && text.value) {
        lastTyping = Date.now();
        emit("typing", {conversation_id: c.id});
      }
    });
    return form;
  }

  // A search field over a list of results (the knowledge base, the quick links): .chat-<name>,
  // .chat-<name>-q and .chat-<name>-results. Enter in the field searches, never sends the reply.
  function searchBox(name, label) {
    var box = el("div", "chat-" + name);
    var input = el("input", "form-control input-sm chat-" + name + "-q");
    input.type = "search";
    input.maxLength = 100;
    input.placeholder = label;
    input.setAttribute("aria-label", label);
    var results = el("ul", "list-group chat-" + name + "-results");
    box.appendChild(input);
    box.appendChild(results);
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); event.stopPropagation(); }
    });
    return {box: box, input: input, results: results};
  }

  // The knowledge base (机器人知识库): search it (faq_search) and put an answer into the reply box.
  function faqSearchBox(c) {
    var parts = searchBox("faq", T.faq_search), box = parts.box, input = parts.input, results = parts.results;
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (!q) { clear(results); return; }
      timer = setTimeout(function () {
        emit("faq_search", {q: q}, function (ack) {
          clear(results);
          if (!ack || ack.error) { return; }
          if (!ack.results || !ack.results.length) { results.appendChild(el("li", "list-group-item text-muted", T.faq_none)); }
          (ack.results || []).forEach(function (entry) {
            var item = el("li", "list-group-item chat-faq-item");
            item.appendChild(el("strong", "chat-faq-question", entry.question));
            item.appendChild(el("div", "small text-muted chat-faq-answer", entry.answer));
            item.appendChild(button(T.faq_insert, "btn-primary chat-faq-insert", function () {
              c.input.value = c.input.value ? c.input.value + "\n" + entry.answer : entry.answer;
              c.input.focus();
            }));
            results.appendChild(item);
          });
        });
      }, 200);
    });
    return box;
  }

  // The send key is the agent's choice, stored on their profile (preferences): Enter sends and
  // Shift+Enter makes a new line, or Ctrl+Enter (⌘+Enter) sends and Enter makes a new line.
  function sendsOn(event) {
    var modified = event.ctrlKey || event.metaKey;
    return me.send_key === "ctrl_enter" ? modified : !event.shiftKey;
  }

  function sendHint() {
    return me.send_key === "ctrl_enter" ? T.hint_ctrl_enter : T.hint_enter;
  }

  function applySendKey(value) {
    me.send_key = value === "ctrl_enter" ? "ctrl_enter" : "enter";
    var select = document.getElementById("console-send-key");
    if (select) { select.value = me.send_key; }
    Array.prototype.forEach.call(root.querySelectorAll(".chat-send-hint"), function (node) {
      node.textContent = sendHint();
    });
  }

  // Canned replies: "/short" lists the matching replies; Tab or Enter puts the first one in.
  var cannedTimer = null;
  function cannedLookup(c) {
    var value = c.input.value;
    clearTimeout(cannedTimer);
    if (!/^\/\S*$/.test(value)) { c.suggestions.hidden = true; c.matches = []; return; }
    cannedTimer = setTimeout(function () {
      getJSON(urls.canned + "?q=" + encodeURIComponent(value.slice(1))).then(function (data) {
        var replies = (data && data.replies) || [];
        var q = value.slice(1).toLowerCase();
        c.matches = replies.filter(function (r) { return !q || String(r.shortcut).toLowerCase().indexOf(q) === 0; })
          .concat(replies.filter(function (r) { return q && String(r.shortcut).toLowerCase().indexOf(q) !== 0; }));
        clear(c.suggestions);
        c.matches.slice(0, 8).forEach(function (r) {
          var item = el("li", "list-group-item canned-item");
          item.appendChild(el("strong", "", "/" + r.shortcut + " "));
          item.appendChild(el("span", "text-muted", r.title || r.text));
          item.addEventListener("click", function () { expandCanned(c, r); });
          c.suggestions.appendChild(item);
        });
        c.suggestions.hidden = !c.matches.length;
      }).catch(function () { c.suggestions.hidden = true; c.matches = []; });
    }, 150);
  }

  // A canned reply's variables, filled in as it is inserted: {visitor_name} (the name the visitor
  // gave, else "visitor") and {agent_name} (the agent's display name). Other braces stay as typed.
  function fillCanned(text, c) {
    var values = {visitor_name: (c.visitor && c.visitor.name) || T.visitor, agent_name: me.name || ""};
    return String(text).replace(/\{(visitor_name|agent_name)\}/g, function (_, key) { return values[key]; });
  }

  function expandCanned(c, reply) {
    c.input.value = fillCanned(reply.text, c);
    c.suggestions.hidden = true;
    c.matches = [];
    c.input.focus();
  }

  // The outbox: replies (and whispers) not acknowledged yet, shown as pending in their chat. They
  // go when the connection is (back) up, again after a reconnect when the ack was lost (the server
  // keeps one message per client_msg_id), and later when the server said to wait (retry_after).
  var outbox = [];

  function sendText(c) {
    var text = c.input.value.trim();
    if (!text || c.closed) { return; }
    var payload = {conversation_id: c.id, client_msg_id: uuid(), text: text};
    var event = c.mode === "watch" ? "whisper" : "message";
    if (c.mode !== "watch" && c.note && c.note.checked) { payload.note = true; }
    var item = {event: event, payload: payload, sender: c.mode === "watch" ? "whisper" : (payload.note ? "note" : "agent")};
    c.input.value = "";
    item.node = el("li", "chat-message chat-" + item.sender + " chat-pending");
    item.node.dataset.messageId = "";
    var head = el("div", "chat-message-head small text-muted");
    head.appendChild(el("span", "chat-sender", me.name || T.you));
    head.appendChild(el("span", "chat-time", " " + T.sending));
    item.node.appendChild(head);
    item.node.appendChild(el("div", "chat-text", text));
    c.list.appendChild(item.node);
    c.list.scrollTop = c.list.scrollHeight;
    outbox.push(item);
    sendQueued(item);
  }

  function sendQueued(item) {
    if (item.inFlight) { return; }
    item.inFlight = true;
    var sent = emit(item.event, item.payload, function (ack) {
      item.inFlight = false;
      if (ack && ack.error && typeof ack.retry_after === "number") {
        setTimeout(function () { if (outbox.indexOf(item) !== -1) { sendQueued(item); } },
                   (Math.max(1, ack.retry_after) + Math.random()) * 1000);
        return;
      }
      outbox = outbox.filter(function (o) { return o !== item; });
      if (item.node.parentNode) { item.node.parentNode.removeChild(item.node); }
      var c = chats[item.payload.conversation_id];
      if (ackError(ack)) {
        if (c && !c.input.value) { c.input.value = item.payload.text; }  // refused: the text is not lost
        return;
      }
      if (c) {
        addMessage(c, {id: ack.id, conversation_id: c.id, sender_type: item.sender, sender_name: me.name,
                       text: item.payload.text, created_at: ack.created_at, mine: true});
      }
    });
    if (!sent) { item.inFlight = false; }
  }

  function upload(c, file) {
    var data = new FormData();
    data.append("file", file);
    data.append("conversation_id", String(c.id));
    fetch(urls.files, {method: "POST", body: data, credentials: "same-origin",
                       headers: {"X-CSRFToken": config.csrf_token, "Accept": "application/json"}})
      .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
      .then(function (result) {
        if (!result.ok) { alertBox((result.body && result.body.message) || T.upload_failed, "danger"); return; }
        if (result.body.message) { addMessage(c, result.body.message); }
      })
      .catch(function () { alertBox(T.upload_failed, "danger"); });
  }

  function attachmentNode(attachment, conversationId) {
    var url = attachment.url || ("/chat/files/" + attachment.id);
    var wrap = el("div", "chat-attachment");
    var link = el("a", "", "");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener";
    if (/^image\//.test(attachment.content_type || "")) {
      var img = el("img", "chat-image");
      img.src = url;
      img.alt = attachment.filename || "";
      link.appendChild(img);
    } else {
      link.textContent = (attachment.filename || "file") + " (" + Math.ceil((attachment.size || 0) / 1024) + " KB)";
    }
    wrap.appendChild(link);
    wrap.dataset.conversationId = String(conversationId);
    return wrap;
  }

  function addMessage(c, m) {
    if (m.id && c.ids[m.id]) { return; }
    if (m.id) { c.ids[m.id] = true; c.lastId = Math.max(c.lastId, m.id); }
    var kind = m.sender_type || "system";
    var item = el("li", "chat-message chat-" + kind);
    item.dataset.messageId = String(m.id || "");
    var head = el("div", "chat-message-head small text-muted");
    var who = kind === "visitor" ? visitorLabel(c.visitor) : (kind === "system" ? T.sender_system :
      (kind === "bot" ? T.sender_bot : (m.sender_name || T.you)));
    if (kind === "note") { who += " · " + T.sender_note; }
    if (kind === "whisper") { who += " · " + T.sender_whisper; }
    head.appendChild(el("span", "chat-sender", who));
    head.appendChild(el("span", "chat-time", " " + clock(m.created_at)));
    item.appendChild(head);
    if (m.text) { item.appendChild(linkedText(m.text)); }
    if (m.attachment) { item.appendChild(attachmentNode(m.attachment, c.id)); }
    // In the order they were stored: a message heard before an older one (an accept's ack comes
    // after the greeting it caused) goes in before the later ones; pending replies stay last.
    var before = null;
    if (m.id) {
      before = Array.prototype.find.call(c.list.children, function (node) {
        return (Number(node.dataset.messageId) || 0) > m.id || node.classList.contains("chat-pending");
      }) || null;
    }
    c.list.insertBefore(item, before);
    c.list.scrollTop = c.list.scrollHeight;
    if (kind === "visitor") {
      c.draft.hidden = true;
      if (c.id !== activeChat || document.hidden) { c.unread += 1; updateTab(c); }
    }
    noteMessage(c, m, item);
  }

  function updateTab(c) {
    var badge = c.tab.querySelector(".chat-unread");
    badge.textContent = c.unread ? String(c.unread) : "";
    c.tab.classList.toggle("chat-tab-closed", c.closed);
    afterTabUpdate(c);
  }

  function selectChat(id) {
    activeChat = id;
    Object.keys(chats).forEach(function (key) {
      var c = chats[key];
      var on = String(c.id) === String(id);
      c.pane.hidden = !on;
      c.tab.classList.toggle("active", on);
      if (on) { c.unread = 0; updateTab(c); }
    });
  }

  function loadHistory(id) {
    var c = chats[id];
    c.pending = true;
    getJSON(urls.conversation + id).then(function (data) {
      c.pending = false;
      if (data.conversation && data.conversation.visitor) { setVisitor(c, data.conversation.visitor); }
      var unread = c.unread;
      data.messages.forEach(function (m) { addMessage(c, m); });
      c.unread = unread;
      updateTab(c);
      if (data.conversation && data.conversation.status === "closed") { markClosed(c, null, true); }
      if (c.mode !== "watch") { emit("resume", {conversation_id: id, last_message_id: c.lastId}); }
    }).catch(function () { c.pending = false; });
  }

  function markClosed(c, by, quiet) {
    if (c.closed) { return; }
    c.closed = true;
    if (!quiet || by) {
      var label = by === "visitor" ? T.by_visitor : (by === "agent" ? T.by_agent : T.by_system);
      addMessage(c, {sender_type: "system", text: fmt(T.closed_by, {by: label})});
    }
    c.input.disabled = true;
    c.pane.querySelectorAll(".chat-send, .chat-transfer, .chat-invite, .chat-close, .chat-file").forEach(function (b) {
      b.disabled = true;
    });
    var tools = c.pane.querySelector(".chat-tools");
    if (tools && !tools.querySelector(".chat-drop")) {
      tools.appendChild(button(T.close_tab, "btn-default chat-drop", function () { dropChat(c); }));
    }
    updateTab(c);
  }

  function dropChat(c) {
    if (c.mode === "watch") { emit("unwatch", {conversation_id: c.id}); }
    c.tab.parentNode.removeChild(c.tab);
    c.pane.parentNode.removeChild(c.pane);
    delete chats[c.id];
    if (String(activeChat) === String(c.id)) {
      activeChat = null;
      var next = Object.keys(chats)[0];
      if (next) { selectChat(chats[next].id); }
    }
    document.getElementById("no-chats").hidden = Object.keys(chats).length > 0;
  }

  function leaveChat(c) {
    emit("leave", {conversation_id: c.id}, function (ack) {
      if (ackError(ack)) { return; }
      dropChat(c);
      refresh();
    });
  }

  function accept(id) {
    emit("accept", {conversation_id: id}, function (ack) {
      if (ackError(ack)) { refresh(); return; }
      var entry = state.queue.concat(state.offers).find(function (q) { return q.conversation_id === id; });
      var c = openChat(id, entry ? entry.visitor : {}, "chat");
      (ack.messages || []).forEach(function (m) { addMessage(c, m); });
      c.unread = 0;
      updateTab(c);
      selectChat(id);
      c.input.focus();
      refresh();
    });
  }

  function decline(id) {
    emit("decline", {conversation_id: id}, function (ack) { ackError(ack); refresh(); });
    state.offers = state.offers.filter(function (o) { return o.conversation_id !== id; });
    renderOffers();
  }

  function closeChat(c) {
    emit("close", {conversation_id: c.id}, function (ack) {
      if (ackError(ack)) { return; }
      markClosed(c, "agent");
      refresh();
    });
  }

  // One-click block (屏蔽): after the agent confirms, the visitor is blocked on the site and the chat ends.
  function blockVisitor(c) {
    if (!window.confirm(T.block_confirm)) { return; }
    emit("block_visitor", {conversation_id: c.id}, function (ack) {
      if (ackError(ack)) { return; }
      markClosed(c, "agent");
      alertBox(T.visitor_blocked, "success");
      refresh();
    });
  }

  function watch(id, visitor) {
    if (!socket || !socket.connected) {  // no live connection: read the conversation once
      var readOnly = openChat(id, visitor, "watch");
      readOnly.input.disabled = true;
      readOnly.pane.querySelector(".chat-send").disabled = true;
      loadHistory(id);
      selectChat(id);
      return;
    }
    emit("watch", {conversation_id: id}, function (ack) {
      if (ackError(ack)) { return; }
      var c = openChat(id, visitor, "watch");
      (ack.messages || []).forEach(function (m) { addMessage(c, m); });
      c.unread = 0;
      updateTab(c);
      selectChat(id);
    });
  }

  function toggleForm(c, kind) {
    clear(c.forms);
    if (c.openForm === kind) { c.openForm = null; return; }
    c.openForm = kind;
    var form = el("form", "well well-sm chat-" + kind + "-form");
    var agentSelect = el("select", "form-control input-sm " + kind + "-agent");
    agentSelect.appendChild(new Option(T.choose, ""));
    state.agents.filter(function (a) { return !a.me; }).forEach(function (a) {
      var label = a.name + " · " + (T["status_" + a.status] || a.status) + " · " + fmt(T.load, {load: a.load, max: a.max_chats});
      agentSelect.appendChild(new Option(label, String(a.id)));
    });
    form.appendChild(el("label", "small", kind === "transfer" ? T.transfer_to + " — " + T.agent : T.agent));
    form.appendChild(agentSelect);
    var groupSelect = null, note = null;
    if (kind === "transfer") {
      groupSelect = el("select", "form-control input-sm transfer-group");
      groupSelect.appendChild(new Option(T.choose, ""));
      state.groups.forEach(function (g) { groupSelect.appendChild(new Option(g.site_name + " / " + g.name, String(g.id))); });
      form.appendChild(el("label", "small", T.group));
      form.appendChild(groupSelect);
      note = el("textarea", "form-control input-sm transfer-note");
      note.maxLength = 1000;
      note.rows = 2;
      note.placeholder = T.transfer_note;
      form.appendChild(note);
    }
    var ok = el("button", "btn btn-primary btn-xs", kind === "transfer" ? T.transfer : T.invite_agent);
    ok.type = "submit";
    form.appendChild(ok);
    form.appendChild(button(T.cancel, "btn-default", function () { clear(c.forms); c.openForm = null; }));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (kind === "transfer") {
        var payload = {conversation_id: c.id};
        if (agentSelect.value) { payload.to_agent_id = parseInt(agentSelect.value, 10); }
        else if (groupSelect.value) { payload.to_group_id = parseInt(groupSelect.value, 10); }
        else { return; }
        if (note.value.trim()) { payload.note = note.value.trim(); }
        emit("transfer", payload, function (ack) {
          if (ackError(ack)) { return; }
          alertBox(T.transferred, "success");
          clear(c.forms);
          c.openForm = null;
          dropChat(c);
          refresh();
        });
      } else {
        if (!agentSelect.value) { return; }
        emit("invite_agent", {conversation_id: c.id, agent_id: parseInt(agentSelect.value, 10)}, function (ack) {
          if (ackError(ack)) { return; }
          alertBox(T.invite_sent, "success");
          clear(c.forms);
          c.openForm = null;
        });
      }
    });
    c.forms.appendChild(form);
  }

  // --- links, emoji, read receipts (已读), the unread total in the title -----------------------

  // http:// and https:// addresses in a message become links; everything else stays text (no
  // javascript:, data: or vbscript: link can be made). An address ends at a space, at anything
  // that is not ASCII (Chinese punctuation included) and before trailing punctuation.
  var URL_PATTERN = /\bhttps?:\/\/[A-Za-z0-9\-._~:\/?#\[\]@!$&'()*+,;=%]+/gi;

  function trimUrl(url) {
    for (;;) {
      var last = url.charAt(url.length - 1);
      var unbalanced = (last === ")" && url.split("(").length < url.split(")").length) ||
        (last === "]" && url.split("[").length < url.split("]").length);
      if (".,;:!?'\"*".indexOf(last) === -1 && !unbalanced) { return url; }
      url = url.slice(0, -1);
    }
  }

  // A message's text as a .chat-text block: text nodes, its web addresses as links (never HTML).
  function linkedText(text) {
    var node = el("div", "chat-text");
    var at = 0, match;
    URL_PATTERN.lastIndex = 0;
    while ((match = URL_PATTERN.exec(text)) !== null) {
      var url = trimUrl(match[0]);
      if (!/^https?:\/\/[A-Za-z0-9\[]/i.test(url)) { continue; }
      var link = el("a", "chat-link", url);
      link.href = url;
      if (link.protocol !== "http:" && link.protocol !== "https:") { continue; }
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      if (match.index > at) { node.appendChild(document.createTextNode(text.slice(at, match.index))); }
      node.appendChild(link);
      at = match.index + url.length;
      URL_PATTERN.lastIndex = at;
    }
    if (at < text.length) { node.appendChild(document.createTextNode(text.slice(at))); }
    return node;
  }

  var EMOJI = ["😀", "😂", "😊", "😉", "😍", "😘", "🤔", "😅", "😭", "😮", "👍", "👌", "👏", "🙏", "💪", "🤝",
               "🎉", "❤️", "🌹", "☕", "✅", "❌", "📄", "💰"];

  // Put *text* into *input* at the caret (replacing a selection), as if typed.
  function insertAtCaret(input, text) {
    var value = input.value;
    if (input.maxLength > 0 && value.length + text.length > input.maxLength) { return; }
    var start = typeof input.selectionStart === "number" ? input.selectionStart : value.length;
    var end = typeof input.selectionEnd === "number" ? input.selectionEnd : start;
    input.value = value.slice(0, start) + text + value.slice(end);
    input.focus();
    input.setSelectionRange(start + text.length, start + text.length);
    input.dispatchEvent(new Event("input", {bubbles: true}));
  }

  // The emoji button beside the reply box and its small set of emoji (Unicode characters).
  function addEmojiPicker(form, row, input) {
    var toggle = el("button", "btn btn-default btn-xs chat-emoji-toggle", "😊");
    toggle.type = "button";
    toggle.title = T.emoji;
    toggle.setAttribute("aria-label", T.emoji);
    toggle.setAttribute("aria-expanded", "false");
    var picker = el("div", "chat-emoji-picker");
    picker.setAttribute("role", "group");
    picker.setAttribute("aria-label", T.emoji);
    picker.hidden = true;
    function show(open) {
      picker.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
    }
    EMOJI.forEach(function (emoji) {
      var choice = el("button", "chat-emoji", emoji);
      choice.type = "button";
      choice.setAttribute("aria-label", emoji);
      choice.addEventListener("click", function () { show(false); insertAtCaret(input, emoji); });
      picker.appendChild(choice);
    });
    toggle.addEventListener("click", function () { show(picker.hidden); });
    picker.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { show(false); input.focus(); }
    });
    row.insertBefore(toggle, row.querySelector(".chat-send"));
    form.insertBefore(picker, input);
  }

  // Read receipts: the visitor's messages the agent has seen (the chat's tab open in a visible
  // console) are told to the desk once per burst; the visitor's position marks our replies 已读.
  // Positions only grow and come back on resume (before the messages), so after a reload too.
  function seesChat(c) {
    return !!c && String(activeChat) === String(c.id) && !document.hidden && c.mode !== "watch";
  }

  function noteMessage(c, m, item) {
    if (m.id && m.sender_type === "visitor") { c.lastVisitorId = Math.max(c.lastVisitorId || 0, m.id); }
    if (m.id && m.sender_type === "agent" && m.id <= (c.visitorRead || 0)) { markRead(item); }
    scheduleRead(c);
  }

  function scheduleRead(c) {
    if (!seesChat(c) || c.readTimer) { return; }
    c.readTimer = setTimeout(function () { c.readTimer = null; sendRead(c); }, 300);
  }

  function sendRead(c) {
    var upTo = c.lastVisitorId || 0;
    if (!seesChat(c) || upTo <= (c.agentRead || 0)) { return; }
    if (upTo <= (c.readSent || 0) && Date.now() - c.readSentAt < 5000) { return; }  // on its way
    c.readSent = upTo;
    c.readSentAt = Date.now();
    emit("read", {conversation_id: c.id, message_id: upTo}, function (ack) {
      c.readSent = 0;
      if (ack && typeof ack.up_to === "number") { applyRead(ack); }
      else if (ack && typeof ack.retry_after === "number") {
        setTimeout(function () { scheduleRead(c); }, Math.max(1, ack.retry_after) * 1000);
      }
    });
  }

  function applyRead(payload) {
    var c = payload && chats[payload.conversation_id];
    if (!c || typeof payload.up_to !== "number") { return; }
    if (payload.reader === "visitor" && payload.up_to > (c.visitorRead || 0)) {
      c.visitorRead = payload.up_to;
      c.list.querySelectorAll("li.chat-agent:not(.chat-read)").forEach(function (item) {
        var id = Number(item.dataset.messageId) || 0;
        if (id && id <= c.visitorRead) { markRead(item); }
      });
    } else if (payload.reader === "agent" && payload.up_to > (c.agentRead || 0)) {
      c.agentRead = payload.up_to;
      if (c.unread && (c.lastVisitorId || 0) <= c.agentRead) { c.unread = 0; updateTab(c); }  // read elsewhere
    }
  }

  function markRead(item) {
    if (item.classList.contains("chat-read")) { return; }
    item.classList.add("chat-read");
    item.appendChild(el("div", "chat-receipt small text-muted", T.read_receipt));
  }

  // The unread total in the browser tab's title: "(3) …" while the console is on screen; while
  // it is hidden the title flashes "(3) 新消息" with the page's own title.
  var pageTitle = document.title;
  var titleTimer = null;
  var titleFlip = false;

  function totalUnread() {
    return Object.keys(chats).reduce(function (sum, id) { return sum + (chats[id].unread || 0); }, 0);
  }

  function updateTitle() {
    var n = totalUnread();
    if (n && document.hidden) {
      if (!titleTimer) { titleFlip = false; flipTitle(); titleTimer = setInterval(flipTitle, 1000); }
      return;
    }
    clearInterval(titleTimer);
    titleTimer = null;
    document.title = n ? "(" + n + ") " + pageTitle : pageTitle;
  }

  function flipTitle() {
    var n = totalUnread();
    if (!n || !document.hidden) { updateTitle(); return; }
    titleFlip = !titleFlip;
    document.title = titleFlip ? fmt(T.title_new_messages, {n: n}) : pageTitle;
  }

  // Called whenever a tab's unread count or the chat on screen changes.
  function afterTabUpdate(c) {
    updateTitle();
    scheduleRead(c);
  }

  document.addEventListener("visibilitychange", function () {
    updateTitle();
    scheduleRead(activeChat !== null ? chats[activeChat] : null);
  });
  setInterval(function () { scheduleRead(activeChat !== null ? chats[activeChat] : null); }, 2000);

  // --- conversation topics (对话主题) and quick links (常用链接) -----------------------------------

  // A chat's topics, under its toolbar: its owner, an invited agent or a supervisor sets them
  // (set_topics, the whole list at once); the other agents in the chat hear "topics". The quick
  // links of the chat's site go into the reply box with one click, as canned replies do.
  function chatExtras(c) {
    c.topicBar = el("div", "chat-topics small");
    c.topicBar.appendChild(el("span", "text-muted chat-topics-label", T.topics + ": "));
    c.topicList = el("span", "chat-topic-list", "");
    c.topicBar.appendChild(c.topicList);
    c.topicBar.appendChild(document.createTextNode(" "));
    c.topicBar.appendChild(button(T.set_topics, "btn-default chat-topics-edit", function () { topicForm(c); }));
    c.pane.insertBefore(c.topicBar, c.forms);
    showTopics(c, []);
    var row = c.pane.querySelector(".chat-composer-row");
    if (!row || c.mode === "watch") { return; }
    var box = linksBox(c);
    box.hidden = true;
    row.parentNode.insertBefore(box, row);
    row.insertBefore(button(T.links, "btn-default chat-links-toggle", function () {
      box.hidden = !box.hidden;
      if (!box.hidden) { box.refresh(); }
    }), row.querySelector(".chat-send"));
  }

  function showTopics(c, topics) {
    if (!c.topicList || c.topicsBusy) { return; }
    c.topics = topics || [];
    clear(c.topicList);
    if (!c.topics.length) { c.topicList.appendChild(el("span", "text-muted chat-topic-none", T.no_topics)); }
    c.topics.forEach(function (topic) {
      var label = el("span", "label label-info chat-topic", topic.name);
      label.dataset.topicId = String(topic.id);
      c.topicList.appendChild(label);
      c.topicList.appendChild(document.createTextNode(" "));
    });
  }

  function topicForm(c) {
    clear(c.forms);
    if (c.openForm === "topics") { c.openForm = null; return; }
    c.openForm = "topics";
    var form = el("form", "well well-sm chat-topics-form");
    var chosen = {};
    (c.topics || []).forEach(function (topic) { chosen[topic.id] = true; });
    var choices = (state.topics || []).slice();
    (c.topics || []).forEach(function (topic) {  // a deactivated topic still on the chat can stay
      if (!choices.some(function (t) { return t.id === topic.id; })) { choices.push(topic); }
    });
    if (!choices.length) { form.appendChild(el("p", "text-muted small", T.no_topic_list)); }
    choices.forEach(function (topic) {
      var label = el("label", "checkbox-inline chat-topic-choice");
      var box = el("input", "chat-topic-check");
      box.type = "checkbox";
      box.value = String(topic.id);
      box.checked = !!chosen[topic.id];
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + topic.name));
      form.appendChild(label);
    });
    form.appendChild(el("br"));
    var ok = el("button", "btn btn-primary btn-xs chat-topics-save", T.save);
    ok.type = "submit";
    form.appendChild(ok);
    form.appendChild(button(T.cancel, "btn-default", function () { clear(c.forms); c.openForm = null; }));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var ids = Array.prototype.filter.call(form.querySelectorAll(".chat-topic-check"), function (b) { return b.checked; })
        .map(function (b) { return parseInt(b.value, 10); });
      c.topicsBusy = true;
      var sent = emit("set_topics", {conversation_id: c.id, topic_ids: ids}, function (ack) {
        c.topicsBusy = false;
        if (ackError(ack)) { return; }
        showTopics(c, ack.topics);
        clear(c.forms);
        c.openForm = null;
      });
      if (!sent) { c.topicsBusy = false; alertBox(T.error, "danger"); }
    });
    c.forms.appendChild(form);
  }

  function linksBox(c) {
    var parts = searchBox("links", T.links_search), box = parts.box, input = parts.input, results = parts.results;
    var timer = null;
    box.refresh = function () {
      var query = "?q=" + encodeURIComponent(input.value.trim());
      if (c.visitor && c.visitor.site_id) { query += "&site_id=" + encodeURIComponent(c.visitor.site_id); }
      getJSON(urls.links + query).then(function (data) {
        clear(results);
        var links = (data && data.links) || [];
        if (!links.length) { results.appendChild(el("li", "list-group-item text-muted", T.links_none)); }
        links.forEach(function (link) {
          var item = el("li", "list-group-item chat-link-item");
          item.appendChild(el("strong", "chat-link-title", link.title));
          item.appendChild(el("div", "small text-muted chat-link-url", link.url));
          item.addEventListener("click", function () { insertLink(c, link); });
          results.appendChild(item);
        });
      }).catch(function () { alertBox(T.error, "danger"); });
    };
    input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(box.refresh, 200); });
    return box;
  }

  // The link goes in where the cursor is, as "title url", with a blank on either side.
  function insertLink(c, link) {
    var input = c.input, text = link.title + " " + link.url;
    var start = input.selectionStart === undefined ? input.value.length : input.selectionStart;
    var end = input.selectionEnd === undefined ? start : input.selectionEnd;
    var before = input.value.slice(0, start), after = input.value.slice(end);
    if (before && !/\s$/.test(before)) { text = " " + text; }
    if (!after || !/^\s/.test(after)) { text += " "; }
    insertAtCaret(input, text);
  }

  // --- visitor details -----------------------------------------------------------------------

  function dl(rows) {
    var list = el("dl", "dl-horizontal console-dl");
    rows.forEach(function (row) {
      if (row[1] === null || row[1] === undefined || row[1] === "") { return; }
      list.appendChild(el("dt", "", row[0]));
      list.appendChild(el("dd", row[2] || "", row[1]));
    });
    return list;
  }

  function showVisitor(id, focusInvite) {
    selectedVisitorId = id;
    var box = document.getElementById("visitor-details");
    getJSON(urls.visitor + id).then(function (data) {
      clear(box);
      var v = data.visitor;
      box.dataset.visitorId = String(v.id);
      box.appendChild(el("h5", "visitor-detail-name", visitorLabel(v)));
      box.appendChild(dl([[T.site, v.site_name], [T.page, v.current_url, "visitor-detail-url"],
        [T.title, v.current_title, "visitor-detail-title"], [T.location, place(v)],
        [T.browser, [v.browser, v.os].filter(Boolean).join(" / ")], [T.device, v.device],
        [T.language, v.language], [T.first_seen, v.first_seen_at ? new Date(v.first_seen_at).toLocaleString() : ""],
        [T.name, v.name], [T.email, v.email], [T.phone, v.phone]]));
      if (me.agent_id) { box.appendChild(inviteForm(v, focusInvite)); }
      if (data.crm) { box.appendChild(visitorActions(v, data)); }
      if (data.client) { box.appendChild(clientCard(data.client)); }
      box.appendChild(el("h6", "", T.trail));
      var trail = el("ol", "visitor-trail small");
      data.trail.forEach(function (t) {
        var item = el("li", "");
        item.appendChild(el("div", "trail-title", t.title || t.url));
        var meta = [t.url, duration(t.seconds), t.keyword ? (t.search_engine || "") + " “" + t.keyword + "”" : ""];
        item.appendChild(el("div", "text-muted trail-meta", meta.filter(Boolean).join(" · ")));
        trail.appendChild(item);
      });
      box.appendChild(trail);
      if (data.conversations.length) {
        box.appendChild(el("h6", "", T.past_chats));
        var past = el("ul", "list-unstyled small visitor-past");
        data.conversations.forEach(function (conv) {
          var line = [clock(conv.queued_at), new Date(conv.queued_at).toLocaleDateString(), conv.agent_name || "—",
            conv.messages + " " + T.messages, conv.rating ? T.rating + " " + conv.rating : ""];
          past.appendChild(el("li", "", "#" + conv.conversation_id + " " + line.filter(Boolean).join(" · ")));
        });
        box.appendChild(past);
      }
      renderVisitors();
    }).catch(function () { alertBox(T.error, "danger"); });
  }

  function inviteForm(v, focus) {
    var form = el("form", "console-inline-form visitor-invite-form");
    var text = el("input", "form-control input-sm visitor-invite-text");
    text.type = "text";
    text.maxLength = 500;
    text.value = T.invite_text;
    var ok = el("button", "btn btn-info btn-sm", T.invite_visitor);
    ok.type = "submit";
    form.appendChild(text);
    form.appendChild(ok);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!text.value.trim()) { return; }
      emit("invite", {visitor_id: v.id, text: text.value.trim()}, function (ack) {
        if (!ackError(ack)) { alertBox(T.invite_sent, "success"); }
      });
    });
    if (focus) { setTimeout(function () { text.focus(); text.select(); }, 0); }
    return form;
  }

  function clientCard(client) {
    var card = el("div", "panel panel-info client-card");
    card.appendChild(el("div", "panel-heading", T.client_card + ": " + client.name));
    var body = el("div", "panel-body small");
    var books = client.books ? (client.books.latest_closed || T.none_closed) : "";
    body.appendChild(dl([[T.credit_code, client.credit_code, "client-credit-code"], [T.taxpayer_type, client.taxpayer_type],
      [T.contact, [client.contact.name, client.contact.position].filter(Boolean).join(" · ")],
      [T.balance_due, client.balance.due, "client-balance"], [T.latest_closed, books, "client-books"]]));
    if (client.contracts.length) {
      body.appendChild(el("strong", "", T.contracts));
      var contracts = el("ul", "client-contracts");
      client.contracts.forEach(function (c) {
        contracts.appendChild(el("li", "", [c.service_type, fmt(T.per_month, {fee: c.monthly_fee}),
          c.start_date + " – " + c.end_date].join(" · ")));
      });
      body.appendChild(contracts);
    }
    if (client.service_records.length) {
      body.appendChild(el("strong", "", T.service_records));
      var records = el("ul", "client-records");
      client.service_records.forEach(function (r) {
        records.appendChild(el("li", "", [new Date(r.performed_at).toLocaleDateString(), r.subject, r.result]
          .filter(Boolean).join(" · ")));
      });
      body.appendChild(records);
    }
    clientWork(body, client);
    card.appendChild(body);
    return card;
  }

  // --- from visitor to client: lead, client contact, filing status, the latest statement ---------

  // The agent's open chat with this visitor (one they write in), if any: where a statement goes.
  function writableChatOf(visitorId) {
    var found = null;
    Object.keys(chats).forEach(function (id) {
      var c = chats[id];
      if (!found && c.visitor && c.visitor.id === visitorId && !c.closed && c.mode !== "watch") { found = c; }
    });
    return found;
  }

  function crmField(form, label, className, value, maxLength, multiline) {
    var id = "crm-" + className + "-" + Math.random().toString(36).slice(2, 8);
    var labelNode = el("label", "small", label);
    labelNode.htmlFor = id;
    var input = el(multiline ? "textarea" : "input", "form-control input-sm crm-" + className);
    input.id = id;
    if (!multiline) { input.type = "text"; } else { input.rows = 2; }
    input.maxLength = maxLength;
    input.value = value || "";
    form.appendChild(labelNode);
    form.appendChild(input);
    return input;
  }

  function crmValues(inputs) {
    var payload = {};
    Object.keys(inputs).forEach(function (key) {
      var value = inputs[key].value.trim();
      if (value) { payload[key] = value; }
    });
    return payload;
  }

  // The visitor card's actions: 创建线索 (a lead, one per visitor) and 添加为客户联系人 (a contact
  // of a client the agent finds by name or credit code), each a small form filled from what the
  // visitor gave; both only for a visitor who is not a client's contact yet.
  function visitorActions(v, data) {
    var crm = data.crm, can = crm.can || {}, start = crm.prefill || {};
    var box = el("div", "visitor-crm");
    if (crm.lead) {
      var line = el("p", "small crm-lead");
      var text = fmt(T.lead_exists, {id: crm.lead.id, status: crm.lead.status_label});
      if (crm.lead.url) {
        var link = el("a", "", text);
        link.href = crm.lead.url;
        link.target = "_blank";
        link.rel = "noopener";
        line.appendChild(link);
      } else {
        line.textContent = text;
      }
      box.appendChild(line);
    }
    if (data.client) { return box; }
    var forms = el("div", "crm-forms");
    var buttons = el("div", "btn-toolbar crm-buttons");
    if (can.create_lead && !crm.lead) {
      buttons.appendChild(button(T.create_lead, "btn-primary crm-create-lead", function () {
        clear(forms);
        forms.appendChild(leadForm(v, start));
      }));
    }
    if (can.link_contact) {
      buttons.appendChild(button(T.add_contact, "btn-default crm-add-contact", function () {
        clear(forms);
        forms.appendChild(contactForm(v, start));
      }));
    }
    box.appendChild(buttons);
    box.appendChild(forms);
    return box;
  }

  function leadForm(v, start) {
    var form = el("form", "well well-sm crm-lead-form");
    var inputs = {name: crmField(form, T.name, "lead-name", start.name, 100),
                  company: crmField(form, T.company, "lead-company", "", 200),
                  phone: crmField(form, T.phone, "lead-phone", start.phone, 30),
                  email: crmField(form, T.email, "lead-email", start.email, 254),
                  question: crmField(form, T.question, "lead-question", start.question, 2000, true)};
    if (start.source_url || start.site_name) {
      form.appendChild(el("p", "small text-muted crm-lead-source",
        [start.site_name, start.source_url].filter(Boolean).join(" · ")));
    }
    var ok = el("button", "btn btn-primary btn-xs crm-lead-submit", T.create_lead);
    ok.type = "submit";
    form.appendChild(ok);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var payload = crmValues(inputs);
      payload.visitor_id = v.id;
      var c = writableChatOf(v.id);
      if (c) { payload.conversation_id = c.id; }
      ok.disabled = true;
      var sent = emit("lead_create", payload, function (ack) {
        ok.disabled = false;
        if (ackError(ack)) { return; }
        var lead = ack.lead || {};
        alertBox(fmt(ack.created ? T.lead_created : T.lead_already, {id: lead.id, status: lead.status_label}),
                 ack.created ? "success" : "info");
        showVisitor(v.id);
      });
      if (!sent) { ok.disabled = false; alertBox(T.error, "danger"); }
    });
    return form;
  }

  function contactForm(v, start) {
    var form = el("form", "well well-sm crm-contact-form");
    var chosen = null, timer = null;
    var search = crmField(form, T.choose_client, "client-q", "", 100);
    search.placeholder = T.search_client;
    search.type = "search";
    var results = el("ul", "list-unstyled small crm-client-results");
    form.appendChild(results);
    var picked = el("p", "small crm-client-chosen");
    form.appendChild(picked);
    var inputs = {name: crmField(form, T.name, "contact-name", start.name, 100),
                  position: crmField(form, T.contact_position, "contact-position", "", 100),
                  phone: crmField(form, T.phone, "contact-phone", start.phone, 30),
                  email: crmField(form, T.email, "contact-email", start.email, 254)};
    var ok = el("button", "btn btn-primary btn-xs crm-contact-submit", T.add_contact);
    ok.type = "submit";
    ok.disabled = true;
    form.appendChild(ok);
    search.addEventListener("input", function () {
      clearTimeout(timer);
      var q = search.value.trim();
      if (!q) { clear(results); return; }
      timer = setTimeout(function () {
        emit("client_search", {q: q}, function (ack) {
          clear(results);
          if (ackError(ack)) { return; }
          if (!(ack.results || []).length) { results.appendChild(el("li", "text-muted", T.no_clients)); }
          (ack.results || []).forEach(function (client) {
            var item = el("li", "");
            item.appendChild(button(client.name + " · " + client.credit_code, "btn-link crm-client-result", function () {
              chosen = client;
              picked.textContent = T.client_card + ": " + client.name;
              ok.disabled = false;
              clear(results);
            }));
            results.appendChild(item);
          });
        });
      }, 300);
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!chosen) { return; }
      var payload = crmValues(inputs);
      payload.visitor_id = v.id;
      payload.client_id = chosen.id;
      ok.disabled = true;
      emit("contact_attach", payload, function (ack) {
        ok.disabled = false;
        if (ackError(ack)) { return; }
        alertBox(fmt(T.contact_added, {name: payload.name || "", client: ack.client_name}), "success");
        showVisitor(v.id);
      });
    });
    return form;
  }

  // On the client card: filing status (overdue and this month's records) and 发送最新报表.
  function clientWork(body, client) {
    if (client.filings) {
      body.appendChild(el("strong", "", T.filings));
      var list = el("ul", "client-filings");
      if (!client.filings.length) { list.appendChild(el("li", "text-muted", T.no_filings)); }
      client.filings.forEach(function (f) {
        var item = el("li", f.overdue ? "text-danger filing-overdue" : "filing-row",
          [f.tax, f.period, fmt(T.due, {date: f.due}), f.status].join(" · "));
        if (f.overdue) { item.appendChild(el("span", "label label-danger", T.overdue)); }
        list.appendChild(item);
      });
      body.appendChild(list);
      if (client.filings_url) {
        var link = el("a", "small client-filings-link", T.all_filings);
        link.href = client.filings_url;
        link.target = "_blank";
        link.rel = "noopener";
        body.appendChild(link);
      }
    }
    var c = client.can_send_statement ? writableChatOf(selectedVisitorId) : null;
    if (c) {
      var send = button(T.send_statement, "btn-info client-send-statement", function () {
        send.disabled = true;
        send.textContent = T.statement_rendering;
        var sent = emit("statement_send", {conversation_id: c.id}, function (ack) {
          send.disabled = false;
          send.textContent = T.send_statement;
          if (ackError(ack)) { return; }
          if (ack.message) { addMessage(c, ack.message); alertBox(T.statement_sent, "success"); }
          else { alertBox(T.statement_queued, "info"); }
        });
        if (!sent) { send.disabled = false; send.textContent = T.send_statement; alertBox(T.error, "danger"); }
      });
      body.appendChild(el("div", "client-statement")).appendChild(send);
    }
  }

  // --- team room -----------------------------------------------------------------------------

  function addTeamMessage(m) {
    if (!m || (m.id && seenTeam[m.id])) { return; }
    if (m.id) { seenTeam[m.id] = true; }
    var list = document.getElementById("team-messages");
    var empty = list.querySelector(".team-empty");
    if (empty) { list.removeChild(empty); }
    var item = el("li", "team-message");
    var head = el("div", "small text-muted");
    head.appendChild(el("span", "", m.sender_name || ""));
    head.appendChild(el("span", "", " " + clock(m.created_at)));
    item.appendChild(head);
    item.appendChild(el("div", "team-text", m.text));
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
  }

  document.getElementById("team-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = document.getElementById("team-text");
    var text = input.value.trim();
    if (!text) { return; }
    emit("team_message", {client_msg_id: uuid(), text: text}, function (ack) {
      if (ackError(ack)) { return; }
      input.value = "";
      addTeamMessage({id: ack.id, sender_name: ack.sender_name || me.name, text: ack.text || text,
                      created_at: ack.created_at});
    });
  });

  // --- the socket ----------------------------------------------------------------------------

  function setConnection(label, kind) {
    var badge = document.getElementById("console-connection");
    badge.textContent = label;
    badge.className = "label label-" + kind;
  }

  function connect() {
    if (typeof window.io !== "function") { setConnection(T.refused, "danger"); return; }
    socket = window.io("/agent", {withCredentials: true});
    socket.on("connect", function () {
      setConnection(T.connected, "success");
      Object.keys(chats).forEach(function (id) {
        var c = chats[id];
        if (c.mode !== "watch" && !c.closed) { emit("resume", {conversation_id: c.id, last_message_id: c.lastId}); }
        if (c.mode === "watch") { emit("watch", {conversation_id: c.id}); }
      });
      outbox.forEach(sendQueued);
      emit("team_history", {}, function (ack) {
        var list = document.getElementById("team-messages");
        if (ack && ack.messages) {
          if (!ack.messages.length && !list.children.length) { list.appendChild(el("li", "text-muted small team-empty", T.team_empty)); }
          ack.messages.forEach(addTeamMessage);
        }
      });
      refresh();
    });
    socket.on("disconnect", function () {
      setConnection(T.disconnected, "warning");
      awaiting = {};
      outbox.forEach(function (item) { item.inFlight = false; });  // their acks will not come: resent on connect
    });
    socket.on("connect_error", function () {
      // still retrying (the server restarts, the network is down): not a refusal
      if (socket.active) { setConnection(T.disconnected, "warning"); } else { setConnection(T.refused, "danger"); }
    });
    socket.on("error", function (payload) {
      if (payload && payload.message && !(awaiting[payload.event] > 0)) { alertBox(payload.message, "danger"); }
    });

    socket.on("visitor_update", function (payload) {
      if (!payload || !payload.id) { return; }
      upsertVisitor(payload);
      Object.keys(chats).forEach(function (id) {  // the chat's header follows the visitor's page
        if (chats[id].visitor && chats[id].visitor.id === payload.id) { setVisitor(chats[id], payload); }
      });
    });
    socket.on("chat_request", function (payload) {
      refresh();
      if (payload && !chats[payload.conversation_id]) { notify(T.new_chat, "", null); }
    });
    socket.on("queue_update", function () { refresh(); });
    socket.on("offer_withdrawn", function (payload) {
      if (!payload) { return; }
      state.offers = state.offers.filter(function (o) { return o.conversation_id !== payload.conversation_id; });
      alertBox(T.offer_withdrawn, "warning");
      refresh();
    });
    socket.on("leave_message", function (payload) {
      if (!payload) { return; }
      alertBox(fmt(T.left_message, {name: payload.name || ""}), "info");
      notify(fmt(T.left_message, {name: payload.name || ""}), "", null);
    });
    socket.on("chat_offer", function (payload) {
      if (!payload) { return; }
      state.offers = state.offers.filter(function (o) { return o.conversation_id !== payload.conversation_id; });
      state.offers.push({conversation_id: payload.conversation_id, visitor: payload.visitor || {},
                         expires_at: payload.expires_at});
      renderOffers();
      notify(T.new_chat, visitorLabel(payload.visitor), null);
    });
    socket.on("message", function (m) {
      var c = m && chats[m.conversation_id];
      if (!c) { if (m && m.sender_type === "visitor") { refresh(); } return; }
      addMessage(c, m);
      if (m.sender_type === "visitor") { notify(T.new_message, m.text, c.id); }
    });
    socket.on("visitor_typing", function (payload) {
      var c = payload && chats[payload.conversation_id];
      if (!c) { return; }
      c.draftText.textContent = payload.draft || "";
      c.draft.hidden = !payload.draft;
    });
    socket.on("closed", function (payload) {
      var c = payload && chats[payload.conversation_id];
      if (c) { markClosed(c, payload.by || "system"); }
      refresh();
    });
    socket.on("agent_status", function (payload) {
      if (!payload) { return; }
      state.agents.forEach(function (a) { if (a.id === payload.agent_id) { a.status = payload.status; } });
      if (payload.agent_id === me.agent_id && statusSelect) { statusSelect.value = payload.status; me.status = payload.status; }
    });
    socket.on("transferred", function (payload) {
      if (!payload) { return; }
      var mine = chats[payload.conversation_id];
      if (mine && me.agent_id && payload.to_agent_id === me.agent_id) {
        setMode(mine, "chat");  // e.g. an invited agent who now owns the chat
        if (payload.visitor) { setVisitor(mine, payload.visitor); }
      }
      if (me.agent_id && payload.to_agent_id === me.agent_id) {
        alertBox(fmt(T.transferred_to_you, {name: payload.from_name}), "info");
        if (payload.note) { alertBox(payload.note, "info"); }
        notify(T.new_chat, payload.note || "", null);
      }
      refresh();
    });
    socket.on("participant_joined", function (payload) {
      var c = payload && chats[payload.conversation_id];
      if (c) { addMessage(c, {sender_type: "system", text: fmt(T.joined, {name: payload.name})}); }
    });
    socket.on("participant_left", function (payload) {
      var c = payload && chats[payload.conversation_id];
      if (c) { addMessage(c, {sender_type: "system", text: fmt(T.left, {name: payload.name})}); }
    });
    socket.on("chat_invited", function (payload) {
      if (!payload) { return; }
      var panel = document.getElementById("invites-panel");
      var item = el("li", "list-group-item chat-invite-row", fmt(T.invited_you, {name: payload.by_name}) + " ");
      item.appendChild(button(T.accept, "btn-success", function () {
        emit("accept_invite", {conversation_id: payload.conversation_id}, function (ack) {
          if (ackError(ack)) { return; }
          item.parentNode.removeChild(item);
          panel.hidden = !document.getElementById("chat-invites").children.length;
          var c = openChat(payload.conversation_id, {}, "invited");
          (ack.messages || []).forEach(function (m) { addMessage(c, m); });
          getJSON(urls.conversation + c.id).then(function (data) {  // who the visitor is
            if (data.conversation && data.conversation.visitor) { setVisitor(c, data.conversation.visitor); }
          }).catch(function () { /* the next state refresh names them */ });
          selectChat(payload.conversation_id);
          refresh();
        });
      }));
      document.getElementById("chat-invites").appendChild(item);
      panel.hidden = false;
      notify(T.new_chat, "", null);
    });
    socket.on("team_message", addTeamMessage);
    socket.on("read", applyRead);
    socket.on("topics", function (payload) { if (payload && chats[payload.conversation_id]) { showTopics(chats[payload.conversation_id], payload.topics); } });
    socket.on("preferences", function (payload) {  // chosen in another console of this agent
      if (payload && payload.send_key) { applySendKey(payload.send_key); }
    });
    socket.on("invite_response", function (payload) {
      if (payload) { alertBox(payload.accepted ? T.invitation_accepted : T.invitation_declined, "info"); }
    });
  }

  var statusSelect = document.getElementById("console-status");
  if (statusSelect) {
    statusSelect.addEventListener("change", function () {
      emit("status", {status: statusSelect.value}, function (ack) {
        if (ackError(ack)) { statusSelect.value = me.status || "offline"; return; }
        me.status = (ack && ack.status) || statusSelect.value;
      });
    });
  }

  var sendKeySelect = document.getElementById("console-send-key");
  if (sendKeySelect) {
    sendKeySelect.addEventListener("change", function () {
      var chosen = sendKeySelect.value;
      var sent = emit("preferences", {send_key: chosen}, function (ack) {
        if (ackError(ack)) { applySendKey(me.send_key); return; }
        applySendKey((ack && ack.send_key) || chosen);
      });
      if (!sent) { alertBox(T.error, "danger"); applySendKey(me.send_key); }
    });
  }

  // --- start -----------------------------------------------------------------------------------

  visitors = state.visitors.slice();
  renderAll();
  if (me.agent_id || me.supervisor) {
    connect();
    setInterval(function () { emit("ping", {}); }, 30000);  // keeps the agent's presence fresh
  } else {
    setConnection(T.disconnected, "default");
  }
  setInterval(function () { tickVisitors(); tickQueue(); tickOffers(); }, 1000);
}());
