// The contract functions the page sends through the wallet, as ABI fragments (one home: when the
// contract's ABI changes, this file changes). Reads go through the portal server, which uses the
// Python library's own ABI; errors are decoded there into the CLI's sentences.
import { Interface } from "ethers";

export const MEDLEDGER_ABI = [
  "function registerPatient(bytes32 encryptionKey)",
  "function setKeyDirectory(address patient, bytes32 directory) returns (bool)",
  "function grant(address patient, address grantee, uint8 access, (uint16 categories, uint16 purposes, uint64 start, uint64 expiry) terms, bytes32 keyEnvelope) returns (bool)",
  "function revoke(address patient, address grantee, uint8 access) returns (bool)",
  "function appointDelegate(address delegate, uint16 categories, uint64 expiry) returns (bool)",
  "function removeDelegate(address delegate) returns (bool)",
  "function publishKeyEnvelope(address patient, address recipient, bytes32 envelope)",
  "function setEmergencyOptOut(bool optedOut) returns (bool)",
];

const iface = new Interface(MEDLEDGER_ABI);

/** Calldata for one of the functions above. */
export function encodeCall(name, args) {
  return iface.encodeFunctionData(name, args);
}
