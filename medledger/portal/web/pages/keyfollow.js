// Keys follow consent, in the browser: after an action that ends someone's read access the chain
// makes the released keys stale; this page is "her tools" and gives those categories new keys (the
// same as the CLI's key sync: every stale category this account may manage is rotated).
import * as actions from "../actions.js";
import { get } from "../api.js";
import { codes, delegationFor, state } from "../state.js";
import { act, h, labels, status } from "../ui.js";
import { refresh } from "../main.js";

/** After an action ended access: rotate the stale categories if the patient chose to; a sentence. */
export async function afterAccessEnded(patient, rotation) {
  if (!rotation || !rotation.wanted()) return "";
  status("Giving the stale categories new keys (your wallet confirms each transaction)…");
  const done = await actions.sync(patient);
  if (!done) return "";
  return ` New keys for ${labels(codes().categories, done.categories)}; ${done.readers} remaining reader(s) got them.`;
}

/** A notice naming the stale categories of `patient` (null if none), with a button that rotates them
 * when this page holds the keys. */
export async function staleNotice(patient) {
  const info = await get(`/api/patients/${patient}/keys`);
  const delegation = delegationFor(patient);
  const stale = info.current.filter((k) => k.stale && (!delegation || delegation.categories.includes(k.category))).map((k) => k.category);
  if (!stale.length) return null;
  const names = labels(codes().categories, stale);
  const button = h("button#rotate-stale", { type: "button" }, "Give them new keys now");
  button.addEventListener("click", () => act(button, "Giving the stale categories new keys (your wallet confirms each transaction)", async () => {
    const done = await actions.sync(patient);
    await refresh(done ? `New keys for ${labels(codes().categories, done.categories)}; ${done.readers} remaining reader(s) got them.` : "No key is stale any more.");
  }));
  return h("section.notice#stale-keys", { "aria-labelledby": "stale-h" },
    h("h2#stale-h", {}, "Keys to renew"),
    h("p", {}, `The keys of ${names} are stale: someone they were released to lost access. Nobody can add records of `,
      "these categories until they get new keys; the readers who keep access receive them."),
    state.keys ? button : h("p.hint", {}, "Unlock your keys (Your account) to give them new keys."));
}
