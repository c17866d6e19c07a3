// A very small DOM, enough to run web/static/chat.js under Node without a browser.
// innerHTML / outerHTML / insertAdjacentHTML throw: the page script must never use them.

class Node {
  constructor(ownerDocument) {
    this.ownerDocument = ownerDocument;
    this.parentNode = null;
  }
  remove() {
    if (this.parentNode) {
      const siblings = this.parentNode.childNodes;
      siblings.splice(siblings.indexOf(this), 1);
      this.parentNode = null;
    }
  }
}

export class Text extends Node {
  constructor(doc, data) {
    super(doc);
    this.data = String(data);
  }
  get textContent() {
    return this.data;
  }
  set textContent(value) {
    this.data = String(value);
  }
  appendData(more) {
    this.data += String(more);
  }
}

const REFLECTED = ["id", "type", "href", "target", "rel", "name", "content"];

function kebab(name) {
  return name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

export class Element extends Node {
  constructor(doc, tagName) {
    super(doc);
    this.tagName = tagName.toUpperCase();
    this.childNodes = [];
    this.attributes = new Map();
    this.listeners = {};
    this.value = "";
    this.disabled = false;
    this.rows = 0;
    this.maxLength = -1;
    this.htmlFor = "";
    this.scrollTop = 0;
    this.scrollHeight = 100;
    this.clientHeight = 100;
    const element = this;
    this.dataset = new Proxy(
      {},
      {
        get: (_, key) => element.getAttribute("data-" + kebab(String(key))) ?? undefined,
        set: (_, key, value) => {
          element.setAttribute("data-" + kebab(String(key)), String(value));
          return true;
        },
      }
    );
    this.classList = {
      add: (...names) => {
        const set = new Set(element.className.split(/\s+/).filter(Boolean));
        names.forEach((n) => set.add(n));
        element.className = Array.from(set).join(" ");
      },
      remove: (...names) => {
        element.className = element.className
          .split(/\s+/)
          .filter((n) => n && !names.includes(n))
          .join(" ");
      },
      contains: (name) => element.className.split(/\s+/).includes(name),
    };
  }
  get className() {
    return this.getAttribute("class") || "";
  }
  set className(value) {
    this.setAttribute("class", value);
  }
  get hidden() {
    return this.attributes.has("hidden");
  }
  set hidden(value) {
    if (value) {
      this.setAttribute("hidden", "");
    } else {
      this.removeAttribute("hidden");
    }
  }
  get children() {
    return this.childNodes.filter((n) => n instanceof Element);
  }
  get firstChild() {
    return this.childNodes[0] || null;
  }
  setAttribute(name, value) {
    this.attributes.set(name, String(value));
  }
  getAttribute(name) {
    return this.attributes.has(name) ? this.attributes.get(name) : null;
  }
  hasAttribute(name) {
    return this.attributes.has(name);
  }
  removeAttribute(name) {
    this.attributes.delete(name);
  }
  _adopt(items) {
    return items.map((item) => {
      const node = item instanceof Node ? item : new Text(this.ownerDocument, item);
      node.remove();
      node.parentNode = this;
      return node;
    });
  }
  append(...items) {
    this.childNodes.push(...this._adopt(items));
  }
  prepend(...items) {
    this.childNodes.unshift(...this._adopt(items));
  }
  replaceChildren(...items) {
    for (const child of this.childNodes) {
      child.parentNode = null;
    }
    this.childNodes = [];
    this.append(...items);
  }
  get textContent() {
    return this.childNodes.map((n) => n.textContent).join("");
  }
  set textContent(value) {
    this.replaceChildren(String(value));
  }
  set innerHTML(_) {
    throw new Error("innerHTML used");
  }
  get innerHTML() {
    throw new Error("innerHTML used");
  }
  set outerHTML(_) {
    throw new Error("outerHTML used");
  }
  insertAdjacentHTML() {
    throw new Error("insertAdjacentHTML used");
  }
  addEventListener(type, handler) {
    (this.listeners[type] ||= []).push(handler);
  }
  dispatchEvent(event) {
    event.target ||= this;
    event.defaultPrevented ||= false;
    event.preventDefault ||= () => {
      event.defaultPrevented = true;
    };
    for (const handler of this.listeners[event.type] || []) {
      handler.call(this, event);
    }
    if (this.parentNode && event.bubbles !== false) {
      this.parentNode.dispatchEvent(event);
    } else if (this === this.ownerDocument.root) {
      this.ownerDocument.dispatchEvent(event);
    }
    return !event.defaultPrevented;
  }
  click() {
    const event = { type: "click" };
    this.dispatchEvent(event);
    if (this.tagName === "BUTTON" && (this.type || "submit") === "submit" && !event.defaultPrevented) {
      const form = this.closest("form");
      if (form) {
        form.requestSubmit();
      }
    }
  }
  closest(selector) {
    let node = this;
    while (node instanceof Element) {
      if (matches(node, selector)) {
        return node;
      }
      node = node.parentNode;
    }
    return null;
  }
  requestSubmit() {
    this.dispatchEvent({ type: "submit" });
  }
  focus() {
    this.ownerDocument.activeElement = this;
  }
  scrollIntoView() {}
  after(...items) {
    const parent = this.parentNode;
    const nodes = parent._adopt(items);
    parent.childNodes.splice(parent.childNodes.indexOf(this) + 1, 0, ...nodes);
  }
  *descendants() {
    for (const child of this.children) {
      yield child;
      yield* child.descendants();
    }
  }
  querySelectorAll(selector) {
    return Array.from(this.descendants()).filter((e) => matches(e, selector));
  }
  querySelector(selector) {
    return this.querySelectorAll(selector)[0] || null;
  }
}

for (const name of REFLECTED) {
  Object.defineProperty(Element.prototype, name, {
    get() {
      return this.getAttribute(name) ?? "";
    },
    set(value) {
      this.setAttribute(name, value);
    },
  });
}

// Compound selectors only: tag, #id, .class, [attr], [attr="value"].
function matches(element, selector) {
  const pattern = /^([a-z]+)?((?:[#.][\w-]+|\[[\w-]+(?:="[^"]*")?\])*)$/i;
  const m = selector.trim().match(pattern);
  if (!m) {
    throw new Error("selector not supported by the fake DOM: " + selector);
  }
  if (m[1] && element.tagName !== m[1].toUpperCase()) {
    return false;
  }
  const parts = m[2].match(/[#.][\w-]+|\[[\w-]+(?:="[^"]*")?\]/g) || [];
  return parts.every((part) => {
    if (part[0] === "#") {
      return element.getAttribute("id") === part.slice(1);
    }
    if (part[0] === ".") {
      return element.classList.contains(part.slice(1));
    }
    const a = part.slice(1, -1).match(/^([\w-]+)(?:="([^"]*)")?$/);
    return a[2] === undefined ? element.hasAttribute(a[1]) : element.getAttribute(a[1]) === a[2];
  });
}

export class Document {
  constructor() {
    this.root = new Element(this, "html");
    this.activeElement = null;
    this.listeners = {};
  }
  createElement(tag) {
    return new Element(this, tag);
  }
  createTextNode(data) {
    return new Text(this, data);
  }
  getElementById(id) {
    return this.root.querySelector("#" + id);
  }
  querySelector(selector) {
    return this.root.querySelector(selector);
  }
  querySelectorAll(selector) {
    return this.root.querySelectorAll(selector);
  }
  addEventListener(type, handler) {
    (this.listeners[type] ||= []).push(handler);
  }
  dispatchEvent(event) {
    for (const handler of this.listeners[event.type] || []) {
      handler(event);
    }
  }
}

// Build elements from a compact description: [tag, {attrs}, ...children].
export function build(doc, spec) {
  if (typeof spec === "string") {
    return doc.createTextNode(spec);
  }
  const [tag, attrs, ...children] = spec;
  const element = doc.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "hidden") {
      element.hidden = Boolean(value);
    } else {
      element.setAttribute(name, value);
    }
  }
  element.append(...children.map((c) => build(doc, c)));
  return element;
}
