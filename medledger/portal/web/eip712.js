// The EIP-712 requests a patient's wallet signs for the relayer (one home: when the contract's
// Grant/Revoke types change, this file changes). Mirrors medledger.consent's GRANT_TYPES/REVOKE_TYPES.

export const FOREVER = (1n << 64n) - 1n;
export const REQUEST_FORMAT = "medledger-signed-consent/1";
const ZERO32 = "0x" + "00".repeat(32);

const DOMAIN_TYPE = [
  { name: "name", type: "string" },
  { name: "version", type: "string" },
  { name: "chainId", type: "uint256" },
  { name: "verifyingContract", type: "address" },
];

export const TYPES = {
  Grant: [
    { name: "patient", type: "address" },
    { name: "grantee", type: "address" },
    { name: "access", type: "uint8" },
    { name: "categories", type: "uint16" },
    { name: "purposes", type: "uint16" },
    { name: "start", type: "uint64" },
    { name: "expiry", type: "uint64" },
    { name: "keyEnvelope", type: "bytes32" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
  Revoke: [
    { name: "patient", type: "address" },
    { name: "grantee", type: "address" },
    { name: "access", type: "uint8" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

export function domain(info) {
  return { name: "medledger", version: "1", chainId: info.chain_id, verifyingContract: info.contract };
}

// Large integers travel as decimal strings (JSON numbers lose precision above 2^53).
const str = (v) => BigInt(v).toString();

export function grantMessage({ patient, grantee, access, categories, purposes, start = 0n, expiry = FOREVER,
                               keyEnvelope = ZERO32, nonce, deadline }) {
  return {
    patient, grantee, access: Number(access), categories: Number(categories), purposes: Number(purposes),
    start: str(start), expiry: str(expiry), keyEnvelope, nonce: str(nonce), deadline: str(deadline),
  };
}

export function revokeMessage({ patient, grantee, access, nonce, deadline }) {
  return { patient, grantee, access: Number(access), nonce: str(nonce), deadline: str(deadline) };
}

/** The eth_signTypedData_v4 payload for a Grant or Revoke message. */
export function typedData(kind, info, message) {
  return {
    types: { EIP712Domain: DOMAIN_TYPE, [kind]: TYPES[kind] },
    primaryType: kind,
    domain: domain(info),
    message,
  };
}

/** The signed request in the CLI's file format (`medledger consent submit` reads the same). */
export function signedRequest(kind, info, message, signature) {
  return { format: REQUEST_FORMAT, kind, domain: domain(info), message, signature };
}
