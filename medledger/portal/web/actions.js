// What the patient (or a delegate acting for her) does on chain, composed from the wallet, the
// relayer and the keys held in this page. Key handling mirrors medledger.keyring: secrets come only
// from envelopes delivered to the connected account, each checked against the chain's public keys.
import { encodeCall } from "./abi.js";
import { get, getBytes, post, putBytes } from "./api.js";
import { message, signedRequest, typedData } from "./eip712.js";
import * as keys from "./keys.js";
import { delegationFor, refreshPatient, state } from "./state.js";
import { check, send, signTypedData } from "./wallet.js";

const ZERO32 = "0x" + "00".repeat(32);
const ALL = keys.CATEGORY_CODES;
export const maskOf = (codes) => codes.reduce((m, c) => m | (1 << c), 0);
const sorted = (codes) => [...new Set(codes.map(Number))].sort((a, b) => a - b);
const tx = (name, args, context) => send(state.account, state.info.contract, encodeCall(name, args), context);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Check that a transaction would go through (the decoded refusal otherwise), sending nothing. */
const simulate = (name, args, context) => check(state.account, state.info.contract, encodeCall(name, args), context);

export function requireKeys() {
  if (!state.keys) throw new Error("Unlock your keys first (Your account → Your keys): read access needs your category keys.");
  if (state.keys.address !== state.account) throw new Error("The unlocked keys belong to another account than the connected wallet.");
  return state.keys;
}

// --- the secrets this account holds ----------------------------------------------------------------------
const envelopeBytes = new Map();

/** An envelope's bytes, checked against the digest the chain points with. */
async function fetchChecked(pointer, cid) {
  if (!envelopeBytes.has(pointer)) {
    const bytes = await getBytes(cid);
    if ((await keys.pointerOf(bytes)) !== pointer.toLowerCase()) {
      throw new Error(`Tampering detected: the key envelope ${pointer.slice(0, 18)}… served by the IPFS node does not match its pointer on chain; nothing was used.`);
    }
    envelopeBytes.set(pointer, bytes);
  }
  return envelopeBytes.get(pointer);
}

function reject(patient, source, category, epoch, reason) {
  const what = category == null ? "a key envelope" : `the category ${category} key of epoch ${epoch} in a key envelope`;
  const text = `Ignored ${what} of patient ${patient} published by ${source.by} (${source.pointer.slice(0, 18)}…): ${reason}`;
  if (!state.rejected.includes(text)) state.rejected.push(text);
}

/** The public keys the chain recorded for `patient`: Map "category/epoch" -> 0x-hex. */
async function publicKeys(patient) {
  const info = await get(`/api/patients/${patient}/keys`);
  return { info, publics: new Map(info.history.map((h) => [`${h.category}/${h.epoch}`, h.public_key])) };
}

/** Every category secret (all epochs) of `patient` that envelopes delivered to the connected account
 * carry and that match the chain's public keys: {category: {epoch: secret}} (Keyring.secrets). */
export async function heldSecrets(patient, categories = ALL) {
  const mine = requireKeys();
  const wanted = new Set(categories.map(Number));
  const [sources, { publics }] = await Promise.all([get(`/api/patients/${patient}/envelopes/${state.account}`), publicKeys(patient)]);
  const found = {};
  for (const source of sources) {
    const blob = await fetchChecked(source.pointer, source.cid);
    let contents;
    try {
      contents = await keys.openEnvelope(mine, blob, patient);
    } catch (error) {
      if (!(error instanceof keys.NotForMe)) reject(patient, source, null, null, error.message);
      continue;
    }
    for (const [category, epochs] of Object.entries(contents)) {
      if (!wanted.has(Number(category))) continue;
      for (const [epoch, secret] of Object.entries(epochs)) {
        const reason = await keys.mismatch(source.categories, category, epoch, secret, publics);
        if (reason) reject(patient, source, category, epoch, reason);
        else (found[category] ||= {})[epoch] = secret;
      }
    }
  }
  return found;
}

/** The categories whose current secret she holds no valid envelope for (Keyring.unheld): lost, e.g. by
 * a registration interrupted before her envelope landed; rotating them is the repair. */
export async function unheld(patient = state.account) {
  const [held, { info }] = await Promise.all([heldSecrets(patient), publicKeys(patient)]);
  return info.current.filter((k) => k.epoch > 0 && !(held[k.category] && held[k.category][k.epoch])).map((k) => k.category);
}

/** Seal `secrets` to `recipientKey` (0x-hex), store it and point `recipient` at it on chain. */
async function publishEnvelope(patient, recipient, recipientKey, secrets) {
  if (!recipientKey) throw new Error(`${recipient} has no encryption key on chain, so it cannot receive keys.`);
  const blob = await keys.makeEnvelope(keys.unhex(recipientKey), patient, secrets);
  const { pointer } = await putBytes(blob);
  await tx("publishKeyEnvelope", [patient, recipient, maskOf(Object.keys(secrets).map(Number)), pointer]);
}

/** Seal the secrets of `categories` that this account holds to a recipient; the stored envelope's pointer. */
export async function envelopeFor(patient, recipient, recipientKey, categories) {
  if (!recipientKey) throw new Error(`${recipient} has no encryption key on chain, so it cannot receive keys.`);
  const secrets = await heldSecrets(patient, categories);
  const missing = categories.filter((c) => !secrets[c]);
  if (missing.length) throw new Error(`You hold no key for categories ${missing.join(", ")} of patient ${patient}, so you cannot pass them on.`);
  return (await putBytes(await keys.makeEnvelope(keys.unhex(recipientKey), patient, secrets))).pointer;
}

// --- rotation: keys follow consent -------------------------------------------------------------------------
/** New key pairs for `categories` of `patient` (each a new epoch), sent to the patient first, then to
 * every reader that still has live access to them, every epoch this account holds (Keyring.rotate).
 * Wallet transactions: her envelope, setCategoryKeys, one envelope per remaining source of access.
 * Returns how many reader envelopes were published. */
export async function rotate(patient, categories) {
  const cats = sorted(categories);
  const held = await heldSecrets(patient, cats);
  const pairs = {};
  for (const c of cats) pairs[c] = await keys.newPair();
  const publics = cats.map((c) => keys.hex(pairs[c].publicKey));
  const mask = maskOf(cats);
  await simulate("setCategoryKeys", [patient, mask, publics]);  // refusals before anything is sent
  const before = await get(`/api/patients/${patient}/keys`);
  const build = (epochs) => Object.fromEntries(cats.map((c) => [c, { ...(held[c] || {}), [epochs[c]]: pairs[c].secretKey }]));
  const expected = Object.fromEntries(cats.map((c) => [c, before.current[c].epoch + 1]));
  const patientKey = (await get(`/api/patients/${patient}`)).encryption_key;
  // Her envelope goes first: once the new keys are on chain writers seal to them, and nobody must be
  // left as the only holder of their secrets.
  await publishEnvelope(patient, patient, patientKey, build(expected));
  await tx("setCategoryKeys", [patient, mask, publics]);
  const after = await get(`/api/patients/${patient}/keys`);
  const landed = Object.fromEntries(cats.map((c) => [c, after.current[c].epoch]));
  if (cats.some((c) => landed[c] !== expected[c])) {  // another rotation landed in between
    await publishEnvelope(patient, patient, patientKey, build(landed));
  }
  return deliver(patient, build(landed));
}

/** One envelope per reader and source of its access, with the keys of the categories it covers. */
async function deliver(patient, secrets) {
  let published = 0;
  for (const { reader, categories, encryption_key } of await get(`/api/patients/${patient}/readers`)) {
    const overlap = categories.filter((c) => secrets[c]);
    if (!overlap.length) continue;
    await publishEnvelope(patient, reader, encryption_key, Object.fromEntries(overlap.map((c) => [c, secrets[c]])));
    published++;
  }
  return published;
}

/** The categories of `patient` whose keys are stale (chain time at or past validUntil: someone they
 * were released to lost access) and that this account may rotate. */
export async function staleCategories(patient) {
  const info = await get(`/api/patients/${patient}/keys`);
  const delegation = delegationFor(patient);
  return info.current.filter((k) => k.stale && (!delegation || delegation.categories.includes(k.category))).map((k) => k.category);
}

/** Rotate every stale category (the browser's `keys sync`): {categories, readers} or null if none. */
export async function sync(patient) {
  const categories = await staleCategories(patient);
  if (!categories.length) return null;
  return { categories, readers: await rotate(patient, categories) };
}

// --- registration and settings -----------------------------------------------------------------------------
/** Register with her encryption key and 13 new category keys, then send her own secrets to herself.
 * Registered already (an earlier registration stopped before her envelope): rotate what she cannot open. */
export async function register(pair) {
  state.keys = pair;
  if (!state.patient.registered) {
    const pairs = [];
    for (const c of ALL) pairs[c] = await keys.newPair();
    await tx("registerPatient", [keys.hex(pair.publicKey), ALL.map((c) => keys.hex(pairs[c].publicKey))]);
    const { current } = await get(`/api/patients/${state.account}/keys`);
    const secrets = Object.fromEntries(ALL.map((c) => [c, { [current[c].epoch]: pairs[c].secretKey }]));
    await publishEnvelope(state.account, state.account, keys.hex(pair.publicKey), secrets);
  } else {
    const missing = await unheld(state.account);
    if (missing.length) await rotate(state.account, missing);
  }
  return refreshPatient();
}

export async function setOptOut(optedOut) {
  await tx("setEmergencyOptOut", [optedOut]);
  return refreshPatient();
}

// --- consents ----------------------------------------------------------------------------------------------
/** A signed request must be newer than the consent's last decision: the chain's latest block time,
 * waited for (up to one block interval) if that decision was made in the same second. */
async function issuedAt(patient, grantee, access) {
  for (let attempt = 0; ; attempt++) {
    const [{ now }, current] = await Promise.all([get("/api/now"), get(`/api/patients/${patient}/consents/${grantee}/${access}`)]);
    if (now > current.updated_at) return BigInt(now);
    if (attempt >= 12) {
      throw new Error("The chain's clock has not moved past the last decision on this consent, and a signed request must be newer than it. Try again once a new block is made, or send it from your wallet.");
    }
    await sleep(1000);
  }
}

const deadline = async () => BigInt((await get("/api/now")).now) + 3600n;

/** Grant (or widen, narrow) a consent of `patient` (hers, or one she represents); `via` "relayer" or "wallet". */
export async function grant({ patient, grantee, granteeKey, access, categories, purposes, expiry, via }) {
  const envelope = access === 0 ? await envelopeFor(patient, grantee, granteeKey, categories) : ZERO32;
  const catMask = maskOf(categories);
  const purposeMask = maskOf(purposes);
  if (via === "wallet") {
    await tx("grant", [patient, grantee, access, [catMask, purposeMask, 0, expiry], envelope]);
    return { changed: true };
  }
  const msg = message("Grant", {
    patient, grantee, access, categories: catMask, purposes: purposeMask, start: 0, expiry, keyEnvelope: envelope,
    issuedAt: await issuedAt(patient, grantee, access), nonce: (await refreshPatient()).nonce, deadline: await deadline(),
  });
  return relay("Grant", msg);
}

export async function revoke({ patient, grantee, access, via }) {
  if (via === "wallet") {
    await tx("revoke", [patient, grantee, access]);
    return { changed: true };
  }
  const msg = message("Revoke", {
    patient, grantee, access, issuedAt: await issuedAt(patient, grantee, access),
    nonce: (await refreshPatient()).nonce, deadline: await deadline(),
  });
  return relay("Revoke", msg);
}

async function relay(kind, msg) {
  const signature = await signTypedData(state.account, typedData(kind, state.info, msg));
  return post("/api/relay", signedRequest(kind, state.info, msg, signature));
}

/** Void every signed request of `patient` not yet submitted (her nonce moves on). */
export async function invalidateRequests(patient) {
  await tx("invalidateSignedRequests", [patient]);
  return refreshPatient();
}

// --- delegates ---------------------------------------------------------------------------------------------
export async function appointDelegate({ delegate, delegateKey, categories, expiry }) {
  await tx("appointDelegate", [delegate, maskOf(categories), expiry]);
  const pointer = await envelopeFor(state.account, delegate, delegateKey, categories);
  await tx("publishKeyEnvelope", [state.account, delegate, maskOf(categories), pointer]);
  return refreshPatient();
}

export async function removeDelegate(delegate) {
  await tx("removeDelegate", [delegate]);
  return refreshPatient();
}

// --- emergency access --------------------------------------------------------------------------------------
/** Release the keys of `categories` to a clinician whose emergency window is open (the chain clamps
 * their validity to the window's end: once it closes they are stale and get new keys). */
export async function releaseToClinician(patient, clinician, clinicianKey, categories) {
  const pointer = await envelopeFor(patient, clinician, clinicianKey, categories);
  await tx("publishKeyEnvelope", [patient, clinician, maskOf(categories), pointer]);
}

export const closeEmergency = (patient, clinician) => tx("closeEmergencyAccess", [patient, clinician]);
export const confirmEmergency = (patient, clinician) => tx("confirmEmergencyAccess", [patient, clinician]);
