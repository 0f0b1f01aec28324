// The portal server's JSON API (public chain state, ciphertext, the relayer). Same origin only.
export class ApiError extends Error {
  constructor(message, status, body) { super(message); this.status = status; this.body = body; }
}

async function parse(response) {
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const message = body && body.error ? body.error : `The portal answered ${response.status}`;
    throw new ApiError(message, response.status, body);
  }
  return body;
}

export const get = (path) => fetch(path, { headers: { Accept: "application/json" } }).then(parse);
export const post = (path, body) => fetch(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
}).then(parse);

export async function getBytes(cid) {
  const response = await fetch(`/api/ipfs/${encodeURIComponent(cid)}`);
  if (!response.ok) await parse(response);
  return new Uint8Array(await response.arrayBuffer());
}

/** Add a small object (a key directory or envelope: ciphertext) to IPFS; returns {pointer, cid}. */
export function putBytes(bytes) {
  return fetch("/api/ipfs", { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: bytes })
    .then(parse);
}

/** The CLI's sentence for a contract revert. */
export async function explain(data, context = {}) {
  return (await post("/api/explain", { data, context })).message;
}
