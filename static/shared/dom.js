/* Small DOM helpers shared by the H5 pages (shared/h5.js) and the cadre console (admin/admin.js).
   Load it with <script src="/static/shared/dom.js" defer> before either bundle; they read window.dom. */
(function () {
  "use strict";

  const $ = (selector, root) => (root || document).querySelector(selector);
  const show = (node, on = true) => { if (node) node.hidden = !on; };

  /** el("a", { class|className, dataset: {...}, onclick: fn, href, … }, ...children): a new element.
   *  Known properties are set as properties, others as attributes; null/false children are skipped. */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key in node) node[key] = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child != null && child !== false) node.append(child);
    }
    return node;
  }

  /** Show text in node (hidden when empty). */
  function setMessage(node, text) {
    if (!node) return;
    node.textContent = text || "";
    show(node, Boolean(text));
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  window.dom = Object.freeze({ $, show, el, setMessage, pad });
})();
