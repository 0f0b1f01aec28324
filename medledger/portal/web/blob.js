// Record blobs: fetched, CID-checked, decrypted and fingerprint-checked in the browser.
export async function openRecord() {
  throw new Error("Opening records in the browser is not available yet.");
}
