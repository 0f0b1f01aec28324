// Your account: who the wallet is, registration, keys (unlocked in this page only), emergency opt-out.
import * as actions from "../actions.js";
import * as keys from "../keys.js";
import { get } from "../api.js";
import { codes, state } from "../state.js";
import { act, download, field, h, labels, put, replace, status, table, utc } from "../ui.js";
import { connect, refresh } from "../main.js";
import { staleNotice } from "./keyfollow.js";

export async function identityPage(main) {
  if (!state.account) {
    put(main, 
      h("p", {}, "Connect your browser wallet to see your consents, delegates and audit trail. Your wallet signs; ",
        "this portal never sees your private key, your passphrase or your records in plain text."),
      h("button", { type: "button", onclick: connect }, "Connect wallet"));
    return;
  }
  const p = state.patient;
  const kind = p.participant.kind ? `registered ${p.participant.kind_label}` : null;
  const notice = p.registered ? await staleNotice(state.account) : null;
  put(main,
    h("section", { "aria-labelledby": "who-h" },
      h("h2#who-h", {}, "Who you are"),
      h("dl.facts", {},
        h("dt", {}, "Address"), h("dd", {}, h("code", {}, state.account)),
        h("dt", {}, "Patient"), h("dd#registered", {}, p.registered ? "registered" : "not registered"),
        kind ? [h("dt", {}, "Participant"), h("dd", {}, kind + (p.participant.suspended ? " (suspended)" : ""))] : null,
        h("dt", {}, "Chain"), h("dd", {}, `${state.info.chain_id}, contract `, h("code", {}, state.info.contract)))),
    notice,
    p.registered ? await keysSection() : registerSection(),
    p.registered ? emergencySection() : null);
}

function registerSection() {
  const pass = h("input", { type: "password", autocomplete: "new-password", required: true, minlength: 8 });
  const again = h("input", { type: "password", autocomplete: "new-password", required: true });
  const button = h("button", { type: "submit" }, "Create my keys and register");
  const form = h("form", {
    onsubmit: (e) => {
      e.preventDefault();
      act(button, "Creating your keys and registering", async () => {
        if (pass.value.length < 8) throw new Error("Choose a passphrase of at least 8 characters.");
        if (pass.value !== again.value) throw new Error("The two passphrases differ.");
        const pair = state.keys && state.keys.address === state.account ? state.keys : await keys.newKeyPair(state.account);
        status("Protecting your key file with your passphrase…");
        const file = await keys.exportKeyFile(pair, pass.value);
        download(`medledger-key-${state.account}.json`, file, "application/json");
        pass.value = again.value = "";
        status("Registering (your wallet asks you to confirm two transactions: your keys on chain, then your own copy of them)…");
        await actions.register(pair);
        await refresh("You are registered; your key file was saved by your browser. Keep it safe.");
      });
    },
  },
  h("p", {}, "Registering creates your encryption key and one key per category of records in this browser, and ",
    "saves your encryption key as a key file protected by a passphrase. Only public keys go on chain; the category ",
    "keys are sealed to your encryption key. Without the file and passphrase nobody, including you, can open your records."),
  field("Passphrase for your key file", pass, "At least 8 characters. It cannot be recovered if lost."),
  field("The same passphrase again", again),
  button);
  return h("section", { "aria-labelledby": "reg-h" }, h("h2#reg-h", {}, "Register as a patient"), form);
}

async function keysSection() {
  const unlocked = state.keys && state.keys.address === state.account;
  const section = h("section", { "aria-labelledby": "keys-h" }, h("h2#keys-h", {}, "Your keys"));
  if (!unlocked) {
    return put(section, h("p#keys-state", {}, "Locked. Unlock them to grant read access, appoint delegates or open records."), unlockForm());
  }
  const [info, held] = await Promise.all([get(`/api/patients/${state.account}/keys`), actions.heldSecrets(state.account)]);
  const missing = info.current.filter((k) => k.epoch > 0 && !(held[k.category] && held[k.category][k.epoch]));
  const rows = info.current.map((k) => [
    labels(codes().categories, [k.category]), String(k.epoch),
    k.stale ? "stale" : BigInt(k.valid_until) >= 1n << 63n ? "no end" : `until ${utc(k.valid_until)}`,
    held[k.category] && held[k.category][k.epoch] ? "yes" : "no",
  ]);
  return put(section,
    h("p#keys-state", {}, "Unlocked in this page (needed for read consents, delegates and opening records). They were not sent anywhere."),
    missing.length ? repair(missing) : null,
    table("Your category keys", ["Category", "Epoch", "Valid", "You hold it"], rows),
    state.rejected.length ? h("div#rejected", { role: "note" }, h("h3", {}, "Keys that were not used"),
      h("ul", {}, state.rejected.map((t) => h("li", {}, t)))) : null);
}

function repair(missing) {
  const button = h("button#repair-keys", { type: "button" }, "Give them new keys");
  button.addEventListener("click", () => act(button, "Giving those categories new keys (your wallet confirms each transaction)", async () => {
    await actions.rotate(state.account, missing.map((k) => k.category));
    await refresh("Those categories have new keys, and you hold them.");
  }));
  return h("div.notice#unheld", {},
    h("p", {}, `You hold no key for the current ${labels(codes().categories, missing.map((k) => k.category))} keys `,
      "(your registration may have stopped before your own copy was stored). New keys repair this."), button);
}

function unlockForm() {
  const file = h("input", { type: "file", accept: ".json,application/json", required: true });
  const pass = h("input", { type: "password", autocomplete: "current-password", required: true });
  const button = h("button", { type: "submit" }, "Unlock my keys");
  return h("form", {
    onsubmit: (e) => {
      e.preventDefault();
      act(button, "Unlocking your keys in this browser", async () => {
        if (!file.files[0]) throw new Error("Choose your keystore or key file.");
        const parsed = keys.parseKeyFile(await file.files[0].text());
        if (parsed.address !== state.account) {
          throw new Error(`This key file belongs to ${parsed.address}, not to the connected account ${state.account}.`);
        }
        const unlockedKeys = await keys.unlockKeyFile(parsed, pass.value);
        pass.value = "";
        if (keys.hex(unlockedKeys.publicKey) !== state.patient.encryption_key) {
          throw new Error("This key is not the encryption key registered on chain for your account.");
        }
        state.keys = unlockedKeys;
        await refresh("Your keys are unlocked in this page. They are forgotten when you close or reload it.");
      });
    },
  },
  field("Keystore or key file", file, "Your medledger keystore file, or the key file saved when you registered."),
  field("Passphrase", pass),
  button);
}

function emergencySection() {
  const out = state.patient.emergency_opted_out;
  const button = h("button", {
    type: "button",
    onclick: () => act(button, "Changing your emergency access setting", async () => {
      await actions.setOptOut(!out);
      await refresh(out ? "Emergency access is allowed again." : "You opted out of emergency access.");
    }),
  }, out ? "Allow emergency access again" : "Opt out of emergency access");
  const section = h("section", { "aria-labelledby": "em-h" },
    h("h2#em-h", {}, "Emergency access"),
    h("p#emergency-state", {}, out
      ? "You have opted out: A&E clinicians cannot open emergency access to your records."
      : "Allowed: a registered A&E clinician can open read access for at most 24 hours in an emergency. Every such access is flagged in your audit trail."),
    h("p.hint", {}, out
      ? "Allowing it again lets registered clinicians open emergency access; you can opt out again at any time."
      : "Opting out closes this path at once, including windows open now."),
    button);
  return section;
}

