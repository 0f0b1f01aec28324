// The patient's encryption keys in the browser (one home for key handling and its formats: when
// the key directory, the envelope or the keystore format changes, this file changes).
//
// * Her X25519 key is unlocked here from her keystore file (or an exported key file) and her
//   passphrase: scrypt + AES-256-GCM with associated data "medledger/keystore/v1" || address ||
//   public key, exactly as medledger.keystore writes it. It stays in this page's memory only.
// * Her key directory (on IPFS, pointed to from chain) holds per category the public key of the
//   current epoch and all epochs' secrets sealed to her own key (medledger.keyring.KeyDirectory).
// * A key envelope seals category secrets to a grantee (medledger.crypto.make_envelope).
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
const DIRECTORY_FORMAT = 1;
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

// --- sealed boxes, directories, envelopes ----------------------------------------------------------------
export async function seal(publicKey, data) {
  return (await ready()).crypto_box_seal(data, publicKey);
}

export async function unseal(keys, sealed) {
  const s = await ready();
  try {
    return s.crypto_box_seal_open(sealed, s.crypto_scalarmult_base(keys.secretKey), keys.secretKey);
  } catch {
    throw new Error("Your key cannot open this sealed box: it was sealed to another key (or altered).");
  }
}

const secretsJson = (epochs) => canonicalJson(
  Object.fromEntries(Object.entries(epochs).map(([e, sk]) => [String(e), hex(sk).slice(2)])), [", ", ": "]);

/** Epoch-0 key pairs for every category and the directory that publishes them (medledger.keyring). */
export async function newDirectory(keys) {
  const s = await ready();
  const categories = {};
  for (const c of CATEGORY_CODES) {
    const pair = s.crypto_box_keypair();
    categories[String(c)] = {
      epoch: 0,
      public: hex(pair.publicKey).slice(2),
      owner: b64(await seal(keys.publicKey, new TextEncoder().encode(secretsJson({ 0: pair.privateKey })))),
    };
  }
  return new TextEncoder().encode(canonicalJson({ format: DIRECTORY_FORMAT, patient: keys.address, categories }));
}

/** Parse a directory fetched from IPFS (its bytes were checked against the on-chain pointer). */
export function parseDirectory(bytes, patient) {
  const body = JSON.parse(new TextDecoder().decode(bytes));
  if (body.format !== DIRECTORY_FORMAT || getAddress(body.patient) !== getAddress(patient)) {
    throw new Error(`The key directory of ${patient} is malformed or names another patient.`);
  }
  return body;
}

/** Every epoch's secret of the given categories, opened with her key: {category: {epoch: secret}}. */
export async function ownSecrets(keys, directory, categories) {
  const out = {};
  for (const c of categories) {
    const entry = directory.categories[String(c)];
    if (!entry) throw new Error(`Your key directory has no key for category ${c}.`);
    const opened = JSON.parse(new TextDecoder().decode(await unseal(keys, unb64(entry.owner))));
    out[c] = Object.fromEntries(Object.entries(opened).map(([e, skHex]) => [e, unhex(skHex)]));
  }
  return out;
}

/** A key envelope: the secrets of some categories (all epochs) sealed to a recipient's public key. */
export async function makeEnvelope(recipientPublic, patient, secrets) {
  const keysJson = {};
  for (const [c, epochs] of Object.entries(secrets)) {
    keysJson[String(c)] = Object.fromEntries(Object.entries(epochs).map(([e, sk]) => [String(e), b64(sk)]));
  }
  const payload = canonicalJson({ format: ENVELOPE_FORMAT, patient: getAddress(patient), keys: keysJson });
  return seal(recipientPublic, new TextEncoder().encode(payload));
}

/** The secret of one category and epoch, for opening a record's sealed record key. */
export function secretFor(secrets, category, epoch) {
  const sk = secrets[category] && secrets[category][String(epoch)];
  if (!sk) throw new Error(`You hold no key for category ${category}, epoch ${epoch}.`);
  return sk;
}

/** The sha2-256 digest of a raw block: the on-chain pointer of a directory or envelope. */
export async function pointerOf(bytes) {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

/** The directory after rotating `categories`: a new key pair (epoch + 1) each, every epoch's secret
 * sealed to her again (medledger.keyring.Keyring.rotate). Returns the new directory's bytes and the
 * rotated secrets {category: {epoch: secret}} to deliver to the readers who remain. */
export async function rotateDirectory(keys, directory, held) {
  const s = await ready();
  const categories = { ...directory.categories };
  const rotated = {};
  for (const [c, epochs] of Object.entries(held)) {
    const old = categories[String(c)];
    const pair = s.crypto_box_keypair();
    const all = { ...epochs, [String(old.epoch + 1)]: pair.privateKey };
    rotated[c] = all;
    categories[String(c)] = {
      epoch: old.epoch + 1,
      public: hex(pair.publicKey).slice(2),
      owner: b64(await seal(keys.publicKey, new TextEncoder().encode(secretsJson(all)))),
    };
  }
  const bytes = new TextEncoder().encode(canonicalJson({ format: DIRECTORY_FORMAT, patient: keys.address, categories }));
  return { bytes, rotated };
}
