// Segue web chat widget. Embed with
//   <script src="https://HOST/webchat/widget.js" defer></script>
// Optional attributes on that tag: data-title (header and launcher text),
// data-color (#rgb or #rrggbb accent), data-position ("right" or "left"),
// data-locale (BCP 47, where the site knows the visitor's language better
// than the browser), data-open="true" (start opened), data-identity (the
// site's host-signed user token), data-sound="on" (a short beep on new
// messages while the visitor looks elsewhere).
// JS API: window.Segue.open(), .close(), .identify(token), .reset(),
// .on("message"|"open"|"close", fn); "segue:ready" fires on document once
// window.Segue exists.
// Every piece of text from the server is inserted with textContent or
// createTextNode, never as HTML.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.Segue) return;
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);

  function start() {
  function attr(name) { return script.getAttribute("data-" + name); }
  var base = new URL(".", script.src);
  var wsUrl = new URL("ws", base);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  var storageKey = "segue.session." + base.host;
  var identity = attr("identity");
  // A hint for the bot's language; the server ignores a value it cannot read.
  // "de_DE" is read as "de-DE", as the server reads language tags.
  var locale = (attr("locale") || navigator.language || "").replace(/_/g, "-") || null;
  // A "continue on the web" link, only on Segue's own chat page: a host page's
  // address is not ours to read links from. Sent with this page's own hello,
  // once; the server then asks the visitor before joining anything.
  var ownPage = location.origin === base.origin && location.pathname === base.pathname;
  var resume = ownPage ? new URLSearchParams(location.search).get("resume") : null;
  var sound = attr("sound") === "on";

  var STRINGS = {
    en: { launcher: "Chat with us", title: "Support", placeholder: "Type a message\u2026",
      message: "Message", send: "Send", close: "Close chat",
      typing: "typing\u2026", agentTyping: "{name} is typing\u2026",
      reconnecting: "Reconnecting\u2026", newMessage: "New message", newMessages: "New messages",
      alsoOn: "Also on {list}", agent: "Agent", bot: "Bot", unread: "{n} unread", you: "You:",
      log: "Conversation", sending: "Sending", notSent: "Not sent",
      retrying: "Not sent yet \u2014 trying again\u2026",
      slowDown: "Many messages at once \u2014 sending them in a moment\u2026" },
    de: { launcher: "Schreiben Sie uns", title: "Kundenservice", placeholder: "Nachricht schreiben\u2026",
      message: "Nachricht", send: "Senden", close: "Chat schlie\u00dfen",
      typing: "schreibt\u2026", agentTyping: "{name} schreibt\u2026",
      reconnecting: "Verbindung wird wiederhergestellt\u2026", newMessage: "Neue Nachricht",
      newMessages: "Neue Nachrichten", alsoOn: "Auch auf {list}", agent: "Mitarbeiter", bot: "Bot",
      unread: "{n} ungelesen", you: "Sie:", log: "Gespr\u00e4ch", sending: "Wird gesendet",
      notSent: "Nicht gesendet", retrying: "Noch nicht gesendet \u2013 neuer Versuch\u2026",
      slowDown: "Viele Nachrichten auf einmal \u2013 sie werden gleich gesendet\u2026" },
    es: { launcher: "Escr\u00edbenos", title: "Atenci\u00f3n al cliente", placeholder: "Escribe un mensaje\u2026",
      message: "Mensaje", send: "Enviar", close: "Cerrar chat",
      typing: "escribiendo\u2026", agentTyping: "{name} est\u00e1 escribiendo\u2026",
      reconnecting: "Reconectando\u2026", newMessage: "Nuevo mensaje", newMessages: "Nuevos mensajes",
      alsoOn: "Tambi\u00e9n en {list}", agent: "Agente", bot: "Bot", unread: "{n} sin leer",
      you: "T\u00fa:", log: "Conversaci\u00f3n", sending: "Enviando", notSent: "No enviado",
      retrying: "A\u00fan no enviado: reintentando\u2026",
      slowDown: "Muchos mensajes a la vez: se enviar\u00e1n en un momento\u2026" }
  };
  var lang = String(locale || "").split("-")[0].toLowerCase();
  if (!STRINGS.hasOwnProperty(lang)) lang = "en";
  var S = STRINGS[lang];
  function fmt(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_, key) { return values[key]; });
  }
  var title = attr("title") || S.title;

  // The accent colour, and text colours on it and on white that keep WCAG AA.
  function luminance(hex) {
    var h = hex.length === 4 ? hex.replace(/[0-9a-f]/gi, "$&$&") : hex;
    var rgb = [1, 3, 5].map(function (i) {
      var v = parseInt(h.substr(i, 2), 16) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
  }
  function contrast(a, b) {
    var x = luminance(a), y = luminance(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  }
  var accent = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(attr("color") || "") ? attr("color") : "#2952cc";
  var onAccent = contrast(accent, "#fff") >= 4.5 ? "#fff" : contrast(accent, "#111") >= 4.5 ? "#111" : "#000";
  var ink = contrast(accent, "#fff") >= 4.5 ? accent : "#1d2330";

  var P = "#segue-chat ";
  var css = [
    "#segue-chat{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2330;",
    "text-align:start;white-space:normal;letter-spacing:normal;word-spacing:normal;text-indent:0;text-transform:none}",
    // A host page's own rules (span{padding:20px}, button{width:200px}) must
    // not reach in: every box starts from nothing here, and the rules below
    // (more specific) set what each part needs.
    P + "*{box-sizing:border-box;margin:0;padding:0;border:0 solid;width:auto;height:auto;min-width:auto;",
    "min-height:auto;max-width:none;max-height:none;float:none;background:none;box-shadow:none;",
    "color:inherit;font:inherit;letter-spacing:inherit;word-spacing:inherit;text-align:inherit;",
    "text-indent:0;text-transform:inherit;text-decoration:none;text-shadow:none;white-space:inherit;",
    "vertical-align:baseline;opacity:1}",
    P + "span," + P + "a{display:inline}",
    P + "[hidden]{display:none!important}",
    P + "button{font:inherit;cursor:pointer;-webkit-tap-highlight-color:transparent}",
    P + ".sg-launcher{position:fixed;z-index:2147483000;bottom:calc(20px + env(safe-area-inset-bottom,0px));",
    "right:calc(20px + env(safe-area-inset-right,0px));display:flex;align-items:center;gap:8px;",
    "min-height:52px;max-width:calc(100vw - 40px);padding:0 20px 0 16px;border:0;border-radius:26px;",
    "background:var(--sg-accent);color:var(--sg-on);font-weight:600;box-shadow:0 6px 20px rgba(0,0,0,.22)}",
    P + ".sg-launcher svg{width:24px;height:24px;flex:none}",
    P + ".sg-label{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
    P + ".sg-unread{position:absolute;top:-7px;right:-7px;min-width:24px;height:24px;padding:0 6px;",
    "border:2px solid #fff;border-radius:12px;background:#c81e1e;color:#fff;font-size:12px;",
    "font-weight:700;line-height:20px;text-align:center}",
    P + ".sg-panel{position:fixed;z-index:2147483001;bottom:calc(20px + env(safe-area-inset-bottom,0px));",
    "right:calc(20px + env(safe-area-inset-right,0px));width:380px;max-width:calc(100vw - 40px);",
    "height:640px;max-height:calc(100vh - 40px);display:none;flex-direction:column;background:#fff;",
    "border-radius:16px;box-shadow:0 12px 40px rgba(0,0,0,.25);overflow:hidden}",
    "#segue-chat.sg-left .sg-launcher,#segue-chat.sg-left .sg-panel{right:auto;",
    "left:calc(20px + env(safe-area-inset-left,0px))}",
    "#segue-chat.sg-open .sg-launcher{display:none}",
    "#segue-chat.sg-open .sg-panel{display:flex;animation:sg-in .18s ease-out}",
    "@keyframes sg-in{from{opacity:0;transform:translateY(12px)}}",
    P + ".sg-head{flex:none;display:flex;align-items:center;gap:12px;padding:14px 10px 14px 18px;",
    "background:var(--sg-accent);color:var(--sg-on)}",
    P + ".sg-heading{flex:1;min-width:0}",
    P + ".sg-title{display:block;font-size:17px;font-weight:700;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
    P + ".sg-channels{display:block;font-size:13px}",
    P + ".sg-close{flex:none;width:40px;height:40px;display:grid;place-items:center;border:0;",
    "border-radius:50%;background:transparent;color:inherit}",
    P + ".sg-close:hover{background:rgba(127,127,127,.3)}",
    P + ".sg-close svg{width:22px;height:22px}",
    P + ".sg-log{flex:1;min-height:0;overflow-y:auto;overscroll-behavior:contain;display:flex;",
    "flex-direction:column;gap:6px;padding:16px 14px 8px;background:#f7f8fa}",
    P + ".sg-row{display:flex;align-items:flex-start;gap:8px;max-width:88%}",
    P + ".sg-row-customer{align-self:flex-end;flex-direction:column;align-items:flex-end;gap:2px}",
    P + ".sg-cont{margin-top:-3px}" + P + ".sg-cont .sg-avatar{visibility:hidden}" + P + ".sg-cont .sg-by{display:none}",
    P + ".sg-avatar{flex:none;width:28px;height:28px;border-radius:50%;display:grid;place-items:center;",
    "font-size:11px;font-weight:700;background:var(--sg-accent);color:var(--sg-on)}",
    P + ".sg-avatar svg{width:18px;height:18px}",
    P + ".sg-row-agent .sg-avatar," + P + ".sg-event .sg-avatar{background:#8a3c0b;color:#fff}",
    P + ".sg-msg{min-width:0;padding:8px 12px;border-radius:16px;overflow-wrap:anywhere}",
    P + ".sg-text{white-space:pre-wrap}",
    P + ".sg-customer{background:var(--sg-accent);color:var(--sg-on);border-top-right-radius:4px}",
    P + ".sg-bot{background:#e9ecf1;border-top-left-radius:4px}",
    P + ".sg-agent{background:#fff4da;border:1px solid #eccf8a;border-top-left-radius:4px}",
    P + ".sg-by{display:flex;flex-wrap:wrap;align-items:center;gap:6px;margin-bottom:2px;",
    "font-size:12px;font-weight:600;color:#4b5563}",
    P + ".sg-agent .sg-name{color:#7a3306}" + P + ".sg-customer .sg-by{color:inherit}",
    P + ".sg-channel{flex:none;padding:0 6px;border:1px solid currentColor;border-radius:8px;font-size:11px;font-weight:500}",
    P + "a{text-decoration:underline}",
    P + ".sg-customer.sg-failed{background:#fff;color:#1d2330;border:1.5px dashed #b3261e}",
    P + ".sg-state{font-size:12px;font-weight:600;color:#b3261e}",
    P + ".sg-pending .sg-text::after{content:'';display:inline-block;width:7px;height:7px;margin-left:8px;",
    "border:2px solid currentColor;border-right-color:transparent;border-radius:50%;animation:sg-spin 1s linear infinite}",
    "@keyframes sg-spin{to{transform:rotate(360deg)}}",
    P + ".sg-buttons," + P + ".sg-links{display:flex;flex-wrap:wrap;gap:6px;margin-top:8px}",
    P + ".sg-buttons button," + P + "a.sg-link-button{display:inline-block;min-height:36px;padding:6px 14px;",
    "border:1.5px solid var(--sg-ink);border-radius:18px;background:#fff;color:var(--sg-ink);",
    "font-size:14px;font-weight:600;line-height:1.4;text-align:center;text-decoration:none}",
    P + ".sg-buttons button:hover," + P + "a.sg-link-button:hover{background:var(--sg-accent);",
    "border-color:var(--sg-accent);color:var(--sg-on)}",
    P + ".sg-msg img{display:block;max-width:100%;height:auto;margin-top:8px;border-radius:8px}",
    P + ".sg-event{align-self:center;display:flex;align-items:center;gap:6px;max-width:92%;margin:4px 0;",
    "font-size:12.5px;color:#4b5563;text-align:center}",
    P + ".sg-event .sg-avatar{width:22px;height:22px;font-size:10px}",
    P + ".sg-status{flex:none;min-height:24px;padding:2px 16px;font-size:12.5px;color:#4b5563;background:#f7f8fa}",
    P + ".sg-form{flex:none;display:flex;align-items:center;gap:8px;padding:10px 10px 10px 14px;",
    "border-top:1px solid #e3e6eb;background:#fff}",
    P + ".sg-input{flex:1;min-width:0;height:44px;padding:0 16px;border:1px solid #8c94a1;border-radius:22px;",
    "background:#fff;color:#1d2330;font-size:16px}",
    P + ".sg-input::placeholder{color:#5f6774;opacity:1}",
    P + ".sg-send{flex:none;width:44px;height:44px;display:grid;place-items:center;border:0;border-radius:50%;",
    "background:var(--sg-accent);color:var(--sg-on)}",
    P + ".sg-send svg{width:20px;height:20px}",
    P + ":focus{outline:none}",
    P + ":focus-visible{outline:3px solid var(--sg-ink);outline-offset:2px}",
    P + ".sg-head :focus-visible{outline-color:var(--sg-on)}",
    P + ".sg-launcher:focus-visible{outline-offset:3px;box-shadow:0 0 0 3px #fff}",
    P + ".sg-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    // Phones: the open panel is the whole screen; its height follows the
    // visual viewport (set from script) so the keyboard never hides the input.
    "@media (max-width:599px){" + P + ".sg-panel,#segue-chat.sg-left .sg-panel{inset:0;width:auto;",
    "max-width:none;height:auto;max-height:none;border-radius:0;padding:0 env(safe-area-inset-right,0px) ",
    "0 env(safe-area-inset-left,0px)}",
    P + ".sg-head{padding-top:calc(10px + env(safe-area-inset-top,0px));padding-bottom:10px}",
    P + ".sg-form{padding-bottom:calc(10px + env(safe-area-inset-bottom,0px))}}",
    "@media (prefers-reduced-motion:reduce){" + P + "*{animation:none!important}}"
  ].join("");

  var SVG = "http://www.w3.org/2000/svg";
  var ICONS = {
    chat: "M6 3h12a3 3 0 0 1 3 3v9a3 3 0 0 1-3 3H10l-5 4v-4.2A3 3 0 0 1 3 15V6a3 3 0 0 1 3-3z",
    close: "M19 6.41 17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12z",
    send: "M3.4 20.4 21 12 3.4 3.6 3.39 10.2 15 12 3.39 13.8z",
    bot: "M12 2a1.6 1.6 0 0 1 .8 3v1.5H17a3 3 0 0 1 3 3V17a3 3 0 0 1-3 3H7a3 3 0 0 1-3-3V9.5a3 3 0 0 1 3-3h4.2V5A1.6 1.6 0 0 1 12 2zM9 11.2a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm6 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"
  };
  function icon(name) {
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(SVG, "path");
    path.setAttribute("d", ICONS[name]);
    path.setAttribute("fill", "currentColor");
    path.setAttribute("fill-rule", "evenodd");
    svg.appendChild(path);
    return svg;
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) parent.appendChild(arguments[i]);
    return parent;
  }
  function list(value) { return Array.isArray(value) ? value : []; }
  function str(value) { return value === undefined || value === null ? "" : String(value); }

  var style = el("style"); style.textContent = css; document.head.appendChild(style);
  var root = el("div", str(attr("position")).trim().toLowerCase() === "left" ? "sg-left" : "");
  root.id = "segue-chat"; root.lang = lang;
  root.style.setProperty("--sg-accent", accent);
  root.style.setProperty("--sg-on", onAccent);
  root.style.setProperty("--sg-ink", ink);
  var launcherLabel = attr("title") || S.launcher;
  var launcher = add(el("button", "sg-launcher"), icon("chat"), el("span", "sg-label", launcherLabel));
  launcher.type = "button";
  var badge = el("span", "sg-unread"); badge.hidden = true; badge.setAttribute("aria-hidden", "true");
  launcher.appendChild(badge);
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "segue-chat-panel");
  var panel = el("div", "sg-panel"); panel.id = "segue-chat-panel";
  panel.setAttribute("role", "dialog"); panel.setAttribute("aria-label", title);
  var channelsLine = el("span", "sg-channels"); channelsLine.hidden = true;
  var closer = add(el("button", "sg-close"), icon("close"));
  closer.type = "button"; closer.setAttribute("aria-label", S.close); closer.title = S.close;
  var head = add(el("div", "sg-head"), add(el("div", "sg-heading"), el("span", "sg-title", title), channelsLine), closer);
  var log = el("div", "sg-log");
  log.setAttribute("role", "log"); log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-label", S.log); log.tabIndex = 0;
  var status = el("div", "sg-status");
  status.setAttribute("role", "status"); status.setAttribute("aria-live", "polite");
  var input = el("input", "sg-input");
  input.placeholder = S.placeholder; input.setAttribute("aria-label", S.message);
  input.maxLength = 4096; input.autocomplete = "off"; input.setAttribute("enterkeyhint", "send");
  var sendButton = add(el("button", "sg-send"), icon("send"));
  sendButton.type = "submit"; sendButton.setAttribute("aria-label", S.send); sendButton.title = S.send;
  var form = add(el("form", "sg-form"), input, sendButton);
  add(root, launcher, add(panel, head, log, status, form));
  document.body.appendChild(root);

  // Open, close and unread.
  var isOpen = false, unread = 0;
  var listeners = { message: [], open: [], close: [] };
  function emit(name, data) {
    listeners[name].slice().forEach(function (fn) {
      try { fn(data); } catch (e) { if (window.console) console.error(e); }
    });
  }
  function showUnread() {
    badge.textContent = unread;
    badge.hidden = !unread;
    if (unread) launcher.setAttribute("aria-label", launcherLabel + ", " + fmt(S.unread, { n: unread }));
    else launcher.removeAttribute("aria-label");
  }
  function setOpen(open, focus) {
    if (open === isOpen) return;
    isOpen = open;
    root.classList.toggle("sg-open", open);
    launcher.setAttribute("aria-expanded", String(open));
    if (open) {
      unread = 0; showUnread(); fit(); scrollDown();
      if (focus) input.focus();
    } else {
      fit();
      if (panel.contains(document.activeElement)) launcher.focus();
    }
    emit(open ? "open" : "close");
  }
  launcher.addEventListener("click", function () { unlockAudio(); setOpen(true, true); });
  closer.addEventListener("click", function () { setOpen(false); });
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape" || event.key === "Esc") { event.stopPropagation(); setOpen(false); }
    // Covering the page, the panel keeps the focus: Tab goes round inside it.
    if (event.key === "Tab" && modal()) {
      var from = event.shiftKey ? closer : sendButton;
      if (document.activeElement === from || !panel.contains(document.activeElement)) {
        event.preventDefault();
        (event.shiftKey ? sendButton : closer).focus();
      }
    }
  });
  document.addEventListener("focusin", function (event) {
    if (modal() && !root.contains(event.target)) input.focus();
  });
  panel.addEventListener("pointerdown", unlockAudio);

  // On a phone the panel covers the visual viewport: what the visitor sees,
  // which shrinks when the on-screen keyboard opens. On a page wider than the
  // screen the layout viewport, which fixed positions go by, is wider than
  // what is seen: the launcher is then placed in the visible part too.
  var narrow = window.matchMedia("(max-width: 599px)");
  var viewport = window.visualViewport;
  function place(node, box) {
    ["left", "top", "width", "height"].forEach(function (key, i) {
      node.style[key] = box && box[i] !== undefined ? box[i] + "px" : "";
    });
    node.style.right = node.style.bottom = box ? "auto" : "";
  }
  // On a phone the open panel hides the page: a modal dialog then.
  function modal() { return isOpen && narrow.matches; }
  function fit() {
    if (modal()) panel.setAttribute("aria-modal", "true"); else panel.removeAttribute("aria-modal");
    var v = viewport;
    place(panel, isOpen && v && narrow.matches ? [v.offsetLeft, v.offsetTop, v.width, v.height] : null);
    var wide = v && !isOpen && window.innerWidth > v.width + 1;
    place(launcher, wide ? [v.offsetLeft + (root.className.indexOf("sg-left") >= 0 ? 20
      : v.width - launcher.offsetWidth - 20), v.offsetTop + v.height - launcher.offsetHeight - 20] : null);
  }
  window.addEventListener("resize", fit);
  window.addEventListener("load", fit);
  if (viewport) { viewport.addEventListener("resize", fit); viewport.addEventListener("scroll", fit); }
  if (narrow.addEventListener) narrow.addEventListener("change", fit);

  // While the tab is hidden, new messages flash the title and may beep.
  var pageTitle = null, flashTitle = null, flashTimer = null, unseen = 0, audio = null;
  // A title the page set meanwhile (neither ours nor the one we keep) is the
  // one to give back.
  function hostTitle() {
    if (document.title !== flashTitle && document.title !== pageTitle) pageTitle = document.title;
  }
  function flash() {
    unseen++;
    if (flashTimer) return;
    pageTitle = document.title;
    var shown = false;
    var tick = function () {
      hostTitle();
      shown = !shown;
      document.title = shown ? "(" + unseen + ") " + (unseen > 1 ? S.newMessages : S.newMessage) : pageTitle;
      flashTitle = document.title;  // as the browser keeps it (whitespace collapsed)
    };
    tick();
    flashTimer = setInterval(tick, 1000);
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !flashTimer) return;
    hostTitle();
    clearInterval(flashTimer); flashTimer = null; unseen = 0;
    document.title = pageTitle;
  });
  // Browsers start audio only after a gesture: the context is made on one.
  function unlockAudio() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!sound || !Context) return;
    try {
      audio = audio || new Context();
      if (audio.state === "suspended") audio.resume();
    } catch (e) { /* no audio here */ }
  }
  function beep() {
    unlockAudio();
    if (!audio) return;
    try {
      var now = audio.currentTime, osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.12, now);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.25);
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(now); osc.stop(now + 0.25);
    } catch (e) { /* no audio here */ }
  }
  function notify() {
    if (!isOpen) { unread++; showUnread(); }
    if (document.hidden) flash();
    if (sound && (document.hidden || !isOpen)) beep();
  }

  // The status line: a notice from the server, else the connection, else typing.
  var notice = "", offline = false, botTyping = "", agentTyping = "", agentTimer = null;
  function showStatus() {
    status.textContent = notice || (offline ? S.reconnecting : "") || agentTyping || botTyping;
  }
  function stopAgentTyping() { clearTimeout(agentTimer); agentTyping = ""; }

  function channelLabel(channel) {
    return { web: "Web", telegram: "Telegram", slack: "Slack" }[channel] || str(channel);
  }
  function showChannels(channels) {
    var others = list(channels).filter(function (c) { return c !== "web"; }).map(channelLabel);
    channelsLine.textContent = others.length ? fmt(S.alsoOn, { list: others.join(", ") }) : "";
    channelsLine.hidden = !others.length;
  }

  // Messages.
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  // Only http(s) links, relative ones resolved against this server.
  function safeUrl(url) {
    try {
      var parsed = new URL(str(url), base);
      return /^https?:$/.test(parsed.protocol) ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }
  function anchor(cls, text, href) {
    var a = el("a", cls, text);
    a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer";
    return a;
  }
  // Text with its http(s) addresses as links; everything else stays text.
  function richText(text) {
    var box = el("div", "sg-text"), pattern = /https?:\/\/[^\s<>"]+/gi, last = 0, match;
    while ((match = pattern.exec(text))) {
      var url = match[0];
      // Sentence punctuation after an address is not part of it; a ")" is
      // when the address opened one, as Wikipedia's do.
      while (/[.,;:!?'"\])}]$/.test(url) &&
             !(/\)$/.test(url) && url.split("(").length > url.split(")").length - 1)) {
        url = url.slice(0, -1);
      }
      var href = safeUrl(url);
      if (!/^https?:\/\/./i.test(url) || !href) continue;
      box.appendChild(document.createTextNode(text.slice(last, match.index)));
      box.appendChild(anchor("", url, href));
      last = pattern.lastIndex = match.index + url.length;
    }
    box.appendChild(document.createTextNode(text.slice(last)));
    box.dir = "auto";  // a right-to-left message reads right to left
    return box;
  }
  function initials(name) {
    return name.trim().split(/\s+/).slice(0, 2).map(function (word) {
      return Array.from(word)[0] || "";
    }).join("").toUpperCase();
  }
  function avatar(sender, name) {
    var node = el("span", "sg-avatar");
    node.setAttribute("aria-hidden", "true");
    if (sender === "agent") node.textContent = initials(name); else node.appendChild(icon("bot"));
    return node;
  }
  function extras(box, m) {
    var buttons = list(m.buttons);
    if (buttons.length) {
      var row = el("div", "sg-buttons");
      buttons.forEach(function (b) {
        var button = el("button", "", str(b.title));
        button.type = "button";
        button.addEventListener("click", function () { sendMessage(str(b.title), b.payload); });
        row.appendChild(button);
      });
      box.appendChild(row);
    }
    var links = el("div", "sg-links");
    list(m.links).forEach(function (link) {
      var href = safeUrl(link.url);
      if (href) links.appendChild(anchor("sg-link-button", str(link.title), href));
    });
    if (links.firstChild) box.appendChild(links);
    list(m.images).forEach(function (image) {
      var source = safeUrl(image.url);
      if (!source) return;
      var img = el("img"); img.src = source; img.alt = str(image.alt);
      img.addEventListener("load", function () { if (nearBottom(img.offsetHeight)) scrollDown(); });
      box.appendChild(img);
    });
  }
  function nearBottom(extra) {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 60 + (extra || 0);
  }
  function scrollDown() { log.scrollTop = log.scrollHeight; }

  // One entry of the timeline: a bubble, or a line for an event such as a
  // person joining. Returns the bubble or line.
  function addMessage(m) {
    var sender = m.sender === "customer" || m.sender === "agent" ? m.sender : "bot";
    var stick = sender === "customer" || nearBottom();
    var channel = m.channel && m.channel !== "web" ? channelLabel(m.channel) : "";
    var node;
    if (m.event) {
      node = el("div", "sg-event");
      if (m.event === "agent_joined" && m.agent_name) node.appendChild(avatar("agent", str(m.agent_name)));
      if (channel) node.appendChild(el("span", "sg-channel", channel));
      node.appendChild(richText(str(m.text)));
      extras(node, m);
      log.appendChild(node);
    } else {
      var name = sender === "agent" ? str(m.agent_name) || S.agent : sender === "bot" ? S.bot : "";
      var row = el("div", "sg-row sg-row-" + sender);
      var prev = log.lastElementChild;
      // A run of messages from one sender shows its name and avatar once.
      if (prev && prev.getAttribute("data-by") === sender + ":" + name + ":" + channel) row.className += " sg-cont";
      row.setAttribute("data-by", sender + ":" + name + ":" + channel);
      node = el("div", "sg-msg sg-" + sender);
      if (name || channel) {
        var by = el("div", "sg-by");
        if (name) by.appendChild(el("span", "sg-name", name));
        if (channel) by.appendChild(el("span", "sg-channel", channel));
        node.appendChild(by);
      }
      node.appendChild(richText(str(m.text)));
      extras(node, m);
      // Who said it, for a screen reader: the bot's and people's names are shown.
      row.appendChild(sender === "customer" ? el("span", "sg-sr", S.you) : avatar(sender, name));
      log.appendChild(add(row, node));
    }
    if (stick) scrollDown();
    return node;
  }

  // Sending, acks and the connection.
  var ws = null, ready = false, retryDelay = 500, retryTimer = null, resendTimer = null;
  var storeDelay = 2000;  // the pause before sending again what the store refused
  var retrying = false;  // our "not sent yet" notice, shown until all is acknowledged
  var unacked = {};   // client id -> frame, re-sent after a reconnect
  var order = [];
  var failed = [];   // texts the server refused for good, still shown after a reconnect
  // The server's "send it again later" refusals: each shows our own words.
  var RETRY = { rate_limited: "slowDown", store_unavailable: "retrying", busy: "retrying",
    store_error: "retrying" };
  // Refusals of the message itself: sending it again would not help.
  var REFUSED = { empty_text: 1, text_too_long: 1, bad_frame: 1 };
  // Blank as the server's Python str.strip() sees it, which is not JS's trim().
  var BLANK = /^[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

  // A customer bubble's state: "pending", "failed" or none; said to screen
  // readers as well as shown.
  function setState(bubble, state) {
    var row = bubble.parentNode, old = row.querySelector(".sg-state");
    if (old) row.removeChild(old);
    bubble.classList.toggle("sg-pending", state === "pending");
    bubble.classList.toggle("sg-failed", state === "failed");
    if (state === "pending") row.appendChild(el("span", "sg-sr sg-state", S.sending));
    if (state === "failed") row.appendChild(el("span", "sg-state", S.notSent));
  }
  function customerBubble(text, state) {
    var bubble = addMessage({ sender: "customer", text: text });
    setState(bubble, state);
    return bubble;
  }
  function sendMessage(text, payload) {
    if (BLANK.test(text) && !payload) return;  // the server would refuse it
    var frame = { type: "message", text: text, id: newId() };
    if (payload) frame.payload = str(payload);
    unacked[frame.id] = { frame: frame, bubble: customerBubble(text, "pending") };
    order.push(frame.id);
    if (ready) ws.send(JSON.stringify(frame));
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (BLANK.test(text)) return;
    input.value = "";
    setTyping(false);
    sendMessage(text);
  });

  // The visitor's typing, for a person from the team: "on" at most every 3 s
  // while they type; "off" once they stop for 5 s, send, or empty the field.
  var typing = false, typingAt = 0, idleTimer = null;
  function setTyping(on) {
    clearTimeout(idleTimer);
    if (on) idleTimer = setTimeout(setTyping, 5000, false);
    if (on ? !ready || Date.now() - typingAt < 3000 : !typing) return;
    if (on) typingAt = Date.now();
    typing = on;
    if (ready) ws.send(JSON.stringify({ type: "typing", on: on }));
  }
  input.addEventListener("input", function () { setTyping(!BLANK.test(input.value)); });

  function storedSession() {
    try { return localStorage.getItem(storageKey); } catch (e) { return null; }  // private mode
  }
  function forgetSession() {
    try { localStorage.removeItem(storageKey); } catch (e) { /* private mode */ }
  }
  function setNotice(text, untilAcked) { notice = text; retrying = untilAcked; showStatus(); }

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
        // Replace what is shown by the server's record, then re-add what it
        // refused and what is unacknowledged.
        log.textContent = "";
        list(frame.messages).forEach(addMessage);
        if (frame.channels) showChannels(frame.channels);
        ready = true;
        failed.forEach(function (text) { customerBubble(text, "failed"); });
        order.forEach(function (id) { unacked[id].bubble = customerBubble(unacked[id].frame.text, "pending"); });
        resendUnacked();
        offline = false; setNotice("", false);
        scrollDown();
        break;
      case "ack":
        if (unacked[frame.id]) setState(unacked[frame.id].bubble, "");
        delete unacked[frame.id];
        order = order.filter(function (id) { return id !== frame.id; });
        storeDelay = 2000;
        if (retrying && !order.length) setNotice("", false);
        break;
      case "message":
        if (frame.channels) showChannels(frame.channels);
        if (frame.sender === "agent") { stopAgentTyping(); showStatus(); }
        addMessage(frame);
        notify();
        var event = { sender: frame.sender, text: str(frame.text), buttons: list(frame.buttons).slice() };
        if (frame.agent_name) event.agent_name = frame.agent_name;
        if (frame.event) event.event = frame.event;
        emit("message", event);
        break;
      case "typing":
        if (frame.sender === "agent") {
          stopAgentTyping();
          if (frame.on) {
            agentTyping = fmt(S.agentTyping, { name: str(frame.agent_name) || S.agent });
            // A lost "off" must not leave it on forever.
            agentTimer = setTimeout(function () { agentTyping = ""; showStatus(); }, 8000);
          }
        } else {
          botTyping = frame.on ? S.typing : "";
        }
        showStatus();
        break;
      case "error":
        onError(frame);
        break;
    }
  }

  function onError(frame) {
    var code = str(frame.code);
    if (RETRY.hasOwnProperty(code)) {
      var limited = code === "rate_limited";
      var pause = limited ? Math.max(1, frame.retry_after || 5) * 1000 : storeDelay;
      if (order.length) setNotice(S[RETRY[code]], true);
      if (ready) {
        // Whatever is not acknowledged is sent again after the pause (an id
        // the server already has is acknowledged, not redone); the store's
        // pause doubles for each round it keeps refusing.
        if (!resendTimer && order.length) {
          if (!limited) storeDelay = Math.min(storeDelay * 2, 15000);
          resendTimer = setTimeout(function () { resendTimer = null; resendUnacked(); }, pause);
        }
      } else {
        if (!limited) storeDelay = Math.min(storeDelay * 2, 15000);
        retryDelay = Math.max(retryDelay, pause);
        ws.close();
      }
    } else if (REFUSED.hasOwnProperty(code) && ready && order.length) {
      // Frames are answered in order: the refused one is the oldest waiting.
      var id = order.shift(), refused = unacked[id];
      delete unacked[id];
      failed.push(refused.frame.text);
      setState(refused.bubble, "failed");
      setNotice(str(frame.message), true);
    } else if (code === "session_invalid" || code === "session_expired") {
      forgetSession();
      ws.send(JSON.stringify(hello(null)));
    } else if (/^(resume|identity)_/.test(code) && !ready) {
      // An unusable link or sign-in token: carry on as this browser's own chat.
      setNotice(str(frame.message), false);
      if (code.indexOf("resume_") === 0) resume = null; else identity = null;
      ws.send(JSON.stringify(hello(storedSession())));
    } else if (code !== "unknown_type") {  // a server older than typing frames
      setNotice(str(frame.message), false);
    }
  }

  function resendUnacked() {
    if (!ready) return;  // the next history frame sends them
    order.forEach(function (id) { ws.send(JSON.stringify(unacked[id].frame)); });
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
    retryTimer = null;
    var session = storedSession();
    var socket = ws = new WebSocket(wsUrl.href);
    socket.onopen = function () { retryDelay = 500; socket.send(JSON.stringify(hello(session))); };
    socket.onmessage = function (event) {
      if (socket !== ws) return;  // a socket given up by identify() or reset()
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame && typeof frame === "object") onFrame(frame);
    };
    socket.onclose = function () {
      if (socket !== ws) return;
      ready = false; offline = true; stopAgentTyping(); botTyping = ""; showStatus();
      retryTimer = setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 15000);
    };
  }
  // A new hello now, on a new socket: the identity or the session changed.
  function reconnect() {
    var old = ws;
    ws = null; ready = false;
    clearTimeout(retryTimer);
    if (old) old.close();
    connect();
  }

  window.Segue = {
    open: function () { setOpen(true, true); },
    close: function () { setOpen(false); },
    // The host signed the visitor in: the server joins this conversation into theirs.
    identify: function (token) { identity = str(token) || null; reconnect(); },
    // The visitor signed out: a new anonymous chat, nothing of the old one shown.
    reset: function () {
      forgetSession();
      identity = null; resume = null; unacked = {}; order = []; failed = []; retrying = false;
      storeDelay = 2000;
      clearTimeout(resendTimer); resendTimer = null;
      log.textContent = ""; unread = 0; showUnread(); showChannels([]);
      notice = ""; botTyping = ""; stopAgentTyping(); showStatus();
      reconnect();
    },
    on: function (name, fn) {
      if (!Object.prototype.hasOwnProperty.call(listeners, name)) {
        throw new TypeError("Segue.on: unknown event " + name);
      }
      if (typeof fn !== "function") throw new TypeError("Segue.on: a function is needed");
      listeners[name].push(fn);
      return function () {
        var at = listeners[name].indexOf(fn);
        if (at >= 0) listeners[name].splice(at, 1);
      };
    }
  };
  if (attr("open") === "true") setOpen(true, false); else fit();
  connect();
  document.dispatchEvent(new Event("segue:ready"));
  }
})();
