// Segue agent console. Plain browser JavaScript, no build step.
// Everything a customer wrote is inserted with textContent, never as HTML.
(function () {
  "use strict";

  var timeline = window.segueTimeline;
  var el = timeline.el, clear = timeline.clear;
  var QUEUE_REFRESH_MS = 30000;  // the waits shown, and their flags, stay current
  var me = null;
  var current = null;      // customer id on screen
  var view = null;         // its last loaded view
  var loads = 0;           // conversation loads started; only the latest is shown
  var arrivedWhileLoading = [];  // live entries of `current` since that load began
  var unread = {};         // customers with a message not seen yet
  var socket = null;
  var retry = 500;
  var refresh = null;

  function $(id) { return document.getElementById(id); }

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
    clearInterval(refresh);
    if ($("report").open) $("report").close();
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
    workspace.reset();
    report.start(agent);
    canned.start(agent);
    connect();
    loadQueue();
    loadAgents();
    clearInterval(refresh);
    refresh = setInterval(loadQueue, QUEUE_REFRESH_MS);
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
    switch (ev.type) {
      case "hello": return;
      case "message":
      case "note":
        arrived(ev.customer, ev.entry);
        return;
      case "typing":
        if (ev.customer === current) timeline.typing.set(ev.on === true);
        return;
      case "assigned":
        if (me && ev.agent === me.username) assignedToMe(ev.customer);
        return;  // its "claimed" event refreshes the rest
      case "rated":
        if (ev.customer === current) openConversation(current);
        return;
    }
    loadQueue();
    if (ev.type !== "queued") loadAgents();
    if (ev.type === "moved" && (ev.customer === current || ev.to === current)) {
      openConversation(ev.to);
    } else if (ev.customer === current) {
      openConversation(current);
    }
  }

  // A timeline entry of `customer`, live or just added here.
  function arrived(customer, entry) {
    if (customer === current) {
      arrivedWhileLoading.push(entry);
      if (entry.sender === "customer") timeline.typing.hide();
      if (view && !shown(entry)) {
        view.history.push(entry);
        $("history").appendChild(timeline.item(entry));
        scrollDown();
      }
    }
    var said = (entry.sender === "customer" || entry.sender === "agent") && !entry.event;
    if (said && customer !== current) {
      unread[customer] = true;
      markUnread();
    }
  }

  function shown(entry, history) {
    return (history || view.history).some(function (e) {
      return e.ts === entry.ts && e.sender === entry.sender && e.text === entry.text;
    });
  }

  function assignedToMe(customer) {
    loadQueue().then(function (lists) {
      var held = lists && lists.claimed.filter(function (c) { return c.customer === customer; })[0];
      workspace.notify("Assigned to you: " + ((held && held.name) || customer), customer);
    });
  }

  // The lists.

  function loadQueue() {
    return Promise.all([api("GET", "queue"), api("GET", "claimed")]).then(function (lists) {
      var queue = lists[0], claimed = lists[1];
      $("queue-count").textContent = queue.length;
      fillList($("queue"), queue.map(function (q) {
        var meta = [];
        if (q.channel) meta.push(timeline.channelName(q.channel));
        if (q.reason) meta.push(q.reason);
        var waited = typeof q.waited_seconds === "number"
          ? "Waiting " + timeline.duration(q.waited_seconds, true)
          : "waiting since " + timeline.when(q.since);
        return { customer: q.customer, name: q.name, meta: meta.join(" · "), waited: waited,
                 late: q.waiting_too_long === true };
      }));
      fillList($("mine"), claimed.map(function (c) {
        return { customer: c.customer, name: c.name,
                 meta: c.agent === me.username ? "yours" : "held by " + c.agent };
      }));
      return { queue: queue, claimed: claimed };
    }).catch(function () { return null; });
  }

  function fillList(list, items) {
    clear(list);
    items.forEach(function (item) {
      var li = el("li", item.customer === current ? "current" : "");
      li.dataset.customer = item.customer;
      li.classList.toggle("waiting-too-long", !!item.late);
      li.appendChild(el("span", item.name ? "who named" : "who", item.name || item.customer));
      if (item.name) li.appendChild(el("span", "id", item.customer));
      if (item.waited) li.appendChild(el("span", item.late ? "waited alert" : "waited", item.waited));
      if (item.meta) li.appendChild(el("span", "meta", item.meta));
      li.addEventListener("click", function () { openConversation(item.customer); });
      list.appendChild(li);
    });
    markUnread();
  }

  function markUnread() {
    document.querySelectorAll("li[data-customer]").forEach(function (li) {
      li.classList.toggle("unread", !!unread[li.dataset.customer]);
    });
  }

  function loadAgents() {
    api("GET", "agents").then(function (data) {
      var select = $("transfer-to");
      var chosen = select.value;
      clear(select);
      data.agents.forEach(function (a) {
        if (a.username === me.username) return;
        var about = [a.online ? "online" : "offline"];
        if (typeof a.open === "number") {
          about.push(a.open + (a.capacity ? " of " + a.capacity : "") + " open");
        }
        var option = el("option", "", a.name + " (" + about.join(", ") + ")");
        option.value = a.username;
        select.appendChild(option);
      });
      if (chosen) select.value = chosen;
    }).catch(function () {});
  }

  // One conversation.

  function openConversation(customer) {
    if (customer !== current) timeline.typing.hide();
    current = customer;
    delete unread[customer];
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
      markUnread();
    }).catch(function (err) {
      $("action-error").textContent = err.message;
    });
  }

  function render(data) {
    $("empty").hidden = true;
    $("conversation").hidden = false;
    var h = data.handoff;
    var status = "with the bot";
    if (h && h.status === "queued") status = "waiting for a person" + (h.reason ? " (" + h.reason + ")" : "");
    if (h && h.status === "claimed") status = "held by " + (h.agent_name || h.agent);
    if (data.last_channel) status += " · last wrote on " + timeline.channelName(data.last_channel);
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
    data.history.forEach(function (entry) { history.appendChild(timeline.item(entry)); });
    scrollDown();
    workspace.show(data);
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
  var workspace = window.segueWorkspace({
    api: api,
    current: function () { return current; },
    noted: arrived,
    open: openConversation,
    failed: function (message) { $("action-error").textContent = message; }
  });
  var report = window.segueReport({ api: api });

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
