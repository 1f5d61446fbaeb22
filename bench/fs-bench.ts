import fs from 'node:fs';
import path from 'node:path';
import { summarizeProfile } from './lib/cpuprofile.js';
import { describeFailure, integBaseline, integCheck, writePolicy, type IntegCheck } from './lib/integ.js';
import { waitIdle, type Measured } from './lib/proc.js';
import type { BenchContext, Section, SectionResult, TargetResult } from './lib/section.js';
import { fmt, renderTable } from './lib/table.js';
import { aideCheck, aideInit, b3sumCommand, detectAide, detectB3sum, runB3sum, writeAideConfig } from './lib/tools.js';
import { TREE_CACHE_DIR, dropCaches, ensureSyntheticTree, scanTree, syntheticName, type SyntheticSpec, type TreeStats } from './lib/tree.js';

/**
 * Targets from issues 1 and 12, for `/usr` (~117k files, 5.6 GB) on 2 cores: check vs b3sum on a
 * warm cache and on a cold one (--cold), peak RSS, and baseline vs check on the same tree.
 */
export const TARGETS = { vsAide: 0.25, vsB3sum: 2.0, vsB3sumCold: 1.3, rssMiB: 192, baselineVsCheck: 1.5 } as const;

/** Above this share of the machine used by others just before a run, its time is flagged. */
const BUSY = 0.1;

interface Row {
  tool: string;
  /** what was run, for the record */
  command: string;
  wallS: number;
  samples: number[];
  peakRssMiB: number | null;
  /** user+system CPU seconds (median over the samples) */
  cpuS: number | null;
  /** highest share of the machine other processes used just before a sample */
  busy: number | null;
  exitCode: number;
  note?: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Repeated<T> {
  last: T;
  wallS: number;
  samples: number[];
  peak: number | null;
  cpuS: number | null;
  busy: number | null;
}

/** Run `once` `n` times; wall and CPU time are medians, peak RSS and machine busyness the largest seen. */
async function repeated<T extends Measured>(ready: () => Promise<void>, n: number, once: (i: number) => Promise<T>): Promise<Repeated<T>> {
  const runs: T[] = [];
  for (let i = 0; i < n; i++) {
    await ready();
    runs.push(await once(i));
  }
  const nums = (xs: Array<number | null>): number[] => xs.filter((v): v is number => v !== null);
  const peaks = nums(runs.map((r) => r.peakRssMiB));
  const cpus = nums(runs.map((r) => r.cpuS));
  const busy = nums(runs.map((r) => r.busyBefore));
  const samples = runs.map((r) => r.wallS);
  return {
    last: runs[runs.length - 1]!,
    wallS: median(samples),
    samples,
    peak: peaks.length ? Math.max(...peaks) : null,
    cpuS: cpus.length ? median(cpus) : null,
    busy: busy.length ? Math.max(...busy) : null,
  };
}

/**
 * Run the `fns` round by round, `n` rounds (each round runs every one of them once, in order):
 * one Repeated per fn. On a machine whose speed drifts over minutes (a shared VM), a ratio of
 * two medians is only fair when both were timed over the same minutes.
 */
async function rounds(ready: () => Promise<void>, n: number, fns: Array<(i: number) => Promise<Measured>>): Promise<Array<Repeated<Measured>>> {
  const runs: Measured[][] = fns.map(() => []);
  for (let i = 0; i < n; i++)
    for (const [k, fn] of fns.entries()) {
      await ready();
      runs[k]!.push(await fn(i));
    }
  return Promise.all(
    runs.map((r) =>
      repeated(
        async () => {},
        r.length,
        async (i) => r[i]!,
      ),
    ),
  );
}

/** the row of a baseline into a store that holds one of the same tree */
const AGAIN = 'integ baseline again (blake3)';

/** --variants names: a variant's key in lower case, runs of other characters as one '-' */
const slugOf = (key: string): string => key.toLowerCase().replace(/[^a-z0-9]+/g, '-');

/** The integ variants the fs section times: the hash, a rule's `check:` list, a known-bad list of one digest kind (matching nothing). */
const VARIANT_SPECS: Array<{ key: string; hash: 'blake3' | 'sha256'; check?: string[]; feed?: 'sha256' | 'md5' }> = [
  { key: 'blake3', hash: 'blake3' },
  { key: 'sha256', hash: 'sha256' },
  { key: 'blake3, no xattrs/flags', hash: 'blake3', check: ['content', 'type', 'mode', 'uid', 'gid', 'size', 'mtime', 'ctime', 'inode', 'nlink', 'target'] },
  { key: 'blake3 + sha256 IOC feed', hash: 'blake3', feed: 'sha256' },
  { key: 'blake3 + md5 IOC feed', hash: 'blake3', feed: 'md5' },
];

/** The variants as --variants names them. */
export const VARIANTS: readonly string[] = VARIANT_SPECS.map((v) => slugOf(v.key));

function rowOf(tool: string, command: string, r: Repeated<Measured>): Row {
  return { tool, command, wallS: r.wallS, samples: r.samples, peakRssMiB: r.peak, cpuS: r.cpuS, busy: r.busy, exitCode: r.last.exitCode };
}

function rowOfOne(tool: string, command: string, m: Measured): Row {
  return { tool, command, wallS: m.wallS, samples: [m.wallS], peakRssMiB: m.peakRssMiB, cpuS: m.cpuS, busy: m.busyBefore, exitCode: m.exitCode };
}

export function syntheticSpec(ctx: BenchContext): SyntheticSpec {
  const o = ctx.opts;
  return { files: o.files, minSize: 1024, maxSize: 64 * 1024, big: o.big, bigSize: o.bigMiB * 1024 * 1024, perDir: 100, dirsPerDir: 32 };
}

/**
 * integ check against AIDE --check and b3sum over one tree (synthetic, cached, or a real one
 * given with --tree), all on a warm page cache, side by side.
 */
export async function runFsBench(ctx: BenchContext): Promise<SectionResult> {
  const { opts, log } = ctx;
  const jobs = opts.jobs;
  const notes: string[] = [];
  const dir = path.join(ctx.work, 'fs');
  fs.mkdirSync(dir, { recursive: true });

  // 1. The tree.
  let roots: string[];
  let treeLabel: string;
  if (opts.tree) {
    const real = fs.realpathSync(opts.tree);
    if (!fs.statSync(real).isDirectory()) throw new Error(`--tree ${opts.tree}: not a directory`);
    roots = [real];
    treeLabel = real;
  } else {
    const spec = syntheticSpec(ctx);
    log(`synthetic tree ${syntheticName(spec)} (cache: ${TREE_CACHE_DIR}) …`);
    const t = ensureSyntheticTree(spec, log);
    roots = [t.root];
    treeLabel = `${t.root} (synthetic: ${spec.files} files of 1-64 KiB + ${spec.big} x ${opts.bigMiB} MiB)`;
    notes.push(t.built ? `synthetic tree built in ${t.seconds.toFixed(1)} s and cached for later runs` : 'synthetic tree reused from the cache');
  }

  // 2. Warm the caches: one pass reading every file (also counts what is there); with --cold,
  // only the listing pass, and the caches are dropped before every timed run instead.
  const cold = opts.cold ?? false;
  log(cold ? `counting the tree under ${roots.join(', ')} …` : `warming the page cache: reading every file under ${roots.join(', ')} …`);
  const tw = Date.now();
  const stats: TreeStats = scanTree(roots, !cold);
  const warmS = (Date.now() - tw) / 1000;
  if (!cold) notes.push(`page cache warmed first: one pass read every file (${warmS.toFixed(1)} s); all tools ran on a warm cache`);
  const mb = stats.bytes / 1e6;
  let coldProblem: string | null = null;
  /** Before every timed run: wait for a quiet machine (--wait-idle), then re-read the tree (or, --cold, drop the caches). */
  const ready = async (): Promise<void> => {
    if (opts.waitIdle) await waitIdle(0.1, 120, log);
    if (cold) {
      const why = dropCaches();
      if (why && !coldProblem) {
        coldProblem = why;
        log(`--cold: ${why}`);
      }
    } else if (opts.rewarm) scanTree(roots, true);
  };
  if (cold)
    notes.push(
      '--cold: page cache, dentries and inodes dropped (sync; echo 3 > /proc/sys/vm/drop_caches) right before every timed run, so every tool read from the disk',
    );
  if (opts.rewarm)
    notes.push('the tree was read again right before every timed run (keeps the cache warm where the kernel pages out idle page cache, e.g. DAMON reclaim)');
  const damon = damonReclaim();
  if (damon) notes.push(damon);
  log(`tree: ${stats.files} files, ${(stats.bytes / 1e9).toFixed(2)} GB, ${stats.dirs} dirs, ${stats.symlinks} symlinks (warm pass ${warmS.toFixed(1)} s)`);

  const rows: Row[] = [];
  const setupRows: Row[] = [];
  let failed = false;

  // 3. b3sum, the floor.
  const b3 = opts.noB3sum ? null : await detectB3sum();
  let b3Row: Row | null = null;
  if (b3?.available) {
    // Both of b3sum's read paths: it mmaps files of 16 KiB and more by default, which some
    // kernels and VMs make slow (page faults: 8.3 s against 2.9 s with --no-mmap on one machine
    // here). The floor is the faster of the two, so integ is never compared with a handicapped b3sum.
    const b3Rows: Row[] = [];
    for (const noMmap of [false, true]) {
      log(`b3sum${noMmap ? ' --no-mmap' : ''} …`);
      const r = await repeated(ready, opts.repeat, () => runB3sum(b3, roots, jobs, dir, noMmap, stats.files));
      const row = rowOf(
        `b3sum ${b3.version ?? ''}${noMmap ? ' --no-mmap' : ' (mmap)'}`.replace('  ', ' '),
        b3sumCommand(b3.path!, roots, jobs, noMmap, stats.files),
        r,
      );
      if (r.last.exitCode !== 0) row.note = `exit ${r.last.exitCode}`;
      b3Rows.push(row);
    }
    b3Row = b3Rows.filter((row) => row.exitCode === 0).sort((a, b) => a.wallS - b.wallS)[0] ?? b3Rows[0]!;
    b3Row.tool += ' (floor)';
    rows.push(...b3Rows);
  } else notes.push(b3 ? b3.note! : 'b3sum skipped (--no-b3sum)');

  // 4. AIDE: --init (reference), --check (compared).
  const aide = opts.noAide ? null : await detectAide(path.join(dir, 'aide'));
  let aideRow: Row | null = null;
  let aideInitRow: Row | null = null;
  if (aide?.available) {
    if (aide.note) notes.push(aide.note);
    const conf = writeAideConfig(aide, roots, jobs, path.join(dir, 'aide'));
    log(`aide ${aide.version} --init …`);
    await ready();
    const im = await aideInit(aide, conf);
    log('aide --check …');
    const r = await repeated(ready, opts.repeat, (i) => aideCheck(aide, conf, `aide-check-${i}`));
    const workers = aide.workers ? `num_workers=${jobs}` : 'single-threaded';
    aideRow = rowOf(`aide ${aide.version} --check (sha256, ${workers})`, 'aide --check -c aide.conf', r);
    if (r.last.exitCode !== 0) aideRow.note = `exit ${r.last.exitCode} (AIDE saw differences or errors)`;
    rows.push(aideRow);
    aideInitRow = rowOfOne(`aide ${aide.version} --init (sha256, ${workers})`, 'aide --init -c aide.conf', im);
    setupRows.push(aideInitRow);
    notes.push(
      `AIDE rule: sha256+p+i+n+u+g+s+m+c over the same tree (${workers}); config in ${path.join(dir, 'aide', 'aide.conf')}${opts.keep ? '' : ' (removed at exit; --keep keeps it)'}`,
    );
  } else notes.push(aide ? aide.note! : 'AIDE skipped (--no-aide)');

  // 5. integ, blake3 (the default) and sha256; then what the detection attributes cost: the
  // default with xattrs/caps/acl/label/flags off (the syscalls they add), and with a sha256
  // known-bad list (sha256 computed in the same read as blake3).
  const integRows: Record<string, Row> = {};
  const feedOf = (kind: 'sha256' | 'md5'): string => {
    const f = path.join(dir, `ioc-feed-${kind}.txt`);
    fs.writeFileSync(f, `${'0'.repeat(kind === 'md5' ? 32 : 64)} bench: matches nothing\n`);
    return f;
  };
  const variants = VARIANT_SPECS.map(({ feed, ...v }) => ({ ...v, ioc: feed ? feedOf(feed) : undefined }));
  const wanted = opts.variants?.length ? variants.filter((v) => opts.variants!.includes(slugOf(v.key))) : variants;
  if (!wanted.some((v) => v.key === 'blake3')) wanted.unshift(variants[0]!);
  const addRow = (hash: string, r: Repeated<IntegCheck>): void => {
    const row = rowOf(`integ check (${hash})`, `node bin/integ.js check --db DB --policy P --jobs ${jobs} --no-snapshot --format json`, r);
    if (r.last.exitCode !== 0) {
      row.note = `UNEXPECTED ${describeFailure(r.last)}`;
      failed = true;
    } else if (r.last.scanned !== null) {
      row.note = `${r.last.scanned} entries scanned`;
    }
    rows.push(row);
    integRows[hash] = row;
  };
  /** the other variants' checks, timed in alternating rounds after their baselines (so that a slow spell of the host is shared) */
  const others: Array<{ hash: string; slug: string; policy: string; db: string; checks: IntegCheck[] }> = [];
  for (const { key: hash, ...v } of wanted) {
    const slug = slugOf(hash);
    const policy = writePolicy(path.join(dir, `policy-${slug}.yml`), roots, v.hash, v);
    const db = path.join(dir, `integ-${slug}.db`);
    const baseCmd = `node bin/integ.js baseline --db DB --policy P --jobs ${jobs}`;
    if (hash === 'blake3') {
      // The targets' measures, and the floor again, timed in the same rounds: a round is a
      // baseline (a new store each time), check against it, baseline --no-packages (without the
      // package comparison, baseline does what check does plus the inserts), a baseline again
      // into a store that has one of the same tree (after patching: the large packaged files'
      // MD5s are known, md5-cache.ts), and b3sum's floor.
      const againDb = path.join(dir, 'integ-again.db');
      log('integ baseline for the "baseline again" store …');
      await ready();
      await integBaseline(againDb, policy, jobs, dir, 'integ-baseline-again-seed');
      log(`integ baseline, check, baseline --no-packages, baseline again${b3Row ? ' and the b3sum floor' : ''}, ${opts.repeat} round(s) …`);
      const checks: IntegCheck[] = [];
      const fns: Array<(i: number) => Promise<Measured>> = [
        (i) => integBaseline(db, policy, jobs, dir, `integ-baseline-${slug}-${i}`),
        async (i) => {
          const c = await integCheck(db, policy, jobs, dir, `integ-check-${slug}-${i}`);
          checks.push(c);
          return c;
        },
        (i) => integBaseline(path.join(dir, 'integ-no-packages.db'), policy, jobs, dir, `integ-baseline-no-packages-${i}`, ['--no-packages']),
        (i) => integBaseline(againDb, policy, jobs, dir, `integ-baseline-again-${i}`, [], false),
      ];
      const floorNoMmap = b3Row?.tool.includes('--no-mmap') ?? false;
      if (b3Row && b3) fns.push(() => runB3sum(b3, roots, jobs, dir, floorNoMmap, stats.files));
      const [base, check, np, again, floor] = await rounds(ready, opts.repeat, fns);
      setupRows.push(rowOf(`integ baseline (${hash})`, baseCmd, base!));
      setupRows.push(rowOf('integ baseline (blake3, --no-packages)', `node bin/integ.js baseline --no-packages --db DB --policy P --jobs ${jobs}`, np!));
      setupRows.push(rowOf(AGAIN, `${baseCmd} (again, into a store with a baseline of the unchanged tree)`, again!));
      addRow(hash, { ...check!, last: checks[checks.length - 1]! });
      if (floor && b3Row) {
        Object.assign(b3Row, { wallS: floor.wallS, samples: floor.samples, peakRssMiB: floor.peak, cpuS: floor.cpuS, busy: floor.busy });
        notes.push(
          `the b3sum floor is timed again in the rounds of integ's blake3 baseline, check, baseline --no-packages and baseline again (its first ${opts.repeat} run(s) chose the floor)`,
        );
      }
    } else {
      log(`integ baseline (${hash}) …`);
      await ready();
      const base = await integBaseline(db, policy, jobs, dir, `integ-baseline-${slug}`);
      setupRows.push(rowOfOne(`integ baseline (${hash})`, baseCmd, base));
      others.push({ hash, slug, policy, db, checks: [] });
    }
  }
  if (others.length > 0) {
    log(`integ check (${others.map((o) => o.hash).join('; ')}), ${opts.repeat} alternating round(s) …`);
    const fns = others.map((o) => async (i: number): Promise<Measured> => {
      const c = await integCheck(o.db, o.policy, jobs, dir, `integ-check-${o.slug}-${i}`);
      o.checks.push(c);
      return c;
    });
    const res = await rounds(ready, opts.repeat, fns);
    others.forEach((o, k) => addRow(o.hash, { ...res[k]!, last: o.checks[o.checks.length - 1]! }));
  }

  // 6. Optional CPU profile of one more blake3 check.
  const profileText: string[] = [];
  let profiles: ReturnType<typeof summarizeProfile>[] = [];
  if (opts.profile) {
    await ready();
    const profDir = path.join(dir, 'cpuprof');
    log('integ check (blake3) under --cpu-prof …');
    const p = await integCheck(path.join(dir, 'integ-blake3.db'), path.join(dir, 'policy-blake3.yml'), jobs, dir, 'integ-check-prof', [
      '--cpu-prof',
      '--cpu-prof-dir',
      profDir,
    ]);
    profiles = fs
      .readdirSync(profDir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => summarizeProfile(path.join(profDir, f)));
    profileText.push(`CPU profile of one more integ check (blake3), wall ${fmt.s(p.wallS)} s, one profile per thread (${profDir}):`);
    for (const s of profiles) {
      profileText.push(`  ${path.basename(s.file)} (${(s.totalMs / 1000).toFixed(2)} s):`);
      for (const t of s.top.slice(0, 8))
        profileText.push(`    ${t.pct.toFixed(1).padStart(5)}%  ${(t.selfMs / 1000).toFixed(2).padStart(6)} s  ${t.fn} ${t.where}`);
    }
  }

  // 7. Tables.
  const b3Wall = b3Row?.wallS ?? null;
  const aideWall = aideRow?.wallS ?? null;
  const aideInitWall = aideInitRow?.wallS ?? null;
  const header = ['tool', 'wall s', 'files/s', 'MB/s', 'peak RSS MB', 'ratio vs b3sum', 'ratio vs AIDE', 'cpu s'];
  const toCells = (r: Row, vsAide: number | null): string[] => [
    r.tool,
    fmt.s(r.wallS) + (r.busy !== null && r.busy > BUSY ? '*' : ''),
    fmt.int(stats.files / r.wallS),
    fmt.num(mb / r.wallS, 0),
    fmt.num(r.peakRssMiB, 0),
    b3Wall ? fmt.ratio(r.wallS / b3Wall) : '-',
    vsAide ? fmt.ratio(r.wallS / vsAide) : '-',
    fmt.s(r.cpuS),
  ];
  const text: string[] = [];
  text.push(`tree: ${treeLabel}`);
  text.push(
    `      ${stats.files.toLocaleString('en-US')} regular files, ${(stats.bytes / 1e9).toFixed(2)} GB, ${stats.dirs.toLocaleString('en-US')} directories, ${stats.symlinks.toLocaleString('en-US')} symlinks${stats.unreadable ? `, ${stats.unreadable} unreadable` : ''}`,
  );
  text.push(`jobs: ${jobs}${opts.repeat > 1 ? `; each timed run repeated ${opts.repeat}x, median shown` : ''}`);
  text.push('');
  text.push(
    `Verify (the comparison, ${cold ? (coldProblem ? 'cold requested but NOT permitted' : 'cold cache: dropped before every run') : 'warm cache'}): files/s and MB/s count regular files and their bytes (MB = 10^6 bytes); peak RSS is the largest process of each run`,
  );
  text.push(
    renderTable(
      header,
      rows.map((r) => toCells(r, aideWall)),
    ),
  );
  if (setupRows.length) {
    text.push('');
    text.push('Initialise (for reference; "ratio vs AIDE" here is vs aide --init)');
    text.push(
      renderTable(
        header,
        setupRows.map((r) => toCells(r, aideInitWall)),
      ),
    );
  }
  const busyRows = [...rows, ...setupRows].filter((r) => r.busy !== null && r.busy > BUSY);
  if (busyRows.length)
    text.push(
      '',
      `* other processes used > ${BUSY * 100}% of the CPUs just before this run (up to ${(Math.max(...busyRows.map((r) => r.busy!)) * 100) | 0}%): its wall time is inflated; rerun on a quiet machine, or with --wait-idle / --repeat`,
    );
  const rowNotes = [...rows, ...setupRows].filter((r) => r.note).map((r) => `${r.tool}: ${r.note}`);
  if (rowNotes.length) text.push('', ...rowNotes);
  if (profileText.length) text.push('', ...profileText);

  // 8. Targets, judged on the default (blake3) check.
  const main = integRows.blake3!;
  if (coldProblem) notes.push(`--cold: ${coldProblem}`);
  const vsB3 = cold ? TARGETS.vsB3sumCold : TARGETS.vsB3sum;
  const coldNote = cold ? (coldProblem ? ' (cold requested, caches NOT dropped)' : ', cold cache') : ', warm cache';
  const baseRow = setupRows.find((r) => r.tool === 'integ baseline (blake3)') ?? null;
  const npRow = setupRows.find((r) => r.tool === 'integ baseline (blake3, --no-packages)') ?? null;
  const againRow = setupRows.find((r) => r.tool === AGAIN) ?? null;
  const targets: TargetResult[] = [
    {
      target: `integ check <= ${TARGETS.vsAide}x AIDE --check`,
      measured: aideWall ? fmt.ratio(main.wallS / aideWall) : 'AIDE not run',
      status: aideWall ? (main.wallS / aideWall <= TARGETS.vsAide ? 'pass' : 'fail') : 'n/a',
    },
    {
      target: `integ check <= ${vsB3}x b3sum${coldNote}`,
      measured: b3Wall ? fmt.ratio(main.wallS / b3Wall) : 'b3sum not run',
      status: b3Wall && !(cold && coldProblem) ? (main.wallS / b3Wall <= vsB3 ? 'pass' : 'fail') : 'n/a',
    },
    {
      target: `integ baseline <= ${TARGETS.baselineVsCheck}x integ check (same tree, blake3)`,
      measured: baseRow ? fmt.ratio(baseRow.wallS / main.wallS) : 'baseline not run',
      status: baseRow ? (baseRow.wallS / main.wallS <= TARGETS.baselineVsCheck ? 'pass' : 'fail') : 'n/a',
    },
    {
      target: `integ baseline --no-packages <= ${TARGETS.baselineVsCheck}x integ check (same tree, blake3)`,
      measured: npRow ? fmt.ratio(npRow.wallS / main.wallS) : 'not run',
      status: npRow ? (npRow.wallS / main.wallS <= TARGETS.baselineVsCheck ? 'pass' : 'fail') : 'n/a',
    },
    {
      target: `integ baseline again (a store with a baseline of the same tree) <= ${TARGETS.baselineVsCheck}x integ check`,
      measured: againRow ? fmt.ratio(againRow.wallS / main.wallS) : 'not run',
      status: againRow ? (againRow.wallS / main.wallS <= TARGETS.baselineVsCheck ? 'pass' : 'fail') : 'n/a',
    },
    {
      target: `integ check peak RSS <= ${TARGETS.rssMiB} MB`,
      measured: main.peakRssMiB === null ? 'unknown' : `${main.peakRssMiB.toFixed(0)} MB`,
      status: main.peakRssMiB === null ? 'n/a' : main.peakRssMiB <= TARGETS.rssMiB ? 'pass' : 'fail',
    },
  ];
  if (!opts.tree || !/^\/usr\/?$/.test(opts.tree)) notes.push('the targets are defined for --tree /usr; on other trees they are indicative');

  return {
    name: 'fs',
    title: 'File-system check: integ vs AIDE vs b3sum',
    text,
    notes,
    targets,
    failed,
    data: {
      tree: { roots, synthetic: !opts.tree, ...stats },
      jobs,
      warmSeconds: warmS,
      cache: cold ? (coldProblem ? 'cold requested, not permitted' : 'cold') : 'warm',
      baselineVsCheck: baseRow ? baseRow.wallS / main.wallS : null,
      baselineAgainVsCheck: againRow ? againRow.wallS / main.wallS : null,
      tools: { aide: aide ?? null, b3sum: b3 ?? null },
      check: rows.map((r) => ({
        ...r,
        filesPerS: stats.files / r.wallS,
        mbPerS: mb / r.wallS,
        vsB3sum: b3Wall ? r.wallS / b3Wall : null,
        vsAide: aideWall ? r.wallS / aideWall : null,
      })),
      init: setupRows.map((r) => ({
        ...r,
        filesPerS: stats.files / r.wallS,
        mbPerS: mb / r.wallS,
        vsB3sum: b3Wall ? r.wallS / b3Wall : null,
        vsAideInit: aideInitWall ? r.wallS / aideInitWall : null,
      })),
      profiles,
    },
  };
}

/** A note when the kernel pages out idle page cache on its own (DAMON "pageout" schemes). */
export function damonReclaim(): string | null {
  const base = '/sys/kernel/mm/damon/admin/kdamonds';
  try {
    for (const k of fs.readdirSync(base)) {
      if (!/^\d+$/.test(k) || fs.readFileSync(path.join(base, k, 'state'), 'utf8').trim() !== 'on') continue;
      const ctxs = path.join(base, k, 'contexts');
      for (const c of fs.readdirSync(ctxs).filter((x) => /^\d+$/.test(x))) {
        const schemes = path.join(ctxs, c, 'schemes');
        for (const sc of fs.readdirSync(schemes).filter((x) => /^\d+$/.test(x))) {
          if (fs.readFileSync(path.join(schemes, sc, 'action'), 'utf8').trim() !== 'pageout') continue;
          const aggrUs = Number(fs.readFileSync(path.join(ctxs, c, 'monitoring_attrs', 'intervals', 'aggr_us'), 'utf8'));
          const minAge = Number(fs.readFileSync(path.join(schemes, sc, 'access_pattern', 'age', 'min'), 'utf8'));
          return `this kernel runs DAMON pageout (kdamond ${k}): page cache idle for ~${((aggrUs * minAge) / 1e6).toFixed(0)} s is dropped, so a cache is only warm right after it was read`;
        }
      }
    }
  } catch {
    /* no DAMON sysfs */
  }
  return null;
}

export const fsSection: Section = {
  name: 'fs',
  summary: 'integ check vs AIDE --check vs b3sum on a synthetic tree or --tree DIR',
  byDefault: () => true,
  run: runFsBench,
};
