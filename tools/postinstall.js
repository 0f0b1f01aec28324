#!/usr/bin/env node
// Runs after `npm install`: makes the solc-js wrapper visible to py-solc-x/brownie as solc 0.8.37 and
// primes the wrapper's `--version` cache. Idempotent: safe to run any number of times.
//  - node_modules/.solcx/solc-v<version> -> tools/solc: the Makefile points SOLCX_BINARY_PATH here,
//    so each clone uses its own compiler link.
//  - ~/.solcx/solc-v<version>: for running brownie by hand; created only if missing or dangling, so
//    one clone never re-points another clone's working link.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const wrapper = path.join(root, 'tools', 'solc');
const version = require(path.join(root, 'node_modules', 'solc', 'package.json')).version;

function link(dir, { replaceWorking }) {
  fs.mkdirSync(dir, { recursive: true });
  const target = path.join(dir, `solc-v${version}`);
  let current = null;
  try { current = fs.readlinkSync(target); } catch (_) { /* absent, or not a link */ }
  const working = current !== null && fs.existsSync(current);
  if (current === wrapper || (working && !replaceWorking)) return;
  fs.rmSync(target, { force: true, recursive: true });
  fs.symlinkSync(wrapper, target);
  console.log(`medledger: ${target} -> ${wrapper}`);
}

link(path.join(root, 'node_modules', '.solcx'), { replaceWorking: true });
link(process.env.MEDLEDGER_GLOBAL_SOLCX || path.join(os.homedir(), '.solcx'), { replaceWorking: false });

const out = execFileSync(wrapper, ['--version']).toString();
if (!out.includes(`Version: ${version}+commit.`)) {
  console.error(`medledger: the solc wrapper answered an unexpected version:\n${out}`);
  process.exit(1);
}
console.log(`medledger: solc-js ${version} ready`);
