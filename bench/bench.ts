/**
 * `npm run bench`: builds integ, then runs the selected benchmark sections and prints their
 * results side by side. Each section is its own module (fs-bench.ts, scale-bench.ts, …);
 * this file only parses flags, picks sections, and prints or emits JSON. See bench/README.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fsSection, VARIANTS } from './fs-bench.js';
import { REPO_ROOT } from './lib/integ.js';
import { machineInfo } from './lib/machine.js';
import { gnuTimeAvailable } from './lib/proc.js';
import type { BenchContext, BenchOptions, Section, SectionResult } from './lib/section.js';
import { renderTable } from './lib/table.js';
import { scaleSection } from './scale-bench.js';
import { snapshotSection } from './snapshot-bench.js';
import { md5Implementation } from '../src/scan/md5-lanes.js';
import { blake3Implementation } from '../src/scan/blake3-native.js';
import { scanImplementation } from '../src/scan/native-scan.js';
import { stagesSection } from './stages-bench.js';

/** Every section, in the order they run. A new section (e.g. snapshot) is one more entry here. */
export const SECTIONS: Section[] = [fsSection, scaleSection, stagesSection, snapshotSection];

const HELP = `Usage: npm run bench -- [options]

Sections (default: fs):
${SECTIONS.map((s) => `  ${s.name.padEnd(8)} ${s.summary}`).join('\n')}

Options:
  --tree DIR        benchmark a real tree (e.g. /usr) instead of the synthetic one
  --files N         synthetic tree: small files of 1-64 KiB (default 100000)
  --big N           synthetic tree: big files (default 3)
  --big-mb N        synthetic tree: size of each big file in MiB (default 200)
  --quick           smoke run: 10000 files, 1 big file (and 10k/100k for --scale)
  --jobs N          threads for integ, AIDE's num_workers and b3sum (default: cores)
  --repeat N        time each compared run N times, report the median (default 1)
  --scale           run the memory-scaling section (100k vs 1M tiny files) instead of fs
  --stages          run the stage-by-stage timing section instead of fs (same tree flags)
  --scale-files N   largest file count for --scale (default 1000000)
  --only A,B        run exactly these sections (e.g. --only fs,scale)
  --wait-idle       before each timed run, wait (up to 2 min) until other processes use < 10% CPU
  --no-rewarm       do not re-read the tree before every timed run (only once at the start)
  --variants A,B    fs section: only these integ variants besides blake3 (sha256,
                    blake3-no-xattrs-flags, blake3-sha256-ioc-feed, blake3-md5-ioc-feed;
                    default all)
  --cold            drop the page cache (echo 3 > /proc/sys/vm/drop_caches, as root) before every
                    timed run instead of warming it; says so when not permitted
  --procs N         snapshot section: start N extra idle processes first
  --uac DIR         snapshot section: compare with the UAC checkout in DIR
  --profile         also run one integ check under node --cpu-prof and summarise it
  --no-aide         skip AIDE even when installed
  --no-b3sum        skip b3sum even when installed
  --json            print one JSON document on stdout (progress stays on stderr)
  --strict          exit 3 when a target is missed
  --keep            keep the run's temp dir (policies, stores, AIDE config, outputs)
  -h, --help        this text

Synthetic trees are cached under ${path.join(os.tmpdir(), 'integ-bench-tree-v1')}; delete it to rebuild.
AIDE and b3sum come from "apt-get install aide b3sum"; without them their columns are skipped.`;

/** --variants A,B: names from VARIANTS; an unknown one is a usage error (64), not silently dropped. */
function variantsArg(list: string): string[] {
  const names = list
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !VARIANTS.includes(n));
  if (unknown.length) {
    process.stderr.write(`bench: --variants: unknown ${unknown.join(', ')} (known: ${VARIANTS.join(', ')})\n`);
    process.exit(64);
  }
  return names;
}

function intArg(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min) {
    process.stderr.write(`bench: ${name} expects an integer >= ${min}, got ${JSON.stringify(v)}\n`);
    process.exit(64);
  }
  return Number(v);
}

function parse(argv: string[]): { opts: BenchOptions; sections: Section[]; strict: boolean } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        tree: { type: 'string' },
        files: { type: 'string' },
        big: { type: 'string' },
        'big-mb': { type: 'string' },
        quick: { type: 'boolean' },
        jobs: { type: 'string' },
        repeat: { type: 'string' },
        scale: { type: 'boolean' },
        stages: { type: 'boolean' },
        'scale-files': { type: 'string' },
        only: { type: 'string' },
        profile: { type: 'boolean' },
        'wait-idle': { type: 'boolean' },
        'no-rewarm': { type: 'boolean' },
        cold: { type: 'boolean' },
        variants: { type: 'string' },
        procs: { type: 'string' },
        uac: { type: 'string' },
        'no-aide': { type: 'boolean' },
        'no-b3sum': { type: 'boolean' },
        json: { type: 'boolean' },
        strict: { type: 'boolean' },
        keep: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n\n${HELP}\n`);
    process.exit(64);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  const quick = v.quick ?? false;
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const opts: BenchOptions = {
    files: intArg('--files', v.files, quick ? 10_000 : 100_000),
    big: intArg('--big', v.big, quick ? 1 : 3),
    bigMiB: intArg('--big-mb', v['big-mb'], 200, 1),
    tree: v.tree ?? null,
    jobs: intArg('--jobs', v.jobs, cores, 1),
    quick,
    json: v.json ?? false,
    repeat: intArg('--repeat', v.repeat, 1, 1),
    scaleFiles: intArg('--scale-files', v['scale-files'], quick ? 100_000 : 1_000_000, 10_000),
    keep: v.keep ?? false,
    noAide: v['no-aide'] ?? false,
    noB3sum: v['no-b3sum'] ?? false,
    profile: v.profile ?? false,
    waitIdle: v['wait-idle'] ?? false,
    rewarm: !(v['no-rewarm'] ?? false) && !(v.cold ?? false),
    cold: v.cold ?? false,
    variants: v.variants ? variantsArg(v.variants) : undefined,
    procs: intArg('--procs', v.procs, 0),
    uac: v.uac ?? null,
  };
  let sections: Section[];
  if (v.only) {
    const names = v.only
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = names.filter((n) => !SECTIONS.some((s) => s.name === n));
    if (unknown.length) {
      process.stderr.write(`bench: unknown section(s) ${unknown.join(', ')}; known: ${SECTIONS.map((s) => s.name).join(', ')}\n`);
      process.exit(64);
    }
    sections = SECTIONS.filter((s) => names.includes(s.name));
  } else if (v.scale || v.stages) sections = [...(v.scale ? [scaleSection] : []), ...(v.stages ? [stagesSection] : [])];
  else sections = SECTIONS.filter((s) => s.byDefault(opts));
  if (opts.tree && !fs.existsSync(opts.tree)) {
    process.stderr.write(`bench: --tree ${opts.tree}: no such directory\n`);
    process.exit(66);
  }
  return { opts, sections, strict: v.strict ?? false };
}

/** Which integ was measured: the commit, and whether src/ had uncommitted changes. */
function integRevision(): string {
  const git = (...a: string[]): string | null => {
    const r = spawnSync('git', ['-C', REPO_ROOT, ...a], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : null;
  };
  const head = git('rev-parse', '--short', 'HEAD');
  if (head === null) return 'unknown (not a git checkout)';
  const dirty = git('status', '--porcelain', '--', 'src', 'package.json');
  return `${head}${dirty ? ' + uncommitted changes in src/' : ''}`;
}

function printSection(r: SectionResult, out: NodeJS.WritableStream): void {
  const lines: string[] = [];
  lines.push('', `== ${r.title} ==`, '');
  lines.push(...r.text);
  if (r.targets.length) {
    lines.push('', 'Targets');
    lines.push(
      renderTable(
        ['target', 'measured', 'result'],
        r.targets.map((t) => [t.target, t.measured, t.status.toUpperCase()]),
        [2],
      ),
    );
  }
  if (r.notes.length) lines.push('', 'Notes', ...r.notes.map((n) => `- ${n}`));
  out.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<void> {
  const { opts, sections, strict } = parse(process.argv.slice(2));
  const machine = machineInfo();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-bench-run-'));
  const cleanup = (): void => {
    if (!opts.keep) fs.rmSync(work, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  const t0 = Date.now();
  const log = (m: string): void => void process.stderr.write(`[bench +${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${m}\n`);
  const ctx: BenchContext = { opts, machine, work, log };
  const loadStart = os.loadavg();
  const load = loadStart.map((l) => l.toFixed(2)).join(' ');
  const revision = integRevision();
  const header = `machine: nproc ${machine.nproc}, ${machine.cpu}, ${machine.memGiB} GiB RAM, Linux ${machine.kernel}, node ${machine.node}; load average at start ${load}\ninteg: ${revision}; MD5: ${md5Implementation()}; scan of files and folders: ${scanImplementation()}; BLAKE3 of large files otherwise: ${blake3Implementation()}`;
  // With --json, stdout carries only the JSON document; the human tables go to stderr.
  const human = opts.json ? process.stderr : process.stdout;
  human.write(`integ benchmark\n${header}\n`);
  if (!gnuTimeAvailable()) log('note: /usr/bin/time (GNU time) not found: peak RSS is polled from /proc/PID/status VmHWM instead');
  const results: SectionResult[] = [];
  let crashed = false;
  try {
    for (const s of sections) {
      log(`section ${s.name} …`);
      try {
        const r = await s.run(ctx);
        results.push(r);
        printSection(r, human);
      } catch (e) {
        crashed = true;
        const msg = (e as Error).stack ?? String(e);
        log(`section ${s.name} failed: ${msg}`);
        results.push({ name: s.name, title: s.name, text: [], notes: [`failed: ${(e as Error).message}`], targets: [], data: {}, failed: true });
        printSection(results[results.length - 1]!, human);
      }
    }
  } finally {
    cleanup();
  }
  if (opts.keep) log(`kept ${work}`);
  if (opts.json) {
    const doc = {
      schema: 'integ.bench/1',
      startedAt: new Date(t0).toISOString(),
      seconds: (Date.now() - t0) / 1000,
      machine,
      integ: revision,
      loadAverageAtStart: loadStart,
      options: opts,
      rssSource: gnuTimeAvailable() ? 'GNU time %M (ru_maxrss)' : '/proc/PID/status VmHWM (polled)',
      sections: results.map(({ text: _t, ...r }) => r),
    };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  }
  log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (crashed || results.some((r) => r.failed)) process.exitCode = 1;
  else if (strict && results.some((r) => r.targets.some((t) => t.status === 'fail'))) process.exitCode = 3;
}

await main();
