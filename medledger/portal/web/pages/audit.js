// Audit trail: a timeline chart (who accessed what, when, why; emergency accesses stand out) and a
// filterable table, downloadable as CSV. Rebuilt by the server from chain events alone.
import { get } from "../api.js";
import { state, subject } from "../state.js";
import { addr, csv, download, field, h, put, replace, short, utc } from "../ui.js";

const SVG = "http://www.w3.org/2000/svg";
const GROUPS = [
  ["read", "Reads", (e) => e.event === "RecordAccessed" && !e.emergency],
  ["emergency", "Emergency", (e) => e.emergency],
  ["consent", "Consents", (e) => /^Consent|^Signed(ConsentConsumed|RequestsInvalidated)$/.test(e.event)],
  ["delegate", "Delegates & settings", (e) => e.event.startsWith("Delegate") || e.event === "EmergencyOptOutChanged" || e.event === "EmergencyAccessClosed"],
  ["record", "Records written", (e) => /^Record(Registered|Amended|Erased)$|^BatchAnchored$/.test(e.event)],
];
const groupOf = (e) => (GROUPS.find(([, , test]) => test(e)) || GROUPS[4])[0];

export async function auditPage(main) {
  if (!state.account) { put(main, h("p", {}, "Connect your wallet first.")); return; }
  const patient = new URLSearchParams(location.search).get("patient") || subject();
  const entries = await get(`/api/patients/${patient}/trail`);
  const chart = h("figure.timeline", {});
  const tableBox = h("div#trail-table");
  const count = h("p#trail-count", { role: "status" });
  const kind = h("select", {}, h("option", { value: "" }, "All events"), GROUPS.map(([v, t]) => h("option", { value: v }, t)));
  const actor = h("input", { type: "search", spellcheck: "false", placeholder: "0x…" });
  const from = h("input", { type: "date" });
  const to = h("input", { type: "date" });
  const filtered = () => entries.filter((e) =>
    (!kind.value || groupOf(e) === kind.value)
    && (!actor.value.trim() || e.actor.toLowerCase().includes(actor.value.trim().toLowerCase()))
    && (!from.value || e.time >= Date.parse(from.value + "T00:00:00Z") / 1000)
    && (!to.value || e.time <= Date.parse(to.value + "T23:59:59Z") / 1000));
  const update = () => {
    const rows = filtered();
    replace(count, `Showing ${rows.length} of ${entries.length} events.`);
    replace(tableBox, trailTable(rows));
  };
  for (const input of [kind, actor, from, to]) input.addEventListener("input", update);
  const csvButton = h("button#trail-csv", {
    type: "button",
    onclick: () => download("audit-trail.csv", csv([
      ["time_utc", "block", "event", "actor", "record", "purpose", "emergency", "detail"],
      ...filtered().map((e) => [e.time_utc, e.block, e.event, e.actor, e.record, e.purpose, e.emergency, e.detail])])),
  }, "Download these rows as CSV");
  put(main, 
    patient !== state.account ? h("p#acting", {}, "The trail of patient ", h("code", {}, patient), " (you are a delegate).") : null,
    h("section", { "aria-labelledby": "tl-h" }, h("h2#tl-h", {}, "Timeline"), chart),
    h("section", { "aria-labelledby": "tb-h" },
      h("h2#tb-h", {}, "Every event"),
      h("form.filters", { role: "search", "aria-label": "Filter the audit trail", onsubmit: (e) => e.preventDefault() },
        field("Show", kind), field("Who (address)", actor), field("From", from), field("To", to)),
      count, csvButton, tableBox));
  drawTimeline(chart, entries);
  update();
}

function trailTable(rows) {
  if (!rows.length) return h("p.empty", {}, "No events match.");
  return h("div.table-wrap", { role: "region", "aria-label": "Audit trail", tabindex: 0 },
    h("table.trail", {},
      h("caption", {}, "Audit trail, newest first"),
      h("thead", {}, h("tr", {}, ["When", "Who", "What", "Why"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.slice().reverse().map((e) => h("tr", { class: e.emergency ? "emergency" : groupOf(e) },
        h("td", { dataset: { label: "When" } }, utc(e.time)),
        h("td", { dataset: { label: "Who" } }, addr(e.actor)),
        h("td", { dataset: { label: "What" } }, e.emergency ? h("strong.flag", {}, "Emergency: ") : null, e.detail),
        h("td", { dataset: { label: "Why" } }, e.purpose || ""))))));
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function drawTimeline(figure, entries) {
  const counts = Object.fromEntries(GROUPS.map(([k]) => [k, 0]));
  for (const e of entries) counts[groupOf(e)]++;
  const summary = entries.length
    ? `Timeline of ${entries.length} events from ${utc(entries[0].time)} to ${utc(entries[entries.length - 1].time)}: `
      + GROUPS.map(([k, t]) => `${counts[k]} ${t.toLowerCase()}`).join(", ") + "."
    : "No events yet.";
  // drawn at the width it is shown, so its text stays readable on a phone
  const W = Math.min(800, Math.max(320, window.innerWidth - 48));
  const lane = 34, left = W < 500 ? 118 : 150, top = 10, H = top + lane * GROUPS.length + 30;
  const t0 = entries.length ? entries[0].time : 0;
  const t1 = entries.length ? Math.max(entries[entries.length - 1].time, t0 + 1) : 1;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (W - left - 20);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": summary, preserveAspectRatio: "xMinYMin meet" });
  GROUPS.forEach(([key, title], i) => {
    const y = top + lane * i + lane / 2;
    chart.append(svg("text", { x: 8, y: y + 5, class: "lane-label" }, title));
    chart.append(svg("line", { x1: left, x2: W - 20, y1: y, y2: y, class: "lane" }));
    for (const e of entries) {
      if (groupOf(e) !== key) continue;
      const dot = svg("circle", { cx: x(e.time).toFixed(1), cy: y, r: key === "emergency" ? 8 : 5, class: `dot ${key}` },
        svg("title", {}, `${utc(e.time)}: ${short(e.actor)} ${e.detail}`));
      chart.append(dot);
    }
  });
  const axisY = top + lane * GROUPS.length + 18;
  if (entries.length) {
    const day = (e) => (W < 500 ? utc(e.time).slice(0, 10) : utc(e.time));
    chart.append(svg("text", { x: left, y: axisY, class: "axis" }, day(entries[0])));
    chart.append(svg("text", { x: W - 20, y: axisY, class: "axis", "text-anchor": "end" }, day(entries[entries.length - 1])));
  }
  replace(figure, chart, h("figcaption", {}, summary));
}
