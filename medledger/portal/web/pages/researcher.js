// Researcher: the grants made to the connected account (a study, an app), as a table and CSV.
import { get } from "../api.js";
import { codes, state } from "../state.js";
import { addr, csv, download, h, labels, put, table, utc } from "../ui.js";

export async function researcherPage(main) {
  if (!state.account) { put(main, h("p", {}, "Connect the wallet of the study or organisation first.")); return; }
  const grants = await get(`/api/grantees/${state.account}/grants`);
  const c = codes();
  const rows = grants.map((g) => [g.patient, g.access === 0 ? "read" : "write", labels(c.categories, g.categories),
    labels(c.purposes, g.purposes), utc(g.expiry), g.live ? "active" : "ended"]);
  put(main, 
    h("p", {}, "Consents patients have given to ", h("code", {}, state.account), ", as they stand on chain now."),
    table("Grants made to this account", ["Patient", "Access", "Categories", "Purposes", "Until", "Status"],
      rows.map(([p, ...rest]) => [addr(p), ...rest]), "No patient has granted this account anything."),
    grants.length ? h("button#grants-csv", {
      type: "button",
      onclick: () => download("grants.csv", csv([["patient", "access", "categories", "purposes", "until", "status"], ...rows])),
    }, "Download as CSV") : null);
}
