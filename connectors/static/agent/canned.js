// Canned replies in the agent console: "/" and the start of a shortcut in
// the reply box lists the matching ones; choosing one puts its text in the
// box, placeholders filled, for the agent to edit and send. Admins keep them
// in a panel. Canned text is only ever set as text, never parsed as HTML.
(function () {
  "use strict";

  var PREVIEW = 60;  // characters of a reply's text shown in the list

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function preview(text) {
    var line = text.replace(/\s+/g, " ").trim();
    return line.length > PREVIEW ? line.slice(0, PREVIEW - 1) + "…" : line;
  }

  // `deps.api(method, path, body)` calls the agent API; `deps.me()` is the
  // logged-in agent, `deps.view()` the conversation on screen (or null).
  // Call it before the console handles the reply box's keys itself: a key
  // the list uses is marked handled (defaultPrevented) before the console sees it.
  window.segueCanned = function (deps) {
    var box = document.getElementById("reply-text");
    var list = document.getElementById("canned-list");
    var replies = [];       // every canned reply, by shortcut
    var shown = [];         // those in the list now
    var active = -1;        // index in `shown` of the highlighted one
    var dismissed = null;   // the box's value when the list was closed on purpose

    function load() {
      return deps.api("GET", "canned").then(function (data) {
        replies = data.canned;
        update();
        renderPanel();
      }).catch(function () { /* the list stays as it was */ });
    }

    // The reply box: "/" then a shortcut's start, and nothing else.
    function typed() {
      var match = /^\/(\S*)$/.exec(box.value);
      return match ? match[1].toLowerCase() : null;
    }

    function update() {
      var start = typed();
      if (start === null || box.value === dismissed || document.activeElement !== box) {
        close();
        return;
      }
      var was = shown[active] && shown[active].shortcut;
      shown = replies.filter(function (r) { return r.shortcut.indexOf(start) === 0; });
      if (!shown.length) { close(); return; }
      clear(list);
      shown.forEach(function (reply, i) {
        var option = el("li", "canned-option");
        option.id = "canned-option-" + i;
        option.setAttribute("role", "option");
        option.appendChild(el("span", "shortcut", "/" + reply.shortcut));
        option.appendChild(el("span", "preview", preview(reply.text)));
        // Keep the focus in the box: a blur would close the list before the click.
        option.addEventListener("mousedown", function (ev) { ev.preventDefault(); });
        option.addEventListener("click", function () { insert(reply); });
        list.appendChild(option);
      });
      list.hidden = false;
      box.setAttribute("aria-expanded", "true");
      var keep = shown.map(function (r) { return r.shortcut; }).indexOf(was);
      highlight(keep >= 0 ? keep : 0);
    }

    function highlight(i) {
      active = i;
      Array.prototype.forEach.call(list.children, function (option, n) {
        option.setAttribute("aria-selected", n === i ? "true" : "false");
      });
      var option = list.children[i];
      box.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    }

    function close() {
      shown = [];
      active = -1;
      list.hidden = true;
      clear(list);
      box.setAttribute("aria-expanded", "false");
      box.removeAttribute("aria-activedescendant");
    }

    // The placeholders: the agent's name as customers see it; the customer's
    // name when the conversation has one, else the placeholder and the space
    // before it go ("Hi {customer_name}, …" reads "Hi, …").
    function fill(text) {
      var agent = deps.me();
      var view = deps.view();
      var customer = view && view.profile && view.profile.name;
      // Functions as replacements: a "$" in a name is kept as written.
      text = text.replace(/\{agent_name\}/g, function () { return agent ? agent.name : ""; });
      if (customer) return text.replace(/\{customer_name\}/g, function () { return String(customer); });
      return text.replace(/ ?\{customer_name\}/g, "");
    }

    function insert(reply) {
      box.value = fill(reply.text);
      dismissed = box.value;  // a text that itself starts with "/" opens no list
      close();
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
    }

    box.addEventListener("input", function () {
      if (box.value !== dismissed) dismissed = null;
      if (box.value === "/") load();  // what admins saved since
      update();
    });
    box.addEventListener("focus", update);
    box.addEventListener("blur", close);
    box.addEventListener("keydown", function (ev) {
      if (list.hidden || ev.isComposing || ev.altKey || ev.ctrlKey || ev.metaKey) return;
      var n = shown.length;
      if (ev.key === "ArrowDown") highlight((active + 1) % n);
      else if (ev.key === "ArrowUp") highlight((active - 1 + n) % n);
      else if ((ev.key === "Enter" || ev.key === "Tab") && !ev.shiftKey) insert(shown[active]);
      else if (ev.key === "Escape") { dismissed = box.value; close(); }
      else return;
      ev.preventDefault();
    });

    // The admins' panel.

    var panel = document.getElementById("canned-admin");
    var form = document.getElementById("canned-form");
    var error = document.getElementById("canned-error");

    function renderPanel() {
      var items = document.getElementById("canned-items");
      clear(items);
      replies.forEach(function (reply) {
        var li = el("li", "canned-item");
        li.dataset.shortcut = reply.shortcut;
        li.appendChild(el("span", "shortcut", "/" + reply.shortcut));
        li.appendChild(el("span", "text", reply.text));
        var remove = el("button", "delete", "Delete");
        remove.type = "button";
        remove.setAttribute("aria-label", "Delete /" + reply.shortcut);
        remove.addEventListener("click", function () {
          error.textContent = "";
          deps.api("DELETE", "canned/" + encodeURIComponent(reply.shortcut))
            .catch(function (err) { error.textContent = err.message; })
            .then(load);
        });
        li.appendChild(remove);
        items.appendChild(li);
      });
    }

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var save = document.getElementById("canned-save");
      error.textContent = "";
      save.disabled = true;  // one save at a time: the form is emptied after it
      deps.api("POST", "canned", {
        shortcut: document.getElementById("canned-shortcut").value,
        text: document.getElementById("canned-text").value
      }).then(function () {
        form.reset();
        return load();
      }).catch(function (err) { error.textContent = err.message; })
        .finally(function () { save.disabled = false; });
    });

    return {
      load: load,
      // On login: the panel for admins only.
      start: function (agent) {
        panel.hidden = agent.role !== "admin";
        error.textContent = "";
        close();
        return load();
      }
    };
  };
})();
