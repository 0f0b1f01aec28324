// Consents: every current grant in plain words, its history, and a form to grant, widen, narrow or
// revoke that shows exactly what changes before the wallet signs. A delegate acts here for the patient
// it represents, within its delegation's categories (as wallet transactions: only the patient signs
// requests for the relayer).
import * as actions from "../actions.js";
import { get } from "../api.js";
import { actingForOther, codes, delegationFor, participants, state, subject } from "../state.js";
import { act, addr, checkboxes, checked, field, h, labels, newId, put, replace, rotateChoice, status, table, utc } from "../ui.js";
import { refresh } from "../main.js";
import { afterAccessEnded, staleNotice } from "./keyfollow.js";

const FOREVER = (1n << 64n) - 1n;
const accessLabel = (a) => (a === 0 ? "read" : "write");
// JSON numbers above 2^53 arrive rounded: every expiry past 2^63 is "no end".
const expiryOf = (v) => (BigInt(v) >= 1n << 63n ? FOREVER : BigInt(v));

export async function consentsPage(main) {
  if (!state.account) { put(main, h("p", {}, "Connect your wallet first.")); return; }
  const patient = subject();
  const delegation = delegationFor(patient);
  const [data, people, notice] = await Promise.all([
    get(`/api/patients/${patient}/consents`), participants(), staleNotice(patient)]);
  const names = new Map(people.map((p) => [p.address, p.kind_label]));
  const form = h("div#consent-form");
  const mine = (g) => !delegation || g.categories.every((c) => delegation.categories.includes(c));
  put(main,
    actingForOther() ? h("p#acting", {}, "You act for patient ", h("code", {}, patient), ` as a delegate for ${labels(codes().categories, delegation.categories)}; `,
      "what you grant stays within those categories and ends with your delegation.") : null,
    notice,
    h("section", { "aria-labelledby": "cur-h" },
      h("h2#cur-h", {}, "Current consents"),
      table(actingForOther() ? "Consents of the patient you represent" : "Consents you have given",
        ["Who", "Access", "Categories", "Purposes", "Until", "Status", "Actions"],
        data.current.map((g) => [
          addr(g.grantee, names.get(g.grantee)),
          accessLabel(g.access),
          labels(codes().categories, g.categories),
          labels(codes().purposes, g.purposes),
          utc(g.expiry),
          g.live ? "active" : "ended",
          mine(g) ? h("span.actions", {},
            h("button", { type: "button", class: "small", onclick: () => showForm(form, people, g), "aria-label": `Change the ${accessLabel(g.access)} consent of ${g.grantee}` }, "Change"),
            h("button", { type: "button", class: "small danger", onclick: () => showRevoke(form, g), "aria-label": `Revoke the ${accessLabel(g.access)} consent of ${g.grantee}` }, "Revoke"))
            : "outside your delegation",
        ]), actingForOther() ? "This patient has not given any consent yet." : "You have not given any consent yet."),
      h("button#new-consent", { type: "button", onclick: () => showForm(form, people, null) }, "Grant a new consent")),
    form,
    h("section", { "aria-labelledby": "hist-h" },
      h("h2#hist-h", {}, "History"),
      table("Grants and revocations", ["When", "By", "What"],
        data.history.slice().reverse().map((e) => [utc(e.time), addr(e.actor), e.detail]), "No history yet.")),
    actingForOther() ? null : voidSection());
}

function voidSection() {
  const button = h("button#void-requests", { type: "button", class: "danger" }, "Void my unsent signed requests");
  button.addEventListener("click", () => act(button, "Voiding your signed requests", async () => {
    const p = await actions.invalidateRequests(state.account);
    status(`Every signed request you made before now is void (your requests now carry number ${p.nonce}).`);
  }));
  return h("section", { "aria-labelledby": "void-h" },
    h("h2#void-h", {}, "Signed requests"),
    h("p", {}, "A request you signed stays valid for an hour until it is sent. If you think one was not sent (or should not be), void all of them at once."),
    button);
}

function via() {
  const name = newId("via");
  const relayer = state.info.relayer && !actingForOther();  // only the patient's own signature is relayed
  const option = (value, text, on) => {
    const id = newId("via");
    return h("div.check", {}, h("input", { type: "radio", id, name, value, checked: on }), h("label", { for: id }, text));
  };
  return h("fieldset.checks", {}, h("legend", {}, "Send it"),
    relayer ? option("relayer", "Sign it; the portal's relayer sends it and pays the gas", true) : null,
    option("wallet", "Send it from my wallet as a transaction (I pay the gas)", !relayer));
}

const chosen = (fieldset) => fieldset.querySelector("input:checked").value;

function showForm(form, people, current) {
  const patient = subject();
  const delegation = delegationFor(patient);
  const grantee = h("select", { required: true },
    h("option", { value: "" }, "Choose who…"),
    people.filter((p) => p.kind !== 0).map((p) =>
      h("option", { value: p.address, selected: current && p.address === current.grantee },
        `${p.kind_label} ${p.address}${p.suspended ? " (suspended)" : ""}`)));
  if (current) grantee.disabled = true;
  const accessName = newId("acc");
  const accessBox = h("fieldset.checks", {}, h("legend", {}, "Access"),
    [0, 1].map((a) => {
      const id = newId("acc");
      return h("div.check", {}, h("input", { type: "radio", name: accessName, id, value: a, checked: (current ? current.access : 0) === a, disabled: !!current }),
        h("label", { for: id }, a === 0 ? "Read the records" : "Add records to the file"));
    }));
  const allowed = codes().categories.filter((c) => !delegation || delegation.categories.includes(c.code));
  const cats = checkboxes("Categories", allowed, current ? current.categories : []);
  const purposes = checkboxes("Purposes", codes().purposes.filter((p) => p.code !== 5), current ? current.purposes : []);
  const until = h("input", { type: "date" });
  if (current && expiryOf(current.expiry) < FOREVER) until.value = new Date(Number(current.expiry) * 1000).toISOString().slice(0, 10);
  const how = via();
  const review = h("div.review", { "aria-live": "polite" });
  const reviewButton = h("button", { type: "submit" }, "Review the change");
  const f = h("form", {
    onsubmit: (e) => {
      e.preventDefault();
      act(reviewButton, "Comparing with what is on chain", async () => {
        const who = current ? current.grantee : grantee.value;
        if (!who) throw new Error("Choose who the consent is for.");
        const access = Number(accessBox.querySelector("input:checked").value);
        const after = {
          categories: checked(cats), purposes: checked(purposes),
          expiry: until.value ? BigInt(Math.floor(Date.parse(until.value + "T23:59:59Z") / 1000)) : FOREVER,
        };
        if (!after.categories.length) throw new Error("Choose at least one category.");
        if (!after.purposes.length) throw new Error("Choose at least one purpose.");
        const before = await get(`/api/patients/${patient}/consents/${who}/${access}`);
        showReview(review, { patient, who, access, before, after, via: chosen(how), people });
        status("Check the change below, then sign it.");
      });
    },
  }, current ? h("p", {}, "Changing the ", accessLabel(current.access), " consent of ", h("code", {}, current.grantee), ".")
    : field("Who", grantee, "Registered organisations and professionals."),
  accessBox, cats, purposes, field("Until (optional)", until, "Leave empty for no end date; you can revoke at any time."),
  how, reviewButton);
  replace(form, h("section", { "aria-labelledby": "form-h" },
    h("h2#form-h", { tabindex: -1 }, current ? "Change a consent" : "Grant a consent"), f, review));
  form.querySelector("h2").focus();
}

function diffLines(before, after) {
  const had = before.expiry !== 0 ? before : { categories: [], purposes: [], expiry: 0 };
  const lines = [];
  const diff = (what, table, old, now) => {
    const added = now.filter((c) => !old.includes(c));
    const removed = old.filter((c) => !now.includes(c));
    if (added.length) lines.push(["add", `adds ${what}: ${labels(table, added)}`]);
    if (removed.length) lines.push(["remove", `removes ${what}: ${labels(table, removed)}`]);
  };
  diff("categories", codes().categories, had.categories, after.categories);
  diff("purposes", codes().purposes, had.purposes, after.purposes);
  if (expiryOf(had.expiry) !== after.expiry) {
    lines.push(["change", had.expiry ? `end changes from ${utc(had.expiry)} to ${utc(after.expiry)}` : `ends: ${utc(after.expiry)}`]);
  }
  return lines;
}

function showReview(review, { patient, who, access, before, after, via: how, people }) {
  const lines = diffLines(before, after);
  const target = people.find((p) => p.address === who);
  // keys released under a read consent go stale when categories are dropped or its end comes earlier
  const ending = before.keys_released && access === 0
    && (before.categories.some((c) => !after.categories.includes(c)) || after.expiry < expiryOf(before.expiry));
  const rotation = ending ? rotateChoice(!!state.keys) : null;
  const sign = h("button#sign", { type: "button" }, how === "relayer" ? "Sign with my wallet" : "Send from my wallet");
  sign.addEventListener("click", () => act(sign, "Waiting for your wallet", async () => {
    const result = await actions.grant({
      patient, grantee: who, granteeKey: target && target.encryption_key, access, categories: after.categories,
      purposes: after.purposes, expiry: after.expiry, via: how,
    });
    const rotated = await afterAccessEnded(patient, rotation);
    await refresh((result && result.changed === false ? "Nothing changed: the consent already had these terms." : "The consent is on chain.") + rotated);
  }));
  replace(review,
    h("h3", {}, "What changes"),
    h("p", {}, `${before.expiry !== 0 ? "Changing" : "Granting"} ${accessLabel(access)} access for `, h("code", {}, who), ":"),
    lines.length ? h("ul#changes", {}, lines.map(([k, t]) => h("li", { class: k }, t))) : h("p#changes", {}, "Nothing changes."),
    access === 0 ? h("p.hint", {}, "The keys of these categories are sealed to the grantee's registered key in this browser, and only that sealed envelope is stored.") : null,
    rotation ? rotation.element : null,
    lines.length ? sign : null);
}

function showRevoke(form, g) {
  const how = via();
  const rotation = g.access === 0 && g.keys_released ? rotateChoice(!!state.keys) : null;
  const button = h("button#confirm-revoke", { type: "button", class: "danger" }, "Revoke it");
  button.addEventListener("click", () => act(button, "Waiting for your wallet", async () => {
    const result = await actions.revoke({ patient: g.patient, grantee: g.grantee, access: g.access, via: chosen(how) });
    const rotated = await afterAccessEnded(g.patient, rotation);
    await refresh((result && result.changed === false ? "Nothing changed." : "Consent revoked.") + rotated);
  }));
  replace(form, h("section", { "aria-labelledby": "form-h" },
    h("h2#form-h", { tabindex: -1 }, "Revoke a consent"),
    h("ul#changes", {}, h("li.remove", {}, `ends the ${accessLabel(g.access)} access of ${g.grantee} to ${labels(codes().categories, g.categories)} for ${labels(codes().purposes, g.purposes)}, at once`)),
    how, rotation ? rotation.element : null, button));
  form.querySelector("h2").focus();
}

