#!/usr/bin/env node
// Generates src/scan/blake3-simd.wasm.ts: a BLAKE3 (hash mode, 32-byte output) WebAssembly module
// whose hot path hashes 4 chunks at once with SIMD128 (lane i of each v128 holds chunk i's state
// word; the message words of the 4 chunks are transposed), and whose tree logic (chunk counter,
// lazily merged CV stack, ROOT on the final compression) lives in wasm too.
//
// No dependencies: the module is written as flat WAT-like instruction lines and encoded by the
// tiny assembler in tools/wasm-asm.mjs. The 7 rounds are unrolled here; the message permutation is resolved here,
// so the module never permutes at run time.
//
//   node tools/gen-blake3-wasm.mjs           write src/scan/blake3-simd.wasm.ts
//   node tools/gen-blake3-wasm.mjs --check   exit 1 if the committed file differs from what this emits
//   node tools/gen-blake3-wasm.mjs --wat F   also write the instruction listing to F (for reading)
//   --out F (with or without --check) writes or checks F instead; --opt JSON overrides OPT below
//   (experiments only: the committed file is always generated with the defaults)
//
// Exports of the module (all pointers are byte offsets into its own memory "memory"):
//   reset()                     start a new hash
//   update(ptr, len)            absorb len bytes at ptr (ptr..ptr+len must lie in the input region)
//   finalize(out)               write the 32-byte digest of everything so far to out; the state is kept
// Layout constants are written next to the bytes in the generated file.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assembleModule, generatorMain, renderModule, u32le } from './wasm-asm.mjs';

const ROOT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT_FILE = path.join(ROOT_DIR, 'src/scan/blake3-simd.wasm.ts');

// ---------------------------------------------------------------------------------------------
// BLAKE3 constants

const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const MSG_PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
const CHUNK_START = 1;
const CHUNK_END = 2;
const PARENT = 4;
const ROOT = 8;
const CHUNK_LEN = 1024;
const BLOCK_LEN = 64;

/** SCHEDULE[r][i]: the original message word that round r uses in position i. */
const SCHEDULE = [Array.from({ length: 16 }, (_, i) => i)];
for (let r = 1; r < 7; r++) SCHEDULE.push(MSG_PERMUTATION.map((p) => SCHEDULE[r - 1][p]));

/** The 8 G applications of a round: state indices a, b, c, d; message positions 2g, 2g+1. */
const G_STATE = [
  [0, 4, 8, 12],
  [1, 5, 9, 13],
  [2, 6, 10, 14],
  [3, 7, 11, 15],
  [0, 5, 10, 15],
  [1, 6, 11, 12],
  [2, 7, 8, 13],
  [3, 4, 9, 14],
];

// ---------------------------------------------------------------------------------------------
// Memory layout (byte offsets). One fixed-size memory: it never grows, so views never detach.

const PAGE = 65536;
const L = {
  IV: 0, //          32  IV words (data segment)
  CS_CV: 32, //      32  chunk state: chaining value
  CS_BLOCK: 64, //   64  chunk state: block buffer
  PB: 128, //        64  finalize: parent block (left CV | right CV)
  TMP: 192, //       32  a chunk's or subtree's CV on its way to the stack
  H4: 256, //       128  4 chunk CVs from hash4
  OUT: 384, //       32  digest
  STACK: 512, //   2048  CV stack, 64 entries (at most 54 + 1 are used)
  MSG: 2560, //     256  hash4/parents4: the transposed message block
  ROW: 2816, //      64  hash4/parents4: state words 12..15 when kept in memory (OPT.memRow)
  SCR: 4096, //    8192  subtree scratch: 256 CVs
  INPUT: PAGE, //        input region
  INPUT_CAP: 256 * 1024,
};
const MEM_PAGES = (L.INPUT + L.INPUT_CAP) / PAGE;
/** the largest subtree hashed in one piece (its leaf CVs fill the scratch); a commit of the whole capacity is 256 chunks */
const MAX_SUBTREE_CHUNKS = 256;
if (L.STACK + 64 * 32 > L.MSG || L.ROW + 64 > L.SCR || L.SCR + MAX_SUBTREE_CHUNKS * 32 > L.INPUT || MEM_PAGES % 1 !== 0) {
  throw new Error('memory layout: regions overlap');
}

// ---------------------------------------------------------------------------------------------
// Code generation helpers

const range = (n) => Array.from({ length: n }, (_, i) => i);
const hex32 = (x) => `0x${(x >>> 0).toString(16)}`;

/**
 * Code-shape choices. All produce the same function; they differ only in speed. Measured on the
 * project's machines (2-core AMD EPYC, Node 20.20 = V8 11.3, TurboFan), streaming update() of
 * 256 KiB pieces, best of 30 by CPU time:
 *   memRow, rot16 + rot8 swizzle (default)   ~1810 MB/s
 *   same without memRow                      ~1775 MB/s
 *   memRow, rot16 shuffle, rot8 shift        ~1640 MB/s
 *   memRow, rot16 shuffle, rot8 shuffle      ~1580 MB/s
 *   no memRow, rot16 shuffle, rot8 shift     ~1570 MB/s
 * Why: wasm SIMD has no rotate. A byte rotation written as i8x16.shuffle makes V8 rebuild the
 * pshufb mask from immediates at every use (4 extra instructions); i8x16.swizzle with a constant
 * mask (all lanes < 16, so no out-of-range fixup) becomes one pshufb whose mask stays in a
 * register. Rotations by 12 and 7 remain shr + shl + or. And 16 state vectors do not fit in x64's
 * 15 usable xmm registers: V8's allocator then spills about 8 times per G, while keeping one state
 * row in memory on purpose costs 1 load + 1 store per G. Other shapes stay for re-measuring
 * elsewhere: --opt '{"memRow":false}' --out FILE.
 */
const OPT = {
  memRow: true, // SIMD: keep state words 12..15 in memory (L.ROW), loaded and stored once per G
  interleave: true, // SIMD without memRow: emit the 4 independent G of a half-round step by step
  rot16: 'swizzle', // SIMD: 'swizzle' (pshufb, constant mask), 'shuffle' (i8x16.shuffle) or 'shift'
  rot8: 'swizzle',
  msgMem: false, // SIMD: keep the transposed message words in memory (L.MSG) and load them where used
  exportAll: false, // experiments: export the internals too
};

/** the 8 steps of G; a, b, c, d: local names; mx, my: instruction lists that push a message word */
function gSteps(simd, a, b, c, d, mx, my) {
  const add = simd ? 'i32x4.add' : 'i32.add';
  const xor = simd ? 'v128.xor' : 'i32.xor';
  // rotate right the value on the stack by n and store it to x
  const rotr = (x, n) => {
    if (!simd) return [`i32.const ${n}`, 'i32.rotr', `local.set $${x}`];
    const mode = n === 16 ? OPT.rot16 : n === 8 ? OPT.rot8 : 'shift';
    const k = n / 8;
    const lanes = range(16).map((j) => (j & ~3) | ((j + k) & 3));
    if (mode === 'shuffle') return [`local.tee $t`, `local.get $t`, `i8x16.shuffle ${lanes.join(' ')}`, `local.set $${x}`];
    if (mode === 'swizzle') {
      const words = range(4).map((w) => hex32(lanes[4 * w] | (lanes[4 * w + 1] << 8) | (lanes[4 * w + 2] << 16) | (lanes[4 * w + 3] << 24)));
      return [`v128.const i32x4 ${words.join(' ')}`, 'i8x16.swizzle', `local.set $${x}`];
    }
    return [`local.tee $t`, `i32.const ${n}`, 'i32x4.shr_u', `local.get $t`, `i32.const ${32 - n}`, 'i32x4.shl', 'v128.or', `local.set $${x}`];
  };
  return [
    // (a + m) + b: a and m are ready before b, so one add leaves the critical path
    [`local.get $${a}`, ...mx, add, `local.get $${b}`, add, `local.set $${a}`],
    [`local.get $${d}`, `local.get $${a}`, xor, ...rotr(d, 16)],
    [`local.get $${c}`, `local.get $${d}`, add, `local.set $${c}`],
    [`local.get $${b}`, `local.get $${c}`, xor, ...rotr(b, 12)],
    [`local.get $${a}`, ...my, add, `local.get $${b}`, add, `local.set $${a}`],
    [`local.get $${d}`, `local.get $${a}`, xor, ...rotr(d, 8)],
    [`local.get $${c}`, `local.get $${d}`, add, `local.set $${c}`],
    [`local.get $${b}`, `local.get $${c}`, xor, ...rotr(b, 7)],
  ];
}

/** 7 unrolled rounds over state locals `${v}0..15` and message locals `${m}0..15` */
function rounds(simd, v, m) {
  const out = [];
  for (let r = 0; r < 7; r++) {
    for (let half = 0; half < 2; half++) {
      const gs = range(4).map((k) => {
        const g = half * 4 + k;
        const [a, b, c, d] = G_STATE[g];
        const word = (w) => (simd && OPT.msgMem ? ['i32.const 0', `v128.load offset=${L.MSG + 16 * w}`] : [`local.get $${m}${w}`]);
        const mx = word(SCHEDULE[r][2 * g]);
        const my = word(SCHEDULE[r][2 * g + 1]);
        if (simd && OPT.memRow) {
          const at = `offset=${L.ROW + 16 * (d - 12)}`;
          const steps = gSteps(simd, `${v}${a}`, `${v}${b}`, `${v}${c}`, 'dd', mx, my);
          steps[0] = ['i32.const 0', `v128.load ${at}`, 'local.set $dd', ...steps[0]];
          steps[7] = [...steps[7], 'i32.const 0', 'local.get $dd', `v128.store ${at}`];
          return steps;
        }
        return gSteps(simd, `${v}${a}`, `${v}${b}`, `${v}${c}`, `${v}${d}`, mx, my);
      });
      const interleave = simd && !OPT.memRow ? OPT.interleave : false;
      if (interleave) for (let s = 0; s < 8; s++) for (const g of gs) out.push(...g[s]);
      else for (const g of gs) for (const s of g) out.push(...s);
    }
  }
  return out;
}

const locals = (prefix, n, type) => range(n).map((i) => [`${prefix}${i}`, type]);

/** compress(cv, blk, ctr, len, flags, out): out[0..8) = first 8 output words (the new CV); out may alias cv or blk */
function fnCompress() {
  const body = [];
  for (const i of range(16)) body.push('local.get $blk', `i32.load offset=${4 * i} align=1`, `local.set $m${i}`);
  for (const i of range(8)) body.push('local.get $cv', `i32.load offset=${4 * i} align=1`, `local.set $v${i}`);
  for (const i of range(4)) body.push(`i32.const ${hex32(IV[i])}`, `local.set $v${8 + i}`);
  body.push('local.get $ctr', 'i32.wrap_i64', 'local.set $v12');
  body.push('local.get $ctr', 'i64.const 32', 'i64.shr_u', 'i32.wrap_i64', 'local.set $v13');
  body.push('local.get $len', 'local.set $v14', 'local.get $fl', 'local.set $v15');
  body.push(...rounds(false, 'v', 'm'));
  for (const i of range(8)) body.push('local.get $out', `local.get $v${i}`, `local.get $v${i + 8}`, 'i32.xor', `i32.store offset=${4 * i} align=1`);
  return {
    name: 'compress',
    params: [
      ['cv', 'i32'],
      ['blk', 'i32'],
      ['ctr', 'i64'],
      ['len', 'i32'],
      ['fl', 'i32'],
      ['out', 'i32'],
    ],
    results: [],
    locals: [...locals('v', 16, 'i32'), ...locals('m', 16, 'i32')],
    body,
  };
}

/** chunk(p, ctr, out): the (non-root) CV of the full 1024-byte chunk at p, scalar */
function fnChunk() {
  const body = [];
  for (const i of range(8)) body.push(`i32.const ${hex32(IV[i])}`, `local.set $h${i}`);
  body.push('local.get $ctr', 'i32.wrap_i64', 'local.set $lo');
  body.push('local.get $ctr', 'i64.const 32', 'i64.shr_u', 'i32.wrap_i64', 'local.set $hi');
  body.push('i32.const 0', 'local.set $b', 'loop $blocks');
  for (const i of range(16)) body.push('local.get $p', `i32.load offset=${4 * i} align=1`, `local.set $m${i}`);
  for (const i of range(8)) body.push(`local.get $h${i}`, `local.set $v${i}`);
  for (const i of range(4)) body.push(`i32.const ${hex32(IV[i])}`, `local.set $v${8 + i}`);
  body.push('local.get $lo', 'local.set $v12', 'local.get $hi', 'local.set $v13', `i32.const ${BLOCK_LEN}`, 'local.set $v14');
  // flags: CHUNK_START on block 0, CHUNK_END on block 15
  body.push('local.get $b', 'i32.eqz', 'local.get $b', 'i32.const 15', 'i32.eq', 'i32.const 1', 'i32.shl', 'i32.or', 'local.set $v15');
  body.push(...rounds(false, 'v', 'm'));
  for (const i of range(8)) body.push(`local.get $v${i}`, `local.get $v${i + 8}`, 'i32.xor', `local.set $h${i}`);
  body.push('local.get $p', `i32.const ${BLOCK_LEN}`, 'i32.add', 'local.set $p');
  body.push('local.get $b', 'i32.const 1', 'i32.add', 'local.tee $b', 'i32.const 16', 'i32.ne', 'br_if $blocks', 'end');
  for (const i of range(8)) body.push('local.get $out', `local.get $h${i}`, `i32.store offset=${4 * i} align=1`);
  return {
    name: 'chunk',
    params: [
      ['p', 'i32'],
      ['ctr', 'i64'],
      ['out', 'i32'],
    ],
    results: [],
    locals: [...locals('h', 8, 'i32'), ...locals('v', 16, 'i32'), ...locals('m', 16, 'i32'), ['b', 'i32'], ['lo', 'i32'], ['hi', 'i32']],
    body,
  };
}

const shuffle32 = (lanes) => `i8x16.shuffle ${lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]).join(' ')}`;

/** 4x4 transpose of 32-bit lanes: rows (instruction lists) -> locals named in `outs` */
function transpose(rows, outs) {
  const [a, b, c, d] = rows;
  return [
    ...a,
    ...b,
    shuffle32([0, 4, 1, 5]),
    'local.set $t0',
    ...a,
    ...b,
    shuffle32([2, 6, 3, 7]),
    'local.set $t1',
    ...c,
    ...d,
    shuffle32([0, 4, 1, 5]),
    'local.set $t2',
    ...c,
    ...d,
    shuffle32([2, 6, 3, 7]),
    'local.set $t3',
    'local.get $t0',
    'local.get $t2',
    shuffle32([0, 1, 4, 5]),
    `local.set $${outs[0]}`,
    'local.get $t0',
    'local.get $t2',
    shuffle32([2, 3, 6, 7]),
    `local.set $${outs[1]}`,
    'local.get $t1',
    'local.get $t3',
    shuffle32([0, 1, 4, 5]),
    `local.set $${outs[2]}`,
    'local.get $t1',
    'local.get $t3',
    shuffle32([2, 3, 6, 7]),
    `local.set $${outs[3]}`,
  ];
}

const splatIV = (i) => `v128.const i32x4 ${hex32(IV[i])} ${hex32(IV[i])} ${hex32(IV[i])} ${hex32(IV[i])}`;

/**
 * 4 compressions side by side. kind 'chunks': hash4(p, ctr, out), the CVs of the 4 full chunks at
 * p + 1024*i (chunk counters ctr + i), 16 blocks each. kind 'parents': parents4(p, out), the CVs of
 * the 4 parent nodes whose blocks (left CV | right CV) are at p + 64*i. CV i goes to out + 32*i;
 * out may alias p (all loads of a block happen before any store).
 */
function fnMany4(kind) {
  const chunks = kind === 'chunks';
  const stride = chunks ? CHUNK_LEN : BLOCK_LEN;
  const body = [];
  for (const i of range(8)) body.push(splatIV(i), `local.set $h${i}`);
  if (chunks) {
    // counter lanes: ctr + i, low words with carry into the high words
    body.push('local.get $ctr', 'i32.wrap_i64', 'i32x4.splat', 'local.tee $t', 'v128.const i32x4 0 1 2 3', 'i32x4.add', 'local.set $clo');
    body.push(
      'local.get $ctr',
      'i64.const 32',
      'i64.shr_u',
      'i32.wrap_i64',
      'i32x4.splat',
      'local.get $clo',
      'local.get $t',
      'i32x4.lt_u',
      'i32x4.sub',
      'local.set $chi',
    );
    body.push('i32.const 0', 'local.set $b', 'loop $blocks');
  }
  // message: word w of lane i is at p + stride*i + 4*w; load rows, transpose to m0..15
  for (const k of range(4)) {
    const rows = range(4).map((i) => ['local.get $p', `v128.load offset=${stride * i + 16 * k} align=1`]);
    body.push(
      ...transpose(
        rows,
        range(4).map((j) => `m${4 * k + j}`),
      ),
    );
    if (OPT.msgMem) for (const j of range(4)) body.push('i32.const 0', `local.get $m${4 * k + j}`, `v128.store offset=${L.MSG + 16 * (4 * k + j)}`);
  }
  for (const i of range(8)) body.push(`local.get $h${i}`, `local.set $s${i}`);
  for (const i of range(4)) body.push(splatIV(i), `local.set $s${8 + i}`);
  if (chunks) {
    body.push('local.get $clo', 'local.set $s12', 'local.get $chi', 'local.set $s13');
    body.push(`v128.const i32x4 ${BLOCK_LEN} ${BLOCK_LEN} ${BLOCK_LEN} ${BLOCK_LEN}`, 'local.set $s14');
    body.push('local.get $b', 'i32.eqz', 'local.get $b', 'i32.const 15', 'i32.eq', 'i32.const 1', 'i32.shl', 'i32.or', 'i32x4.splat', 'local.set $s15');
  } else {
    body.push('v128.const i32x4 0 0 0 0', 'local.tee $s12', 'local.set $s13');
    body.push(`v128.const i32x4 ${BLOCK_LEN} ${BLOCK_LEN} ${BLOCK_LEN} ${BLOCK_LEN}`, 'local.set $s14');
    body.push(`v128.const i32x4 ${PARENT} ${PARENT} ${PARENT} ${PARENT}`, 'local.set $s15');
  }
  if (OPT.memRow) for (const i of range(4)) body.push('i32.const 0', `local.get $s${12 + i}`, `v128.store offset=${L.ROW + 16 * i}`);
  body.push(...rounds(true, 's', 'm'));
  if (OPT.memRow) for (const i of range(4)) body.push('i32.const 0', `v128.load offset=${L.ROW + 16 * i}`, `local.set $s${12 + i}`);
  for (const i of range(8)) body.push(`local.get $s${i}`, `local.get $s${i + 8}`, 'v128.xor', `local.set $h${i}`);
  if (chunks) {
    body.push('local.get $p', `i32.const ${BLOCK_LEN}`, 'i32.add', 'local.set $p');
    body.push('local.get $b', 'i32.const 1', 'i32.add', 'local.tee $b', 'i32.const 16', 'i32.ne', 'br_if $blocks', 'end');
  }
  // h_j lane i = word j of CV i: transpose back, rows are CVs
  body.push(
    ...transpose(
      range(4).map((j) => [`local.get $h${j}`]),
      ['r0', 'r1', 'r2', 'r3'],
    ),
  );
  body.push(
    ...transpose(
      range(4).map((j) => [`local.get $h${4 + j}`]),
      ['r4', 'r5', 'r6', 'r7'],
    ),
  );
  for (const i of range(4)) {
    body.push('local.get $out', `local.get $r${i}`, `v128.store offset=${32 * i} align=1`);
    body.push('local.get $out', `local.get $r${4 + i}`, `v128.store offset=${32 * i + 16} align=1`);
  }
  return {
    name: chunks ? 'hash4' : 'parents4',
    params: chunks
      ? [
          ['p', 'i32'],
          ['ctr', 'i64'],
          ['out', 'i32'],
        ]
      : [
          ['p', 'i32'],
          ['out', 'i32'],
        ],
    results: [],
    locals: [
      ...locals('h', 8, 'v128'),
      ...locals('s', 16, 'v128'),
      ...locals('m', 16, 'v128'),
      ...locals('r', 8, 'v128'),
      ...locals('t', 4, 'v128'),
      ['t', 'v128'],
      ['dd', 'v128'],
      ['clo', 'v128'],
      ['chi', 'v128'],
      ['b', 'i32'],
    ],
    body,
  };
}

/** call $compress on a parent block at (instruction list) blk, writing to (instruction list) out */
const parentCompress = (blk, out, flags = PARENT) => [
  `i32.const ${L.IV}`,
  ...blk,
  'i64.const 0',
  `i32.const ${BLOCK_LEN}`,
  `i32.const ${flags}`,
  ...out,
  'call $compress',
];

const incr = (g, by = 1) => [`global.get $${g}`, `i32.const ${by}`, 'i32.add', `global.set $${g}`];
const incrLocal = (l, by) => [`local.get $${l}`, ...by, 'i32.add', `local.set $${l}`];
const decrLocal = (l, by) => [`local.get $${l}`, ...by, 'i32.sub', `local.set $${l}`];

/** merge(ctr): merge the CV stack down to popcount(ctr) entries (the lazy merge of BLAKE3's Rust crate) */
function fnMerge() {
  return {
    name: 'merge',
    params: [['ctr', 'i64']],
    results: [],
    locals: [
      ['t', 'i32'],
      ['q', 'i32'],
    ],
    body: [
      'local.get $ctr',
      'i64.popcnt',
      'i32.wrap_i64',
      'local.set $t',
      'block $done',
      'loop $more',
      'global.get $sp',
      'local.get $t',
      'i32.le_u',
      'br_if $done',
      'global.get $sp',
      'i32.const 5',
      'i32.shl',
      `i32.const ${L.STACK - 64}`,
      'i32.add',
      'local.set $q',
      ...parentCompress(['local.get $q'], ['local.get $q']),
      'global.get $sp',
      'i32.const 1',
      'i32.sub',
      'global.set $sp',
      'br $more',
      'end',
      'end',
    ],
  };
}

/** push(cv, ctr): push the CV of the subtree starting at chunk ctr, merging what lies below first */
function fnPush() {
  return {
    name: 'push',
    params: [
      ['cv', 'i32'],
      ['ctr', 'i64'],
    ],
    results: [],
    locals: [],
    body: [
      'local.get $ctr',
      'call $merge',
      'global.get $sp',
      'i32.const 5',
      'i32.shl',
      `i32.const ${L.STACK}`,
      'i32.add',
      'local.get $cv',
      'i32.const 32',
      'memory.copy',
      ...incr('sp'),
    ],
  };
}

const compressCsBlock = (blk) => [
  `i32.const ${L.CS_CV}`,
  ...blk,
  'global.get $ctr',
  `i32.const ${BLOCK_LEN}`,
  'global.get $blocks',
  'i32.eqz', // CHUNK_START on the chunk's first block
  `i32.const ${L.CS_CV}`,
  'call $compress',
  ...incr('blocks'),
];

/** cs_update(p, n): absorb n bytes into the chunk state; the caller keeps the chunk within 1024 bytes */
function fnCsUpdate() {
  return {
    name: 'cs_update',
    params: [
      ['p', 'i32'],
      ['n', 'i32'],
    ],
    results: [],
    locals: [['take', 'i32']],
    body: [
      'block $done',
      'loop $more',
      'local.get $n',
      'i32.eqz',
      'br_if $done',
      // a full buffered block is compressed only now that more input follows it
      'global.get $buflen',
      `i32.const ${BLOCK_LEN}`,
      'i32.eq',
      'if',
      ...compressCsBlock([`i32.const ${L.CS_BLOCK}`]),
      'i32.const 0',
      'global.set $buflen',
      'end',
      // buffer empty: compress whole blocks straight from the input while more follows them
      'global.get $buflen',
      'i32.eqz',
      'if',
      'block $direct_done',
      'loop $direct',
      'local.get $n',
      `i32.const ${BLOCK_LEN}`,
      'i32.le_u',
      'br_if $direct_done',
      ...compressCsBlock(['local.get $p']),
      ...incrLocal('p', [`i32.const ${BLOCK_LEN}`]),
      ...decrLocal('n', [`i32.const ${BLOCK_LEN}`]),
      'br $direct',
      'end',
      'end',
      'end',
      // take = min(64 - buflen, n)
      `i32.const ${BLOCK_LEN}`,
      'global.get $buflen',
      'i32.sub',
      'local.tee $take',
      'local.get $n',
      'local.get $take',
      'local.get $n',
      'i32.lt_u',
      'select',
      'local.set $take',
      `i32.const ${L.CS_BLOCK}`,
      'global.get $buflen',
      'i32.add',
      'local.get $p',
      'local.get $take',
      'memory.copy',
      'global.get $buflen',
      'local.get $take',
      'i32.add',
      'global.set $buflen',
      ...incrLocal('p', ['local.get $take']),
      ...decrLocal('n', ['local.get $take']),
      'br $more',
      'end',
      'end',
    ],
  };
}

/** chunk_cv(out, fl): compress the chunk state's last block with CHUNK_END | fl to out; the state is kept */
function fnChunkCv() {
  return {
    name: 'chunk_cv',
    params: [
      ['out', 'i32'],
      ['fl', 'i32'],
    ],
    results: [],
    locals: [],
    body: [
      // zero the block past its length (bytes that no one reads otherwise)
      `i32.const ${L.CS_BLOCK}`,
      'global.get $buflen',
      'i32.add',
      'i32.const 0',
      `i32.const ${BLOCK_LEN}`,
      'global.get $buflen',
      'i32.sub',
      'memory.fill',
      `i32.const ${L.CS_CV}`,
      `i32.const ${L.CS_BLOCK}`,
      'global.get $ctr',
      'global.get $buflen',
      'global.get $blocks',
      'i32.eqz',
      `i32.const ${CHUNK_END}`,
      'i32.or',
      'local.get $fl',
      'i32.or',
      'local.get $out',
      'call $compress',
    ],
  };
}

function fnCsReset() {
  return {
    name: 'cs_reset',
    params: [],
    results: [],
    locals: [],
    body: [
      `i32.const ${L.CS_CV}`,
      `i32.const ${L.IV}`,
      'i32.const 32',
      'memory.copy',
      'i32.const 0',
      'global.set $buflen',
      'i32.const 0',
      'global.set $blocks',
    ],
  };
}

function fnReset() {
  return {
    name: 'reset',
    params: [],
    results: [],
    locals: [],
    body: ['call $cs_reset', 'i64.const 0', 'global.set $ctr', 'i32.const 0', 'global.set $sp'],
  };
}

/**
 * subtree(p, ctr, n, out): the CV of the complete subtree of n chunks at p (n a power of two,
 * 4 <= n <= 256, ctr a multiple of n): leaves 4 at a time, then parents 4 at a time while a
 * level has 8 or more, then the last 3 parents scalar.
 */
function fnSubtree() {
  const S = L.SCR;
  return {
    name: 'subtree',
    params: [
      ['p', 'i32'],
      ['ctr', 'i64'],
      ['n', 'i32'],
      ['out', 'i32'],
    ],
    results: [],
    locals: [
      ['i', 'i32'],
      ['cnt', 'i32'],
      ['j', 'i32'],
    ],
    body: [
      'i32.const 0',
      'local.set $i',
      'loop $leaves',
      'local.get $p',
      'local.get $i',
      'i32.const 10',
      'i32.shl',
      'i32.add',
      'local.get $ctr',
      'local.get $i',
      'i64.extend_i32_u',
      'i64.add',
      `i32.const ${S}`,
      'local.get $i',
      'i32.const 5',
      'i32.shl',
      'i32.add',
      'call $hash4',
      'local.get $i',
      'i32.const 4',
      'i32.add',
      'local.tee $i',
      'local.get $n',
      'i32.lt_u',
      'br_if $leaves',
      'end',
      'local.get $n',
      'local.set $cnt',
      'block $levels_done',
      'loop $levels',
      'local.get $cnt',
      'i32.const 4',
      'i32.le_u',
      'br_if $levels_done',
      'i32.const 0',
      'local.set $j',
      'loop $parents',
      `i32.const ${S}`,
      'local.get $j',
      'i32.const 6',
      'i32.shl',
      'i32.add',
      `i32.const ${S}`,
      'local.get $j',
      'i32.const 5',
      'i32.shl',
      'i32.add',
      'call $parents4',
      'local.get $j',
      'i32.const 4',
      'i32.add',
      'local.tee $j',
      'local.get $cnt',
      'i32.const 1',
      'i32.shr_u',
      'i32.lt_u',
      'br_if $parents',
      'end',
      'local.get $cnt',
      'i32.const 1',
      'i32.shr_u',
      'local.set $cnt',
      'br $levels',
      'end',
      'end',
      ...parentCompress([`i32.const ${S}`], [`i32.const ${S}`]),
      ...parentCompress([`i32.const ${S + 64}`], [`i32.const ${S + 32}`]),
      ...parentCompress([`i32.const ${S}`], ['local.get $out']),
    ],
  };
}

const addCtr = (by) => ['global.get $ctr', ...by, 'i64.add', 'global.set $ctr'];
const returnIfZero = (l) => [`local.get $${l}`, 'i32.eqz', 'if', 'return', 'end'];

/** update(p, n): absorb n bytes at p */
function fnUpdate() {
  const pushH4 = range(4).flatMap((i) => [`i32.const ${L.H4 + 32 * i}`, 'global.get $ctr', `i64.const ${i}`, 'i64.add', 'call $push']);
  return {
    name: 'update',
    params: [
      ['p', 'i32'],
      ['n', 'i32'],
    ],
    results: [],
    locals: [
      ['take', 'i32'],
      ['s', 'i32'],
      ['sb', 'i32'],
    ],
    body: [
      ...returnIfZero('n'),
      // 1. a partly filled chunk: fill it; if input remains, the chunk is not the last: push its CV
      'global.get $blocks',
      'global.get $buflen',
      'i32.or',
      'if',
      `i32.const ${CHUNK_LEN}`,
      'global.get $blocks',
      'i32.const 6',
      'i32.shl',
      'i32.sub',
      'global.get $buflen',
      'i32.sub',
      'local.tee $take',
      'local.get $n',
      'local.get $take',
      'local.get $n',
      'i32.lt_u',
      'select',
      'local.set $take',
      'local.get $p',
      'local.get $take',
      'call $cs_update',
      ...incrLocal('p', ['local.get $take']),
      ...decrLocal('n', ['local.get $take']),
      ...returnIfZero('n'),
      `i32.const ${L.TMP}`,
      'i32.const 0',
      'call $chunk_cv',
      `i32.const ${L.TMP}`,
      'global.get $ctr',
      'call $push',
      ...addCtr(['i64.const 1']),
      'call $cs_reset',
      'end',
      // 2. at a chunk boundary: whole chunks while more than one chunk's worth remains
      'block $done',
      'loop $more',
      'local.get $n',
      `i32.const ${CHUNK_LEN}`,
      'i32.le_u',
      'br_if $done',
      'block $scalar',
      'local.get $n',
      `i32.const ${4 * CHUNK_LEN}`,
      'i32.lt_u',
      'br_if $scalar',
      'global.get $ctr',
      'i64.const 3',
      'i64.and',
      'i64.eqz',
      'i32.eqz',
      'br_if $scalar',
      // the largest subtree of s chunks (4 <= s <= 256) that fits, is aligned (ctr % s == 0) and
      // is not the whole input (then it could be the root, which needs the ROOT flag)
      `i32.const ${MAX_SUBTREE_CHUNKS}`,
      'local.set $s',
      'block $chosen',
      'loop $shrink',
      'local.get $s',
      'i32.const 10',
      'i32.shl',
      'local.tee $sb',
      'local.get $n',
      'i32.le_u',
      'global.get $ctr',
      'local.get $s',
      'i32.const 1',
      'i32.sub',
      'i64.extend_i32_u',
      'i64.and',
      'i64.eqz',
      'i32.and',
      'local.get $sb',
      'local.get $n',
      'i32.lt_u',
      'global.get $ctr',
      'i64.eqz',
      'i32.eqz',
      'i32.or',
      'i32.and',
      'br_if $chosen',
      'local.get $s',
      'i32.const 1',
      'i32.shr_u',
      'local.tee $s',
      'i32.const 4',
      'i32.ge_u',
      'br_if $shrink',
      'end',
      // none: exactly 4 chunks that are all the input so far; push their CVs one by one
      'local.get $p',
      'global.get $ctr',
      `i32.const ${L.H4}`,
      'call $hash4',
      ...pushH4,
      ...addCtr(['i64.const 4']),
      ...incrLocal('p', [`i32.const ${4 * CHUNK_LEN}`]),
      ...decrLocal('n', [`i32.const ${4 * CHUNK_LEN}`]),
      'br $more',
      'end',
      'local.get $p',
      'global.get $ctr',
      'local.get $s',
      `i32.const ${L.TMP}`,
      'call $subtree',
      `i32.const ${L.TMP}`,
      'global.get $ctr',
      'call $push',
      ...addCtr(['local.get $s', 'i64.extend_i32_u']),
      ...incrLocal('p', ['local.get $sb']),
      ...decrLocal('n', ['local.get $sb']),
      'br $more',
      'end',
      // one chunk, scalar (fewer than 4 left, or the counter is not a multiple of 4)
      'local.get $p',
      'global.get $ctr',
      `i32.const ${L.TMP}`,
      'call $chunk',
      `i32.const ${L.TMP}`,
      'global.get $ctr',
      'call $push',
      ...addCtr(['i64.const 1']),
      ...incrLocal('p', [`i32.const ${CHUNK_LEN}`]),
      ...decrLocal('n', [`i32.const ${CHUNK_LEN}`]),
      'br $more',
      'end',
      'end',
      // 3. 1..1024 bytes start the (empty) chunk state; the stack is merged for finalize first
      ...returnIfZero('n'),
      'global.get $ctr',
      'call $merge',
      'local.get $p',
      'local.get $n',
      'call $cs_update',
    ],
  };
}

/** finalize(out): the root output (32 bytes) of everything so far to out; the state is not changed */
function fnFinalize() {
  const parentTo = (flags, out) => parentCompress([`i32.const ${L.PB}`], out, flags);
  return {
    name: 'finalize',
    params: [['out', 'i32']],
    results: [],
    locals: [['n', 'i32']],
    body: [
      // a single chunk (possibly empty) is the root
      'global.get $sp',
      'local.tee $n',
      'i32.eqz',
      'if',
      'local.get $out',
      `i32.const ${ROOT}`,
      'call $chunk_cv',
      'return',
      'end',
      'global.get $blocks',
      'global.get $buflen',
      'i32.or',
      'if',
      // the chunk state's CV is the right child of the lowest parent
      `i32.const ${L.PB + 32}`,
      'i32.const 0',
      'call $chunk_cv',
      'else',
      // no partial chunk: the top two CVs (lazily unmerged) are the lowest parent's children
      'local.get $n',
      'i32.const 2',
      'i32.lt_u',
      'if',
      'unreachable',
      'end',
      `i32.const ${L.PB}`,
      'local.get $n',
      'i32.const 5',
      'i32.shl',
      `i32.const ${L.STACK - 64}`,
      'i32.add',
      'i32.const 64',
      'memory.copy',
      'local.get $n',
      'i32.const 2',
      'i32.sub',
      'local.tee $n',
      'i32.eqz',
      'if',
      ...parentTo(PARENT | ROOT, ['local.get $out']),
      'return',
      'end',
      ...parentTo(PARENT, [`i32.const ${L.PB + 32}`]),
      'end',
      'loop $up',
      `i32.const ${L.PB}`,
      'local.get $n',
      'i32.const 5',
      'i32.shl',
      `i32.const ${L.STACK - 32}`,
      'i32.add',
      'i32.const 32',
      'memory.copy',
      'local.get $n',
      'i32.const 1',
      'i32.sub',
      'local.tee $n',
      'i32.eqz',
      'if',
      ...parentTo(PARENT | ROOT, ['local.get $out']),
      'return',
      'end',
      ...parentTo(PARENT, [`i32.const ${L.PB + 32}`]),
      'br $up',
      'end',
    ],
  };
}

function buildModule() {
  const funcs = [
    fnCompress(),
    fnChunk(),
    fnMany4('chunks'),
    fnMany4('parents'),
    fnMerge(),
    fnPush(),
    fnCsUpdate(),
    fnChunkCv(),
    fnCsReset(),
    fnReset(),
    fnSubtree(),
    fnUpdate(),
    fnFinalize(),
  ];
  const globals = [
    { name: 'buflen', type: 'i32' },
    { name: 'blocks', type: 'i32' },
    { name: 'ctr', type: 'i64' },
    { name: 'sp', type: 'i32' },
  ];
  const bytes = assembleModule({
    funcs,
    globals,
    memoryPages: MEM_PAGES,
    data: [{ offset: L.IV, bytes: IV.flatMap(u32le) }],
    exports: ['reset', 'update', 'finalize', ...(OPT.exportAll ? ['hash4', 'parents4', 'chunk', 'compress'] : [])],
  });
  return { bytes, funcs };
}

function render(bytes) {
  return renderModule(bytes, {
    header: [
      '// Generated by tools/gen-blake3-wasm.mjs (npm run gen:blake3). Do not edit.',
      '// BLAKE3 in WebAssembly with SIMD128: 4 chunks hashed side by side; tree logic in wasm.',
    ],
    name: 'BLAKE3_SIMD_WASM_BASE64',
    layoutName: 'BLAKE3_SIMD_LAYOUT',
    layoutDoc: 'Byte offsets into the module\'s memory (it is exported as "memory" and never grows).',
    layout: { input: L.INPUT, inputCapacity: L.INPUT_CAP, out: L.OUT },
  });
}

function main(argv) {
  // experiments only: --opt '{"rot16":"shift"}' --out FILE
  const optAt = argv.indexOf('--opt');
  if (optAt >= 0) Object.assign(OPT, JSON.parse(argv[optAt + 1]));
  return generatorMain(argv, { rootDir: ROOT_DIR, outFile: OUT_FILE, build: buildModule, render, regen: 'node tools/gen-blake3-wasm.mjs' });
}

process.exitCode = main(process.argv.slice(2));
