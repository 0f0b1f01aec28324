#!/usr/bin/env node
// A wallet on the command line: signs a medledger consent request (an eth_signTypedData_v4 payload,
// as `medledger consent prepare` writes it) the way patients' wallets and dapps do, and prints the
// signature. It stands in for MetaMask or a dapp's ethers signer where there is no browser:
//
//   node scripts/wallet-sign.mjs REQUEST.json [--with ethers|metamask] [--form rsv|compact|yparity]
//                                [--keystore FILE]
//
// The key: --keystore FILE (a medledger keystore file, whose "ethereum" part is a standard V3
// keystore, or a V3 file; its passphrase in WALLET_PASSWORD), or a private key in WALLET_PRIVATE_KEY.
// --with ethers (default): ethers v6 Wallet.signTypedData(domain, types, message), as a dapp signs.
// --with metamask: @metamask/eth-sig-util signTypedData V4 of the whole file, what MetaMask runs for
//   eth_signTypedData_v4 (it ignores the file's other members).
// --form rsv (default): 65 bytes, v 27 or 28. compact: 64 bytes, EIP-2098 (ethers
//   Signature.compactSerialized). yparity: 65 bytes with v 0 or 1, as some hardware wallets answer.
// REQUEST.json "-" reads standard input. Nothing here talks to a network.
import { readFileSync } from "node:fs";
import { Signature, Wallet } from "ethers";
import { signTypedData, SignTypedDataVersion } from "@metamask/eth-sig-util";

function options(argv) {
  const found = { with: "ethers", form: "rsv", keystore: null, file: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--with" || arg === "--form" || arg === "--keystore") found[arg.slice(2)] = argv[++i];
    else if (found.file === null) found.file = arg;
    else throw new Error(`unexpected argument ${arg}`);
  }
  if (found.file === null) throw new Error("usage: wallet-sign.mjs REQUEST.json [--with ethers|metamask] [--form rsv|compact|yparity] [--keystore FILE]");
  return found;
}

async function wallet(keystore) {
  if (keystore !== null) {
    const content = JSON.parse(readFileSync(keystore, "utf8"));
    const v3 = content.ethereum ?? content;
    if (process.env.WALLET_PASSWORD === undefined) throw new Error("WALLET_PASSWORD is not set");
    return Wallet.fromEncryptedJson(JSON.stringify(v3), process.env.WALLET_PASSWORD);
  }
  if (!process.env.WALLET_PRIVATE_KEY) throw new Error("give --keystore FILE or set WALLET_PRIVATE_KEY");
  return new Wallet(process.env.WALLET_PRIVATE_KEY);
}

async function sign(signer, payload, library) {
  if (library === "metamask") {
    const privateKey = Buffer.from(signer.privateKey.slice(2), "hex");
    return signTypedData({ privateKey, data: payload, version: SignTypedDataVersion.V4 });
  }
  if (library === "ethers") {
    const types = { ...payload.types };
    delete types.EIP712Domain; // ethers derives the domain's type from the domain itself
    return signer.signTypedData(payload.domain, types, payload.message);
  }
  throw new Error(`--with ${library}: ethers or metamask`);
}

function shaped(signature, form) {
  const parsed = Signature.from(signature);
  if (form === "rsv") return parsed.serialized;
  if (form === "compact") return parsed.compactSerialized;
  if (form === "yparity") return parsed.r + parsed.s.slice(2) + (parsed.yParity ? "01" : "00");
  throw new Error(`--form ${form}: rsv, compact or yparity`);
}

const opts = options(process.argv.slice(2));
const payload = JSON.parse(readFileSync(opts.file === "-" ? 0 : opts.file, "utf8"));
const signer = await wallet(opts.keystore);
console.log(shaped(await sign(signer, payload, opts.with), opts.form));
