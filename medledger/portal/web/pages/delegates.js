// Delegates: family or friends who may manage consents within bounds and read for family care; and
// the patients the connected account is a delegate of (it can act for them on the other pages).
import * as actions from "../actions.js";
import { get } from "../api.js";
import { codes, refreshPatient, state } from "../state.js";
import { act, addr, checkboxes, checked, field, h, labels, put, replace, rotateChoice, status, table, utc } from "../ui.js";
import { afterAccessEnded } from "./keyfollow.js";
import { actFor, refresh } from "../main.js";

export async function delegatesPage(main) {
  if (!state.account) { put(main, h("p", {}, "Connect your wallet first.")); return; }
  const p = await refreshPatient();
  const panel = h("section#remove-panel", { "aria-live": "polite" });
  put(main,
    p.represents.length ? representsSection(p.represents) : null,
    h("section", { "aria-labelledby": "dl-h" },
      h("h2#dl-h", {}, "Your delegates"),
      table("Delegates", ["Delegate", "Categories", "Until", "Status", "Actions"],
        p.delegates.map((d) => [
          addr(d.delegate), labels(codes().categories, d.categories), utc(d.expiry), d.live ? "active" : "ended",
          removeButton(d, panel),
        ]), "You have no delegates.")),
    panel,
    appointForm());
}

function removeButton(d, panel) {
  const button = h("button", { type: "button", class: "small danger", "aria-label": `Remove delegate ${d.delegate}` }, "Remove");
  button.addEventListener("click", () => {
    const rotation = rotateChoice(!!state.keys);
    const confirm = h("button#confirm-remove", { type: "button", class: "danger" }, "Remove this delegate");
    confirm.addEventListener("click", () => act(confirm, "Removing the delegate", async () => {
      await actions.removeDelegate(d.delegate);
      const rotated = await afterAccessEnded(state.account, rotation);
      await refresh(`${d.delegate} is no longer your delegate.` + rotated);
    }));
    replace(panel, h("h2", { tabindex: -1 }, "Remove a delegate"),
      h("ul#changes", {}, h("li.remove", {}, `ends ${d.delegate}'s delegation for ${labels(codes().categories, d.categories)}, at once`)),
      rotation.element, confirm);
    panel.querySelector("h2").focus();
  });
  return button;
}

function appointForm() {
  const who = h("input", { type: "text", required: true, spellcheck: "false", autocomplete: "off", pattern: "0x[0-9a-fA-F]{40}", placeholder: "0x…" });
  const cats = checkboxes("Categories they may manage and read", codes().categories);
  const until = h("input", { type: "date", required: true });
  const button = h("button", { type: "submit" }, "Appoint delegate");
  const form = h("form", {
    onsubmit: (e) => {
      e.preventDefault();
      act(button, "Appointing (your wallet asks you to confirm two transactions)", async () => {
        const categories = checked(cats);
        if (!categories.length) throw new Error("Choose at least one category.");
        if (!until.value) throw new Error("Choose until when the delegation lasts.");
        const delegate = who.value.trim();
        const target = await get(`/api/patients/${delegate}`);
        await actions.appointDelegate({
          delegate: target.address, delegateKey: target.encryption_key, categories,
          expiry: BigInt(Math.floor(Date.parse(until.value + "T23:59:59Z") / 1000)),
        });
        await refresh(`${target.address} is now your delegate for ${labels(codes().categories, categories)}.`);
      });
    },
  },
  h("p", {}, "A delegate must be a registered patient (they need an encryption key). They can manage your consents ",
    "for these categories, read them for family care and see your audit trail; they cannot appoint others. ",
    "Your keys for these categories are sealed to them in this browser."),
  field("Delegate's address", who), cats, field("Until", until), button);
  return h("section", { "aria-labelledby": "ap-h" }, h("h2#ap-h", {}, "Appoint a delegate"), form);
}

function representsSection(represents) {
  return h("section", { "aria-labelledby": "rep-h" },
    h("h2#rep-h", {}, "Patients you represent"),
    table("Patients you are a delegate of", ["Patient", "Categories", "Until", "Actions"],
      represents.map((r) => [
        addr(r.patient), labels(codes().categories, r.categories), utc(r.expiry),
        h("button", { type: "button", class: "small", "aria-label": `Act for patient ${r.patient}`, onclick: () => actFor(r.patient, "/consents") }, "Act for them"),
      ])),
    h("p.hint", {}, "Acting for them, the Consents, Emergency and Audit trail pages show their consents, emergency access and trail; ",
      "what you change stays within your delegation."));
}

