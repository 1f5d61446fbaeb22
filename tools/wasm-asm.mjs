// A tiny WebAssembly assembler for flat WAT-like instruction lines, and the command-line driver the
// module generators share (tools/gen-blake3-wasm.mjs, tools/gen-md5-wasm.mjs). No dependencies.
//
// A function is { name, params: [[name, type]], results: [type], locals: [[name, type]], body: string[] };
// each body line is one instruction with its immediates (`local.get $x`, `v128.load offset=16`,
// `block $l` ... `end`, `br_if $l`). assembleModule() lays out one module with one fixed-size memory
// exported as "memory".

import fs from 'node:fs';
import path from 'node:path';

export const VT = { i32: 0x7f, i64: 0x7e, v128: 0x7b };

export function uleb(n) {
  let v = BigInt(n);
  if (v < 0n) throw new Error(`uleb of negative ${n}`);
  const out = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) b |= 0x80;
    out.push(b);
  } while (v !== 0n);
  return out;
}

export function sleb(n) {
  let v = BigInt(n);
  const out = [];
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n; // arithmetic for BigInt
    if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

export const u32le = (x) => [x & 255, (x >>> 8) & 255, (x >>> 16) & 255, (x >>> 24) & 255];
const vec = (items) => [...uleb(items.length), ...items.flat()];
const name = (s) => vec([...Buffer.from(s, 'utf8')]);

const PLAIN = {
  unreachable: [0x00],
  nop: [0x01],
  else: [0x05],
  end: [0x0b],
  return: [0x0f],
  drop: [0x1a],
  select: [0x1b],
  'i32.eqz': [0x45],
  'i32.eq': [0x46],
  'i32.ne': [0x47],
  'i32.lt_u': [0x49],
  'i32.gt_u': [0x4b],
  'i32.le_u': [0x4d],
  'i32.ge_u': [0x4f],
  'i64.eqz': [0x50],
  'i64.eq': [0x51],
  'i64.ne': [0x52],
  'i32.popcnt': [0x69],
  'i32.add': [0x6a],
  'i32.sub': [0x6b],
  'i32.mul': [0x6c],
  'i32.and': [0x71],
  'i32.or': [0x72],
  'i32.xor': [0x73],
  'i32.shl': [0x74],
  'i32.shr_u': [0x76],
  'i32.rotl': [0x77],
  'i32.rotr': [0x78],
  'i64.popcnt': [0x7b],
  'i64.add': [0x7c],
  'i64.sub': [0x7d],
  'i64.and': [0x83],
  'i64.or': [0x84],
  'i64.shr_u': [0x88],
  'i32.wrap_i64': [0xa7],
  'i64.extend_i32_u': [0xad],
  'memory.copy': [0xfc, ...uleb(10), 0x00, 0x00],
  'memory.fill': [0xfc, ...uleb(11), 0x00],
};
const SIMD = {
  'i8x16.swizzle': 14,
  'v128.not': 77,
  'v128.andnot': 79,
  'i32x4.splat': 17,
  'i32x4.lt_u': 58,
  'v128.and': 78,
  'v128.or': 80,
  'v128.xor': 81,
  'i32x4.shl': 171,
  'i32x4.shr_u': 173,
  'i32x4.add': 174,
  'i32x4.sub': 177,
};
/** memory instructions: opcode bytes and natural alignment (log2) */
const MEMOP = {
  'i32.load': [[0x28], 2],
  'i64.load': [[0x29], 3],
  'i32.store': [[0x36], 2],
  'i64.store': [[0x37], 3],
  'v128.load': [[0xfd, ...uleb(0)], 4],
  'v128.store': [[0xfd, ...uleb(11)], 4],
};

function int(tok) {
  if (!/^-?(0x[0-9a-f]+|[0-9]+)$/i.test(tok)) throw new Error(`not an integer: ${tok}`);
  return tok.startsWith('-') ? -BigInt(tok.slice(1)) : BigInt(tok);
}

/**
 * fn: { name, params: [[name, type]], results: [type], locals: [[name, type]], body: string[] }.
 * funcIndex/globalIndex resolve `call $f` and `global.get $g`.
 */
function assembleBody(fn, funcIndex, globalIndex) {
  const localIndex = new Map();
  [...fn.params, ...fn.locals].forEach(([n], i) => {
    if (localIndex.has(n)) throw new Error(`${fn.name}: duplicate local ${n}`);
    localIndex.set(n, i);
  });
  const out = [];
  const labels = [];
  const ref = (map, tok, what) => {
    const i = map.get(tok.replace(/^\$/, ''));
    if (i === undefined) throw new Error(`${fn.name}: unknown ${what} ${tok}`);
    return i;
  };
  for (const line of fn.body) {
    const [op, ...a] = line.trim().split(/\s+/);
    if (op === 'block' || op === 'loop' || op === 'if') {
      out.push({ block: 0x02, loop: 0x03, if: 0x04 }[op], 0x40);
      labels.push(a[0] ?? null);
    } else if (op === 'end') {
      out.push(0x0b);
      if (labels.length === 0) throw new Error(`${fn.name}: unbalanced end`);
      labels.pop();
    } else if (op === 'br' || op === 'br_if') {
      const depth = labels.length - 1 - labels.lastIndexOf(a[0]);
      if (!a[0]?.startsWith('$') || depth >= labels.length) throw new Error(`${fn.name}: unknown label ${a[0]}`);
      out.push(op === 'br' ? 0x0c : 0x0d, ...uleb(depth));
    } else if (op === 'local.get' || op === 'local.set' || op === 'local.tee') {
      out.push({ 'local.get': 0x20, 'local.set': 0x21, 'local.tee': 0x22 }[op], ...uleb(ref(localIndex, a[0], 'local')));
    } else if (op === 'global.get' || op === 'global.set') {
      out.push(op === 'global.get' ? 0x23 : 0x24, ...uleb(ref(globalIndex, a[0], 'global')));
    } else if (op === 'call') {
      out.push(0x10, ...uleb(ref(funcIndex, a[0], 'function')));
    } else if (op === 'i32.const') {
      out.push(0x41, ...sleb(BigInt.asIntN(32, int(a[0]))));
    } else if (op === 'i64.const') {
      out.push(0x42, ...sleb(BigInt.asIntN(64, int(a[0]))));
    } else if (op === 'v128.const') {
      if (a[0] !== 'i32x4' || a.length !== 5) throw new Error(`${fn.name}: v128.const takes i32x4 and 4 words`);
      out.push(0xfd, ...uleb(12), ...a.slice(1).flatMap((t) => u32le(Number(BigInt.asUintN(32, int(t))))));
    } else if (op === 'i8x16.shuffle') {
      const lanes = a.map((t) => Number(int(t)));
      if (lanes.length !== 16 || lanes.some((x) => x < 0 || x > 31)) throw new Error(`${fn.name}: bad shuffle`);
      out.push(0xfd, ...uleb(13), ...lanes);
    } else if (op in MEMOP) {
      const [bytes, natural] = MEMOP[op];
      let offset = 0n;
      let align = natural;
      for (const t of a) {
        const [k, v] = t.split('=');
        if (k === 'offset') offset = int(v);
        else if (k === 'align') align = Math.log2(Number(int(v)));
        else throw new Error(`${fn.name}: bad memarg ${t}`);
      }
      out.push(...bytes, ...uleb(align), ...uleb(offset));
    } else if (op in PLAIN) {
      if (a.length) throw new Error(`${fn.name}: ${op} takes no immediates`);
      out.push(...PLAIN[op]);
    } else if (op in SIMD) {
      if (a.length) throw new Error(`${fn.name}: ${op} takes no immediates`);
      out.push(0xfd, ...uleb(SIMD[op]));
    } else {
      throw new Error(`${fn.name}: unknown instruction ${line}`);
    }
  }
  if (labels.length) throw new Error(`${fn.name}: unclosed block`);
  out.push(0x0b);
  // locals, grouped in runs of one type
  const runs = [];
  for (const [, t] of fn.locals) {
    const last = runs[runs.length - 1];
    if (last && last[1] === t) last[0]++;
    else runs.push([1, t]);
  }
  const body = [...vec(runs.map(([n, t]) => [...uleb(n), VT[t]])), ...out];
  return [...uleb(body.length), ...body];
}

export function assembleModule({ funcs, globals, memoryPages, data, exports }) {
  const section = (id, content) => [id, ...uleb(content.length), ...content];
  const sigs = [];
  const sigOf = (f) => {
    const key = `${f.params.map(([, t]) => t).join(',')}->${f.results.join(',')}`;
    let i = sigs.findIndex((s) => s.key === key);
    if (i < 0) {
      i = sigs.length;
      sigs.push({ key, bytes: [0x60, ...vec(f.params.map(([, t]) => [VT[t]])), ...vec(f.results.map((t) => [VT[t]]))] });
    }
    return i;
  };
  const funcTypes = funcs.map(sigOf);
  const funcIndex = new Map(funcs.map((f, i) => [f.name, i]));
  const globalIndex = new Map(globals.map((g, i) => [g.name, i]));
  const constExpr = (t, v) => (t === 'i64' ? [0x42, ...sleb(v)] : [0x41, ...sleb(v)]);
  const exportEntries = [...exports.map((n) => [...name(n), 0x00, ...uleb(funcIndex.get(n))]), [...name('memory'), 0x02, 0x00]];
  if (exports.some((n) => !funcIndex.has(n))) throw new Error('export of an unknown function');
  return Uint8Array.from([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(sigs.map((s) => s.bytes))),
    ...section(3, vec(funcTypes.map((t) => uleb(t)))),
    ...section(5, vec([[0x01, ...uleb(memoryPages), ...uleb(memoryPages)]])),
    ...section(6, vec(globals.map((g) => [VT[g.type], 0x01, ...constExpr(g.type, 0), 0x0b]))),
    ...section(7, vec(exportEntries)),
    ...section(10, vec(funcs.map((f) => assembleBody(f, funcIndex, globalIndex)))),
    ...section(11, vec(data.map(({ offset, bytes }) => [0x00, 0x41, ...sleb(offset), 0x0b, ...vec(bytes)]))),
  ]);
}

export function listing(funcs) {
  return funcs
    .map((f) => {
      const sig = [...f.params.map(([n, t]) => `(param $${n} ${t})`), ...f.results.map((t) => `(result ${t})`)].join(' ');
      const loc = f.locals.map(([n, t]) => `(local $${n} ${t})`).join(' ');
      return `(func $${f.name} ${sig}\n  ${loc}\n  ${f.body.join('\n  ')})\n`;
    })
    .join('\n');
}

/**
 * The generators' command line:
 *   node tools/gen-X.mjs           write the module's TypeScript file
 *   node tools/gen-X.mjs --check   exit 1 if the committed file differs from what the generator emits
 *   node tools/gen-X.mjs --wat F   also write the instruction listing to F (for reading)
 *   --out F (with or without --check) writes or checks F instead
 * build() returns { bytes, funcs }; render(bytes) the file's text; regen names the command that regenerates it.
 */
export function generatorMain(argv, { rootDir, outFile: defaultOut, build, render, regen }) {
  const check = argv.includes('--check');
  const watAt = argv.indexOf('--wat');
  const outAt = argv.indexOf('--out');
  const outFile = outAt >= 0 ? path.resolve(argv[outAt + 1]) : defaultOut;
  const { bytes, funcs } = build();
  if (!WebAssembly.validate(bytes)) {
    // compile to get the validator's message
    try {
      new WebAssembly.Module(bytes);
    } catch (e) {
      console.error(`generated module does not validate: ${e.message}`);
    }
    return 2;
  }
  if (watAt >= 0 && argv[watAt + 1]) fs.writeFileSync(argv[watAt + 1], listing(funcs));
  const text = render(bytes);
  if (check) {
    let old = null;
    try {
      old = fs.readFileSync(outFile, 'utf8');
    } catch {
      /* missing */
    }
    if (old !== text) {
      console.error(`${path.relative(rootDir, outFile)} is not what the generator emits; run: ${regen}`);
      return 1;
    }
    console.log(`${path.relative(rootDir, outFile)} is up to date (${bytes.length} bytes of wasm)`);
    return 0;
  }
  fs.writeFileSync(outFile, text);
  console.log(`wrote ${path.relative(rootDir, outFile)} (${bytes.length} bytes of wasm)`);
  return 0;
}

/**
 * The generated TypeScript file: `header` comment lines, the module as base64 in `name`, and the
 * memory layout the module's users need as `layoutName` (documented by `layoutDoc`).
 */
export function renderModule(bytes, { header, name, layoutName, layoutDoc, layout }) {
  const b64 = Buffer.from(bytes).toString('base64');
  const lines = b64.match(/.{1,100}/g) ?? [''];
  return [
    ...header,
    '',
    `export const ${name} =\n  '${lines.join("' +\n  '")}';`,
    '',
    `/** ${layoutDoc} */`,
    `export const ${layoutName} = {`,
    ...Object.entries(layout).map(([k, v]) => `  ${k}: ${v},`),
    '} as const;',
    '',
  ].join('\n');
}
