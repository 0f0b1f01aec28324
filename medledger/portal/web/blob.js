// Record blobs, opened in the browser (one home for the blob format: when it changes, this file
// changes). The ciphertext is fetched through the portal, its CID recomputed here, the record key
// unsealed with her category key, every secretstream chunk authenticated, and the keyed fingerprint
// compared with the one committed on chain. Plaintext exists only in this page.
//
// Format (medledger.crypto, blob format 1): "MLR1" || u32 BE header length || header JSON
// {format, cipher, record_id, patient, category, key_epoch, sealed_record_key (b64, 80 bytes),
// stream_header (b64, 24 bytes), chunk_size} || secretstream XChaCha20-Poly1305 chunks of
// chunk_size + 17 bytes, the last tagged FINAL, each with AD "medledger/record/v1" || id || patient.
// Inside: "MLP1" || u32 BE length || {content_type, name} JSON || the original bytes.
import { importer } from "ipfs-unixfs-importer";
import { get, getBytes } from "./api.js";
import { ownSecrets } from "./actions.js";
import { hex, ready, secretFor, unb64, unhex } from "./keys.js";

const MAGIC = "MLR1";
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
  if (new TextDecoder().decode(blob.subarray(0, 4)) !== MAGIC) throw new Error("This is not a medledger record blob (no MLR1 magic).");
  const length = u32(blob, 4);
  if (length > MAX_HEADER || 8 + length > blob.length) throw tampered("the blob header is truncated or oversized");
  let header;
  try { header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(blob.subarray(8, 8 + length))); } catch { throw tampered("the blob header is not JSON"); }
  if (header.format !== 1) throw new Error(`Record blob format ${header.format} is not one this page reads.`);
  if (header.cipher !== "xchacha20poly1305-secretstream" || !(header.chunk_size >= 1 && header.chunk_size <= 16 * 1024 * 1024)) {
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
    let out = null;
    try { out = s.crypto_secretstream_xchacha20poly1305_pull(state, chunk, ad); } catch { out = null; }
    if (!out) throw tampered(`chunk ${index} failed authentication`);
    parts.push(out.message);
    if (out.tag === s.crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
      if (at + step < body.length) throw tampered("data follows the final chunk");
      break;
    }
  }
  const plain = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((i, p) => (plain.set(p, i), i + p.length), 0);
  return plain;
}

function splitPayload(plain) {
  if (new TextDecoder().decode(plain.subarray(0, 4)) !== PAYLOAD_MAGIC) throw tampered("the decrypted record has no payload header");
  const length = u32(plain, 4);
  if (length > 65536 || 8 + length > plain.length) throw tampered("the payload header is truncated");
  const meta = JSON.parse(new TextDecoder().decode(plain.subarray(8, 8 + length)));
  return { contentType: meta.content_type || "application/octet-stream", name: meta.name || null, bytes: plain.slice(8 + length) };
}

/** Fetch, check and decrypt one of her records; returns {contentType, name, bytes}. */
export async function openRecord(recordId) {
  const s = await ready();
  const record = await get(`/api/records/${recordId}`);
  const blob = await getBytes(record.cid);
  await checkCid(blob, record.cid);
  const { header, body } = parseHeader(blob);
  if (header.record_id.toLowerCase() !== record.record_id.toLowerCase() || header.patient.toLowerCase() !== record.patient.toLowerCase()) {
    throw tampered("the blob names another record or patient than the chain");
  }
  const secrets = await ownSecrets([record.category]);
  const secret = secretFor(secrets, record.category, header.key_epoch);
  let recordKey;
  try {
    recordKey = s.crypto_box_seal_open(unb64(header.sealed_record_key), s.crypto_scalarmult_base(secret), secret);
  } catch {
    throw new Error("Your category key cannot open this record's key (another epoch or category, or altered).");
  }
  const ad = new Uint8Array([...AD_PREFIX, ...unhex(record.record_id), ...unhex(record.patient)]);
  const plain = decryptStream(s, recordKey, header, body, ad);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await fingerprintKey(recordKey), plain));
  if (hex(mac) !== record.fingerprint.toLowerCase()) throw tampered("the content does not match the fingerprint committed on chain");
  return splitPayload(plain);
}
