import fs from 'node:fs';
import path from 'node:path';
import { capture, runMeasured, tail, type Measured } from './proc.js';

export interface ToolInfo {
  available: boolean;
  path: string | null;
  version: string | null;
  /** why it is absent, or caveats */
  note: string | null;
}

function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const p = path.join(dir || '.', cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

export async function detectB3sum(): Promise<ToolInfo> {
  const p = which('b3sum');
  if (!p) return { available: false, path: null, version: null, note: 'b3sum not installed (apt-get install b3sum): floor column skipped' };
  const v = await capture(p, ['--version']);
  return { available: true, path: p, version: v.out.trim().replace(/^b3sum\s*/, ''), note: null };
}

export interface AideInfo extends ToolInfo {
  /** whether this AIDE accepts num_workers (the config option, 0.18+ with pthread) */
  workers: boolean;
}

export async function detectAide(scratch: string): Promise<AideInfo> {
  const p = which('aide');
  if (!p) return { available: false, path: null, version: null, workers: false, note: 'aide not installed (apt-get install aide): AIDE column skipped' };
  const v = await capture(p, ['--version']);
  const version = /AIDE\s+v?([0-9][^\s]*)/.exec(v.out)?.[1] ?? null;
  // Ask AIDE itself whether num_workers is a known option: --config-check fails on unknown ones.
  fs.mkdirSync(scratch, { recursive: true });
  const probe = path.join(scratch, 'aide-probe.conf');
  fs.writeFileSync(
    probe,
    `database_in=file:${scratch}/probe.db\ndatabase_out=file:${scratch}/probe.db.new\nnum_workers=2\nR0 = p\n/nonexistent-integ-bench R0\n`,
  );
  const r = await capture(p, ['--config-check', '-c', probe]);
  const workers = r.code === 0;
  return {
    available: true,
    path: p,
    version,
    workers,
    note: workers ? null : `AIDE ${version ?? '?'} does not accept num_workers: it hashes on one thread`,
  };
}

/** AIDE matches selection lines as regular expressions: escape the tree path. */
function aideRegex(p: string): string {
  return p.replace(/[\\^$.|?*+()[\]{}]/g, (c) => `\\${c}`);
}

/**
 * Write an AIDE configuration equivalent to integ's default checks: sha256 plus permissions,
 * inode, link count, uid, gid, size, mtime and ctime (`sha256+p+i+n+u+g+s+m+c`), over the
 * same roots, with num_workers = jobs where supported; the databases live in `dir`.
 */
export function writeAideConfig(info: AideInfo, roots: string[], jobs: number, dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'aide.conf');
  const db = path.join(dir, 'aide.db');
  const lines = [
    `database_in=file:${db}`,
    `database_out=file:${db}.new`,
    `database_new=file:${db}.new`,
    'gzip_dbout=no',
    'report_url=stdout',
    ...(info.workers ? [`num_workers=${jobs}`] : []),
    'IntegBench = sha256+p+i+n+u+g+s+m+c',
    ...roots.map((r) => `${aideRegex(r)} IntegBench`),
    '',
  ];
  fs.writeFileSync(conf, lines.join('\n'));
  fs.rmSync(db, { force: true });
  fs.rmSync(`${db}.new`, { force: true });
  return conf;
}

/** `aide --init`, then the new database becomes the one --check reads. */
export async function aideInit(info: AideInfo, conf: string): Promise<Measured> {
  const dir = path.dirname(conf);
  const db = path.join(dir, 'aide.db');
  const init = await runMeasured(info.path!, ['--init', '-c', conf], { scratch: dir, label: 'aide-init' });
  if (init.exitCode !== 0) throw new Error(`aide --init failed (exit ${init.exitCode}): ${tail(init.stderrFile)} ${tail(init.stdoutFile)}`);
  fs.renameSync(`${db}.new`, db);
  return init;
}

/** `aide --check` (exit 0: no differences; AIDE sums 1 added, 2 removed, 4 changed like integ). */
export async function aideCheck(info: AideInfo, conf: string, label = 'aide-check'): Promise<Measured> {
  return runMeasured(info.path!, ['--check', '-c', conf], { scratch: path.dirname(conf), label });
}

/** Shell-quote one argument. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * b3sum over every regular file of the roots, as the practical floor: `find -type f` feeds
 * `xargs -P jobs` running b3sum (native BLAKE3 with SIMD, mmap, multithreaded on big files),
 * so small files are hashed on all cores too.
 */
/**
 * The floor: `jobs` b3sum processes over the tree's file list, each given its share in as few
 * invocations as the argument limit allows (xargs -n share). A small -n (it was 256) starts a
 * process, and a thread pool, every 256 files: ~470 starts on /usr, which cost b3sum more than
 * its hashing on a VM where a process start is dear, and flattered integ.
 */
export function b3sumCommand(b3sum: string, roots: string[], jobs: number, noMmap = false, files = 0): string {
  const share = Math.max(256, Math.ceil(files / Math.max(1, jobs)));
  return `find ${roots.map(shq).join(' ')} -type f -print0 | xargs -0 -r -P ${jobs} -n ${share} ${shq(b3sum)} --num-threads ${jobs}${noMmap ? ' --no-mmap' : ''} > /dev/null`;
}

export async function runB3sum(info: ToolInfo, roots: string[], jobs: number, dir: string, noMmap = false, files = 0): Promise<Measured> {
  const cmd = b3sumCommand(info.path!, roots, jobs, noMmap, files);
  return runMeasured('/bin/sh', ['-c', cmd], { scratch: dir, label: 'b3sum' });
}
