// What the patient does on chain, composed from the wallet, the relayer and her keys.
import { encodeCall } from "./abi.js";
import { get, getBytes, post, putBytes } from "./api.js";
import { grantMessage, revokeMessage, signedRequest, typedData } from "./eip712.js";
import * as keys from "./keys.js";
import { refreshPatient, state } from "./state.js";
import { send, signTypedData } from "./wallet.js";

const ZERO32 = "0x" + "00".repeat(32);
const tx = (name, args, context) => send(state.account, state.info.contract, encodeCall(name, args), context);

/** Fetch an object by its on-chain pointer and check its bytes against the pointer. */
async function fetchChecked(pointer, cid, what) {
  const bytes = await getBytes(cid);
  if ((await keys.pointerOf(bytes)) !== pointer.toLowerCase()) {
    throw new Error(`The ${what} served by the IPFS node does not match its pointer on chain; it was not used.`);
  }
  return bytes;
}

export function requireKeys() {
  if (!state.keys) throw new Error("Unlock your keys first (Your account → Your keys): read access needs your category keys.");
  if (state.keys.address !== state.account) throw new Error("The unlocked keys belong to another account than the connected wallet.");
  return state.keys;
}

async function directory() {
  const p = await refreshPatient();
  if (!p.key_directory) throw new Error("You have no key directory on chain yet; register first.");
  return keys.parseDirectory(await fetchChecked(p.key_directory, p.key_directory_cid, "key directory"), state.account);
}

/** Her category secrets (all epochs) for some categories, opened from her key directory. */
export async function ownSecrets(categories) {
  const mine = requireKeys();
  return keys.ownSecrets(mine, await directory(), categories);
}

/** New keys for `categories` after someone lost read access: a new directory, and fresh envelopes
 * (every epoch) for each reader who remains, so records written from now on are closed to the one
 * who left (medledger.keyring.Keyring.rotate). Wallet transactions: 1 + one per remaining reader. */
export async function rotate(categories) {
  const mine = requireKeys();
  const current = await directory();
  const held = await keys.ownSecrets(mine, current, categories);
  const { bytes, rotated } = await keys.rotateDirectory(mine, current, held);
  const { pointer } = await putBytes(bytes);
  await tx("setKeyDirectory", [state.account, pointer]);
  const readers = await get(`/api/patients/${state.account}/readers`);
  let delivered = 0;
  for (const [reader, covered] of Object.entries(readers)) {
    const overlap = covered.filter((c) => String(c) in rotated || c in rotated);
    if (!overlap.length) continue;
    const view = await get(`/api/patients/${reader}`);
    const key = view.participant.encryption_key || view.encryption_key;
    const blob = await keys.makeEnvelope(keys.unhex(key), state.account, Object.fromEntries(overlap.map((c) => [c, rotated[c]])));
    await tx("publishKeyEnvelope", [state.account, reader, (await putBytes(blob)).pointer]);
    delivered++;
  }
  await refreshPatient();
  return delivered;
}

/** Seal her secrets of `categories` to `recipient` (its registered key), store it; the pointer. */
export async function envelopeFor(recipient, recipientKey, categories) {
  if (!recipientKey) throw new Error(`${recipient} has no encryption key on chain, so it cannot receive keys.`);
  const secrets = await ownSecrets(categories);
  const blob = await keys.makeEnvelope(keys.unhex(recipientKey), state.account, secrets);
  return (await putBytes(blob)).pointer;
}

// --- registration and settings -----------------------------------------------------------------------------
export async function register(pair) {
  if (!state.patient.registered) {
    await tx("registerPatient", [keys.hex(pair.publicKey)]);
  }
  state.keys = pair;
  await refreshPatient();
  if (!state.patient.key_directory) {
    const directory = await keys.newDirectory(pair);
    const { pointer } = await putBytes(directory);
    await tx("setKeyDirectory", [state.account, pointer]);
  }
  return refreshPatient();
}

export async function setOptOut(optedOut) {
  await tx("setEmergencyOptOut", [optedOut]);
  return refreshPatient();
}

// --- consents ----------------------------------------------------------------------------------------------
/** Grant (or widen, narrow) a consent; `via` is "relayer" or "wallet". */
export async function grant({ grantee, granteeKey, access, categories, purposes, expiry, via }) {
  const envelope = access === 0 ? await envelopeFor(grantee, granteeKey, categories) : ZERO32;
  const catMask = categories.reduce((m, c) => m | (1 << c), 0);
  const purposeMask = purposes.reduce((m, c) => m | (1 << c), 0);
  if (via === "wallet") {
    await tx("grant", [state.account, grantee, access, [catMask, purposeMask, 0, expiry], envelope]);
    return { changed: true };
  }
  const message = grantMessage({
    patient: state.account, grantee, access, categories: catMask, purposes: purposeMask, expiry,
    keyEnvelope: envelope, nonce: await nonce(), deadline: await deadline(),
  });
  return relay("Grant", message);
}

export async function revoke({ grantee, access, via }) {
  if (via === "wallet") {
    await tx("revoke", [state.account, grantee, access]);
    return { changed: true };
  }
  const message = revokeMessage({ patient: state.account, grantee, access, nonce: await nonce(), deadline: await deadline() });
  return relay("Revoke", message);
}

async function nonce() {
  return (await refreshPatient()).nonce;
}

async function deadline() {
  const info = await get("/api/info");
  return BigInt(info.now) + 3600n;
}

async function relay(kind, message) {
  const signature = await signTypedData(state.account, typedData(kind, state.info, message));
  return post("/api/relay", signedRequest(kind, state.info, message, signature));
}

// --- delegates ---------------------------------------------------------------------------------------------
export async function appointDelegate({ delegate, delegateKey, categories, expiry }) {
  const catMask = categories.reduce((m, c) => m | (1 << c), 0);
  await tx("appointDelegate", [delegate, catMask, expiry]);
  const pointer = await envelopeFor(delegate, delegateKey, categories);
  await tx("publishKeyEnvelope", [state.account, delegate, pointer]);
  return refreshPatient();
}

export async function removeDelegate(delegate) {
  await tx("removeDelegate", [delegate]);
  return refreshPatient();
}
