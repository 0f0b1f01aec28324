// Records: the patient's records by category; opening one fetches, checks and decrypts it here.
import { get } from "../api.js";
import { codes, state } from "../state.js";
import { act, h, labels, put, replace, short, status, utc } from "../ui.js";
import { openRecord } from "../blob.js";

export async function recordsPage(main) {
  if (!state.account) { put(main, h("p", {}, "Connect your wallet first.")); return; }
  const records = await get(`/api/patients/${state.account}/records`);
  const viewer = h("section#viewer", { "aria-live": "polite" });
  const byCategory = new Map();
  for (const r of records) {
    if (!byCategory.has(r.category_code)) byCategory.set(r.category_code, []);
    byCategory.get(r.category_code).push(r);
  }
  if (!records.length) put(main, h("p.empty", {}, "No records have been written for you yet."));
  for (const [category, list] of [...byCategory.entries()].sort((a, b) => a[0] - b[0])) {
    const id = `cat-${category}`;
    put(main, h("section", { "aria-labelledby": id },
      h("h2", { id }, labels(codes().categories, [category])),
      h("ul.records", {}, list.map((r) => h("li", {},
        h("span", {}, `${utc(r.created_at)} · ${r.batch ? `batch of ${r.leaf_count} readings` : "record"} `,
          h("code", { title: r.record_id }, short(r.record_id)), r.erased ? " · erased" : "", r.superseded_by ? " · superseded" : ""),
        r.erased || r.batch ? null : openButton(r, viewer))))));
  }
  put(main, viewer);
}

function openButton(r, viewer) {
  const button = h("button", { type: "button", class: "small", "aria-label": `Open record ${r.record_id}` }, "Open");
  button.addEventListener("click", () => act(button, "Fetching, checking and decrypting in this browser", async () => {
    const opened = await openRecord(state.account, r.record_id);
    const url = URL.createObjectURL(new Blob([opened.bytes], { type: opened.contentType }));
    const text = opened.contentType.includes("json") ? prettyJson(opened.bytes) : null;
    replace(viewer,
      h("h2", { tabindex: -1 }, "Record ", h("code", {}, short(r.record_id))),
      h("p#record-checks", {}, "CID, authentication and fingerprint checked: this is the content committed on chain."),
      h("p", {}, `${opened.contentType}, ${opened.bytes.length} bytes. `,
        h("a#record-download", { href: url, download: opened.name || `${r.record_id}.bin` }, "Save the original file")),
      text ? h("pre.record", { tabindex: 0 }, text) : null);
    viewer.querySelector("h2").focus();
    status("Record opened.");
  }));
  return button;
}

function prettyJson(bytes) {
  try { return JSON.stringify(JSON.parse(new TextDecoder().decode(bytes)), null, 2); } catch { return null; }
}
