// The agent console's workspace around the timeline: who the customer is
// (the profile the channels give, the linked channels), the details panel
// (language, flow, the last handoff's times and rating), the private note
// composer beside the reply box, and short notices. Text is set as text.
(function () {
  "use strict";

  var t = window.segueTimeline;
  var el = t.el, clear = t.clear;
  var LANGUAGES = { en: "English", de: "German", es: "Spanish" };
  var NOTICE_SHOWN_MS = 15000;

  function $(id) { return document.getElementById(id); }

  function languageName(locale) {
    if (!locale) return null;
    var primary = String(locale).split(/[-_]/)[0].toLowerCase();
    return LANGUAGES[primary] || null;
  }

  // `deps.api(method, path, body)` calls the agent API; `deps.current()` is
  // the customer on screen (or null); `deps.noted(customer, entry)` is told
  // of a note once it is kept; `deps.open(customer)` opens a conversation;
  // `deps.failed(message)` shows an action's error.
  window.segueWorkspace = function (deps) {

    // The header: the customer's name, what the channels say, where they are.

    function showCustomer(view) {
      var profile = view.profile || {};
      var title = $("conv-title");
      title.textContent = profile.name ? String(profile.name) : "Customer " + view.customer;
      title.classList.toggle("named", !!profile.name);
      $("conv-id").textContent = profile.name ? view.customer : "";
      var details = $("conv-profile");
      clear(details);
      [["username", "Username", function (v) { return "@" + v; }],
       ["email", "E-mail", null],
       ["language", "Language setting", null],
       ["time_zone", "Time zone", null]].forEach(function (field) {
        var value = profile[field[0]];
        if (value === null || value === undefined || value === "") return;
        var li = el("li", "profile-" + field[0]);
        li.dataset.key = field[0];
        li.appendChild(el("span", "label", field[1]));
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", "value", field[2] ? field[2](String(value)) : value));
        details.appendChild(li);
      });
      var channels = $("channels");
      clear(channels);
      view.channels.forEach(function (c) {
        var li = el("li");
        li.appendChild(t.badge(c.channel));
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", "user-id", c.user_id));
        channels.appendChild(li);
      });
    }

    // The details panel.

    function showDetails(view) {
      // The customer's language, so a reply is written in it.
      var language = languageName(view.locale);
      $("language").textContent = !view.locale ? "not known yet"
        : language ? language + " (" + view.locale + ")" : String(view.locale);
      $("reply-text").placeholder = language ? "Write a reply in " + language + "…"
        : "Write a reply…";
      $("flow").textContent = view.flow || "none";
      var slots = $("slots");
      clear(slots);
      Object.keys(view.slots).forEach(function (name) {
        slots.appendChild(el("dt", "", name));
        slots.appendChild(el("dd", "", JSON.stringify(view.slots[name])));
      });
      showRating(view.csat);
      showTimes(view.handoff_times);
    }

    function showRating(csat) {
      $("csat-block").hidden = !csat;
      if (!csat) return;
      $("csat").textContent = "Rated " + csat.score + "/5";
      var comment = $("csat-comment");
      comment.hidden = !csat.comment;
      comment.textContent = csat.comment ? "“" + csat.comment + "”" : "";
      $("csat-when").textContent = csat.rated_at ? "on " + new Date(csat.rated_at * 1000)
        .toLocaleString() : "";
    }

    function showTimes(times) {
      $("times-block").hidden = !times;
      if (!times) return;
      var list = $("handoff-times");
      clear(list);
      function row(key, label, value) {
        var dt = el("dt", "", label), dd = el("dd", "", value);
        dd.dataset.key = key;
        list.appendChild(dt);
        list.appendChild(dd);
      }
      row("agent", "Handled by", times.agent_name || times.agent);
      row("first_response", "First response", times.first_response_seconds === null
        ? "none" : t.duration(times.first_response_seconds));
      row("resolution", "Resolution", t.duration(times.resolution_seconds));
    }

    // The composer: a reply to the customer, or a private note for the team.

    var noting = false;

    function setMode(note, focus) {
      noting = note;
      $("mode-reply").setAttribute("aria-selected", note ? "false" : "true");
      $("mode-note").setAttribute("aria-selected", note ? "true" : "false");
      $("mode-reply").tabIndex = note ? -1 : 0;
      $("mode-note").tabIndex = note ? 0 : -1;
      $("reply-form").hidden = note;
      $("note-form").hidden = !note;
      if (focus) $(note ? "note-text" : "reply-text").focus();
    }

    $("mode-reply").addEventListener("click", function () { setMode(false, true); });
    $("mode-note").addEventListener("click", function () { setMode(true, true); });
    $("composer-modes").addEventListener("keydown", function (ev) {
      if (ev.key !== "ArrowLeft" && ev.key !== "ArrowRight") return;
      ev.preventDefault();
      setMode(!noting, false);
      $(noting ? "mode-note" : "mode-reply").focus();
    });

    $("note-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var customer = deps.current();
      var box = $("note-text");
      var text = box.value;
      if (!customer || !text.trim()) return;
      var send = $("note-send");
      send.disabled = true;  // one at a time: the box is emptied after it
      deps.failed("");
      deps.api("POST", "conversations/" + encodeURIComponent(customer) + "/notes", { text: text })
        .then(function (data) {
          if (box.value === text) box.value = "";
          deps.noted(customer, data.entry);
        })
        .catch(function (err) { deps.failed(err.message); })
        .finally(function () { send.disabled = false; });
    });

    $("note-text").addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        $("note-form").requestSubmit();
      }
    });

    // Notices: short, above the lists, with a button to open their conversation.

    var noticeTimer = null, noticeFor = null;

    function notify(text, customer) {
      $("notice-text").textContent = text;
      noticeFor = customer || null;
      $("notice-open").hidden = !noticeFor;
      $("notice").hidden = false;
      clearTimeout(noticeTimer);
      noticeTimer = setTimeout(function () { $("notice").hidden = true; }, NOTICE_SHOWN_MS);
    }

    $("notice-open").addEventListener("click", function () {
      $("notice").hidden = true;
      if (noticeFor) deps.open(noticeFor);
    });

    return {
      show: function (view) {
        showCustomer(view);
        showDetails(view);
        $("note-send").disabled = false;
      },
      notify: notify,
      reset: function () {
        setMode(false, false);
        $("notice").hidden = true;
      }
    };
  };
})();
