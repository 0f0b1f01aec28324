// What the page knows: the deployment, the connected account, whom it acts for, her unlocked keys
// (memory only).
import { get } from "./api.js";

export const state = {
  info: null,          // /api/info: chain id, contract, codes, relayer, ABI fragments, EIP-712 types
  account: null,       // the wallet's address
  patient: null,       // /api/patients/{account}: registration, delegates, whom it represents
  subject: null,       // the patient the pages act for: the account itself, or one it is a delegate of
  keys: null,          // {address, publicKey, secretKey}: never sent anywhere, lost on reload
  participants: null,  // registered organisations and professionals
  rejected: [],        // delivered secrets that were not used, with why (shown on the account page)
};

export async function loadInfo() {
  state.info = await get("/api/info");
  return state.info;
}

export async function refreshPatient() {
  if (!state.account) return null;
  state.patient = await get(`/api/patients/${state.account}`);
  if (state.subject && !state.patient.represents.some((r) => r.patient === state.subject)) state.subject = null;
  return state.patient;
}

export async function participants() {
  if (!state.participants) state.participants = await get("/api/participants");
  return state.participants;
}

/** The patient the pages act for: the connected account, unless it chose one it is a delegate of. */
export const subject = () => state.subject || state.account;
export const actingForOther = () => !!state.subject && state.subject !== state.account;
/** The delegation under which the account acts for `patient` (null: it is the patient). */
export const delegationFor = (patient) =>
  patient === state.account ? null : (state.patient.represents || []).find((r) => r.patient === patient) || null;

export const codes = () => state.info.codes;
