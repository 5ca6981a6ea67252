// Segue agent console. Plain browser JavaScript, no build step.
// Everything a customer wrote is inserted with textContent, never as HTML.
(function () {
  "use strict";

  var CHANNELS = { web: "web chat", telegram: "Telegram", slack: "Slack" };
  var LANGUAGES = { en: "English", de: "German", es: "Spanish" };
  var me = null;
  var current = null;      // customer id on screen
  var view = null;         // its last loaded view
  var loads = 0;           // conversation loads started; only the latest is shown
  var arrivedWhileLoading = [];  // live messages of `current` since that load began
  var socket = null;
  var retry = 500;

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function when(ts) {
    var d = new Date(ts * 1000);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function api(method, path, body) {
    var init = { method: method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch("/agent/api/" + path, init).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (resp.status === 401) showLogin();
        if (!resp.ok) {
          var err = new Error(data.message || ("HTTP " + resp.status));
          err.code = data.error;
          throw err;
        }
        return data;
      });
    });
  }

  // Logging in and out.

  function showLogin(message) {
    me = null;
    if (socket) { socket.onclose = null; socket.close(); socket = null; }
    $("desk").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
  }

  function showDesk(agent) {
    me = agent;
    $("login").hidden = true;
    $("desk").hidden = false;
    $("me").textContent = agent.name + " (" + agent.role + ")";
    canned.start(agent);
    connect();
    loadQueue();
    loadAgents();
  }

  $("login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    $("login-error").textContent = "";
    api("POST", "login", {
      username: $("login-username").value,
      password: $("login-password").value
    }).then(function (data) {
      $("login-password").value = "";
      showDesk(data.agent);
    }).catch(function (err) { $("login-error").textContent = err.message; });
  });

  $("logout").addEventListener("click", function () {
    api("POST", "logout").finally(function () { showLogin("You are logged out."); });
  });

  // Live events.

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/agent/ws");
    socket.onopen = function () { retry = 500; setLive(true); loadQueue(); };
    socket.onmessage = function (msg) { onEvent(JSON.parse(msg.data)); };
    socket.onclose = function (ev) {
      setLive(false);
      socket = null;
      if (ev.code === 4401) { showLogin("Your session has ended. Please log in again."); return; }
      if (me) setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  function setLive(on) {
    $("live").textContent = on ? "live" : "offline";
    $("live").className = on ? "live" : "live off";
  }

  function onEvent(ev) {
    if (ev.type === "hello") return;
    if (ev.type === "message") {
      if (ev.customer === current) arrivedWhileLoading.push(ev.entry);
      if (ev.customer === current && view && !shown(ev.entry)) {
        view.history.push(ev.entry);
        $("history").appendChild(messageItem(ev.entry));
        scrollDown();
      }
      markUnread(ev.customer);
      return;
    }
    loadQueue();
    if (ev.type === "moved" && (ev.customer === current || ev.to === current)) {
      openConversation(ev.to);
    } else if (ev.customer === current) {
      openConversation(current);
    }
  }

  function shown(entry, history) {
    return (history || view.history).some(function (e) {
      return e.ts === entry.ts && e.sender === entry.sender && e.text === entry.text;
    });
  }

  // The lists.

  function loadQueue() {
    return Promise.all([api("GET", "queue"), api("GET", "claimed")]).then(function (lists) {
      var queue = lists[0], claimed = lists[1];
      $("queue-count").textContent = queue.length;
      fillList($("queue"), queue.map(function (q) {
        var meta = "waiting since " + when(q.since);
        if (q.channel) meta += " · " + (CHANNELS[q.channel] || q.channel);
        if (q.reason) meta += " · " + q.reason;
        return { customer: q.customer, meta: meta };
      }));
      fillList($("mine"), claimed.map(function (c) {
        return { customer: c.customer, meta: c.agent === me.username ? "yours" : "held by " + c.agent };
      }));
    }).catch(function () {});
  }

  function fillList(list, items) {
    clear(list);
    items.forEach(function (item) {
      var li = el("li", item.customer === current ? "current" : "");
      li.dataset.customer = item.customer;
      li.appendChild(el("span", "who", item.customer));
      li.appendChild(el("span", "meta", item.meta));
      li.addEventListener("click", function () { openConversation(item.customer); });
      list.appendChild(li);
    });
  }

  function markUnread(customer) {
    document.querySelectorAll("li[data-customer]").forEach(function (li) {
      if (li.dataset.customer === customer && customer !== current) li.style.fontWeight = "700";
    });
  }

  function loadAgents() {
    api("GET", "agents").then(function (data) {
      var select = $("transfer-to");
      clear(select);
      data.agents.forEach(function (a) {
        if (a.username === me.username) return;
        var option = el("option", "", a.name + (a.online ? " (online)" : ""));
        option.value = a.username;
        select.appendChild(option);
      });
    }).catch(function () {});
  }

  // One conversation.

  function openConversation(customer) {
    current = customer;
    $("action-error").textContent = "";
    // A live message can arrive while the conversation loads, and the answer
    // may have been read before it was saved: keep it rather than lose it.
    arrivedWhileLoading = [];
    var load = ++loads;
    return api("GET", "conversations/" + encodeURIComponent(customer)).then(function (data) {
      if (current !== customer || load !== loads) return;
      arrivedWhileLoading.forEach(function (entry) {
        if (!shown(entry, data.history)) data.history.push(entry);
      });
      arrivedWhileLoading = [];
      view = data;
      render(data);
      document.querySelectorAll("li[data-customer]").forEach(function (li) {
        li.classList.toggle("current", li.dataset.customer === customer);
      });
    }).catch(function (err) {
      $("action-error").textContent = err.message;
    });
  }

  function render(data) {
    $("empty").hidden = true;
    $("conversation").hidden = false;
    $("conv-title").textContent = "Customer " + data.customer;
    var h = data.handoff;
    var status = "with the bot";
    if (h && h.status === "queued") status = "waiting for a person" + (h.reason ? " (" + h.reason + ")" : "");
    if (h && h.status === "claimed") status = "held by " + (h.agent_name || h.agent);
    if (data.last_channel) status += " · last wrote on " + (CHANNELS[data.last_channel] || data.last_channel);
    $("conv-status").textContent = status;

    var mine = h && h.status === "claimed" && h.agent === me.username;
    var admin = me.role === "admin";
    $("claim").disabled = !!(h && h.status === "claimed") || (!h && !admin);
    $("release").disabled = !h;
    $("close").disabled = !h;
    $("transfer").disabled = !(mine || admin || (h && h.status === "queued"));
    $("reply-send").disabled = !(mine || admin || (h && h.status === "queued"));

    var history = $("history");
    clear(history);
    data.history.forEach(function (entry) { history.appendChild(messageItem(entry)); });
    scrollDown();

    var channels = $("channels");
    clear(channels);
    data.channels.forEach(function (c) {
      var li = el("li");
      li.appendChild(badge(c.channel));
      li.appendChild(document.createTextNode(" " + c.user_id));
      channels.appendChild(li);
    });
    // The customer's language, so a reply is written in it.
    var language = languageName(data.locale);
    $("language").textContent = !data.locale ? "not known yet"
      : language ? language + " (" + data.locale + ")" : String(data.locale);
    $("reply-text").placeholder = language ? "Write a reply in " + language + "…" : "Write a reply…";
    $("flow").textContent = data.flow || "none";
    var slots = $("slots");
    clear(slots);
    Object.keys(data.slots).forEach(function (name) {
      slots.appendChild(el("dt", "", name));
      slots.appendChild(el("dd", "", JSON.stringify(data.slots[name])));
    });
  }

  function languageName(locale) {
    if (!locale) return null;
    var primary = String(locale).split(/[-_]/)[0].toLowerCase();
    return LANGUAGES[primary] || null;
  }

  function badge(channel) {
    return el("span", "badge " + channel, CHANNELS[channel] || channel);
  }

  function messageItem(entry) {
    var li = el("li", "msg " + entry.sender);
    var head = el("div", "head");
    head.appendChild(badge(entry.channel));
    var who = entry.sender === "agent" ? (entry.agent_name || "agent") : entry.sender;
    head.appendChild(el("span", "sender", who));
    head.appendChild(el("span", "time", when(entry.ts)));
    li.appendChild(head);
    li.appendChild(el("div", "text", entry.text));
    return li;
  }

  function scrollDown() {
    var history = $("history");
    history.scrollTop = history.scrollHeight;
  }

  function act(path, body) {
    if (!current) return Promise.resolve();
    var customer = current;
    $("action-error").textContent = "";
    return api("POST", "conversations/" + encodeURIComponent(customer) + "/" + path, body)
      .then(function () { loadQueue(); return openConversation(customer); })
      .catch(function (err) { $("action-error").textContent = err.message; });
  }

  $("claim").addEventListener("click", function () { act("claim"); });
  $("release").addEventListener("click", function () { act("release"); });
  $("close").addEventListener("click", function () { act("close"); });
  $("transfer").addEventListener("click", function () {
    var to = $("transfer-to").value;
    if (to) act("transfer", { agent: to });
  });
  // Canned replies (canned.js) take the reply box's keys first while their list is open.
  var canned = window.segueCanned({
    api: api,
    me: function () { return me; },
    view: function () { return view; }
  });

  $("reply-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = $("reply-text").value;
    if (!text.trim()) return;
    typing(false);
    act("messages", { text: text }).then(function () { $("reply-text").value = ""; });
  });

  // The customer sees "… is typing": repeated while keys are pressed (a
  // Telegram indicator lasts about 5 s), stopped after a pause or on send.
  var typingFor = null, typingSentAt = 0, typingPause = null;
  function typing(on) {
    clearTimeout(typingPause);
    var customer = on ? current : typingFor;
    if (!customer || (!on && !typingSentAt)) return;
    if (on && customer === typingFor && Date.now() - typingSentAt < 3000) {
      typingPause = setTimeout(function () { typing(false); }, 5000);
      return;
    }
    if (on && typingFor && typingFor !== customer) typing(false);
    typingFor = on ? customer : null;
    typingSentAt = on ? Date.now() : 0;
    api("POST", "conversations/" + encodeURIComponent(customer) + "/typing", { on: on })
      .catch(function () { /* only a hint */ });
    if (on) typingPause = setTimeout(function () { typing(false); }, 5000);
  }
  $("reply-text").addEventListener("input", function () {
    var may = !$("reply-send").disabled && $("reply-text").value.trim();
    typing(!!may);
  });
  $("reply-text").addEventListener("blur", function () { typing(false); });
  $("reply-text").addEventListener("keydown", function (ev) {
    if (ev.defaultPrevented) return;  // the canned replies' list used it
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      $("reply-form").requestSubmit();
    }
  });

  api("GET", "me").then(function (data) { showDesk(data.agent); })
    .catch(function () { showLogin(); });
})();
