#!/usr/bin/env node
// Runs an ONNX model in ONNX Runtime (npm onnxruntime-node, CPU), the peer that
// tools/check_onnx_ort.py checks our exports against and bench/compare_runtimes.py times.
//
//   node bench/ort_run.js --model M.onnx --input X.npy --output Y.npy [--threads 2]
//       one forward pass on a .npy input (<f4, C order), output written as .npy (<f4)
//   node bench/ort_run.js --model M.onnx --shape N,C,H,W --bench [--iters 20] [--warmup 3]
//       [--threads 2] [--seed 1]
//       times --iters runs after --warmup untimed ones on random input (uniform in [-1, 1))
//       and prints one JSON line:
//       {"peer":"onnxruntime", "images_per_s", "latency_ms_p50", "latency_ms_p90", ...}
//
// Intra-op threads are set to --threads (default 2) and inter-op to 1, with sequential
// execution and every graph optimization on: ORT's usual configuration for a CPU server.
// Install: cd bench && ONNXRUNTIME_NODE_INSTALL=skip npm install
'use strict';

const fs = require('fs');
const path = require('path');

function fail(message) {
  process.stderr.write(`ort_run: error: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = { threads: 2, iters: 20, warmup: 3, seed: 1, bench: false };
  for (let i = 0; i < argv.length; ++i) {
    const key = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${key}: expected a value`);
      return argv[++i];
    };
    switch (key) {
      case '--model': args.model = value(); break;
      case '--input': args.input = value(); break;
      case '--output': args.output = value(); break;
      case '--shape': args.shape = value(); break;
      case '--threads': args.threads = Number(value()); break;
      case '--iters': args.iters = Number(value()); break;
      case '--warmup': args.warmup = Number(value()); break;
      case '--seed': args.seed = Number(value()); break;
      case '--bench': args.bench = true; break;
      case '--help': case '-h':
        process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 16)
            .map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
        process.exit(0);
        break;
      default: fail(`unknown option '${key}' (see --help)`);
    }
  }
  if (!args.model) fail('--model: required');
  if (!args.input && !args.shape) fail('expected --input X.npy or --shape N,C,H,W');
  if (!args.bench && !args.output) fail('expected --output Y.npy, or --bench to time the model');
  for (const k of ['threads', 'iters', 'warmup', 'seed']) {
    if (!Number.isInteger(args[k]) || args[k] < 0) fail(`--${k}: expected a non-negative integer`);
  }
  return args;
}

// NumPy .npy, versions 1 to 3, little-endian float32 in C order only.
function readNpy(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    fail(`${file}: ${e.message}`);
  }
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') fail(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > buf.length) fail(`${file}: header runs past the end of the file`);
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) fail(`${file}: cannot parse the header ${header.trim()}`);
  if (descr[1] !== '<f4') fail(`${file}: expected dtype <f4, found ${descr[1]}`);
  if (fortran[1] !== 'False') fail(`${file}: expected C order, found Fortran order`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  if (buf.length - offset !== count * 4) {
    fail(`${file}: expected ${count * 4} data bytes for shape [${dims}], found ${buf.length - offset}`);
  }
  // Copy into an aligned buffer: the data offset need not be a multiple of 4.
  const data = new Float32Array(count);
  Buffer.from(data.buffer).set(buf.subarray(offset));
  return { dims, data };
}

function writeNpy(file, dims, data) {
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  // Pad so that the data starts on a multiple of 64 bytes, newline last (NumPy's rule).
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header + ' '.repeat(total - 10 - header.length - 1) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(pre, 0);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  // Written beside the destination and renamed, so a reader never sees half a file.
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  fs.writeFileSync(tmp, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
  fs.renameSync(tmp, file);
}

// A small seeded generator (mulberry32), so that benchmark inputs repeat run to run.
function randomInput(dims, seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; ++i) data[i] = next() * 2 - 1;
  return data;
}

function percentile(sorted, q) {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    fail(`cannot load onnxruntime-node (cd bench && ONNXRUNTIME_NODE_INSTALL=skip npm install): ${e.message}`);
  }
  let dims;
  let data;
  if (args.input) {
    ({ dims, data } = readNpy(args.input));
  } else {
    dims = args.shape.split(',').map(Number);
    if (dims.length < 1 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
      fail(`--shape: expected positive integers like 1,3,224,224, got '${args.shape}'`);
    }
    data = randomInput(dims, args.seed);
  }

  let session;
  try {
    session = await ort.InferenceSession.create(args.model, {
      intraOpNumThreads: args.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    fail(`${args.model}: ONNX Runtime cannot load it: ${String(e.message || e).split('\n')[0]}`);
  }
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, dims) };
  const outputName = session.outputNames[0];
  const run = () => session.run(feeds);

  if (!args.bench) {
    const result = await run();
    const y = result[outputName];
    writeNpy(args.output, y.dims, y.data);
    return;
  }
  for (let i = 0; i < args.warmup; ++i) await run();
  const ms = [];
  for (let i = 0; i < Math.max(1, args.iters); ++i) {
    const t0 = process.hrtime.bigint();
    await run();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const p50 = percentile(ms, 0.5);
  const p90 = percentile(ms, 0.9);
  process.stdout.write(JSON.stringify({
    peer: 'onnxruntime',
    version: ort.env.versions ? ort.env.versions.node : undefined,
    model: args.model,
    shape: dims,
    threads: args.threads,
    iters: ms.length,
    images_per_s: (dims[0] * 1000) / p50,
    latency_ms_p50: p50,
    latency_ms_p90: p90,
  }) + '\n');
}

main().catch((e) => fail(String(e.message || e).split('\n')[0]));
