// Delegates: family or friends who may manage consents within bounds and read for family care.
import * as actions from "../actions.js";
import { get } from "../api.js";
import { codes, state } from "../state.js";
import { act, addr, checkboxes, checked, field, h, labels, put, replace, rotateChoice, status, table, utc } from "../ui.js";

export async function delegatesPage(main) {
  if (!state.account) { put(main, h("p", {}, "Connect your wallet first.")); return; }
  const p = state.patient;
  const panel = h("section#remove-panel", { "aria-live": "polite" });
  put(main, 
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
    const rotation = rotateChoice(labels(codes().categories, d.categories), !!state.keys);
    const confirm = h("button#confirm-remove", { type: "button", class: "danger" }, "Remove this delegate");
    confirm.addEventListener("click", () => act(confirm, "Removing the delegate", async () => {
      await actions.removeDelegate(d.delegate);
      let rotated = "";
      if (rotation.wanted()) {
        status("Giving those categories new keys (your wallet confirms each transaction)…");
        rotated = ` New keys for ${labels(codes().categories, d.categories)}; ${await actions.rotate(d.categories)} remaining reader(s) got them.`;
      }
      status(`${d.delegate} is no longer your delegate.` + rotated);
      await reload();
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
        status(`${target.address} is now your delegate for ${labels(codes().categories, categories)}.`);
        await reload();
      });
    },
  },
  h("p", {}, "A delegate must be a registered patient (they need an encryption key). They can manage your consents ",
    "for these categories, read them for family care and see your audit trail; they cannot appoint others. ",
    "Your keys for these categories are sealed to them in this browser."),
  field("Delegate's address", who), cats, field("Until", until), button);
  return h("section", { "aria-labelledby": "ap-h" }, h("h2#ap-h", {}, "Appoint a delegate"), form);
}

async function reload() {
  const main = document.getElementById("main");
  replace(main, main.querySelector("h1"));
  await delegatesPage(main);
}
