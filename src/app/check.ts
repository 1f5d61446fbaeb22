import { compareEntry } from '../core/compare.js';
import { pathToText } from '../core/pathenc.js';
import { Selector } from '../core/selector.js';
import type { Finding, Rule, ScanError } from '../core/types.js';
import { exitCodeOf, summarize } from '../core/verdict.js';
import type { CheckResult } from '../core/check-result.js';
import { releaseSpareWorkers, scanBatches } from '../scan/hash-pool.js';
import type { ScanJob } from '../scan/scan-entry.js';
import { type DirHandle, walk } from '../scan/walk.js';
import { BaselineRepo, type Generation, type StoredEntry } from '../store/baseline-repo.js';
import { GenerationStream, type StoredRef } from '../store/generation-stream.js';
import { isLiveStore, openReadOnly, openWritable, probeWriteLock, storeError } from '../store/db.js';
import { policyDigest } from '../store/generation-digest.js';
import { recordAlertEvidence } from './evidence-record.js';
import { RunRepo } from '../store/run-repo.js';
import { recordPolicy } from '../store/policy-repo.js';
import type { Progress } from '../report/progress.js';
import type { RunContext } from '../util/context.js';
import { CantCreateError, IntegError, NoInputError, TrustError } from '../util/errors.js';
import { blake3Hex } from '../scan/blake3.js';
import { IocCheck } from './ioc-check.js';
import { Md5Cache } from '../store/md5-cache.js';
import { loadIoc, loadPolicy, resolveRoot, whoami } from './common.js';
import { riskTags } from '../core/risk.js';
import { fileDigest } from '../pkg/dpkg.js';
import { loadPackages } from '../pkg/packages.js';
import { explainEntries, metaWanted, outOfScopeChild } from './entries.js';
import { throwIfAborted } from '../util/abort.js';

export interface CheckOptions {
  policy?: string;
  db: string;
  root?: string;
  jobs: number;
  verifyKey?: string;
  expectDigest?: string;
  /** known-bad hash lists (--ioc, repeatable), besides the policy's `ioc:` */
  ioc?: string[];
  /** large files a feed's MD5 may wait for before they are read mid-scan (DeferredMd5's maxQueued; tests lower it) */
  md5Queue?: number;
}

export type { CheckResult, EvidenceRef } from '../core/check-result.js';

const SEVERITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 } as const;

/** Findings in report order: those with risk tags first, then severity, then path bytes. */
function sortFindings(f: Finding[]): Finding[] {
  const risky = (x: Finding): number => (x.risk?.length ? 0 : 1);
  return f.sort((a, b) => risky(a) - risky(b) || SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || Buffer.compare(a.path, b.path));
}

/** A digest of the set of findings, so a repeated identical alert can reuse the earlier bundle. */
export function findingsDigest(findings: readonly Finding[]): string {
  const lines = findings
    .map((f) => {
      const a = f.after;
      return `${f.path.toString('hex')} ${f.kind} ${f.attributes.join(',')} ${a ? `${a.type} ${a.mode} ${a.uid} ${a.gid} ${a.size} ${a.blake3 ?? '-'} ${a.sha256 ?? '-'} ${a.target?.toString('hex') ?? '-'}` : '-'}`;
    })
    .sort();
  return `blake3:${blake3Hex(lines.join('\n'))}`;
}

function isUnderAny(p: Buffer, dirs: Buffer[]): boolean {
  return dirs.some((d) => p.length > d.length && p[d.length] === 0x2f && p.subarray(0, d.length).equals(d));
}

/**
 * Re-walk and re-hash in parallel, compare with the current generation rule by rule. The
 * command then captures evidence on an alert and records the run (recordCheckRun). The
 * comparison streams: the walk and the stored generation, both in path order, are merge-joined;
 * an entry whose compare text is the stored one is unchanged without further work, and the rows
 * the merge passes over are the removed entries, so memory grows with the findings, not with the
 * number of files.
 */
export async function runCheck(opts: CheckOptions, ctx: RunContext, progress?: Progress): Promise<CheckResult> {
  const policy = loadPolicy(opts.policy, ctx.env);
  const root = resolveRoot(opts.root);
  const who = whoami();
  const startedAt = new Date().toISOString();
  const notices: string[] = [];
  const iocSet = await loadIoc(policy, opts.ioc);
  // The feeds: SHA-256/SHA-1 in each read, MD5 from the lanes (ioc-check.ts).
  const ioc = iocSet ? new IocCheck(iocSet, ctx.log, opts.md5Queue) : null;
  const extra = ioc?.scanExtra();
  const md5Lanes = ioc?.md5 === true;
  // a failed trust check stops the feeds' second reads too
  const stopIoc = new AbortController();
  const iocSignal = AbortSignal.any([ctx.signal, stopIoc.signal]);
  const db = openReadOnly(opts.db);
  // a large file whose content a baseline hashed gets its MD5 for the feeds without a second read (md5-cache.ts)
  if (ioc?.md5) ioc.known = Md5Cache.reader(db);
  // A copy written by `integ export` (not in WAL mode) is evidence: never written to.
  const live = isLiveStore(db);
  let writable = false;
  try {
    writable = live && probeWriteLock0(opts.db);
  } catch (e) {
    db.close();
    throw e;
  }
  const findings: Finding[] = [];
  const errors: ScanError[] = [];
  let scanned = 0;
  let baseline: Generation;
  let merge: GenerationStream | undefined;
  try {
    const repo = new BaselineRepo(db);
    const cur = repo.current();
    if (!cur) throw new NoInputError(`no baseline yet in ${opts.db} (run "integ baseline" first)`);
    baseline = cur;
    progress?.setTotal(cur.totalBytes);
    const { verifyTrust, contentProblemOf } = await import('./trust-gate.js');
    // Chain, signatures and --expect-digest now; the content digest in the pass below.
    await verifyTrust(db, cur, { verifyKey: opts.verifyKey ?? policy.trust.publicKey ?? undefined, expectDigest: opts.expectDigest, deferContent: true }, ctx);
    const pd = policyDigest(policy.text);
    if (pd !== cur.policyDigest) notices.push(`the policy differs from the one baseline #${cur.id} was taken with; entries are judged by the current policy`);
    const selector = new Selector(policy);
    const errorDirs: Buffer[] = [];
    // The walk yields paths in byte order, so it merge-joins with the generation read in path
    // order: one sequential pass instead of a point query per file. A worker thread runs that
    // pass on its own connection and computes the generation's digest over exactly the rows it
    // hands over; the first connection answers the rare out-of-order lookup.
    const stream = new GenerationStream(opts.db, cur, repo);
    merge = stream;
    let nextId = 0;
    /** full: the stored entry, where it was already read (a growing file's prefix needs it) */
    type Job = ScanJob & { rule: Rule; base: StoredRef | undefined; full: StoredEntry | null; dir: DirHandle | null };
    // Rows found by a lookup out of path order (not in the merge's pass): never "removed".
    const seenOutOfOrder = new Set<string>();
    const mark = (b: StoredRef | undefined): void => {
      if (b?.full) seenOutOfOrder.add(b.path.toString('hex'));
    };
    // What each rule asks of a scan, worked out once per rule rather than per entry.
    const wants = new Map<Rule, { growing: boolean; xattrs: boolean; flags: boolean }>();
    // Synchronous, so a job costs no promise: where the reader is behind, it yields the wait.
    const jobs = function* (): Generator<Job | Promise<void>> {
      for (const ev of walk(selector, root, { holdDirs: true })) {
        if (!stream.readyNow(ev.path)) yield stream.ready(ev.path);
        if (ev.kind === 'error') {
          errors.push({ path: ev.path, code: ev.code, message: ev.message });
          errorDirs.push(ev.path);
          mark(stream.lookup(ev.path));
          continue;
        }
        const base = stream.lookup(ev.path);
        mark(base);
        let want = wants.get(ev.rule);
        if (!want) wants.set(ev.rule, (want = { growing: ev.rule.check.includes('growing'), ...metaWanted(ev.rule) }));
        const full = want.growing && base ? stream.entry(base) : null;
        yield {
          id: ++nextId,
          path: ev.path,
          real: ev.real,
          algos: policy.hash,
          growing: want.growing,
          prefixLen: full && full.rec.type === 'file' ? Number(full.rec.size) : null,
          xattrs: want.xattrs,
          flags: want.flags,
          extra,
          md5Lanes,
          rule: ev.rule,
          base,
          full,
          dir: ev.dir,
          dirFd: ev.dir ? ev.dir.fd : -1,
        };
      }
    };
    let bytes = 0;
    // with an md5 feed, the scan's workers are kept for the large files' second read (ioc.finish)
    for await (const batch of scanBatches(jobs(), opts.jobs, ctx.signal, { park: md5Lanes })) {
      for (let i = 0; i < batch.length; i++) {
        const job = batch.jobs[i]!;
        job.dir?.release(); // the scan of this entry is done with its folder
        scanned++;
        const base = job.base;
        // Unchanged (nearly every entry): the observed compare text is the stored one, so no
        // attribute differs; nothing is decoded but, for the known-bad lists, the digests the
        // read computed. Growing files need the record.
        if (base?.fast && !job.growing && batch.sameAs(i, base.cmp, base.cmpStart, base.cmpEnd)) {
          if (ioc) {
            const res = batch.result(i);
            if (res.ok && res.rec) ioc.add(job.path, job.real, job.rule.name, res.rec);
          }
          if (progress) progress.update(scanned, (bytes += batch.fileBytes(i)));
          continue;
        }
        const res = batch.result(i);
        if (!res.ok) {
          errors.push({ path: job.path, code: res.code, message: res.message });
          ctx.log.warn({ path: pathToText(job.path), code: res.code }, res.message);
        }
        if (res.rec) {
          if (res.rec.type === 'file') bytes += Number(res.rec.size);
          // A vanished entry (no rec) is an error, not a removal: we cannot tell which it is.
          const f = compareEntry((job.full ?? (base ? stream.entry(base) : null))?.rec ?? null, res.rec, job.rule);
          if (f) findings.push(f);
          if (ioc && res.ok) ioc.add(job.path, job.real, job.rule.name, res.rec);
        }
        progress?.update(scanned, bytes);
      }
      // Memory stays flat however many large files a feed's MD5 waits for (deferred-md5.ts).
      if (ioc?.backlogged) await ioc.drain(opts.jobs, iocSignal);
    }
    throwIfAborted(ctx.signal);
    // The feeds' MD5s of the larger files are read while the reader finishes the digest.
    const matching = ioc?.finish(opts.jobs, iocSignal);
    matching?.catch(() => {}); // awaited below; this keeps a failure in between from counting as unhandled
    try {
      // Nothing is used before the generation's content is known to be what was recorded.
      const problem = contentProblemOf(await stream.finish(), cur);
      if (problem) {
        ctx.log.debug({ generation: cur.id }, problem); // the CLI prints and logs the failure once
        throw new TrustError(`baseline not trustworthy, nothing compared:\n  - ${problem}`);
      }
    } catch (e) {
      stopIoc.abort();
      await matching?.catch(() => {});
      throw e;
    }
    await matching;
    await releaseSpareWorkers(); // kept for ioc.finish, which had nothing for them or is done
    // Removed: rows the merge passed over (as the reader handed and digested them), still in
    // scope, not found by an out-of-order lookup, and not below a directory we could not list.
    for (const e of stream.unmatched()) {
      if (seenOutOfOrder.size && seenOutOfOrder.has(e.path.toString('hex'))) continue;
      const rule = selector.ruleFor(e.path.toString('utf8'));
      if (!rule || isUnderAny(e.path, errorDirs)) continue;
      const f = compareEntry(stream.entry(e).rec, null, rule);
      if (f) findings.push(f);
    }
    explainEntries(findings, errors, (dir) => outOfScopeChild(dir, root, selector));
  } catch (e) {
    if (e instanceof IntegError) throw e;
    throw storeError(e, opts.db);
  } finally {
    progress?.stop();
    stopIoc.abort(); // after a failed scan (a finished one has nothing left)
    await ioc?.stop();
    await releaseSpareWorkers();
    await merge?.close();
    db.close();
  }
  for (const f of findings) f.risk = riskTags(f);
  await attachProvenance(findings, root);
  sortFindings(findings);
  const { matches: iocMatches, errors: iocErrors } = ioc?.results() ?? { matches: [], errors: [] };
  errors.push(...iocErrors);
  errors.sort((a, b) => Buffer.compare(a.path, b.path));
  const summary = summarize(scanned, findings, errors.length);
  return {
    startedAt,
    finishedAt: new Date().toISOString(),
    who,
    root: root || '/',
    policy,
    baseline,
    summary,
    findings,
    errors,
    iocMatches,
    iocFeeds: ioc?.set.files ?? [],
    findingsDigest: findingsDigest(findings),
    evidence: null,
    notices,
    storeWritable: writable,
    storeIsCopy: !live,
    runId: null,
    exitCode: exitCodeOf({ command: 'check', summary, knownBad: iocMatches.length }),
  };
}

/**
 * Record a finished check (with the evidence it captured, if any) in the store. A failure to
 * record is a notice: the check's findings and exit code stand regardless.
 */
export function recordCheckRun(r: CheckResult, db: string): void {
  if (!r.storeWritable) {
    r.notices.push(
      r.storeIsCopy
        ? 'the store is a copy written by "integ export" (not a live store): it was opened read-only and left unchanged; this run was not recorded'
        : 'the store is read-only: this run was not recorded',
    );
    return;
  }
  try {
    const wdb = openWritable(db);
    try {
      recordPolicy(wdb, r.policy);
      r.runId = new RunRepo(wdb).record(
        {
          kind: 'check',
          startedAt: r.startedAt,
          finishedAt: r.finishedAt,
          gen: r.baseline.id,
          baselineDigest: r.baseline.digest,
          user: r.who.user,
          uid: r.who.uid,
          hostname: r.who.hostname,
          root: r.root,
          policyDigest: policyDigest(r.policy.text),
          ...r.summary,
          exitCode: r.exitCode,
          findingsDigest: r.findingsDigest,
          evidence: r.evidence?.bundle ?? null,
        },
        r.findings,
        r.errors,
      );
      recordAlertEvidence(wdb, r);
    } finally {
      wdb.close();
    }
  } catch (e) {
    const err = e instanceof IntegError ? e : storeError(e, db);
    r.notices.push(`this run was not recorded in the store: ${err.message}`);
  }
}

/** Which package owns each finding's path and whether the content now is what it shipped (dpkg or rpm's database, read under --root). */
async function attachProvenance(findings: Finding[], root: string): Promise<void> {
  if (!findings.length) return;
  // only the findings' paths are looked up: dpkg's files that cannot mention them are not parsed
  const dpkg = await loadPackages(root, { only: findings.map((f) => f.path.toString('utf8')) });
  if (!dpkg) return;
  const prefix = Buffer.from(root.replace(/\/+$/, ''), 'utf8');
  for (const f of findings) {
    const p = f.path.toString('utf8');
    const shipped = dpkg.lookup(p);
    if (!shipped) {
      f.package = null;
      continue;
    }
    const now = f.after?.type === 'file' && shipped.digest ? fileDigest(prefix.length ? Buffer.concat([prefix, f.path]) : f.path, shipped.algo) : null;
    f.package = dpkg.owner(p, now);
  }
}

function probeWriteLock0(file: string): boolean {
  try {
    return probeWriteLock(file);
  } catch (e) {
    // A missing store is reported by openReadOnly with the right code.
    if ((e as { code?: string }).code === 'SQLITE_CANTOPEN') return false;
    if (e instanceof IntegError && !(e instanceof CantCreateError)) throw e;
    return false;
  }
}
