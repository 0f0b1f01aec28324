#!/usr/bin/env node
// Runs after `npm install`: makes the solc-js wrapper visible to py-solc-x/brownie as solc 0.8.37
// (a symlink under ~/.solcx, or $SOLCX_BINARY_PATH) and primes the wrapper's `--version` cache.
// Idempotent: safe to run any number of times.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const wrapper = path.join(root, 'tools', 'solc');
const version = require(path.join(root, 'node_modules', 'solc', 'package.json')).version;

const solcxDir = process.env.SOLCX_BINARY_PATH || path.join(os.homedir(), '.solcx');
fs.mkdirSync(solcxDir, { recursive: true });
const link = path.join(solcxDir, `solc-v${version}`);
let current = null;
try { current = fs.readlinkSync(link); } catch (_) { /* absent or not a link */ }
if (current !== wrapper) {
  try { fs.rmSync(link, { force: true, recursive: true }); } catch (_) { /* nothing to remove */ }
  fs.symlinkSync(wrapper, link);
  console.log(`medledger: ${link} -> ${wrapper}`);
}
const out = execFileSync(wrapper, ['--version']).toString();
if (!out.includes(`Version: ${version}+commit.`)) {
  console.error(`medledger: the solc wrapper answered an unexpected version:\n${out}`);
  process.exit(1);
}
console.log(`medledger: solc-js ${version} ready`);
