#!/usr/bin/env node
// Generates src/scan/md5-lanes.wasm.ts: MD5 of 8 independent inputs at once in WebAssembly SIMD128.
// Lane l of a v128 holds input l's state word; two groups of 4 lanes run their 64 steps interleaved,
// so the out-of-order core overlaps two dependency chains (one MD5 step depends on the one before:
// a single input cannot go faster than ~5 cycles a step, however wide the vector).
//
// Why: dpkg records only MD5, and a baseline compares every packaged file with it. OpenSSL's scalar
// MD5 does ~500-740 MB/s a core on the project's machines; this does several times that, as long as
// 8 inputs are available (the caller groups files of similar size).
//
//   node tools/gen-md5-wasm.mjs           write src/scan/md5-lanes.wasm.ts
//   node tools/gen-md5-wasm.mjs --check   exit 1 if the committed file differs from what this emits
//   node tools/gen-md5-wasm.mjs --wat F   also write the instruction listing to F
//
// Export: run(n) compresses n 64-byte blocks for every lane. Lane l reads its blocks from the
// pointer at PTRS + 4l (advanced by 64 a block; the caller keeps its own copy), and its state words
// a, b, c, d are at STATE + (4g + w) * 16 + 4j, for group g = l >> 2, lane j = l & 3 (little-endian,
// so the 16 digest bytes of lane l are those four words in order). Padding is the caller's.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assembleModule, generatorMain, renderModule, u32le } from './wasm-asm.mjs';

const ROOT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT_FILE = path.join(ROOT_DIR, 'src/scan/md5-lanes.wasm.ts');

const GROUPS = 2;
const LANES = 4 * GROUPS;

/** K[i] = floor(|sin(i + 1)| * 2^32), as RFC 1321 defines it (checked against its table below). */
const K = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) >>> 0);
if (K[0] !== 0xd76aa478 || K[63] !== 0xeb86d391) throw new Error('MD5 constants');
const SHIFT = [
  [7, 12, 17, 22],
  [5, 9, 14, 20],
  [4, 11, 16, 23],
  [6, 10, 15, 21],
];
/** the message word step i uses */
const wordOf = (i) => [i, (5 * i + 1) % 16, (3 * i + 5) % 16, (7 * i) % 16][i >> 4] % 16;

const PAGE = 65536;
const L = {
  STATE: 0, //        GROUPS * 4 * 16
  PTRS: 256, //       LANES * 4
  K: 512, //          64 splatted constants, 16 bytes each
  MSG: 2048, //       GROUPS * 16 transposed message words, 16 bytes each
  LANE0: PAGE, //     lane regions: LANE_BYTES each
  HEAD: 64, //        room before a lane's read area for the carried partial block
  READ: 128 * 1024, // what one read into a lane may place
  TAIL: 128, //       room after it for the padding
};
const LANE_BYTES = L.HEAD + L.READ + L.TAIL;
const MEM_PAGES = Math.ceil((L.LANE0 + LANES * LANE_BYTES) / PAGE);
if (L.PTRS < L.STATE + GROUPS * 64 || L.K < L.PTRS + LANES * 4 || L.MSG < L.K + 64 * 16 || L.LANE0 < L.MSG + GROUPS * 256) {
  throw new Error('memory layout: regions overlap');
}

// i8x16.shuffle masks V8 turns into single unpack instructions
const seq = (from, n) => Array.from({ length: n }, (_, i) => from + i);
const UNPACK_LO32 = [...seq(0, 4), ...seq(16, 4), ...seq(4, 4), ...seq(20, 4)];
const UNPACK_HI32 = [...seq(8, 4), ...seq(24, 4), ...seq(12, 4), ...seq(28, 4)];
const UNPACK_LO64 = [...seq(0, 8), ...seq(16, 8)];
const UNPACK_HI64 = [...seq(8, 8), ...seq(24, 8)];

/** Transpose group g's 4 lanes' current block into MSG: word w of lane j goes to MSG + g*256 + w*16 + 4j. */
function transpose(g) {
  const out = [];
  const p = (j) => `$p${4 * g + j}`;
  for (let k = 0; k < 4; k++) {
    for (let j = 0; j < 4; j++) out.push(`local.get ${p(j)}`, `v128.load offset=${16 * k} align=1`, `local.set $r${j}`);
    const shuf = (m, x, y, into) => out.push(`local.get ${x}`, `local.get ${y}`, `i8x16.shuffle ${m.join(' ')}`, `local.set ${into}`);
    shuf(UNPACK_LO32, '$r0', '$r1', '$t0');
    shuf(UNPACK_HI32, '$r0', '$r1', '$t1');
    shuf(UNPACK_LO32, '$r2', '$r3', '$t2');
    shuf(UNPACK_HI32, '$r2', '$r3', '$t3');
    const col = (m, x, y, w) =>
      out.push('i32.const 0', `local.get ${x}`, `local.get ${y}`, `i8x16.shuffle ${m.join(' ')}`, `v128.store offset=${L.MSG + g * 256 + w * 16}`);
    col(UNPACK_LO64, '$t0', '$t2', 4 * k);
    col(UNPACK_HI64, '$t0', '$t2', 4 * k + 1);
    col(UNPACK_LO64, '$t1', '$t3', 4 * k + 2);
    col(UNPACK_HI64, '$t1', '$t3', 4 * k + 3);
  }
  return out;
}

/** One MD5 step for group g; v = its [a, b, c, d] local names at this step. */
function step(g, i, [a, b, c, d]) {
  const round = i >> 4;
  const s = SHIFT[round][i & 3];
  // Only b is new at this step (c and d are one and two steps old), so each function is written
  // with as few operations after b as it allows: the chain through b is what limits the speed.
  const f = [
    [`local.get ${c}`, `local.get ${d}`, 'v128.xor', `local.get ${b}`, 'v128.and', `local.get ${d}`, 'v128.xor'], // F = d ^ (b & (c ^ d))
    // G = (b & d) | (c & ~d); the two halves share no bit, so | is +, and c & ~d is ready early
    [`local.get ${c}`, `local.get ${d}`, 'v128.andnot', 'i32x4.add', `local.get ${b}`, `local.get ${d}`, 'v128.and'],
    [`local.get ${c}`, `local.get ${d}`, 'v128.xor', `local.get ${b}`, 'v128.xor'], // H = b ^ (c ^ d)
    [`local.get ${d}`, 'v128.not', `local.get ${b}`, 'v128.or', `local.get ${c}`, 'v128.xor'], // I = c ^ (b | ~d)
  ][round];
  const t = `$x${g}`;
  return [
    // a + K[i] + M[g] does not wait for this step's b, c, d
    `local.get ${a}`,
    'i32.const 0',
    `v128.load offset=${L.K + 16 * i}`,
    'i32x4.add',
    'i32.const 0',
    `v128.load offset=${L.MSG + g * 256 + 16 * wordOf(i)}`,
    'i32x4.add',
    ...f,
    'i32x4.add',
    `local.tee ${t}`,
    `i32.const ${s}`,
    'i32x4.shl',
    `local.get ${t}`,
    `i32.const ${32 - s}`,
    'i32x4.shr_u',
    'v128.or',
    `local.get ${b}`,
    'i32x4.add',
    `local.set ${a}`,
  ];
}

function fnRun() {
  const params = [['n', 'i32']];
  const locals = [
    ...Array.from({ length: LANES }, (_, l) => [`p${l}`, 'i32']),
    ...Array.from({ length: GROUPS }, (_, g) => ['a', 'b', 'c', 'd', 'x'].map((w) => [`${w}${g}`, 'v128'])).flat(),
    ...['r0', 'r1', 'r2', 'r3', 't0', 't1', 't2', 't3'].map((r) => [r, 'v128']),
  ];
  const body = [];
  for (let l = 0; l < LANES; l++) body.push('i32.const 0', `i32.load offset=${L.PTRS + 4 * l}`, `local.set $p${l}`);
  body.push('block $done', 'loop $blk', 'local.get $n', 'i32.eqz', 'br_if $done');
  for (let g = 0; g < GROUPS; g++) {
    body.push(...transpose(g));
    ['a', 'b', 'c', 'd'].forEach((w, k) => body.push('i32.const 0', `v128.load offset=${L.STATE + (4 * g + k) * 16}`, `local.set $${w}${g}`));
  }
  // roles rotate: after a step, (a, b, c, d) = (d, new a, b, c)
  const roles = Array.from({ length: GROUPS }, (_, g) => ['a', 'b', 'c', 'd'].map((w) => `$${w}${g}`));
  for (let i = 0; i < 64; i++)
    for (let g = 0; g < GROUPS; g++) {
      body.push(...step(g, i, roles[g]));
      const [a, b, c, d] = roles[g];
      roles[g] = [d, a, b, c];
    }
  for (let g = 0; g < GROUPS; g++)
    ['a', 'b', 'c', 'd'].forEach((w, k) => {
      // after 64 steps the roles are back where they started
      const off = L.STATE + (4 * g + k) * 16;
      body.push('i32.const 0', 'i32.const 0', `v128.load offset=${off}`, `local.get ${roles[g][k]}`, 'i32x4.add', `v128.store offset=${off}`);
    });
  for (let l = 0; l < LANES; l++) body.push(`local.get $p${l}`, 'i32.const 64', 'i32.add', `local.set $p${l}`);
  body.push('local.get $n', 'i32.const 1', 'i32.sub', 'local.set $n', 'br $blk', 'end', 'end');
  for (let l = 0; l < LANES; l++) body.push('i32.const 0', `local.get $p${l}`, `i32.store offset=${L.PTRS + 4 * l}`);
  return { name: 'run', params, results: [], locals, body };
}

function buildModule() {
  const funcs = [fnRun()];
  const bytes = assembleModule({
    funcs,
    globals: [],
    memoryPages: MEM_PAGES,
    data: [{ offset: L.K, bytes: K.flatMap((k) => [...u32le(k), ...u32le(k), ...u32le(k), ...u32le(k)]) }],
    exports: ['run'],
  });
  return { bytes, funcs };
}

function render(bytes) {
  return renderModule(bytes, {
    header: [
      '// Generated by tools/gen-md5-wasm.mjs (npm run gen:md5). Do not edit.',
      `// MD5 in WebAssembly with SIMD128: ${LANES} inputs side by side, two groups of 4 lanes interleaved.`,
    ],
    name: 'MD5_LANES_WASM_BASE64',
    layoutName: 'MD5_LANES_LAYOUT',
    layoutDoc: 'Byte offsets into the module\'s memory (exported as "memory"; it never grows).',
    layout: { lanes: LANES, state: L.STATE, ptrs: L.PTRS, lane0: L.LANE0, laneBytes: LANE_BYTES, head: L.HEAD, read: L.READ },
  });
}

process.exitCode = generatorMain(process.argv.slice(2), {
  rootDir: ROOT_DIR,
  outFile: OUT_FILE,
  build: buildModule,
  render,
  regen: 'node tools/gen-md5-wasm.mjs',
});
