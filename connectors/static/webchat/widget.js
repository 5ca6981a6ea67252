// Segue web chat widget. Embed with
//   <script src="https://HOST/webchat/widget.js" defer></script>
// Optional attributes: data-open="true" (start opened),
// data-identity="<host-signed token>" (the site's signed user id),
// data-locale="de-DE" (the visitor's language, where the site knows it
// better than the browser does).
// Every piece of text from the server is inserted with textContent, never as HTML.
(function () {
  "use strict";
  var script = document.currentScript;
  var base = new URL(".", script.src);
  var wsUrl = new URL("ws", base);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  var storageKey = "segue.session." + base.host;
  var identity = script.getAttribute("data-identity");
  // A hint for the bot's language; the server ignores a value it cannot read.
  var locale = script.getAttribute("data-locale") || navigator.language || null;
  // A "continue on the web" link, only on Segue's own chat page: a host page's
  // address is not ours to read links from. Sent with this page's own hello,
  // once; the server then asks the visitor before joining anything.
  var ownPage = location.origin === base.origin && location.pathname === base.pathname;
  var resume = ownPage ? new URLSearchParams(location.search).get("resume") : null;

  var css = [
    "#segue-chat{position:fixed;right:1rem;bottom:1rem;width:22rem;max-width:calc(100vw - 2rem);",
    "font:14px/1.4 system-ui,sans-serif;color:#1d2330;z-index:2147483000}",
    "#segue-chat .sg-panel{display:none;flex-direction:column;height:30rem;max-height:80vh;background:#fff;",
    "border-radius:.75rem;box-shadow:0 8px 30px rgba(0,0,0,.2);overflow:hidden}",
    "#segue-chat.sg-open .sg-panel{display:flex}#segue-chat.sg-open .sg-toggle{display:none}",
    "#segue-chat .sg-head{background:#2952cc;color:#fff;padding:.6rem .8rem;display:flex;justify-content:space-between}",
    "#segue-chat .sg-head button{background:none;border:0;color:#fff;font-size:1.1rem;cursor:pointer}",
    "#segue-chat .sg-log{flex:1;overflow-y:auto;padding:.6rem;display:flex;flex-direction:column;gap:.4rem}",
    "#segue-chat .sg-msg{max-width:85%;padding:.4rem .6rem;border-radius:.6rem;white-space:pre-wrap;word-wrap:break-word}",
    "#segue-chat .sg-customer{align-self:flex-end;background:#2952cc;color:#fff}",
    "#segue-chat .sg-bot,#segue-chat .sg-agent{align-self:flex-start;background:#eef0f4}",
    "#segue-chat .sg-agent{background:#fff4d6}",
    "#segue-chat .sg-meta{font-size:11px;opacity:.7;display:block}",
    "#segue-chat .sg-pending{opacity:.6}",
    "#segue-chat .sg-buttons{display:flex;flex-wrap:wrap;gap:.3rem;margin-top:.3rem}",
    "#segue-chat .sg-buttons button{border:1px solid #2952cc;background:#fff;color:#2952cc;border-radius:1rem;padding:.2rem .6rem;cursor:pointer}",
    "#segue-chat .sg-status{font-size:12px;padding:0 .6rem;min-height:1.2em;color:#6b7280}",
    "#segue-chat form{display:flex;border-top:1px solid #e5e7eb}",
    "#segue-chat input{flex:1;border:0;padding:.7rem;font:inherit;outline:none}",
    "#segue-chat form button{border:0;background:#2952cc;color:#fff;padding:0 1rem;cursor:pointer}",
    "#segue-chat .sg-toggle{float:right;border:0;border-radius:2rem;background:#2952cc;color:#fff;padding:.8rem 1.2rem;cursor:pointer;font:inherit}"
  ].join("");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var style = el("style"); style.textContent = css; document.head.appendChild(style);
  var root = el("div"); root.id = "segue-chat";
  var toggle = el("button", "sg-toggle", "Chat with us");
  var panel = el("div", "sg-panel");
  var head = el("div", "sg-head");
  head.appendChild(el("span", "", "Support"));
  var close = el("button", "", "\u00d7"); close.setAttribute("aria-label", "Close chat");
  head.appendChild(close);
  var log = el("div", "sg-log"); log.setAttribute("role", "log"); log.setAttribute("aria-live", "polite");
  var status = el("div", "sg-status");
  var form = el("form");
  var input = el("input"); input.placeholder = "Type a message"; input.setAttribute("aria-label", "Message");
  input.maxLength = 4096;
  var send = el("button", "", "Send"); send.type = "submit";
  form.appendChild(input); form.appendChild(send);
  panel.appendChild(head); panel.appendChild(log); panel.appendChild(status); panel.appendChild(form);
  root.appendChild(toggle); root.appendChild(panel);
  document.body.appendChild(root);
  if (script.getAttribute("data-open") === "true") root.classList.add("sg-open");
  toggle.addEventListener("click", function () { root.classList.add("sg-open"); input.focus(); });
  close.addEventListener("click", function () { root.classList.remove("sg-open"); });

  var ws = null;
  var ready = false;
  var retryDelay = 500;
  var resendTimer = null;
  var limited = false;  // a "too fast" notice shown until all is acknowledged
  var unacked = {};   // client id -> frame, re-sent after a reconnect
  var order = [];

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function addMessage(sender, text, opts) {
    opts = opts || {};
    var bubble = el("div", "sg-msg sg-" + sender);
    if (opts.meta) bubble.appendChild(el("span", "sg-meta", opts.meta));
    bubble.appendChild(document.createTextNode(text));
    (opts.buttons || []).length && bubble.appendChild(renderButtons(opts.buttons));
    (opts.links || []).forEach(function (link) {
      var a = el("a", "", link.title);
      var target = safeUrl(link.url);
      if (target) a.href = target;
      a.target = "_blank"; a.rel = "noopener noreferrer";
      bubble.appendChild(el("br")); bubble.appendChild(a);
    });
    (opts.images || []).forEach(function (image) {
      var source = safeUrl(image.url);
      if (!source) return;
      var img = el("img"); img.src = source; img.alt = image.alt || ""; img.style.maxWidth = "100%";
      bubble.appendChild(img);
    });
    log.appendChild(bubble);
    log.scrollTop = log.scrollHeight;
    return bubble;
  }

  // Only http(s) links, relative ones resolved against this server.
  function safeUrl(url) {
    try {
      var parsed = new URL(url, base);
      return /^https?:$/.test(parsed.protocol) ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function renderButtons(buttons) {
    var box = el("div", "sg-buttons");
    buttons.forEach(function (b) {
      var button = el("button", "", b.title);
      button.type = "button";
      button.addEventListener("click", function () { sendMessage(b.title, b.payload); });
      box.appendChild(button);
    });
    return box;
  }

  function channelLabel(channel) {
    return { web: "web", telegram: "Telegram", slack: "Slack" }[channel] || channel;
  }

  function sendMessage(text, payload) {
    var frame = { type: "message", text: text, id: newId() };
    if (payload) frame.payload = payload;
    unacked[frame.id] = { frame: frame, bubble: addMessage("customer", text) };
    unacked[frame.id].bubble.classList.add("sg-pending");
    order.push(frame.id);
    if (ready) ws.send(JSON.stringify(frame));
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim()) return;
    input.value = "";
    sendMessage(text);
  });

  function onFrame(frame) {
    switch (frame.type) {
      case "session":
        try { localStorage.setItem(storageKey, frame.session); } catch (e) { /* private mode */ }
        if (resume) {
          resume = null;
          var url = new URL(location.href);
          url.searchParams.delete("resume");
          history.replaceState(null, "", url.href);
        }
        break;
      case "history":
        // Replace what is shown by the server's record, then re-add what is unacknowledged.
        log.textContent = "";
        frame.messages.forEach(function (m) {
          var meta = m.channel !== "web" ? "via " + channelLabel(m.channel) : "";
          if (m.sender === "agent" && m.agent_name) meta = m.agent_name + (meta ? " \u00b7 " + meta : "");
          addMessage(m.sender, m.text, { meta: meta });
        });
        ready = true;
        order.forEach(function (id) {
          var item = unacked[id];
          if (!item) return;
          item.bubble = addMessage("customer", item.frame.text);
          item.bubble.classList.add("sg-pending");
        });
        resendUnacked();
        status.textContent = "";
        break;
      case "ack":
        if (unacked[frame.id]) unacked[frame.id].bubble.classList.remove("sg-pending");
        delete unacked[frame.id];
        order = order.filter(function (id) { return id !== frame.id; });
        if (limited && !order.length) { limited = false; status.textContent = ""; }
        break;
      case "message":
        addMessage(frame.sender, frame.text, {
          meta: frame.sender === "agent" ? (frame.agent_name || "Agent") : "",
          buttons: frame.buttons, links: frame.links, images: frame.images
        });
        break;
      case "typing":
        status.textContent = frame.on ? "typing\u2026" : "";
        break;
      case "error":
        if (frame.code === "rate_limited") {
          status.textContent = frame.message;
          limited = true;
          var pause = Math.max(1, frame.retry_after || 5) * 1000;
          if (ready) {
            // Whatever is not acknowledged is sent again after the pause
            // (an id the server already has is acknowledged, not redone).
            if (!resendTimer) {
              resendTimer = setTimeout(function () { resendTimer = null; resendUnacked(); }, pause);
            }
          } else {
            retryDelay = Math.max(retryDelay, pause);
            ws.close();
          }
        } else if (frame.code === "session_invalid" || frame.code === "session_expired") {
          try { localStorage.removeItem(storageKey); } catch (e) { /* private mode */ }
          ws.send(JSON.stringify(hello(null)));
        } else if (/^(resume|identity)_/.test(frame.code) && !ready) {
          // An unusable link or sign-in token: carry on as this browser's own chat.
          status.textContent = frame.message;
          if (frame.code.indexOf("resume_") === 0) resume = null; else identity = null;
          var stored = null;
          try { stored = localStorage.getItem(storageKey); } catch (e) { /* private mode */ }
          ws.send(JSON.stringify(hello(stored)));
        } else {
          status.textContent = frame.message;
        }
        break;
    }
  }

  function resendUnacked() {
    if (!ready) return;  // the next history frame sends them
    order.forEach(function (id) {
      if (unacked[id]) ws.send(JSON.stringify(unacked[id].frame));
    });
  }

  function hello(session) {
    var frame = { type: "hello" };
    if (session) frame.session = session;
    if (identity) frame.identity = identity;
    if (resume) frame.resume = resume;
    if (locale) frame.locale = locale;
    return frame;
  }

  function connect() {
    var session = null;
    try { session = localStorage.getItem(storageKey); } catch (e) { /* private mode */ }
    ws = new WebSocket(wsUrl.href);
    ws.onopen = function () { retryDelay = 500; ws.send(JSON.stringify(hello(session))); };
    ws.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      onFrame(frame);
    };
    ws.onclose = function () {
      ready = false;
      status.textContent = "reconnecting\u2026";
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 15000);
    };
  }

  connect();
})();
