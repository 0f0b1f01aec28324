#!/usr/bin/env node
// Command-line front end for solc-js that behaves like the native `solc` for the modes our tools use:
// --version, --help, --standard-json (JSON on stdin) and --combined-json (files or `-` for stdin).
// Imports resolve like native solc: absolute paths as they are, otherwise against --base-path
// (default: the working directory) and then each --include-path, after applying remappings.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
let solc;
try {
  solc = require(path.join(root, 'node_modules', 'solc'));
} catch (err) {
  process.stderr.write(`solc wrapper: the npm package "solc" is not installed under ${root}/node_modules; run \`npm install\` there.\n`);
  process.exit(2);
}

const versionText = () => `solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`;

function cacheVersion(text) {
  try {
    const dir = path.join(root, 'node_modules', '.cache');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'medledger-solc-version.txt'), text);
  } catch (_) { /* cache is an optimisation only */ }
}

function parseArgs(argv) {
  const opts = { basePath: null, includePaths: [], allowPaths: [], remappings: [], files: [], mode: null,
    combined: null, optimize: false, runs: 200, evmVersion: null, viaIR: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (a.includes('=')) return a.slice(a.indexOf('=') + 1);
      return argv[++i];
    };
    if (a === '--version' || a === '-v') opts.mode = 'version';
    else if (a === '--help' || a === '-h') opts.mode = 'help';
    else if (a === '--standard-json') opts.mode = 'standard-json';
    else if (a.startsWith('--combined-json')) { opts.mode = 'combined-json'; opts.combined = value().split(','); }
    else if (a.startsWith('--base-path')) opts.basePath = value();
    else if (a.startsWith('--include-path')) opts.includePaths.push(value());
    else if (a.startsWith('--allow-paths')) opts.allowPaths.push(...value().split(','));
    else if (a === '--optimize') opts.optimize = true;
    else if (a.startsWith('--optimize-runs')) opts.runs = parseInt(value(), 10);
    else if (a.startsWith('--evm-version')) opts.evmVersion = value();
    else if (a === '--via-ir' || a === '--experimental-via-ir') opts.viaIR = true;
    else if (a === '--no-color' || a === '--pretty-json' || a === '--json-indent') { /* cosmetic */ }
    else if (a === '-') opts.files.push('-');
    else if (a.startsWith('-')) { /* unknown flag: ignore like a tolerant front end */ }
    else if (/^[^=\/]*:?[^=]*=/.test(a) && !fs.existsSync(a)) opts.remappings.push(a);
    else opts.files.push(a);
  }
  return opts;
}

function makeImportCallback(opts) {
  const base = path.resolve(opts.basePath || process.cwd());
  const includes = opts.includePaths.map((p) => path.resolve(p));
  return function findImports(importPath) {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : [path.join(base, importPath), ...includes.map((p) => path.join(p, importPath))];
    for (const c of candidates) {
      try {
        return { contents: fs.readFileSync(c, 'utf8') };
      } catch (_) { /* try the next one */ }
    }
    return { error: `File not found: ${importPath} (looked in ${candidates.join(', ')})` };
  };
}

function readStdin() {
  return fs.readFileSync(0, 'utf8');
}

function standardJson(opts) {
  const input = readStdin();
  const out = solc.compile(input, { import: makeImportCallback(opts) });
  process.stdout.write(out);
}

function combinedJson(opts) {
  const sources = {};
  for (const f of opts.files) {
    if (f === '-') sources['<stdin>'] = { content: readStdin() };
    else sources[f] = { content: fs.readFileSync(f, 'utf8') };
  }
  const selection = new Set();
  const want = new Set(opts.combined);
  if (want.has('abi')) selection.add('abi');
  if (want.has('bin')) selection.add('evm.bytecode.object');
  if (want.has('bin-runtime')) selection.add('evm.deployedBytecode.object');
  if (want.has('srcmap')) selection.add('evm.bytecode.sourceMap');
  if (want.has('srcmap-runtime')) selection.add('evm.deployedBytecode.sourceMap');
  if (want.has('hashes')) selection.add('evm.methodIdentifiers');
  if (want.has('metadata')) selection.add('metadata');
  if (want.has('userdoc')) selection.add('userdoc');
  if (want.has('devdoc')) selection.add('devdoc');
  if (want.has('storage-layout')) selection.add('storageLayout');
  const settings = {
    remappings: opts.remappings,
    optimizer: { enabled: opts.optimize, runs: opts.runs },
    outputSelection: { '*': { '*': [...selection], '': want.has('ast') ? ['ast'] : [] } },
  };
  if (opts.evmVersion) settings.evmVersion = opts.evmVersion;
  if (opts.viaIR) settings.viaIR = true;
  const input = { language: 'Solidity', sources, settings };
  const result = JSON.parse(solc.compile(JSON.stringify(input), { import: makeImportCallback(opts) }));
  const errors = (result.errors || []).filter((e) => e.severity === 'error');
  for (const e of result.errors || []) process.stderr.write((e.formattedMessage || e.message) + '\n');
  if (errors.length) process.exit(1);
  const contracts = {};
  for (const [file, byName] of Object.entries(result.contracts || {})) {
    for (const [name, c] of Object.entries(byName)) {
      const entry = {};
      if (want.has('abi')) entry.abi = c.abi;
      if (want.has('bin')) entry.bin = c.evm.bytecode.object;
      if (want.has('bin-runtime')) entry['bin-runtime'] = c.evm.deployedBytecode.object;
      if (want.has('srcmap')) entry.srcmap = c.evm.bytecode.sourceMap;
      if (want.has('srcmap-runtime')) entry['srcmap-runtime'] = c.evm.deployedBytecode.sourceMap;
      if (want.has('hashes')) entry.hashes = c.evm.methodIdentifiers;
      if (want.has('metadata')) entry.metadata = c.metadata;
      if (want.has('userdoc')) entry.userdoc = c.userdoc;
      if (want.has('devdoc')) entry.devdoc = c.devdoc;
      if (want.has('storage-layout')) entry['storage-layout'] = c.storageLayout;
      contracts[`${file}:${name}`] = entry;
    }
  }
  const out = { contracts, version: solc.version() };
  out.sourceList = Object.keys(result.sources || {});
  if (want.has('ast')) {
    out.sources = {};
    for (const [file, s] of Object.entries(result.sources || {})) out.sources[file] = { AST: s.ast, id: s.id };
  }
  process.stdout.write(JSON.stringify(out));
}

const HELP = `solc, the solidity compiler commandline interface (solc-js ${solc.version()} wrapper)

Usage: solc [options] [input_file...]

Allowed options:
  --version              Print version and exit.
  --standard-json        Switch to Standard JSON input / output mode (input on stdin).
  --base-path path       Use the given path as the root of the source tree.
  --include-path path    Make an additional source directory available to the default import callback.
  --allow-paths path(s)  Accepted for compatibility.
  --optimize             Enable bytecode optimizer.
  --optimize-runs n      Optimizer runs (default 200).
  --evm-version version  Select desired EVM version.
  --via-ir               Compile through the IR pipeline.
  --combined-json abi,asm,ast,bin,bin-runtime,devdoc,function-debug,function-debug-runtime,generated-sources,generated-sources-runtime,hashes,metadata,opcodes,srcmap,srcmap-runtime,storage-layout,userdoc
                         Output a single json document containing the specified information.
`;

function main() {
  const opts = parseArgs(process.argv.slice(2));
  switch (opts.mode) {
    case 'version': { const t = versionText(); cacheVersion(t); process.stdout.write(t); break; }
    case 'help': process.stdout.write(HELP); break;
    case 'standard-json': standardJson(opts); break;
    case 'combined-json': combinedJson(opts); break;
    default:
      process.stderr.write('solc wrapper: supported modes are --version, --help, --standard-json and --combined-json.\n');
      process.exit(2);
  }
}

main();
