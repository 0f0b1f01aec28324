// The patient's browser wallet (EIP-1193 window.ethereum): connect, sign typed data, send
// transactions. A transaction is simulated first, so a refusal shows the contract's reason (the
// CLI's sentence) and costs nothing.
import { explain } from "./api.js";

export function provider() {
  if (!window.ethereum || typeof window.ethereum.request !== "function") {
    throw new Error("No browser wallet found. Install or unlock a wallet (such as MetaMask) and reload this page.");
  }
  return window.ethereum;
}

export const request = (method, params = []) => provider().request({ method, params });

export async function accounts(prompt) {
  return request(prompt ? "eth_requestAccounts" : "eth_accounts");
}

export async function chainId() {
  return parseInt(await request("eth_chainId"), 16);
}

/** The revert data in a wallet's error, wherever the wallet put it. */
export function revertData(error) {
  const seen = new Set();
  const walk = (v) => {
    if (v == null || seen.has(v)) return null;
    if (typeof v === "string") return /^0x[0-9a-fA-F]{8,}$/.test(v) ? v : null;
    if (typeof v !== "object") return null;
    seen.add(v);
    for (const key of ["data", "error", "originalError", "cause", "info"]) {
      const found = walk(v[key]);
      if (found) return found;
    }
    return null;
  };
  return walk(error);
}

async function refusal(error, context) {
  const data = revertData(error);
  if (data) return new Error(await explain(data, context));
  if (error && error.code === 4001) return new Error("You declined the request in your wallet.");
  return new Error((error && error.message) || String(error));
}

/** Simulate one transaction (eth_call): throws the decoded reason if the contract would refuse it. */
export async function check(from, to, data, context = {}) {
  try {
    await request("eth_call", [{ from, to, data }, "latest"]);
  } catch (error) {
    throw await refusal(error, context);
  }
}

/** Simulate, send and wait for one transaction; throws the decoded reason on a refusal. */
export async function send(from, to, data, context = {}) {
  await check(from, to, data, context);
  let hash;
  try {
    hash = await request("eth_sendTransaction", [{ from, to, data }]);
  } catch (error) {
    throw await refusal(error, context);
  }
  for (let i = 0; i < 600; i++) {
    const receipt = await request("eth_getTransactionReceipt", [hash]);
    if (receipt) {
      if (receipt.status !== "0x1") throw new Error(`Transaction ${hash} was reverted by the chain.`);
      return receipt;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Transaction ${hash} was not mined within 150 s; it may still be mined later.`);
}

/** Ask the wallet to sign an EIP-712 request. */
export async function signTypedData(from, typed) {
  try {
    return await request("eth_signTypedData_v4", [from, JSON.stringify(typed)]);
  } catch (error) {
    throw await refusal(error, {});
  }
}
