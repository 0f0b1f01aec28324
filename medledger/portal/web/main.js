// The portal page: a shell (navigation, wallet, status) and one view per path.
import { alertError, h, replace, short, status } from "./ui.js";
import { loadInfo, refreshPatient, state, subject } from "./state.js";
import * as wallet from "./wallet.js";
import { identityPage } from "./pages/identity.js";
import { consentsPage } from "./pages/consents.js";
import { delegatesPage } from "./pages/delegates.js";
import { emergencyPage } from "./pages/emergency.js";
import { auditPage } from "./pages/audit.js";
import { recordsPage } from "./pages/records.js";
import { researcherPage } from "./pages/researcher.js";

const PAGES = {
  "/": ["Your account", identityPage],
  "/consents": ["Consents", consentsPage],
  "/delegates": ["Delegates", delegatesPage],
  "/emergency": ["Emergency", emergencyPage],
  "/audit": ["Audit trail", auditPage],
  "/records": ["Records", recordsPage],
  "/researcher": ["Researcher", researcherPage],
};

function nav() {
  const here = location.pathname;
  return h("ul", {}, Object.entries(PAGES).map(([path, [title]]) =>
    h("li", {}, h("a", { href: path, "aria-current": path === here ? "page" : false, onclick: (e) => go(e, path) }, title))));
}

function walletBox() {
  const box = document.getElementById("wallet");
  if (state.account) {
    const represents = (state.patient && state.patient.represents) || [];
    const chooser = represents.length ? h("select#acting-for", {
      "aria-label": "Act for",
      onchange: (e) => actFor(e.target.value),
    }, h("option", { value: state.account }, "Acting for myself"),
    represents.map((r) => h("option", { value: r.patient, selected: r.patient === subject() }, `Acting for ${short(r.patient)}`))) : null;
    replace(box, h("span.who", { title: state.account }, "Connected: ", h("code", {}, short(state.account))), chooser);
  } else {
    replace(box, h("button#connect", { type: "button", onclick: connect }, "Connect wallet"));
  }
}

export async function connect() {
  alertError("");
  try {
    const [account] = await wallet.accounts(true);
    await adopt(account);
  } catch (error) {
    alertError(error.message || String(error));
  }
}

async function adopt(account, show = true) {
  if (!account) return;
  const walletChain = await wallet.chainId();
  if (walletChain !== state.info.chain_id) {
    throw new Error(`Your wallet is on chain ${walletChain}; switch it to chain ${state.info.chain_id}, which this portal serves.`);
  }
  state.account = (await import("ethers")).getAddress(account);
  state.keys = state.keys && state.keys.address === state.account ? state.keys : null;
  state.subject = null;
  await refreshPatient();
  status(`Connected as ${state.account}.`);
  if (show) await render();
}

/** Act for `patient` (the account itself, or a patient it is a delegate of), optionally on another page. */
export function actFor(patient, path = null) {
  state.subject = patient === state.account ? null : patient;
  status(state.subject ? `Acting for patient ${patient} as their delegate.` : "Acting for yourself.");
  if (path && path !== location.pathname) history.pushState({}, "", path);
  render(true);
}

function go(event, path) {
  if (event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  history.pushState({}, "", path);
  render(true);
}

let rendering = 0;

export async function render(focus = false) {
  const token = ++rendering;
  delete document.body.dataset.ready;  // set again once this view is shown (tests and the bench wait for it)
  const [title, page] = PAGES[location.pathname] || PAGES["/"];
  document.title = `${title} · medledger`;
  replace(document.getElementById("nav"), nav());
  walletBox();
  const main = document.getElementById("main");
  const heading = h("h1", { tabindex: -1 }, title);
  const view = h("div");
  alertError("");
  let failure = null;
  try {
    await page(view);
  } catch (error) {
    failure = error;
  }
  if (token !== rendering) return;  // a later navigation won
  replace(main, heading, ...view.childNodes);
  if (failure) alertError(failure.message || String(failure));
  if (focus) heading.focus();
  performance.mark(`medledger:${location.pathname}:ready`);
  // the frame after next: the content above has been painted (bench/portal.py reads this mark)
  const path = location.pathname;
  requestAnimationFrame(() => requestAnimationFrame(() => performance.mark(`medledger:${path}:painted`)));
  document.body.dataset.ready = location.pathname;
}

/** Show the current page again with what the chain says now, then announce `message` (so that the
 * announcement comes once the new content is there). */
export async function refresh(message = "") {
  await render();
  if (message) status(message);
}

async function start() {
  window.addEventListener("popstate", () => render(true));
  try {
    await loadInfo();
  } catch (error) {
    alertError(`The portal server cannot read the chain: ${error.message}`);
    return;
  }
  try {
    const [account] = window.ethereum ? await wallet.accounts(false) : [];
    if (account) await adopt(account, false);
  } catch (error) {
    alertError(error.message || String(error));
  }
  if (window.ethereum && window.ethereum.on) {
    window.ethereum.on("accountsChanged", ([a]) => (a ? adopt(a) : ((state.account = null), render())));
  }
  await render();
}

start();
