// The portal page: a shell (navigation, wallet, status) and one view per path.
import { alertError, h, replace, short, status } from "./ui.js";
import { loadInfo, refreshPatient, state } from "./state.js";
import * as wallet from "./wallet.js";
import { identityPage } from "./pages/identity.js";
import { consentsPage } from "./pages/consents.js";
import { delegatesPage } from "./pages/delegates.js";
import { auditPage } from "./pages/audit.js";
import { recordsPage } from "./pages/records.js";
import { researcherPage } from "./pages/researcher.js";

const PAGES = {
  "/": ["Your account", identityPage],
  "/consents": ["Consents", consentsPage],
  "/delegates": ["Delegates", delegatesPage],
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
    replace(box, h("span.who", { title: state.account }, "Connected: ", h("code", {}, short(state.account))));
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
  await refreshPatient();
  status(`Connected as ${state.account}.`);
  if (show) await render();
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
