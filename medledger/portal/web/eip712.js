// The EIP-712 requests a patient's wallet signs for the relayer. The types and the request file's
// format come from the server, which serves the library's own (medledger.chain.eip712, pinned by a
// test against the contract's typehashes): one home, so a change of the types changes nothing here.
//
// A request carries `issuedAt` (the chain's latest block time, never later, and newer than the
// consent's last decision `updatedAt`) and the patient's current `nonce`, which is not consumed by use:
// it stays the same until she voids every outstanding request (invalidateSignedRequests).
import { state } from "./state.js";

export const FOREVER = (1n << 64n) - 1n;

const DOMAIN_TYPE = [
  { name: "name", type: "string" },
  { name: "version", type: "string" },
  { name: "chainId", type: "uint256" },
  { name: "verifyingContract", type: "address" },
];

const types = () => state.info.eip712.types;

/** The EIP-712 domain of this chain and deployment (the library's, from the server). */
export const domain = (info) => info.eip712.domain;

/** A Grant or Revoke message with exactly the library's fields, in its order. Small integers are JSON
 * numbers; uint64 and uint256 travel as decimal strings (JSON numbers lose precision above 2^53). */
export function message(kind, values) {
  const out = {};
  for (const { name, type } of types()[kind]) {
    const v = values[name];
    if (v === undefined || v === null) throw new Error(`The ${kind} request needs its ${name}.`);
    if (type === "address" || type === "bytes32") out[name] = v;
    else if (type === "uint8" || type === "uint16") out[name] = Number(v);
    else out[name] = BigInt(v).toString();
  }
  return out;
}

/** The eth_signTypedData_v4 payload for a Grant or Revoke message. */
export function typedData(kind, info, msg) {
  return {
    types: { EIP712Domain: DOMAIN_TYPE, [kind]: types()[kind] },
    primaryType: kind,
    domain: domain(info),
    message: msg,
  };
}

/** The signed request in the CLI's file format (`medledger consent submit` reads the same): the v4
 * payload the wallet signed, its signature and medledger's metadata. */
export function signedRequest(kind, info, msg, signature) {
  return { ...typedData(kind, info, msg), signature, medledger: { format: info.eip712.format } };
}
