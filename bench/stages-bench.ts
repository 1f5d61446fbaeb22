import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { syntheticSpec } from './fs-bench.js';
import { REPO_ROOT, integBaseline, integCheck, writePolicy } from './lib/integ.js';
import type { BenchContext, Section, SectionResult } from './lib/section.js';
import { fmt, renderTable } from './lib/table.js';
import { ensureSyntheticTree, scanTree } from './lib/tree.js';

/*
 * integ's internals are loaded at run time from dist/src, through the small local interfaces
 * below, so that a refactor of src/ can break this section's numbers but never the build
 * (tsconfig compiles bench/ together with src/).
 */
interface WalkEvent {
  kind: 'entry' | 'error';
  path: Buffer;
  real?: Buffer;
}
interface ScanJobLike {
  id: number;
  path: Buffer;
  real: Buffer;
  algos: string[];
  growing: boolean;
  prefixLen: number | null;
}
interface ScanResultLike {
  ok: boolean;
  rec: { type: string; size: bigint } | null;
}
interface Internals {
  parsePolicy(text: string, source: string): unknown;
  Selector: new (p: unknown) => unknown;
  walk(sel: unknown, root: string): Iterable<WalkEvent>;
  scanEntry(job: ScanJobLike, buf: Buffer): ScanResultLike;
  READ_SIZE: number;
  /** scanBatches (batches of results), or scanAll (one at a time) in builds before it */
  scan(src: Iterable<ScanJobLike>, jobs: number, signal: AbortSignal): AsyncIterable<Array<[ScanJobLike, ScanResultLike]>>;
  /** the native BLAKE3 hasher, in builds that have one and where it loads */
  nativeBlake3: (() => { reset(): void; update(b: Uint8Array): unknown; digest(f: 'hex'): string } | null) | null;
  createBlake3(): { update(b: Uint8Array): unknown; digest(o?: { dispose?: boolean }): Buffer };
}

async function loadInternals(): Promise<Internals> {
  const load = async (rel: string): Promise<Record<string, unknown>> =>
    (await import(pathToFileURL(path.join(REPO_ROOT, 'dist', 'src', rel)).href)) as Record<string, unknown>;
  const native = await load('scan/blake3-native.js').catch(() => ({}) as Record<string, unknown>);
  const [policy, selector, walk, scanEntry, pool, blake3] = await Promise.all([
    load('core/policy.js'),
    load('core/selector.js'),
    load('scan/walk.js'),
    load('scan/scan-entry.js'),
    load('scan/hash-pool.js'),
    load('scan/blake3.js'),
  ]);
  const pick = <T>(m: Record<string, unknown>, name: string, file: string): T => {
    if (m[name] === undefined) throw new Error(`dist/src/${file} no longer exports ${name}: update bench/stages-bench.ts`);
    return m[name] as T;
  };
  return {
    parsePolicy: pick(policy, 'parsePolicy', 'core/policy.js'),
    Selector: pick(selector, 'Selector', 'core/selector.js'),
    walk: pick(walk, 'walk', 'scan/walk.js'),
    scanEntry: pick(scanEntry, 'scanEntry', 'scan/scan-entry.js'),
    READ_SIZE: pick(scanEntry, 'READ_SIZE', 'scan/scan-entry.js'),
    scan: (pool.scanBatches as Internals['scan'] | undefined) ?? batched(pick(pool, 'scanAll', 'scan/hash-pool.js')),
    nativeBlake3: (native.threadNativeBlake3 as Internals['nativeBlake3'] | undefined) ?? null,
    createBlake3: pick(blake3, 'createBlake3', 'scan/blake3.js'),
  };
}

/** Older builds' scanAll (one result at a time) behind the batch interface. */
function batched(scanAll: (src: Iterable<ScanJobLike>, jobs: number, signal: AbortSignal) => AsyncIterable<[ScanJobLike, ScanResultLike]>): Internals['scan'] {
  return async function* (src, jobs, signal) {
    for await (const r of scanAll(src, jobs, signal)) yield [r];
  };
}

interface Stage {
  stage: string;
  wallS: number;
  cpuS: number;
  entries: number | null;
  bytes: number | null;
  note: string;
}

async function timed(
  fn: () => Promise<{ entries: number | null; bytes: number | null }> | { entries: number | null; bytes: number | null },
): Promise<{ wallS: number; cpuS: number; entries: number | null; bytes: number | null }> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = await fn();
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return { wallS, cpuS: (c.user + c.system) / 1e6, ...r };
}

/**
 * Where integ check's time goes, stage by stage, on the same tree as the fs section:
 * the walk alone, reading the stored generation in path order, the per-file syscalls without
 * hashing, hashing with each algorithm on one thread, the raw in-memory hash speed, and the
 * worker pool, next to a full `integ check`. Stages 1-5 run on the bench's main thread.
 */
export async function runStagesBench(ctx: BenchContext): Promise<SectionResult> {
  const { opts, log } = ctx;
  const I = await loadInternals();
  const dir = path.join(ctx.work, 'stages');
  fs.mkdirSync(dir, { recursive: true });
  const roots = opts.tree ? [fs.realpathSync(opts.tree)] : [ensureSyntheticTree(syntheticSpec(ctx), log).root];
  log(`stages: warming the page cache under ${roots.join(', ')} …`);
  const tree = scanTree(roots, true);
  const policyFile = writePolicy(path.join(dir, 'policy.yml'), roots, 'blake3');
  const policy = I.parsePolicy(fs.readFileSync(policyFile, 'utf8'), policyFile);
  const selector = new I.Selector(policy);
  const stages: Stage[] = [];
  const add = (stage: string, r: { wallS: number; cpuS: number; entries: number | null; bytes: number | null }, note = ''): void => {
    stages.push({ stage, ...r, note });
    log(`  ${stage}: ${r.wallS.toFixed(2)} s`);
  };

  // 1. The walk alone.
  let list: WalkEvent[] = [];
  add(
    '1 walk (readdir, sort, selector)',
    await timed(() => {
      list = [...I.walk(selector, '')].filter((e) => e.kind === 'entry');
      return { entries: list.length, bytes: null };
    }),
    'main thread',
  );

  // 2. Reading the stored generation in path order (what check merge-joins the walk with).
  const db = path.join(dir, 'stages.db');
  log('stages: integ baseline for the store stage …');
  await integBaseline(db, policyFile, opts.jobs, dir, 'stages-baseline');
  {
    const conn = new Database(db, { readonly: true });
    try {
      add(
        '2 read stored generation in path order',
        await timed(() => {
          let n = 0;
          const gen = (conn.prepare('SELECT max(id) AS id FROM generations').get() as { id: number }).id;
          for (const _r of conn.prepare('SELECT rowid, * FROM entries WHERE gen = ? ORDER BY path').raw(true).safeIntegers(true).iterate(gen)) n++;
          return { entries: n, bytes: null };
        }),
        'better-sqlite3, all columns, no decoding',
      );
    } finally {
      conn.close();
    }
  }

  // 3-5. Scanning each entry on one thread: syscalls only, then with each hash.
  const buf = Buffer.allocUnsafe(I.READ_SIZE);
  const scanWith = (algos: string[]) => (): { entries: number; bytes: number } => {
    let bytes = 0;
    let id = 0;
    for (const ev of list) {
      const r = I.scanEntry({ id: ++id, path: ev.path, real: ev.real ?? ev.path, algos, growing: false, prefixLen: null }, buf);
      if (r.rec?.type === 'file') bytes += Number(r.rec.size);
    }
    return { entries: list.length, bytes };
  };
  add('3 scan, no hash (lstat/open/fstat/read/close)', await timed(scanWith([])), '1 thread: the I/O floor in Node');
  add("4 scan + blake3 (integ's hasher)", await timed(scanWith(['blake3'])), '1 thread');
  add('5 scan + sha256 (node:crypto)', await timed(scanWith(['sha256'])), '1 thread');

  // 6. Raw in-memory hash speed per core: 1 GiB in 1 MiB updates.
  const mem = Buffer.alloc(1024 * 1024, 7);
  const crypto = await import('node:crypto');
  const MiBs = 1024;
  const inMemory = (make: () => { update(b: Uint8Array): unknown; digest(): unknown }) => (): { entries: null; bytes: number } => {
    const h = make();
    for (let i = 0; i < MiBs; i++) h.update(mem);
    h.digest();
    return { entries: null, bytes: MiBs * mem.length };
  };
  add("6a integ's blake3 (createBlake3) in memory", await timed(inMemory(() => I.createBlake3())), '1 thread, no I/O; wasm SIMD: files under 2 KiB');
  const native = I.nativeBlake3?.();
  if (native)
    add(
      '6a native blake3 (@napi-rs/blake-hash) in memory',
      await timed(
        inMemory(() => {
          native.reset();
          return { update: (b) => native.update(b), digest: () => native.digest('hex') };
        }),
      ),
      '1 thread, no I/O; files of 2 KiB and more',
    );
  try {
    const wasm = createRequire(path.join(REPO_ROOT, 'package.json'))('blake3-wasm') as { createHash(): { update(b: Uint8Array): unknown; digest(): unknown } };
    add('6b blake3-wasm (scalar) in memory', await timed(inMemory(() => wasm.createHash())), '1 thread, no I/O');
  } catch {
    /* not installed any more */
  }
  add('6c sha256 (node:crypto) in memory', await timed(inMemory(() => crypto.createHash('sha256'))), '1 thread, no I/O');

  // 7. The worker pool over the walk, blake3, no store and no comparison.
  add(
    `7 walk + worker pool (${opts.jobs} jobs, blake3)`,
    await timed(async () => {
      let id = 0;
      const jobs = function* (): Generator<ScanJobLike> {
        for (const ev of I.walk(selector, ''))
          if (ev.kind === 'entry') yield { id: ++id, path: ev.path, real: ev.real ?? ev.path, algos: ['blake3'], growing: false, prefixLen: null };
      };
      let bytes = 0;
      let n = 0;
      for await (const batch of I.scan(jobs(), opts.jobs, new AbortController().signal))
        for (const [, r] of batch) {
          n++;
          if (r.rec?.type === 'file') bytes += Number(r.rec.size);
        }
      return { entries: n, bytes };
    }),
    'cpu s: whole process, workers included',
  );

  // 8. The real thing, as a process.
  log('stages: integ check …');
  const c = await integCheck(db, policyFile, opts.jobs, dir, 'stages-check');
  stages.push({
    stage: `8 integ check (${opts.jobs} jobs, blake3), whole process`,
    wallS: c.wallS,
    cpuS: c.cpuS ?? NaN,
    entries: c.scanned,
    bytes: tree.bytes,
    note: `exit ${c.exitCode}`,
  });

  const header = ['stage', 'wall s', 'cpu s', 'entries/s', 'MB/s', 'note'];
  const rows = stages.map((s) => [
    s.stage,
    fmt.s(s.wallS),
    fmt.s(s.cpuS),
    s.entries ? fmt.int(s.entries / s.wallS) : '-',
    s.bytes ? fmt.num(s.bytes / 1e6 / s.wallS) : '-',
    s.note,
  ]);
  return {
    name: 'stages',
    title: "Stages: where integ check's time goes",
    text: [
      `tree: ${roots.join(', ')} (${tree.files.toLocaleString('en-US')} files, ${(tree.bytes / 1e9).toFixed(2)} GB, warm cache)`,
      '',
      renderTable(header, rows, [5]),
    ],
    notes: [
      'stages 1-6 run on one thread in the bench process; 7 adds the worker pool; 8 is a whole integ check process',
      'the gap between 7 and 8 is what check adds on top of walk + hashing: store reads, merge-join, digest, compare, report, process start',
    ],
    targets: [],
    failed: c.exitCode !== 0,
    data: { roots, tree, stages },
  };
}

export const stagesSection: Section = {
  name: 'stages',
  summary: 'time integ check stage by stage (walk, store lookups, syscalls, hashing, pool) on the same tree',
  byDefault: () => false,
  run: runStagesBench,
};
