// What the page knows: the deployment, the connected account, her unlocked keys (memory only).
import { get } from "./api.js";

export const state = {
  info: null,          // /api/info: chain id, contract, codes, relayer
  account: null,       // the wallet's address
  patient: null,       // /api/patients/{account}
  keys: null,          // {address, publicKey, secretKey}: never sent anywhere, lost on reload
  participants: null,  // registered organisations and professionals
};

export async function loadInfo() {
  state.info = await get("/api/info");
  return state.info;
}

export async function refreshPatient() {
  if (!state.account) return null;
  state.patient = await get(`/api/patients/${state.account}`);
  return state.patient;
}

export async function participants() {
  if (!state.participants) state.participants = await get("/api/participants");
  return state.participants;
}

export const codes = () => state.info.codes;
