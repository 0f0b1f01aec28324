// Record blobs, opened in the browser (one home for the blob format: when it changes, this file
// changes). The ciphertext is fetched through the portal, its CID recomputed here, the record key
// unsealed with her category key, every secretstream frame authenticated, and the keyed fingerprint
// compared with the one committed on chain. Plaintext exists only in this page.
//
// Format 2 (medledger.crypto.blob, written today): "MLR2" || suite 0x01 || u32 BE chunk size ||
// record key sealed to the category key (80 bytes; the epoch is not in the blob: her keys of the
// category, from her envelopes, are tried newest first) || secretstream header (24) || frames of chunk + 17 bytes. AD of every frame =
// "medledger/record/v2" || header bytes 0..112 || record id || patient || category (u16 BE). The
// plaintext stream is content || 0x80 || zeros, Padmé-sized (medledger.crypto.padded): frames of
// content only are MESSAGE, the one holding the marker PUSH (or FINAL if last), then zero frames.
// Format 1 (medledger.crypto.legacy, still read): "MLR1" || u32 BE header length || header JSON
// {format, cipher, record_id, patient, category, key_epoch, sealed_record_key, stream_header,
// chunk_size} || frames with AD "medledger/record/v1" || id || patient, the last FINAL.
// Inside both: "MLP1" || u32 BE length || {content_type, name} JSON || the original bytes.
import { importer } from "ipfs-unixfs-importer";
import { get, getBytes } from "./api.js";
import { heldSecrets } from "./actions.js";
import { hex, ready, secretFor, unb64, unhex } from "./keys.js";

const MAGIC_V1 = "MLR1";
const MAGIC_V2 = "MLR2";
const AD_PREFIX_V2 = new TextEncoder().encode("medledger/record/v2");
const HEADER_V2 = 113;
const MAX_CHUNK = 16 * 1024 * 1024;
const PAYLOAD_MAGIC = "MLP1";
const AD_PREFIX = new TextEncoder().encode("medledger/record/v1");
const FINGERPRINT_INFO = new TextEncoder().encode("medledger/fingerprint/v1");
const ABYTES = 17;
const MAX_HEADER = 64 * 1024;

const tampered = (what) => new Error(`Tampering detected: ${what}. The record was not shown.`);
const u32 = (bytes, at) => new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0, false);

/** Recompute the CID of the bytes as the IPFS node adds them (CIDv1, raw leaves, balanced DAG). */
export async function cidOf(bytes) {
  const blocks = { put: async (cid) => cid, get: async () => { throw new Error("no blocks kept"); }, has: async () => false };
  let root = null;
  for await (const entry of importer([{ content: bytes }], blocks, { cidVersion: 1, rawLeaves: true, reduceSingleLeafToSelf: true })) {
    root = entry.cid;
  }
  return root;
}

/** The server names CIDs in base32 CIDv1 (medledger.storage.normalize_cid), as the importer prints them. */
export async function checkCid(bytes, cidText) {
  const actual = String(await cidOf(bytes));
  if (actual !== cidText) throw tampered(`the ciphertext's CID is ${actual}, not the registered ${cidText}`);
}

function parseHeader(blob) {
  const length = u32(blob, 4);
  if (length > MAX_HEADER || 8 + length > blob.length) throw tampered("the blob header is truncated or oversized");
  let header;
  try { header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(blob.subarray(8, 8 + length))); } catch { throw tampered("the blob header is not JSON"); }
  if (header.format !== 1) throw new Error(`Record blob format ${header.format} is not one this page reads.`);
  if (header.cipher !== "xchacha20poly1305-secretstream" || !(header.chunk_size >= 1 && header.chunk_size <= MAX_CHUNK)) {
    throw tampered("the blob header names an unknown cipher or chunk size");
  }
  return { header, body: blob.subarray(8 + length) };
}

async function fingerprintKey(recordKey) {
  const base = await crypto.subtle.importKey("raw", recordKey, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: FINGERPRINT_INFO }, base, 256);
  return crypto.subtle.importKey("raw", bits, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

function decryptStream(s, key, header, body, ad) {
  const state = s.crypto_secretstream_xchacha20poly1305_init_pull(unb64(header.stream_header), key);
  const parts = [];
  const step = header.chunk_size + ABYTES;
  for (let at = 0, index = 0; ; at += step, index++) {
    const chunk = body.subarray(at, at + step);
    if (chunk.length < ABYTES) throw tampered(`the ciphertext ends after ${index} chunk(s) without its final chunk`);
    const out = pull(s, state, chunk, ad, index);
    parts.push(out.message);
    if (out.tag === s.crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
      if (at + step < body.length) throw tampered("data follows the final chunk");
      break;
    }
  }
  return concatAll(parts);
}

function splitPayload(plain) {
  if (new TextDecoder().decode(plain.subarray(0, 4)) !== PAYLOAD_MAGIC) throw tampered("the decrypted record has no payload header");
  const length = u32(plain, 4);
  if (length > 65536 || 8 + length > plain.length) throw tampered("the payload header is truncated");
  const meta = JSON.parse(new TextDecoder().decode(plain.subarray(8, 8 + length)));
  return { contentType: meta.content_type || "application/octet-stream", name: meta.name || null, bytes: plain.slice(8 + length) };
}

/** Padmé (medledger.crypto.padded.padme): the padded size of a stream of `length` bytes. */
export function padme(length) {
  if (length < 2) return length;
  const exponent = length.toString(2).length - 1;
  const lowBits = exponent - exponent.toString(2).length;
  const unit = 2 ** lowBits;
  return Math.ceil(length / unit) * unit;
}

function pull(s, state, frame, ad, index) {
  let out = null;
  try { out = s.crypto_secretstream_xchacha20poly1305_pull(state, frame, ad); } catch { out = null; }
  if (!out) throw tampered(`chunk ${index} failed authentication (altered, or another record, patient or category)`);
  return out;
}

/** Format 2: trial-open the record key with her epochs of the category, newest first. */
function openKeyV2(s, sealed, epochs) {
  const tried = Object.keys(epochs).map(Number).sort((a, b) => b - a);
  if (!tried.length) throw new Error("You hold no key of this record's category: no key envelope delivered to you carries one.");
  for (const epoch of tried) {
    const secret = epochs[String(epoch)];
    try {
      return s.crypto_box_seal_open(sealed, s.crypto_scalarmult_base(secret), secret);
    } catch { /* sealed to another epoch: try the next */ }
  }
  throw new Error(`None of your keys of this category (epochs ${tried.join(", ")}) opens this record's key.`);
}

/** Format 2 frames -> the content (padding checked canonical). */
function decryptPadded(s, key, streamHeader, frames, chunk, ad) {
  const { TAG_MESSAGE, TAG_PUSH, TAG_FINAL } = {
    TAG_MESSAGE: s.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
    TAG_PUSH: s.crypto_secretstream_xchacha20poly1305_TAG_PUSH,
    TAG_FINAL: s.crypto_secretstream_xchacha20poly1305_TAG_FINAL,
  };
  const state = s.crypto_secretstream_xchacha20poly1305_init_pull(streamHeader, key);
  const step = chunk + ABYTES;
  const parts = [];
  let at = 0, index = 0, streamLength = 0, marked = false;
  for (;;) {
    const frame = frames.subarray(at, at + step);
    if (frame.length < ABYTES) throw tampered(`the ciphertext ends after ${index} chunk(s) without its final chunk`);
    const { message, tag } = pull(s, state, frame, ad, index);
    at += step;
    streamLength += message.length;
    if (!marked) {
      if (tag === TAG_MESSAGE) {
        if (message.length !== chunk) throw tampered(`chunk ${index} is short but not the final chunk`);
        parts.push(message);
      } else if (tag === TAG_PUSH || tag === TAG_FINAL) {
        let end = message.length;
        while (end > 0 && message[end - 1] === 0) end--;
        if (end === 0 || message[end - 1] !== 0x80) throw tampered(`the padding of chunk ${index} has no end-of-content marker`);
        parts.push(message.subarray(0, end - 1));
        marked = true;
        if (tag === TAG_PUSH && message.length !== chunk) throw tampered(`chunk ${index} is short but not the final chunk`);
      } else {
        throw tampered(`unexpected tag ${tag} on chunk ${index}`);
      }
    } else if (message.some((b) => b !== 0) || (tag !== TAG_FINAL && (tag !== TAG_MESSAGE || message.length !== chunk))) {
      throw tampered(`chunk ${index} should hold only padding`);
    }
    if (tag === TAG_FINAL) break;
    index++;
  }
  if (at < frames.length) throw tampered("data follows the final chunk");
  const content = concatAll(parts);
  if (streamLength !== padme(content.length + 1)) throw tampered("the padding is not the canonical Padmé padding");
  return content;
}

function concatAll(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((i, p) => (out.set(p, i), i + p.length), 0);
  return out;
}

async function openV2(s, blob, record) {
  if (blob.length < HEADER_V2) throw tampered("the blob is truncated inside its header");
  if (blob[4] !== 1) throw new Error(`This record uses cipher suite ${blob[4]}, which this page does not know.`);
  const chunk = u32(blob, 5);
  if (chunk < 1 || chunk > MAX_CHUNK) throw tampered(`the chunk size ${chunk} is out of range`);
  const category = new Uint8Array([record.category >> 8, record.category & 0xff]);
  const ad = concatAll([AD_PREFIX_V2, blob.subarray(0, HEADER_V2), unhex(record.record_id), unhex(record.patient), category]);
  const epochs = (await heldSecrets(record.patient, [record.category]))[record.category] || {};
  const key = openKeyV2(s, blob.subarray(9, 89), epochs);
  return { key, content: decryptPadded(s, key, blob.subarray(89, HEADER_V2), blob.subarray(HEADER_V2), chunk, ad) };
}

async function openV1(s, blob, record) {
  const { header, body } = parseHeader(blob);
  if (header.record_id.toLowerCase() !== record.record_id.toLowerCase() || header.patient.toLowerCase() !== record.patient.toLowerCase()) {
    throw tampered("the blob names another record or patient than the chain");
  }
  const secrets = await heldSecrets(record.patient, [record.category]);
  const secret = secretFor(secrets, record.category, header.key_epoch);
  let key;
  try {
    key = s.crypto_box_seal_open(unb64(header.sealed_record_key), s.crypto_scalarmult_base(secret), secret);
  } catch {
    throw new Error("Your category key cannot open this record's key (another epoch or category, or altered).");
  }
  const ad = concatAll([AD_PREFIX, unhex(record.record_id), unhex(record.patient)]);
  return { key, content: decryptStream(s, key, header, body, ad) };
}

/** Fetch, check and decrypt one of her records (named by patient and id; its header rebuilt from chain
 * events by the server); returns {contentType, name, bytes}. */
export async function openRecord(patient, recordId) {
  const s = await ready();
  const record = await get(`/api/patients/${patient}/records/${recordId}`);
  const blob = await getBytes(record.cid);
  await checkCid(blob, record.cid);
  const magic = new TextDecoder().decode(blob.subarray(0, 4));
  if (magic !== MAGIC_V2 && magic !== MAGIC_V1) throw new Error(`This is not a record blob this page reads (${/^MLR\d$/.test(magic) ? "a newer format" : "no MLR magic"}).`);
  const { key, content } = magic === MAGIC_V2 ? await openV2(s, blob, record) : await openV1(s, blob, record);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await fingerprintKey(key), content));
  if (hex(mac) !== record.fingerprint.toLowerCase()) throw tampered("the content does not match the fingerprint committed on chain");
  return splitPayload(content);
}
