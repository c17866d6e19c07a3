// The chat page: ask, read the answer as server-sent events, open citations, send feedback.
// Model and source text is only ever inserted as text nodes (textContent, append(string)).
"use strict";

(function () {
  const app = document.getElementById("chat-app");
  if (!app) {
    return;
  }
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const form = document.getElementById("ask-form");
  const question = document.getElementById("question");
  const sendButton = document.getElementById("send");
  const collection = document.getElementById("collection");
  const messages = document.getElementById("messages");
  const conversationList = document.getElementById("conversation-list");
  const panel = document.getElementById("citation-panel");
  const panelTitle = document.getElementById("panel-title");
  const panelBody = document.getElementById("panel-body");
  const panelClose = document.getElementById("panel-close");
  const announcer = document.getElementById("announcer");

  let conversationId = app.dataset.conversationId ? Number(app.dataset.conversationId) : null;
  let busy = false;
  let panelOpener = null;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function button(text, className, label) {
    const node = el("button", className, text);
    node.type = "button";
    if (label) {
      node.setAttribute("aria-label", label);
    }
    return node;
  }

  function postJSON(url, body, accept) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: accept || "application/json",
        "X-CSRFToken": csrfToken,
      },
      body: JSON.stringify(body),
    });
  }

  async function errorText(response) {
    if (response.status === 401) {
      return "Your session has ended. Reload the page and sign in again.";
    }
    try {
      const data = await response.json();
      if (data && typeof data.message === "string" && data.message) {
        return data.message;
      }
    } catch (e) {
      // not JSON: fall through to a generic text
    }
    return "The request failed (" + response.status + ").";
  }

  function safeUrl(value) {
    if (!value) {
      return null;
    }
    try {
      const url = new URL(value, window.location.href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function nearBottom() {
    return messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
  }

  function scrollToEnd() {
    messages.scrollTop = messages.scrollHeight;
  }

  // ---- server-sent events over fetch ----

  function parseEvent(block) {
    let kind = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) {
        continue;
      }
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) {
        value = value.slice(1);
      }
      if (field === "event") {
        kind = value;
      } else if (field === "data") {
        data.push(value);
      }
    }
    if (!data.length) {
      return null;
    }
    try {
      return { kind: kind, data: JSON.parse(data.join("\n")) };
    } catch (e) {
      return null;
    }
  }

  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) {
        break;
      }
      buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r/g, "");
      let end = buffer.indexOf("\n\n");
      while (end !== -1) {
        const event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event) {
          onEvent(event.kind, event.data);
        }
        end = buffer.indexOf("\n\n");
      }
    }
  }

  // ---- rendering ----

  function citationMap(citations) {
    const byNumber = new Map();
    for (const c of citations || []) {
      if (c && c.n !== undefined && c.doc_id !== undefined) {
        byNumber.set(Number(c.n), c);
      }
    }
    return byNumber;
  }

  function citationButton(c, text) {
    const label = "Source " + c.n + ": " + (c.title || c.doc_id);
    const node = button(text, "citation", label);
    node.addEventListener("click", function () {
      openPassage(c, node);
    });
    return node;
  }

  // Inline Markdown (**bold**, *italic*, `code`) and [n] citation buttons, as DOM nodes only:
  // model text never reaches innerHTML, so markup in it stays visible text.
  const INLINE = /\*\*([^*\n]+)\*\*|`([^`\n]+)`|\*([^*\s][^*\n]*)\*|\[(\d+)\]/g;

  function renderInline(parent, text, byNumber) {
    const pattern = new RegExp(INLINE.source, "g");
    let last = 0;
    let match = pattern.exec(text);
    while (match !== null) {
      let node = null;
      if (match[4] !== undefined) {
        const c = byNumber.get(Number(match[4]));
        node = c ? citationButton(c, match[0]) : null;
      } else if (match[1] !== undefined) {
        node = el("strong", null, match[1]);
      } else if (match[2] !== undefined) {
        node = el("code", null, match[2]);
      } else {
        node = el("em", null, match[3]);
      }
      if (node) {
        parent.append(text.slice(last, match.index), node);
        last = pattern.lastIndex;
      }
      match = pattern.exec(text);
    }
    parent.append(text.slice(last));
  }

  // Block Markdown: paragraphs, bullet and numbered lists, headings (shown as bold lines).
  function renderAnswer(body, text, byNumber) {
    body.replaceChildren();
    let paragraph = [];
    let list = null;
    function flush() {
      if (paragraph.length) {
        const p = el("p");
        renderInline(p, paragraph.join(" "), byNumber);
        body.append(p);
        paragraph = [];
      }
    }
    for (const raw of String(text).replace(/\r\n?/g, "\n").split("\n")) {
      const line = raw.trim();
      const item = /^(?:([-*\u2022])|\d{1,3}[.)])\s+(.*)$/.exec(line);
      const heading = /^#{1,6}\s+(.*)$/.exec(line);
      if (!line) {
        flush();
        list = null;
      } else if (item) {
        flush();
        const tag = item[1] ? "ul" : "ol";
        if (!list || list.tagName.toLowerCase() !== tag) {
          list = el(tag, "md-list");
          body.append(list);
        }
        const li = el("li");
        renderInline(li, item[2], byNumber);
        list.append(li);
      } else if (heading) {
        flush();
        list = null;
        const p = el("p", "md-heading");
        const strong = el("strong");
        renderInline(strong, heading[1], byNumber);
        p.append(strong);
        body.append(p);
      } else {
        list = null;
        paragraph.push(line);
      }
    }
    flush();
  }

  // Under an answer: the sources it cites, then the other sources it was given (so a reader
  // can check what the answer left out, and see what was searched when it declined).
  function renderSources(li, byNumber, given) {
    const old = li.querySelector(".sources");
    if (old) {
      old.remove();
    }
    const others = (given || []).filter(function (c) {
      return !byNumber.has(Number(c.n));
    });
    if (!byNumber.size && !others.length) {
      return;
    }
    const wrap = el("div", "sources");
    const numbers = Array.from(byNumber.keys()).sort(function (a, b) {
      return a - b;
    });
    if (numbers.length) {
      wrap.append(el("h3", "sources-title", "Sources"));
      const list = el("ol", "sources-list");
      for (const n of numbers) {
        const c = byNumber.get(n);
        const item = el("li");
        item.append(citationButton(c, "[" + n + "] " + (c.title || c.doc_id)));
        list.append(item);
      }
      wrap.append(list);
    }
    if (others.length) {
      const title = numbers.length ? "Also searched, not cited" : "Searched, not cited";
      wrap.append(el("h3", "sources-title sources-uncited", title));
      const list = el("ul", "sources-list sources-uncited-list");
      for (const c of others) {
        const item = el("li");
        item.append(citationButton(c, (c.title || c.doc_id)));
        list.append(item);
      }
      wrap.append(list);
    }
    li.append(wrap);
  }

  function renderNotices(li, data) {
    for (const old of li.querySelectorAll(".notice")) {
      old.remove();
    }
    if (data.origin === "evidence") {
      li.append(el("p", "notice notice-quoted",
        "Quoted from the sources: the assistant's own wording could not be checked against them."));
    }
    if (data.held) {
      li.append(
        el("p", "notice notice-held",
          "Held for review: a reviewer checks this answer before it is shown in full.")
      );
    } else if (data.flagged) {
      // A guard's own reply (emergency, refusal, scope message) has no sources to check.
      const reviewFlags = (Array.isArray(data.flags) ? data.flags : [])
        .filter((flag) => !String(flag).startsWith("guard:"));
      if (reviewFlags.length) {
        li.append(el("p", "notice notice-flagged",
          "Flagged: check this answer against its sources (" + reviewFlags.join(", ") + ")."));
      }
    }
  }

  function addMessage(role, text) {
    const welcome = messages.querySelector(".welcome");
    if (welcome) {
      welcome.remove();
    }
    const li = el("li", "message " + role);
    li.append(el("div", "message-body", text));
    messages.append(li);
    return li;
  }

  function showError(li, text) {
    const body = li.querySelector(".message-body");
    if (!body.textContent) {
      body.remove();
    }
    const status = li.querySelector(".message-status");
    if (status) {
      status.remove();
    }
    li.classList.add("failed");
    li.append(el("p", "notice notice-error", text));
    li.setAttribute("role", "alert");
  }

  // ---- feedback ----

  function addFeedback(li, messageId, rating) {
    const bar = el("div", "feedback");
    // Words, not emoji: many servers and kiosks have no emoji font and would show boxes.
    const up = button("Helpful", "thumb", "Helpful");
    const down = button("Not helpful", "thumb", "Not helpful");
    const status = el("span", "feedback-status");
    status.setAttribute("role", "status");
    up.setAttribute("aria-pressed", rating === 1 ? "true" : "false");
    down.setAttribute("aria-pressed", rating === -1 ? "true" : "false");

    const details = el("form", "feedback-form");
    details.hidden = true;
    const formId = "feedback-" + messageId;
    const correctionLabel = el("label", null, "A better answer (optional)");
    correctionLabel.htmlFor = formId + "-correction";
    const correction = el("textarea");
    correction.id = formId + "-correction";
    correction.rows = 3;
    correction.maxLength = 4000;
    const reasonLabel = el("label", null, "What was wrong? (optional)");
    reasonLabel.htmlFor = formId + "-reason";
    const reason = el("input");
    reason.id = formId + "-reason";
    reason.type = "text";
    reason.maxLength = 500;
    const submit = el("button", "primary", "Send feedback");
    submit.type = "submit";
    const cancel = button("Cancel", null);
    const actions = el("div", "actions");
    actions.append(submit, cancel);
    details.append(correctionLabel, correction, reasonLabel, reason, actions);

    async function send(value, extra) {
      status.textContent = "Sending…";
      try {
        const body = Object.assign({ message_id: messageId, rating: value }, extra || {});
        const response = await postJSON("/chat/feedback", body);
        if (!response.ok) {
          status.textContent = await errorText(response);
          return false;
        }
        up.setAttribute("aria-pressed", value === 1 ? "true" : "false");
        down.setAttribute("aria-pressed", value === -1 ? "true" : "false");
        status.textContent = "Thank you for the feedback.";
        return true;
      } catch (e) {
        status.textContent = "Could not send the feedback.";
        return false;
      }
    }

    up.addEventListener("click", function () {
      details.hidden = true;
      send(1);
    });
    down.addEventListener("click", function () {
      details.hidden = !details.hidden;
      if (!details.hidden) {
        correction.focus();
      }
    });
    cancel.addEventListener("click", function () {
      details.hidden = true;
      down.focus();
    });
    details.addEventListener("submit", async function (event) {
      event.preventDefault();
      const ok = await send(-1, {
        correction: correction.value.trim() || null,
        reason: reason.value.trim() || null,
      });
      if (ok) {
        details.hidden = true;
        down.focus();
      }
    });

    bar.append(up, down, status);
    li.append(bar, details);
  }

  // ---- the citation panel ----

  function closePanel() {
    panel.hidden = true;
    app.classList.remove("panel-open");
    if (panelOpener) {
      panelOpener.focus();
      panelOpener = null;
    }
  }

  async function openPassage(c, opener) {
    panelOpener = opener;
    panel.hidden = false;
    app.classList.add("panel-open");
    panelTitle.textContent = c.title || c.doc_id;
    panelBody.replaceChildren(el("p", "muted", "Loading the passage…"));
    panelTitle.focus();
    const path = String(c.doc_id).split("/").map(encodeURIComponent).join("/");
    const query = "?start=" + encodeURIComponent(c.start) + "&end=" + encodeURIComponent(c.end);
    try {
      const response = await fetch("/passage/" + path + query, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) {
        panelBody.replaceChildren(el("p", "notice notice-error", await errorText(response)));
        return;
      }
      const p = await response.json();
      panelTitle.textContent = p.title || p.doc_id;
      const meta = el("p", "panel-meta");
      meta.append(el("span", "chip", p.collection || ""), " ", el("span", "muted", p.doc_id));
      const url = safeUrl(p.source_url);
      if (url) {
        const link = el("a", "source-link", "Open the source");
        link.href = url;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        meta.append(" · ", link);
      }
      const quote = el("blockquote", "passage");
      const before = p.before || "";
      if (before) {
        quote.append((p.start - before.length > 0 ? "…" : "") + before);
      }
      const mark = el("mark", null, p.passage || "");
      quote.append(mark);
      if (p.after) {
        quote.append(p.after + "…");
      }
      panelBody.replaceChildren(meta, quote);
      mark.scrollIntoView({ block: "nearest" });
    } catch (e) {
      panelBody.replaceChildren(el("p", "notice notice-error", "Could not load the passage."));
    }
  }

  panelClose.addEventListener("click", closePanel);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !panel.hidden) {
      closePanel();
    }
  });

  // ---- held answers: poll until a reviewer has decided ----

  const HELD_POLL_MS = Number(app.dataset.heldPollMs) || 5000;
  let heldTimer = null;

  function releaseHeld(li, m) {
    li.classList.remove("held");
    for (const old of li.querySelectorAll(".notice")) {
      old.remove();
    }
    const body = li.querySelector(".message-body");
    if (m.review === "rejected" || !m.content) {
      body.replaceChildren();
      li.append(el("p", "notice notice-rejected",
        "A reviewer withheld this answer. Rephrase the question or ask a professional."));
    } else {
      const byNumber = citationMap(m.citations);
      renderAnswer(body, String(m.content), byNumber);
      renderSources(li, byNumber);
      li.append(el("p", "notice notice-reviewed", m.review === "edited"
        ? "Corrected by a reviewer before it was shown."
        : "Checked and approved by a reviewer."));
      addFeedback(li, Number(m.id), m.rating === undefined ? null : m.rating);
    }
    announcer.textContent = "A held answer was reviewed.";
  }

  function watchHeld() {
    if (heldTimer !== null || conversationId === null) {
      return;
    }
    heldTimer = window.setTimeout(async function () {
      heldTimer = null;
      if (!messages.querySelector(".message.assistant.held")) {
        return;
      }
      try {
        const response = await fetch("/api/conversations/" + Number(conversationId), {
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        if (response.ok) {
          const data = await response.json();
          for (const m of data.messages || []) {
            const li = messages.querySelector(
              '.message.assistant.held[data-message-id="' + Number(m.id) + '"]');
            if (li && !m.held) {
              releaseHeld(li, m);
            }
          }
        }
      } catch (e) {
        // Try again on the next round.
      }
      watchHeld();
    }, HELD_POLL_MS);
  }

  // ---- asking ----

  function rememberConversation(id, title) {
    if (conversationId === id) {
      return;
    }
    conversationId = id;
    window.history.replaceState(null, "", "/c/" + id);
    const empty = conversationList.querySelector(".empty");
    if (empty) {
      empty.remove();
    }
    for (const current of conversationList.querySelectorAll("[aria-current]")) {
      current.removeAttribute("aria-current");
    }
    const link = el("a", null, title.length > 60 ? title.slice(0, 59) + "…" : title);
    link.href = "/c/" + id;
    link.setAttribute("aria-current", "page");
    const item = el("li");
    item.append(link);
    conversationList.prepend(item);
  }

  function finishAnswer(li, data, sources) {
    const byNumber = citationMap(sources);
    for (const [n, c] of citationMap(data.citations)) {
      byNumber.set(n, c);
    }
    const status = li.querySelector(".message-status");
    if (status) {
      status.remove();
    }
    li.dataset.messageId = String(data.message_id);
    const body = li.querySelector(".message-body");
    renderAnswer(body, String(data.answer || ""), byNumber);
    renderSources(li, citationMap(data.citations), data.sources || sources);
    renderNotices(li, data);
    if (data.answer) {
      addFeedback(li, Number(data.message_id), null);
    }
    if (data.held) {
      li.classList.add("held");
    }
  }

  async function ask(text) {
    busy = true;
    sendButton.disabled = true;
    const follow = nearBottom();
    addMessage("user", text);
    const li = addMessage("assistant", "");
    li.classList.add("streaming");
    li.setAttribute("aria-busy", "true");
    const body = li.querySelector(".message-body");
    const streamed = document.createTextNode("");
    body.append(streamed);
    const status = el("p", "message-status", "Searching the sources…");
    status.setAttribute("role", "status");
    li.append(status);
    if (follow) {
      scrollToEnd();
    }
    let sources = [];
    let finished = false;
    try {
      const response = await postJSON(
        "/chat/ask",
        { question: text, conversation_id: conversationId, collection: collection.value || null },
        "text/event-stream"
      );
      if (!response.ok) {
        showError(li, await errorText(response));
        question.value = text; // keep what was typed, to fix and resend
        return;
      }
      await readEvents(response, function (kind, data) {
        const stick = nearBottom();
        if (kind === "sources") {
          sources = data.citations || [];
          status.textContent = "Writing the answer…";
        } else if (kind === "token") {
          streamed.appendData(String(data.text || ""));
        } else if (kind === "done") {
          finished = true;
          finishAnswer(li, data, sources);
          rememberConversation(Number(data.conversation_id), text);
          if (data.held) {
            watchHeld();
          }
          announcer.textContent = data.held ? "The answer is held for review." : "Answer ready.";
        } else if (kind === "error") {
          finished = true;
          showError(li, String(data.message || "The answer failed."));
        }
        if (stick) {
          scrollToEnd();
        }
      });
      if (!finished) {
        showError(li, "The connection closed before the answer was complete.");
      }
    } catch (e) {
      showError(li, "Could not reach the server. Check the connection and try again.");
    } finally {
      busy = false;
      sendButton.disabled = false;
      li.classList.remove("streaming");
      li.removeAttribute("aria-busy");
      question.focus();
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = question.value.trim();
    if (!text || busy) {
      return;
    }
    question.value = "";
    ask(text);
  });

  question.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // Messages rendered by the server: citation buttons, sources and feedback.
  for (const li of messages.querySelectorAll(".message.assistant[data-message-id]")) {
    let citations = [];
    let given = [];
    try {
      citations = JSON.parse(li.dataset.citations || "[]");
      given = JSON.parse(li.dataset.sources || "[]");
    } catch (e) {
      citations = [];
    }
    const byNumber = citationMap(citations);
    const body = li.querySelector(".message-body");
    renderAnswer(body, body.textContent, byNumber);
    renderSources(li, byNumber, given);
    const rating = li.dataset.rating ? Number(li.dataset.rating) : null;
    if (body.textContent) {
      addFeedback(li, Number(li.dataset.messageId), rating);
    }
  }
  watchHeld();
  scrollToEnd();
})();
