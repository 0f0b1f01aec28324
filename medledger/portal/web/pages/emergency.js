// Emergency access: who opened break-glass access to the patient, until when, and what was released.
// For an open window the patient (or a delegate acting for her) can release keys to the clinician (the
// chain lets them be used only until the window ends), confirm it (its run starts again) or close it;
// closing makes the released keys stale, and the page offers to give those categories new keys.
import * as actions from "../actions.js";
import { get } from "../api.js";
import { actingForOther, codes, delegationFor, state, subject } from "../state.js";
import { act, addr, checkboxes, checked, h, labels, put, replace, rotateChoice, status, table, utc } from "../ui.js";
import { refresh } from "../main.js";
import { afterAccessEnded, staleNotice } from "./keyfollow.js";

export async function emergencyPage(main) {
  if (!state.account) { put(main, h("p", {}, "Connect your wallet first.")); return; }
  const patient = subject();
  const [windows, people, notice] = await Promise.all([
    get(`/api/patients/${patient}/emergency`), get("/api/participants"), staleNotice(patient)]);
  const names = new Map(people.map((p) => [p.address, p.kind_label]));
  const panel = h("section#emergency-panel", { "aria-live": "polite" });
  put(main,
    actingForOther() ? h("p#acting", {}, "Emergency access to patient ", h("code", {}, patient), " (you are a delegate).") : null,
    notice,
    h("p", {}, "A registered A&E clinician can open read access for at most 24 hours in an emergency; every such access ",
      "is flagged in the audit trail. The clinician can read only with keys released to it, and only while the window is open."),
    table("Emergency access", ["Clinician", "Status", "Until", "Keys released", "Actions"],
      windows.map((w) => [
        addr(w.clinician, names.get(w.clinician)),
        w.open ? "open" : "closed",
        utc(w.expires_at),
        w.released.length ? labels(codes().categories, w.released) : "none",
        w.open ? h("span.actions", {},
          h("button", { type: "button", class: "small", "aria-label": `Release keys to ${w.clinician}`, onclick: () => showRelease(panel, patient, w) }, "Release keys"),
          h("button", { type: "button", class: "small", "aria-label": `Confirm the emergency access of ${w.clinician}`, onclick: () => showConfirm(panel, patient, w) }, "Confirm"),
          h("button", { type: "button", class: "small danger", "aria-label": `Close the emergency access of ${w.clinician}`, onclick: () => showClose(panel, patient, w) }, "Close"))
          : "",
      ]), "Nobody has opened emergency access."),
    panel);
}

function showRelease(panel, patient, w) {
  const delegation = delegationFor(patient);
  const allowed = codes().categories.filter((c) => !delegation || delegation.categories.includes(c.code));
  const cats = checkboxes("Categories the clinician may read", allowed);
  const button = h("button#confirm-release", { type: "button" }, "Release these keys");
  button.addEventListener("click", () => act(button, "Sealing the keys to the clinician (your wallet confirms)", async () => {
    const categories = checked(cats);
    if (!categories.length) throw new Error("Choose at least one category.");
    await actions.releaseToClinician(patient, w.clinician, w.encryption_key, categories);
    await refresh(`${w.clinician} can read ${labels(codes().categories, categories)} until ${utc(w.expires_at)}.`);
  }));
  replace(panel, h("h2", { tabindex: -1 }, "Release keys for the emergency"),
    h("p", {}, "The keys are sealed in this browser to the clinician's registered key. They can be used only until ",
      `the window ends (${utc(w.expires_at)}); after that, or once you close it, they are stale and get new keys.`),
    cats, button);
  panel.querySelector("h2").focus();
}

function showConfirm(panel, patient, w) {
  const button = h("button#confirm-emergency", { type: "button" }, "Confirm this emergency access");
  button.addEventListener("click", () => act(button, "Confirming", async () => {
    await actions.confirmEmergency(patient, w.clinician);
    await refresh(`The emergency access of ${w.clinician} is confirmed: it may be renewed for up to 72 hours from now.`);
  }));
  replace(panel, h("h2", { tabindex: -1 }, "Confirm an emergency access"),
    h("p", {}, "Without confirmation, renewed emergency windows end 72 hours after the first opening. Confirming starts that period again."),
    button);
  panel.querySelector("h2").focus();
}

function showClose(panel, patient, w) {
  const rotation = w.released.length ? rotateChoice(!!state.keys) : null;
  const button = h("button#confirm-close", { type: "button", class: "danger" }, "Close it now");
  button.addEventListener("click", () => act(button, "Closing the emergency access", async () => {
    await actions.closeEmergency(patient, w.clinician);
    const rotated = await afterAccessEnded(patient, rotation);
    await refresh(`The emergency access of ${w.clinician} is closed.` + rotated);
  }));
  replace(panel, h("h2", { tabindex: -1 }, "Close an emergency access"),
    h("ul#changes", {}, h("li.remove", {}, `ends the emergency access of ${w.clinician} at once`)),
    rotation ? rotation.element : null, button);
  panel.querySelector("h2").focus();
}

