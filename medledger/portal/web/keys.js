// The patient's encryption keys in the browser (one home for key handling and its formats: when
// the envelope or the keystore format changes, this file changes).
//
// * Her X25519 key is unlocked here from her keystore file (or an exported key file) and her
//   passphrase: scrypt + AES-256-GCM with associated data "medledger/keystore/v1" || address ||
//   public key, exactly as medledger.keystore writes it. It stays in this page's memory only.
// * Her category keys: the chain holds each category's public key per epoch (categoryKey,
//   CategoryKeyRotated); the secrets live only in key envelopes (medledger.crypto.envelope): sealed
//   boxes on IPFS, pointed to by ConsentGranted/KeyEnvelopePublished events. Every secret taken from
//   an envelope is checked against the public key the chain recorded for its category and epoch, and
//   against the categories its publication names (medledger.keyring.Keyring.secrets).
import sodiumModule from "libsodium-wrappers-sumo";
import { getAddress, scrypt } from "ethers";

let sodium = null;
export async function ready() {
  if (!sodium) {
    await sodiumModule.ready;
    sodium = sodiumModule;
  }
  return sodium;
}

export const CATEGORY_CODES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
const KEYSTORE_AD = new TextEncoder().encode("medledger/keystore/v1");
const ENVELOPE_FORMAT = "medledger/envelope/v1";
const MAX_CATEGORY = 15;
/** The keystore's floor (medledger.keystore MIN_SCRYPT_N): weaker files are refused, as the CLI does. */
const MIN_SCRYPT_N = 2 ** 15;

// --- bytes ------------------------------------------------------------------------------------------
export const hex = (bytes) => "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
export function unhex(text) {
  const t = text.startsWith("0x") ? text.slice(2) : text;
  if (t.length % 2 || /[^0-9a-fA-F]/.test(t)) throw new Error("not hex");
  return Uint8Array.from(t.match(/../g) || [], (b) => parseInt(b, 16));
}
export const b64 = (bytes) => btoa(String.fromCharCode(...bytes));
export const unb64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
};

/** Python's json.dumps(obj, sort_keys=True, separators=sep): keys sorted as strings, ASCII only. */
export function canonicalJson(value, sep = [",", ":"]) {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map((v) => canonicalJson(v, sep)).join(sep[0]) + "]";
  const keys = Object.keys(value).sort();
  return "{" + keys.map((k) => JSON.stringify(k) + sep[1] + canonicalJson(value[k], sep)).join(sep[0]) + "}";
}

// --- the patient's own key ---------------------------------------------------------------------------
/** Parse a keystore file or an exported key file (both carry the same "encryption" section). */
export function parseKeyFile(text) {
  let obj;
  try { obj = JSON.parse(text); } catch { throw new Error("This file is not a medledger keystore or key file (not JSON)."); }
  if (!obj || (obj.medledger_keystore !== 1 && obj.medledger_key_export !== 1)) {
    throw new Error("This file is not a medledger keystore or key file.");
  }
  const enc = obj.encryption;
  if (!enc || enc.cipher !== "aes-256-gcm" || enc.kdf !== "scrypt" || !enc.kdfparams) {
    throw new Error("The key file's encryption section is missing or uses an unknown cipher.");
  }
  const { n, r, p, salt } = enc.kdfparams;
  if (!Number.isInteger(n) || n < 2 || (n & (n - 1)) || n > 2 ** 20 || !Number.isInteger(r) || !Number.isInteger(p)) {
    throw new Error("The key file's scrypt parameters are out of range.");
  }
  if (n < MIN_SCRYPT_N) {
    throw new Error(`This key file is protected too weakly (scrypt cost ${n}, below ${MIN_SCRYPT_N}): its passphrase can be guessed quickly, so treat its keys as exposed.`);
  }
  return {
    address: getAddress(obj.address),
    publicKey: unhex(obj.encryption_public_key),
    n, r, p, salt: unhex(salt), nonce: unhex(enc.nonce), ciphertext: unhex(enc.ciphertext),
  };
}

async function passphraseKey(passphrase, salt, n, r, p) {
  const derived = await scrypt(new TextEncoder().encode(passphrase.normalize("NFC")), salt, n, r, p, 32);
  return crypto.subtle.importKey("raw", unhex(derived), "AES-GCM", false, ["encrypt", "decrypt"]);
}

/** Unlock the X25519 key of a parsed key file; the result never leaves this page. */
export async function unlockKeyFile(parsed, passphrase) {
  const s = await ready();
  const key = await passphraseKey(passphrase, parsed.salt, parsed.n, parsed.r, parsed.p);
  const ad = concat(KEYSTORE_AD, unhex(parsed.address), parsed.publicKey);
  let secret;
  try {
    secret = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: parsed.nonce, additionalData: ad }, key, parsed.ciphertext));
  } catch {
    throw new Error("Wrong passphrase for this key file (or the file was altered). Passphrases are case-sensitive.");
  }
  if (hex(s.crypto_scalarmult_base(secret)) !== hex(parsed.publicKey)) {
    throw new Error("The key file was altered: its public key does not belong to its secret key.");
  }
  return { address: parsed.address, publicKey: parsed.publicKey, secretKey: secret };
}

/** A new X25519 key pair for a patient about to register. */
export async function newKeyPair(address) {
  const s = await ready();
  const pair = s.crypto_box_keypair();
  return { address: getAddress(address), publicKey: pair.publicKey, secretKey: pair.privateKey };
}

/** The exported key file for a key pair, protected by a passphrase (scrypt cost n). */
export async function exportKeyFile(keys, passphrase, n = 2 ** 18) {
  const salt = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const key = await passphraseKey(passphrase, salt, n, 8, 1);
  const ad = concat(KEYSTORE_AD, unhex(keys.address), keys.publicKey);
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: ad }, key, keys.secretKey));
  return JSON.stringify({
    medledger_key_export: 1,
    address: keys.address,
    encryption_public_key: hex(keys.publicKey),
    encryption: {
      cipher: "aes-256-gcm", kdf: "scrypt",
      kdfparams: { n, r: 8, p: 1, dklen: 32, salt: hex(salt).slice(2) },
      nonce: hex(nonce).slice(2), ciphertext: hex(ct).slice(2),
    },
  }, null, 2) + "\n";
}

// --- sealed boxes and envelopes -----------------------------------------------------------------------------
export async function seal(publicKey, data) {
  return (await ready()).crypto_box_seal(data, publicKey);
}

/** A fresh X25519 key pair (a category key, or her encryption key). */
export async function newPair() {
  const pair = (await ready()).crypto_box_keypair();
  return { publicKey: pair.publicKey, secretKey: pair.privateKey };
}

/** The X25519 public key of a secret key. */
export async function publicOf(secret) {
  return (await ready()).crypto_scalarmult_base(secret);
}

/** A key envelope (medledger.crypto.make_envelope): category secrets {category: {epoch: secret}} sealed
 * to a recipient's public key, as canonical JSON. */
export async function makeEnvelope(recipientPublic, patient, secrets) {
  const keysJson = {};
  for (const [c, epochs] of Object.entries(secrets)) {
    keysJson[String(c)] = Object.fromEntries(Object.entries(epochs).map(([e, sk]) => [String(e), b64(sk)]));
  }
  const payload = canonicalJson({ format: ENVELOPE_FORMAT, patient: getAddress(patient), keys: keysJson });
  return seal(recipientPublic, new TextEncoder().encode(payload));
}

/** Not sealed to this key (an envelope to an older key of hers): skipped, as the library does. */
export class NotForMe extends Error {}

const decimal = (text, max, what) => {
  if (typeof text !== "string" || !/^(0|[1-9][0-9]*)$/.test(text) || BigInt(text) > max) {
    throw new Error(`the key envelope is malformed: ${what} ${JSON.stringify(text)} is not a valid number`);
  }
  return Number(text);
};

/** Open a key envelope with her key (medledger.crypto.open_envelope): {category: {epoch: secret}}.
 * Throws NotForMe if it was sealed to another key, Error for anything malformed or naming another patient. */
export async function openEnvelope(keys, blob, patient) {
  const s = await ready();
  let raw;
  try {
    raw = s.crypto_box_seal_open(blob, s.crypto_scalarmult_base(keys.secretKey), keys.secretKey);
  } catch {
    throw new NotForMe("this key envelope was not sealed to your encryption key");
  }
  let obj;
  try { obj = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw)); } catch { throw new Error("the key envelope is malformed (not UTF-8 JSON)"); }
  if (!obj || typeof obj !== "object" || Array.isArray(obj) || Object.keys(obj).sort().join() !== "format,keys,patient") {
    throw new Error("the key envelope is malformed (unexpected structure)");
  }
  if (obj.format !== ENVELOPE_FORMAT) throw new Error("the key envelope is malformed (unknown format)");
  let named;
  try { named = getAddress(obj.patient); } catch { throw new Error("the key envelope is malformed ('patient' is not an address)"); }
  if (named !== getAddress(patient)) throw new Error(`the key envelope carries keys of patient ${named}, not of ${getAddress(patient)}`);
  if (!obj.keys || typeof obj.keys !== "object" || Array.isArray(obj.keys)) throw new Error("the key envelope is malformed ('keys' is not an object)");
  const out = {};
  for (const [catText, epochs] of Object.entries(obj.keys)) {
    const category = decimal(catText, BigInt(MAX_CATEGORY), "category");
    if (!epochs || typeof epochs !== "object" || Array.isArray(epochs)) throw new Error(`the key envelope is malformed (keys of category ${category} are not an object)`);
    out[category] = {};
    for (const [epochText, text] of Object.entries(epochs)) {
      const epoch = decimal(epochText, (1n << 64n) - 1n, "epoch");
      let secret = null;
      try { secret = typeof text === "string" && /^[A-Za-z0-9+/]*={0,2}$/.test(text) ? unb64(text) : null; } catch { secret = null; }
      if (!secret || secret.length !== 32) throw new Error(`the key envelope is malformed (key of category ${category} epoch ${epoch} is not 32 bytes of base64)`);
      out[category][epoch] = secret;
    }
  }
  return out;
}

/** Why a delivered secret may not be used (null: it may), as medledger.keyring decides: the category
 * must be one its publication names, and the secret must match the public key the chain recorded for
 * that category and epoch (`publics`: Map "category/epoch" -> 0x-hex public key). */
export async function mismatch(sourceCategories, category, epoch, secret, publics) {
  if (!sourceCategories.includes(Number(category))) return "its publication does not name this category";
  const expected = publics.get(`${category}/${epoch}`);
  if (!expected) return "the chain recorded no key of this category and epoch";
  if (hex(await publicOf(secret)) !== expected.toLowerCase()) {
    return "it does not match the public key the chain recorded for this category and epoch";
  }
  return null;
}

/** The secret of one category and epoch, for opening a format 1 record's sealed record key. */
export function secretFor(secrets, category, epoch) {
  const sk = secrets[category] && secrets[category][String(epoch)];
  if (!sk) throw new Error(`You hold no key for category ${category}, epoch ${epoch}.`);
  return sk;
}

/** The sha2-256 digest of a raw block: the on-chain pointer of an envelope. */
export async function pointerOf(bytes) {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}
