// The contract functions the page has the wallet send. Their ABI entries come from the portal server,
// which takes them from the package's compiled contract (the one the Python library uses): when the
// contract's ABI changes, nothing here does. Reads go through the server too; errors are decoded there
// into the CLI's sentences.
import { Interface } from "ethers";
import { state } from "./state.js";

let iface = null;

/** Calldata for one of the functions the server lists in /api/info (`abi`). */
export function encodeCall(name, args) {
  if (!iface) iface = new Interface(state.info.abi);
  return iface.encodeFunctionData(name, args);
}
