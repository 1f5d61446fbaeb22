import fs from 'node:fs';
import os from 'node:os';
import type { Finding } from '../core/types.js';
import { pathJson } from '../core/pathenc.js';
import type { StepResult } from '../evidence/collect.js';
import type { FindingsResult, IocMatcher } from '../evidence/findings.js';
import type { RunContext } from '../util/context.js';
import { IntegError, writeErrorFor } from '../util/errors.js';
import { VERSION } from '../version.js';
import type { CheckDocument } from '../report/documents.js';

/** What a check hands over when it triggers a snapshot. */
export interface SnapshotTrigger {
  /** the check's JSON report */
  report: CheckDocument;
  /** findings whose current files are copied into the bundle (added and changed regular files) */
  findings: readonly Finding[];
  /** --root prefix of that check ("" for /) */
  root: string;
  maxFileBytes: number;
  maxTotalBytes: number;
}

export interface SnapshotOptions {
  out: string;
  note: string | null;
  signKey?: string;
  trigger?: SnapshotTrigger;
  /** fixtures for tests: where /proc, /sys and / are */
  roots?: { procRoot?: string; sysRoot?: string; fsRoot?: string };
  stepTimeoutMs?: number;
  /** known-bad digests (IOC feeds) for ioc_match findings; the caller loads the feeds */
  iocMatch?: IocMatcher;
  /** keep password hashes in the bundle (default: redacted) */
  shadowHashes?: boolean;
}

export interface SnapshotResult {
  bundle: string;
  sha256: string;
  size: number;
  name: string;
  startedAt: string;
  finishedAt: string;
  timings: { core_bracket_ms: number; steps_1_4_ms: number; total_ms: number };
  steps: StepResult[];
  artifacts: number;
  /** artifacts/findings.json, when the findings step ran */
  findings: FindingsResult | null;
}

function readTrim(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return null;
  }
}

const clocks = (): { wall: string; monotonic_ns: string; uptime_s: number | null } => ({
  wall: new Date().toISOString(),
  monotonic_ns: process.hrtime.bigint().toString(),
  uptime_s: Number(readTrim('/proc/uptime')?.split(' ')[0] ?? NaN) || null,
});

/**
 * Copies of the changed files as they are now, bounded per file and in total. Regular files
 * only, opened without following links and without blocking, so a FIFO or device planted
 * under a watched path cannot hang or feed the collection.
 */
async function copyChangedFiles(
  w: { addFile(rel: string, d: Buffer): Promise<{ file: string; size: number; sha256: string }> },
  t: SnapshotTrigger,
): Promise<unknown[]> {
  const out: unknown[] = [];
  let total = 0;
  let i = 0;
  for (const f of t.findings) {
    if (f.kind === 'removed' || f.after?.type !== 'file') continue;
    i += 1;
    const real = t.root ? Buffer.concat([Buffer.from(t.root), f.path]) : f.path;
    const entry: Record<string, unknown> = { ...pathJson(f.path), kind: f.kind, file: null, size: null, sha256: null, truncated: false, error: null };
    const room = Math.min(t.maxFileBytes, t.maxTotalBytes - total);
    if (room <= 0) {
      entry.error = 'total copy limit reached';
      out.push(entry);
      continue;
    }
    let fd: number | null = null;
    try {
      fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw Object.assign(new Error('no longer a regular file'), { code: 'ENOTREG' });
      const want = Math.min(st.size, room);
      const buf = Buffer.alloc(want);
      let got = 0;
      while (got < want) {
        const n = fs.readSync(fd, buf, got, want - got, got);
        if (n === 0) break;
        got += n;
      }
      const base = (f.path.toString('utf8').split('/').pop() ?? 'file').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80) || 'file';
      const res = await w.addFile(`changed-files/${String(i).padStart(4, '0')}-${base}`, buf.subarray(0, got));
      total += got;
      Object.assign(entry, { file: res.file, size: st.size, sha256: res.sha256, truncated: got < st.size });
    } catch (e) {
      if (e instanceof IntegError) throw e;
      entry.error = `${(e as NodeJS.ErrnoException).code ?? 'EIO'}: ${(e as Error).message}`;
    } finally {
      if (fd !== null) fs.closeSync(fd);
    }
    out.push(entry);
  }
  return out;
}

/**
 * Capture volatile state in order of volatility into a sealed bundle: written in a private
 * staging folder, tarred to NAME.tar.gz.partial, renamed when sealed. Anything that goes
 * wrong removes what was written; nothing that looks complete is left behind.
 */
export async function runSnapshot(opts: SnapshotOptions, ctx: RunContext): Promise<SnapshotResult> {
  const { collectAll } = await import('../evidence/collect.js');
  const { BundleWriter } = await import('../evidence/bundle-writer.js');
  (await import('../util/platform.js')).assertLinux();
  const signKey = opts.signKey ? await (await import('../trust/keys.js')).loadPrivateKey(opts.signKey) : undefined;
  const start = clocks();
  let writer: import('../evidence/bundle-writer.js').BundleWriter;
  try {
    writer = await BundleWriter.create({ outDir: opts.out, hostname: os.hostname(), signal: ctx.signal });
  } catch (e) {
    throw e instanceof IntegError ? e : writeErrorFor(e, `cannot create evidence in ${opts.out}`);
  }
  if (writer.swept.length) ctx.log.warn({ out: opts.out, removed: writer.swept }, 'removed staging folders and .partial files left by dead runs');
  try {
    writer.log({ event: 'start', tool: `integ ${VERSION}`, argv: ctx.argv, trigger: opts.trigger ? 'check' : 'manual', note: opts.note });
    const col = await collectAll(writer, {
      signal: ctx.signal,
      argv: ctx.argv,
      ctx: opts.roots,
      stepTimeoutMs: opts.stepTimeoutMs,
      iocMatch: opts.iocMatch,
      shadowHashes: opts.shadowHashes,
    });
    let changedFiles: unknown[] | null = null;
    let reportFile: string | null = null;
    if (opts.trigger) {
      // Files on disk are less volatile than processes and sockets: they come after.
      reportFile = (await writer.addFile('check/report.json', `${JSON.stringify(opts.trigger.report, null, 2)}\n`)).file;
      changedFiles = await copyChangedFiles(writer, opts.trigger);
      writer.log({ event: 'check_material', report: reportFile, changed_files: changedFiles.length });
    }
    const end = clocks();
    const manifest: Record<string, unknown> = {
      tool: { name: 'integ', version: VERSION },
      argv: ctx.argv,
      uid: process.getuid?.() ?? null,
      euid: process.geteuid?.() ?? null,
      hostname: os.hostname(),
      boot_id: readTrim('/proc/sys/kernel/random/boot_id'),
      note: opts.note,
      trigger: opts.trigger ? { kind: 'check', report: reportFile, changed_files: changedFiles } : { kind: 'manual' },
      clocks: { start, end },
      timings: col.timings,
      artifacts: col.artifacts,
      steps: col.steps.map((s) => ({
        step: s.step,
        name: s.name,
        status: s.status,
        duration_ms: s.duration_ms,
        error: s.error,
        errors: s.errors.slice(0, 200),
        errors_total: s.errors.length,
      })),
    };
    writer.log({ event: 'seal', artifacts: col.artifacts.length });
    const sealed = await writer.seal({ manifest, signKey });
    ctx.log.info({ bundle: sealed.path, sha256: sealed.sha256, timings: col.timings }, 'snapshot sealed');
    return {
      bundle: sealed.path,
      sha256: sealed.sha256,
      size: sealed.size,
      name: sealed.name,
      startedAt: start.wall,
      finishedAt: end.wall,
      timings: col.timings,
      steps: col.steps,
      artifacts: col.artifacts.length,
      findings: col.findings,
    };
  } catch (e) {
    await writer.abort().catch(() => undefined);
    throw e instanceof IntegError ? e : writeErrorFor(e, `writing evidence to ${opts.out}`);
  }
}
