// The agent console's timeline: every entry of a conversation's history as
// the team sees it (messages, the notices the customer saw, the team's own
// steps, private notes), the customer's typing, and the small helpers the
// other scripts share. Text is only ever set with textContent.
(function () {
  "use strict";

  var CHANNELS = { web: "web chat", telegram: "Telegram", slack: "Slack" };
  // Who may appear as a bubble; anything else is drawn as an event line, so
  // a kind of entry this console does not know is still shown.
  var SPEAKERS = { customer: true, bot: true, agent: true };
  // An `off` can be lost (a worker gone): the indicator runs out by itself.
  var TYPING_SHOWN_MS = 8000;

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

  function stamp(ts) {
    var node = el("time", "time", when(ts));
    var d = new Date(ts * 1000);
    node.dateTime = d.toISOString();
    node.title = d.toLocaleString();
    return node;
  }

  function channelName(channel) { return CHANNELS[channel] || channel; }

  function badge(channel) {
    var known = CHANNELS[channel] ? " " + channel : "";
    return el("span", "badge" + known, channelName(channel));
  }

  // "45 s", "1 min 35 s", "6 min", "2 h 5 min", "3 d 4 h". `coarse` leaves
  // out the seconds once there is a minute (a queue's waits).
  function duration(seconds, coarse) {
    var s = Math.max(0, Math.round(Number(seconds) || 0));
    if (s < 60) return s + " s";
    var min = Math.floor(s / 60), sec = s % 60;
    if (min < 60) return min + " min" + (sec && !coarse ? " " + sec + " s" : "");
    var h = Math.floor(min / 60), restMin = min % 60;
    if (h < 24) return h + " h" + (restMin ? " " + restMin + " min" : "");
    var d = Math.floor(h / 24), restH = h % 24;
    return d + " d" + (restH ? " " + restH + " h" : "");
  }

  function item(entry) {
    if (entry.sender === "note") return noteItem(entry);
    if (!SPEAKERS[entry.sender] || entry.event) return eventLine(entry);
    var li = el("li", "msg " + entry.sender);
    var head = el("div", "head");
    head.appendChild(badge(entry.channel));
    var who = entry.sender === "agent" ? (entry.agent_name || "agent") : entry.sender;
    head.appendChild(el("span", "sender", who));
    head.appendChild(stamp(entry.ts));
    li.appendChild(head);
    li.appendChild(el("div", "text", entry.text));
    return li;
  }

  // A centred line: a notice the customer saw (with its channel), or a step
  // of the team's, which only the team ever sees.
  function eventLine(entry) {
    var seen = SPEAKERS[entry.sender];
    var li = el("li", "msg event " + (seen ? entry.sender + " public" : "internal"));
    if (entry.event) li.dataset.event = String(entry.event);
    if (seen) li.appendChild(badge(entry.channel));
    if (entry.sender === "agent") li.appendChild(el("span", "sender", entry.agent_name || "agent"));
    li.appendChild(el("span", "text", entry.text));
    li.appendChild(stamp(entry.ts));
    return li;
  }

  function noteItem(entry) {
    var li = el("li", "msg note");
    var head = el("div", "head");
    var author = entry.agent_name || entry.agent;
    head.appendChild(el("span", "note-label", "Private note" + (author ? " · " + author : "")));
    head.appendChild(stamp(entry.ts));
    li.appendChild(head);
    li.appendChild(el("div", "text", entry.text));
    li.appendChild(el("div", "note-hint", "Only the team sees this; the customer never does."));
    return li;
  }

  // "Customer is typing…" under the timeline of the open conversation.
  function typingIndicator() {
    var timer = null;
    function node() { return document.getElementById("customer-typing"); }
    function hide() {
      clearTimeout(timer);
      timer = null;
      node().hidden = true;
    }
    function show() {
      clearTimeout(timer);
      node().hidden = false;
      timer = setTimeout(hide, TYPING_SHOWN_MS);
    }
    return { show: show, hide: hide, set: function (on) { if (on) show(); else hide(); } };
  }

  window.segueTimeline = {
    el: el,
    clear: clear,
    when: when,
    badge: badge,
    channelName: channelName,
    duration: duration,
    item: item,
    typing: typingIndicator()
  };
})();
