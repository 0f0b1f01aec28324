// Small DOM helpers: elements, announcements for screen readers, formatting, downloads.

/** h("tag.class#id", {attrs}, ...children): an element. Strings become text (never HTML). */
export function h(spec, attrs = {}, ...children) {
  const [, tag, rest] = spec.match(/^([a-z0-9]+)(.*)$/i);
  const el = document.createElement(tag);
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1)); else el.id = part.slice(1);
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Append children to an element, skipping null/false (for optional parts). */
export function put(el, ...children) {
  append(el, children);
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
export const newId = (prefix = "f") => `${prefix}-${++uid}`;

/** Polite status line (read by screen readers) and an assertive alert for errors. */
export function status(text) {
  document.getElementById("status").textContent = text;
}
export function alertError(text) {
  const el = document.getElementById("alert");
  el.hidden = !text;
  el.textContent = text || "";
  if (text) el.scrollIntoView({ block: "nearest" });
}

/** Run an action from a button: disables it, reports progress and errors. */
export async function act(button, label, fn) {
  alertError("");
  status(label + "…");
  if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); }
  try {
    const result = await fn();
    return result;
  } catch (error) {
    status("");
    alertError(error.message || String(error));
    return undefined;
  } finally {
    if (button) { button.disabled = false; button.removeAttribute("aria-busy"); }
  }
}

// --- formatting -----------------------------------------------------------------------------------------
export const short = (address) => (address ? `${address.slice(0, 6)}…${address.slice(-4)}` : "");
export const FOREVER = 2n ** 64n - 1n;

export function utc(seconds) {
  const s = BigInt(seconds);
  if (s >= 2n ** 63n - 1n) return "no end";
  return new Date(Number(s) * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

export function labels(table, codes) {
  const byCode = new Map(table.map((e) => [e.code, e.label]));
  return codes.map((c) => byCode.get(c) || `code ${c}`).join(", ") || "none";
}

export const mask = (codes) => codes.reduce((m, c) => m | (1 << c), 0);
export const unmask = (m) => Array.from({ length: 16 }, (_, i) => i).filter((i) => m & (1 << i));

/** An address shown short, with the full address for screen readers and on hover. */
export function addr(address, name) {
  return h("span.addr", { title: address, "aria-label": (name ? name + " " : "") + address },
    name ? `${name} ${short(address)}` : short(address));
}

/** Offer a file to save. */
export function download(filename, data, type = "text/csv") {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function csv(rows) {
  const cell = (v) => {
    const s = v == null ? "" : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return rows.map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
}

/** A group of checkboxes in a fieldset with a legend. */
export function checkboxes(legend, table, checked = [], name = newId("g")) {
  const set = new Set(checked);
  return h("fieldset.checks", {},
    h("legend", {}, legend),
    table.map((e) => {
      const id = newId(name);
      return h("div.check", {},
        h("input", { type: "checkbox", id, name, value: e.code, checked: set.has(e.code) }),
        h("label", { for: id }, e.label));
    }));
}

export function checked(fieldset) {
  return Array.from(fieldset.querySelectorAll("input:checked"), (i) => Number(i.value));
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || (input.id = newId("in"));
  const hintId = hint ? id + "-hint" : null;
  if (hintId) input.setAttribute("aria-describedby", hintId);
  return h("div.field", {}, h("label", { for: id }, label), input, hint ? h("p.hint", { id: hintId }, hint) : null);
}

/** A table with a caption; rows are arrays of cells (strings or nodes). */
export function table(caption, headers, rows, empty = "Nothing yet.") {
  if (!rows.length) return h("p.empty", {}, empty);
  return h("div.table-wrap", { role: "region", "aria-label": caption, tabindex: 0 },
    h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { dataset: { label: headers[i] } }, c)))))));
}

/** The "new keys" choice shown wherever someone's read access ends: the chain makes the keys released
 * to them stale, and no record of those categories can be written until they get new ones. */
export function rotateChoice(unlocked) {
  const id = newId("rot");
  const box = h("input", { type: "checkbox", id, checked: unlocked, disabled: !unlocked });
  const element = h("div.rotate", {},
    h("div.check", {}, box, h("label", { for: id }, "Give the categories whose keys this makes stale new keys now")),
    h("p.hint", {}, unlocked
      ? "Records written from now on are then closed to them, even with keys they kept. Your wallet sends one transaction for your own copy of the new keys, one for the new public keys and one per remaining reader."
      : "Unlock your keys (Your account) to give these categories new keys; until then their keys are stale and nobody can add records of them."));
  return { element, wanted: () => box.checked && !box.disabled };
}
