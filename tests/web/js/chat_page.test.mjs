// Runs web/static/chat.js on a fake DOM with a scripted server; exits non-zero on failure.
// Usage: node chat_page.test.mjs path/to/chat.js

import { readFileSync } from "node:fs";
import vm from "node:vm";
import { Document, build } from "./fakedom.mjs";

const source = readFileSync(process.argv[2], "utf8");
const TOKEN = "csrf-token-value";
let failures = 0;

function check(condition, message) {
  if (!condition) {
    failures += 1;
    console.error("FAIL: " + message);
  }
}

const CITATIONS = [
  { n: 1, doc_id: "medical/knee", title: "Knee care", start: 0, end: 30, score: 0.9 },
  { n: 2, doc_id: "medical/ice packs", title: "Ice packs", start: 50, end: 71, score: 0.7 },
];

function page(conversationId) {
  const doc = new Document();
  const messages = conversationId
    ? [
        ["li", { class: "message user", "data-message-id": "1", "data-citations": "[]", "data-rating": "" },
          ["div", { class: "message-body" }, "Knee hurts?"]],
        ["li", {
          class: "message assistant", "data-message-id": "2",
          "data-citations": JSON.stringify([CITATIONS[0]]), "data-rating": "1",
        }, ["div", { class: "message-body" }, "Ice it [1] and rest [3]."]],
      ]
    : [["li", { class: "welcome" }, "Ask a question"]];
  doc.root.append(
    build(doc, ["head", {}, ["meta", { name: "csrf-token", content: TOKEN }]]),
    build(doc, ["body", {},
      ["div", { id: "chat-app", class: "chat-layout", "data-conversation-id": conversationId || "", "data-held-poll-ms": "20" },
        ["nav", { class: "sidebar" },
          ["ul", { id: "conversation-list" },
            conversationId
              ? ["li", {}, ["a", { href: "/c/" + conversationId, "aria-current": "page" }, "Knee"]]
              : ["li", { class: "empty" }, "No conversations yet."]]],
        ["section", { class: "chat" },
          ["ol", { id: "messages" }, ...messages],
          ["form", { id: "ask-form" },
            ["select", { id: "collection" }],
            ["textarea", { id: "question" }],
            ["button", { id: "send", type: "submit" }, "Send"]]],
        ["aside", { id: "citation-panel", hidden: true },
          ["h2", { id: "panel-title" }, "Source"],
          ["button", { id: "panel-close", type: "button" }, "x"],
          ["div", { id: "panel-body" }]],
        ["p", { id: "announcer" }]]])
  );
  return doc;
}

// Splits the stream at awkward places: inside lines and inside multi-byte characters.
function sseResponse(events, chunkSize = 7) {
  const text = events.map(([kind, data]) => `event: ${kind}\ndata: ${JSON.stringify(data)}\n\n`).join("");
  const bytes = new TextEncoder().encode(text);
  const stream = new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += chunkSize) {
        controller.enqueue(bytes.slice(i, i + chunkSize));
      }
      controller.close();
    },
  });
  return new Response(stream, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

function jsonResponse(status, data) {
  return new Response(JSON.stringify(data), { status, headers: { "Content-Type": "application/json" } });
}

function run(doc, server) {
  const requests = [];
  const history = [];
  const context = vm.createContext({
    document: doc,
    window: {
      location: { href: "http://localhost/" },
      history: { replaceState: (_s, _t, url) => history.push(url) },
      setTimeout,
    },
    fetch: async (url, options = {}) => {
      const request = { url, options, body: options.body ? JSON.parse(options.body) : null };
      requests.push(request);
      return server(request);
    },
    TextDecoder,
    URL,
    console,
  });
  vm.runInContext(source, context, { filename: "chat.js" });
  return { requests, history };
}

async function settle(condition, what) {
  for (let i = 0; i < 200; i += 1) {
    if (condition()) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error("timed out waiting for " + what);
}

function texts(element) {
  return element.childNodes.map((n) => (n.tagName ? `<${n.tagName.toLowerCase()}>${n.textContent}` : n.textContent));
}

// ---- 1. a loaded conversation: citations, sources, feedback state ----
{
  const doc = page("1");
  run(doc, () => jsonResponse(404, {}));
  const answer = doc.querySelectorAll(".message.assistant")[0];
  const body = answer.querySelector(".message-body").querySelector("p");
  check(
    JSON.stringify(texts(body)) === JSON.stringify(["Ice it ", "<button>[1]", " and rest [3]."]),
    "server-rendered answer: [1] becomes a button, unknown [3] stays text: " + JSON.stringify(texts(body))
  );
  check(answer.querySelector(".sources") !== null, "sources list under a loaded answer");
  const thumbs = answer.querySelectorAll(".thumb");
  check(thumbs.length === 2, "two thumbs");
  check(thumbs[0].getAttribute("aria-pressed") === "true", "stored rating shows as pressed");
  check(doc.querySelectorAll(".message.user")[0].querySelector(".feedback") === null, "no thumbs on questions");
}

// ---- 2. asking in an existing conversation, streamed ----
{
  const doc = page("1");
  const done = {
    message_id: 9, conversation_id: 1, answer: "Swelling — goes down [2]. <img src=x onerror=alert(1)>",
    citations: [CITATIONS[1]], flagged: true, flags: ["low_retrieval_confidence", "guard:block"],
    held: false,
  };
  const { requests } = run(doc, (request) => {
    if (request.url === "/chat/ask") {
      return sseResponse([
        ["sources", { citations: CITATIONS }],
        ["token", { text: "Swelling — " }],
        ["token", { text: "goes down [2]. <img src=x onerror=alert(1)>" }],
        ["done", done],
      ]);
    }
    if (request.url.startsWith("/passage/")) {
      return jsonResponse(200, {
        doc_id: "medical/ice packs", title: "Ice packs", source_url: "javascript:alert(1)",
        collection: "medical", before: "Before text. ", passage: "Ice reduces swelling.",
        after: " After text.", start: 50, end: 71,
      });
    }
    if (request.url === "/chat/feedback") {
      return jsonResponse(201, { id: 3 });
    }
    return jsonResponse(404, { error: "not_found", message: "nope" });
  });
  const question = doc.getElementById("question");
  const send = doc.getElementById("send");
  doc.getElementById("collection").value = "medical";
  question.value = "  And the swelling?  ";
  const shiftEnter = { type: "keydown", key: "Enter", shiftKey: true };
  question.dispatchEvent(shiftEnter);
  check(requests.length === 0 && !shiftEnter.defaultPrevented, "Shift+Enter does not send");
  question.dispatchEvent({ type: "keydown", key: "Enter", shiftKey: false });
  await settle(() => doc.getElementById("announcer").textContent !== "", "the answer");

  const ask = requests[0];
  check(ask.url === "/chat/ask", "posts to /chat/ask");
  check(ask.options.method === "POST", "with POST");
  check(ask.options.headers["X-CSRFToken"] === TOKEN, "with the CSRF header from the meta tag");
  check(ask.options.headers["Content-Type"] === "application/json", "as JSON");
  check(
    JSON.stringify(ask.body) === JSON.stringify({ question: "And the swelling?", conversation_id: 1, collection: "medical" }),
    "body: " + JSON.stringify(ask.body)
  );
  check(question.value === "", "the box is cleared");
  check(!send.disabled, "send is enabled again");

  const answers = doc.querySelectorAll(".message.assistant");
  const li = answers[answers.length - 1];
  check(li.dataset.messageId === "9", "the answer knows its message id");
  const body = li.querySelector(".message-body");
  check(body.textContent === done.answer, "the answer text is intact: " + body.textContent);
  check(body.querySelectorAll("img").length === 0, "model text is never parsed as HTML");
  const cite = body.querySelector(".citation");
  check(cite !== null && cite.textContent === "[2]", "[2] is a citation button");
  check(li.querySelector(".notice-flagged") !== null, "a flagged answer says so");
  check(li.querySelector(".notice-flagged").textContent.includes("low_retrieval_confidence"), "with its flags");
  check(!li.querySelector(".notice-flagged").textContent.includes("guard:"), "guard flags are not listed");
  check(doc.getElementById("announcer").textContent === "Answer ready.", "announced to screen readers");
  check(!li.classList.contains("streaming"), "streaming state cleared");

  // The citation panel.
  cite.click();
  const panel = doc.getElementById("citation-panel");
  await settle(() => doc.querySelector("mark") !== null, "the passage");
  const passage = requests[requests.length - 1];
  check(passage.url === "/passage/medical/ice%20packs?start=50&end=71", "passage URL: " + passage.url);
  check(!panel.hidden, "the panel opens");
  check(doc.getElementById("panel-title").textContent === "Ice packs", "panel title");
  const quote = doc.querySelector(".passage");
  check(
    JSON.stringify(texts(quote)) === JSON.stringify(["…Before text. ", "<mark>Ice reduces swelling.", " After text.…"]),
    "passage highlighted in its context: " + JSON.stringify(texts(quote))
  );
  check(doc.querySelector(".source-link") === null, "a javascript: source URL is not linked");
  check(doc.activeElement === doc.getElementById("panel-title"), "focus moves to the panel");
  doc.dispatchEvent({ type: "keydown", key: "Escape" });
  check(panel.hidden, "Escape closes the panel");
  check(doc.activeElement === cite, "focus returns to the citation");

  // Thumbs down with a correction.
  const down = li.querySelectorAll(".thumb")[1];
  down.click();
  const form = li.querySelector(".feedback-form");
  check(!form.hidden, "thumbs down opens the correction form");
  form.querySelector("textarea").value = "It goes down in two days [2].";
  form.querySelector("input").value = "";
  form.querySelector("button.primary").click();
  await settle(() => li.querySelector(".feedback-status").textContent.startsWith("Thank"), "feedback");
  const feedback = requests[requests.length - 1];
  check(feedback.url === "/chat/feedback", "feedback goes to /chat/feedback");
  check(feedback.options.headers["X-CSRFToken"] === TOKEN, "feedback carries the CSRF header");
  check(
    JSON.stringify(feedback.body) ===
      JSON.stringify({ message_id: 9, rating: -1, correction: "It goes down in two days [2].", reason: null }),
    "feedback body: " + JSON.stringify(feedback.body)
  );
  check(down.getAttribute("aria-pressed") === "true", "thumbs down shows as pressed");
  check(form.hidden, "the form closes after sending");
}

// ---- 3. a new conversation appears in the sidebar and the address ----
{
  const doc = page("");
  let polls = 0;
  const { history } = run(doc, (request) => {
    if (String(request.url).startsWith("/api/conversations/")) {
      polls += 1;
      // Held on the first poll, approved by a reviewer on the second.
      const released = polls > 1;
      return jsonResponse(200, { id: 5, messages: [
        { id: 3, role: "user", content: "A new question", citations: [], held: false },
        { id: 4, role: "assistant", content: released ? "Approved **text** [1]." : "", citations: [CITATIONS[0]],
          held: !released, review: released ? "approved" : "pending", rating: null },
      ] });
    }
    return sseResponse([
      ["sources", { citations: [] }],
      ["token", { text: "Held." }],
      ["done", { message_id: 4, conversation_id: 5, answer: "", citations: [], flagged: true, flags: ["unsafe"], held: true }],
    ], 3);
  });
  doc.getElementById("question").value = "A new question";
  doc.getElementById("ask-form").requestSubmit();
  await settle(() => doc.getElementById("announcer").textContent !== "", "the answer");
  check(doc.querySelector(".welcome") === null, "the welcome text goes away");
  check(history.includes("/c/5"), "the address becomes /c/5: " + JSON.stringify(history));
  const link = doc.getElementById("conversation-list").querySelector("a");
  check(link && link.href === "/c/5" && link.getAttribute("aria-current") === "page", "sidebar link to the new conversation");
  check(doc.getElementById("conversation-list").querySelector(".empty") === null, "the empty note goes away");
  const li = doc.querySelectorAll(".message.assistant")[0];
  check(li.querySelector(".notice-held") !== null, "a held answer says it is held for review");
  check(li.querySelector(".feedback") === null, "no thumbs on an answer that is not shown");
  await settle(() => li.querySelector(".notice-reviewed") !== null, "the approved answer");
  check(polls === 2, "polled until the reviewer decided, then stopped: " + polls);
  const shown = li.querySelector(".message-body").querySelector("p");
  check(JSON.stringify(texts(shown)) === JSON.stringify(["Approved ", "<strong>text", " ", "<button>[1]", "."]),
    "the approved answer appears, Markdown as nodes: " + JSON.stringify(texts(shown)));
  check(li.querySelector(".notice-held") === null, "the held notice goes away");
  check(li.querySelector(".feedback") !== null, "thumbs appear on the approved answer");
}

// ---- 4. a refused question and a broken stream ----
{
  const doc = page("1");
  let calls = 0;
  run(doc, () => {
    calls += 1;
    if (calls === 1) {
      return jsonResponse(400, { error: "invalid_input", message: "The question is too long." });
    }
    return sseResponse([["sources", { citations: [] }], ["token", { text: "Part" }]]);
  });
  const question = doc.getElementById("question");
  question.value = "Too long";
  doc.getElementById("ask-form").requestSubmit();
  await settle(() => doc.querySelector(".notice-error") !== null, "the error");
  check(doc.querySelector(".notice-error").textContent === "The question is too long.", "the server's message is shown");
  check(question.value === "Too long", "the question is kept to fix and resend");
  await settle(() => !doc.getElementById("send").disabled, "send enabled");

  doc.getElementById("ask-form").requestSubmit();
  await settle(() => doc.querySelectorAll(".notice-error").length === 2, "the second error");
  const last = doc.querySelectorAll(".notice-error")[1];
  check(last.textContent.includes("closed before the answer was complete"), "a cut stream is reported");
}

if (failures) {
  process.exit(1);
}
console.log("chat.js: all checks passed");
