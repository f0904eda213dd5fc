// The customer's side of Switchboard's web chat (docs/channels.md: /chat/v1 frames).
// Text is only ever set with textContent, never parsed as HTML.
"use strict";
(function () {
  const KEY = "switchboard-chat";
  const $ = (id) => document.getElementById(id);
  let ws = null;
  let saved = {};
  let typingTimer = null;
  let retry = 500;
  const shown = new Set();
  try { saved = JSON.parse(localStorage.getItem(KEY) || "{}") || {}; } catch (e) { saved = {}; }

  function status(text) { $("status").textContent = text; }
  function showError(text) { const el = $("error"); el.textContent = text; el.hidden = !text; }

  function addMessage(m) {
    if (shown.has(m.id)) return;
    shown.add(m.id);
    const li = document.createElement("li");
    li.className = m.direction === "in" ? "in" : "out";
    li.dataset.id = m.id;
    if (m.direction === "out") {
      const who = document.createElement("span");
      who.className = "author";
      who.textContent = m.author || "Support";
      li.appendChild(who);
      $("typing").hidden = true;
    }
    li.appendChild(document.createTextNode(m.body));
    $("messages").appendChild(li);
    li.scrollIntoView({block: "end"});
  }

  function send(frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN) { showError("Not connected; retrying…"); return false; }
    ws.send(JSON.stringify(frame));
    return true;
  }

  function connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/chat/v1";
    ws = new WebSocket(url);
    ws.onopen = function () {
      retry = 500;
      if (saved.name) {
        send({type: "start", name: saved.name, visitor_id: saved.visitor_id, secret: saved.secret});
      } else {
        status("Tell us your name to start.");
        $("start").hidden = false;
      }
    };
    ws.onmessage = function (event) {
      const frame = JSON.parse(event.data);
      if (frame.type === "ready") {
        saved.visitor_id = frame.visitor_id;
        if (frame.secret) saved.secret = frame.secret;
        localStorage.setItem(KEY, JSON.stringify(saved));
        $("start").hidden = true;
        $("conversation").hidden = false;
        status("Connected. We usually answer within a few minutes.");
        frame.messages.forEach(addMessage);
        if (frame.survey) $("survey").hidden = false;
      } else if (frame.type === "message") {
        addMessage(frame.message);
      } else if (frame.type === "typing") {
        $("typing").hidden = false;
        clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { $("typing").hidden = true; }, 5000);
      } else if (frame.type === "survey") {
        $("survey-done").hidden = true;
        $("survey").hidden = false;
        $("survey").scrollIntoView({block: "end"});
      } else if (frame.type === "survey_thanks") {
        $("survey").hidden = true;
        $("survey-done").hidden = false;
      } else if (frame.type === "callback_requested") {
        const done = $("callback-done");
        done.textContent = "Thanks! We will call you on " + frame.phone + ".";
        done.hidden = false;
        $("callback").hidden = true;
      } else if (frame.type === "left") {
        status("Chat ended. Thank you!");
        $("compose").hidden = true;
        $("callback-box").hidden = true;
        $("leave").hidden = true;
      } else if (frame.type === "error") {
        showError(frame.message);
      }
    };
    ws.onclose = function () {
      status("Connection lost; reconnecting…");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("start").addEventListener("submit", function (e) {
      e.preventDefault();
      saved.name = $("name").value.trim();
      if (saved.name) send({type: "start", name: saved.name});
    });
    $("compose").addEventListener("submit", function (e) {
      e.preventDefault();
      const body = $("body").value;
      if (body.trim() && send({type: "message", body: body})) { $("body").value = ""; showError(""); }
    });
    $("body").addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("compose").requestSubmit(); }
    });
    $("callback").addEventListener("submit", function (e) {
      e.preventDefault();
      send({type: "callback", phone: $("phone").value.trim(), note: $("note").value.trim()});
    });
    $("leave").addEventListener("click", function () { send({type: "leave"}); });
    $("survey").querySelectorAll("button[data-score]").forEach(function (button) {
      button.addEventListener("click", function () {
        send({type: "survey", score: Number(button.dataset.score)});
      });
    });
    connect();
  });
})();
