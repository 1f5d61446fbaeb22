import { Selector } from '../core/selector.js';
import type { IocMatch, ScanError } from '../core/types.js';
import type { PackageMismatch } from '../pkg/dpkg.js';
import { loadPackages } from '../pkg/packages.js';
import { PackageCheck, type Shipped } from './package-check.js';
import { releaseSpareWorkers, scanBatches } from '../scan/hash-pool.js';
import { md5Implementation } from '../scan/md5-lanes.js';
import { scanImplementation } from '../scan/native-scan.js';
import type { ScanJob } from '../scan/scan-entry.js';
import { type DirHandle, walk } from '../scan/walk.js';
import { BaselineRepo, type Generation } from '../store/baseline-repo.js';
import { Md5Cache } from '../store/md5-cache.js';
import { beginWrite, commit, openWritable, rollbackQuietly, storeError } from '../store/db.js';
import { computeGenerationDigest, GenerationDigester, policyDigest } from '../store/generation-digest.js';
import type { RunContext } from '../util/context.js';
import { IntegError } from '../util/errors.js';
import { exitCodeOf } from '../core/verdict.js';
import { throwIfAborted } from '../util/abort.js';
import type { Progress } from '../report/progress.js';
import { IocCheck } from './ioc-check.js';
import { loadIoc, loadPolicy, resolveRoot, whoami } from './common.js';
import { VERSION } from '../version.js';
import { signDigest } from './signing.js';
import { metaWanted } from './entries.js';

export interface BaselineOptions {
  policy?: string;
  db: string;
  note: string | null;
  root?: string;
  jobs: number;
  signKey?: string;
  /** known-bad hash lists (--ioc, repeatable), besides the policy's `ioc:` */
  ioc?: string[];
  /** compare packaged files with the package database (default true; --no-packages) */
  packages?: boolean;
  /** large files the package check or a feed's MD5 may wait for before they are read mid-scan (DeferredMd5's maxQueued; tests lower it) */
  md5Queue?: number;
}

export interface BaselineResult {
  generation: Generation;
  entries: number;
  bytes: number;
  seconds: number;
  errors: ScanError[];
  /** files whose content is on a known-bad hash list (exit bit 32): a baseline of a compromised host */
  iocMatches: IocMatch[];
  iocFeeds: string[];
  /** packaged files whose content differs from what dpkg recorded; conffiles separately (admins edit those) */
  packageMismatches: PackageMismatch[];
  conffilesModified: PackageMismatch[];
  /** how many packaged files were compared with their package's digest (0: no dpkg database) */
  packagedChecked: number;
  /** packaged files that could not be compared: changed after the scan recorded them, or unreadable on the second read */
  packagesUnverified: ScanError[];
  root: string;
  exitCode: number;
  /** files whose content was kept (keep_content) */
  kept?: number;
}

/**
 * Walk the policy's paths, hash every regular file in parallel and record a new generation
 * in one transaction. The previous generation stays current until the final COMMIT: a killed
 * or interrupted run leaves the store as it was.
 */
export async function runBaseline(opts: BaselineOptions, ctx: RunContext, progress?: Progress): Promise<BaselineResult> {
  const policy = loadPolicy(opts.policy, ctx.env);
  const root = resolveRoot(opts.root);
  const who = whoami();
  const sign = opts.signKey ? await signDigest(opts.signKey) : null;
  const iocSet = await loadIoc(policy, opts.ioc);
  // The feeds: SHA-256/SHA-1 in each read, MD5 from the lanes (ioc-check.ts).
  const ioc = iocSet ? new IocCheck(iocSet, ctx.log, opts.md5Queue) : null;
  const extra = ioc?.scanExtra() ?? [];
  const iocMd5 = ioc?.md5 === true;
  const withAlgo = new Map<string, typeof extra>();
  const extraFor = (algo: (typeof extra)[number]): typeof extra => {
    let l = withAlgo.get(algo);
    if (!l) withAlgo.set(algo, (l = [...new Set([...extra, algo])]));
    return l;
  };
  const started = Date.now();
  const db = openWritable(opts.db, { init: true });
  const repo = new BaselineRepo(db);
  const errors: ScanError[] = [];
  let entries = 0;
  let bytes = 0;
  let open = false;
  let stopPackages: (() => Promise<void>) | null = null;
  try {
    beginWrite(db, opts.db);
    open = true;
    const parent = repo.current();
    if (parent) progress?.setTotal(parent.totalBytes);
    const header = {
      createdAt: new Date().toISOString(),
      kind: 'baseline' as const,
      user: who.user,
      uid: who.uid,
      hostname: who.hostname,
      note: opts.note,
      root: root || '/',
      policySource: policy.source,
      policyText: policy.text,
      policyDigest: policyDigest(policy.text),
      hashAlgos: policy.hash.join(','),
      parentId: parent?.id ?? null,
      parentDigest: parent?.digest ?? null,
      toolVersion: VERSION,
    };
    const gen = repo.begin(header);
    // Tests synchronise on this line (the write lock is held and the new generation is open).
    ctx.log.debug({ db: opts.db, generation: gen }, 'store locked, generation begun');
    const { KeepDecider, readAsRecorded } = await import('./keep-content.js');
    const { ContentRepo } = await import('../store/content-repo.js');
    const keep = new KeepDecider(policy);
    const contents = new ContentRepo(db);
    let keptFiles = 0;
    const selector = new Selector(policy);
    let nextId = 0;
    // Every packaged file in scope is checked against its package (package-check.ts).
    const index = opts.packages === false ? null : await loadPackages(root, { digestsOnly: true });
    // large files whose content an earlier baseline hashed are not read again for their MD5 (md5-cache.ts)
    const md5Cache = index || iocMd5 ? new Md5Cache(db, gen) : null;
    if (ioc) ioc.known = md5Cache;
    const packages = index ? new PackageCheck(index, opts.md5Queue, md5Cache) : null;
    // asked only when logged: it loads the MD5 engines on this thread, which hashes nothing itself
    if (packages && ctx.log.isLevelEnabled('debug')) ctx.log.debug({ md5: md5Implementation() }, 'packaged files: compared with their packages');
    if (ctx.log.isLevelEnabled('debug')) ctx.log.debug({ scan: scanImplementation() }, 'files and folders: how they are scanned');
    // The package check's larger files are hashed by background workers while the scan goes on;
    // a failed digest stops them too (below).
    const stopCheck = new AbortController();
    const checkSignal = AbortSignal.any([ctx.signal, stopCheck.signal]);
    if (packages?.stream(opts.jobs, checkSignal, ctx.log)) stopPackages = () => packages.stop();
    const packagedExtra = (shipped: Shipped | null): typeof extra => {
      const algo = PackageCheck.inRead(shipped);
      return algo ? extraFor(algo) : extra;
    };
    const jobs = function* (): Generator<ScanJob & { rule: string; dir: DirHandle | null; shipped: Shipped | null }> {
      for (const ev of walk(selector, root, { holdDirs: true })) {
        if (ev.kind === 'error') {
          errors.push({ path: ev.path, code: ev.code, message: ev.message });
          continue;
        }
        // one package lookup an entry: the job carries it to add()
        const shipped = packages ? packages.shippedFor(ev.path) : null;
        yield {
          id: ++nextId,
          path: ev.path,
          real: ev.real,
          algos: policy.hash,
          growing: false,
          prefixLen: null,
          ...metaWanted(ev.rule),
          extra: packagedExtra(shipped),
          // the package's MD5, or a feed's (the lanes give it to files that fit one; see check.ts)
          md5Lanes: shipped?.algo === 'md5' || iocMd5,
          shipped,
          rule: ev.rule.name,
          dir: ev.dir,
          dirFd: ev.dir ? ev.dir.fd : -1,
        };
      }
    };
    ctx.log.info({ db: opts.db, policy: policy.source, root: root || '/', jobs: opts.jobs }, 'baseline started');
    // The generation digest is taken from the very values each INSERT binds, row by row in path
    // order, instead of reading the generation back afterwards. Batches come back in completion
    // order: they wait here until the ones before them are in.
    let digester: GenerationDigester | null = new GenerationDigester({ id: gen, ...header }, db);
    // the scan's workers are kept for the large files' second read (packages.finish, ioc.finish)
    for await (const batch of inJobOrder(scanBatches(jobs(), opts.jobs, ctx.signal, { park: packages !== null || ioc?.md5 === true }))) {
      for (const [job, res] of batch) {
        job.dir?.release(); // the scan of this entry is done with its folder
        if (!res.ok) {
          errors.push({ path: job.path, code: res.code, message: res.message });
          ctx.log.warn({ path: job.path.toString('utf8'), code: res.code }, res.message);
        }
        if (res.rec) {
          if (res.ok) {
            // one second read for a large packaged file: the package check's MD5 is the feeds' too
            const then = ioc ? ioc.matchOrThen(job.path, job.rule, res.rec) : null;
            const queued = packages ? packages.add(job.path, job.real, res.rec, job.shipped, then) : false;
            if (then && !queued) ioc!.later(job.real, res.rec, then);
          }
          delete res.rec.extra;
          const row = repo.insert(gen, job.rule, res.rec, res.ok ? null : res.code);
          if (digester)
            try {
              digester.addAt(row, 0);
            } catch (e) {
              // out of path order, or a row the digest refuses: read the generation back at the end, as before
              ctx.log.debug({ err: (e as Error).message }, 'generation digest: computed from the store instead');
              digester = null;
            }
          if (res.ok && keep.wants(job.rule, res.rec)) {
            // Read again and keep only bytes that match the digest just recorded (it may have changed since).
            const data = readAsRecorded(job.real, res.rec, keep.maxBytes(job.rule));
            if (data) {
              contents.keep(gen, job.path, data);
              keptFiles++;
            } else ctx.log.warn({ path: job.path.toString('utf8') }, 'content not kept: the file changed while it was read');
          }
          entries++;
          if (res.rec.type === 'file') bytes += Number(res.rec.size);
        }
        progress?.update(entries, bytes);
      }
      // Memory stays flat however many large files wait for their MD5 (deferred-md5.ts).
      if (packages?.backlogged) await packages.drain(opts.jobs, checkSignal, ctx.log);
      if (ioc?.backlogged) await ioc.drain(opts.jobs, checkSignal);
    }
    throwIfAborted(ctx.signal);
    // The package check's workers hash while this thread finishes the generation digest (the kept
    // rows; all of it where it had to be read back); both finish before COMMIT, so an interrupted
    // run still records nothing.
    const checking = Promise.all([packages?.finish(opts.jobs, checkSignal, ctx.log), ioc?.finish(opts.jobs, checkSignal)]);
    checking.catch(() => {}); // awaited below; this keeps a failure during the digest from counting as unhandled
    let d: ReturnType<typeof computeGenerationDigest>;
    try {
      await new Promise<void>((r) => setImmediate(r)); // the workers get their shares before the digest holds this thread
      d = digester ? digester.finish() : computeGenerationDigest(db, { id: gen, ...header });
    } catch (e) {
      stopCheck.abort();
      await checking.catch(() => {});
      throw e;
    }
    await checking;
    await releaseSpareWorkers(); // kept for the second reads, which had nothing for them or are done
    throwIfAborted(ctx.signal);
    const { matches: iocMatches, errors: iocErrors } = ioc?.results() ?? { matches: [], errors: [] };
    if (iocErrors.length) {
      errors.push(...iocErrors);
      errors.sort((a, b) => Buffer.compare(a.path, b.path));
    }
    if (md5Cache) {
      md5Cache.flush();
      ctx.log.debug(md5Cache.counts, 'large files: MD5s reused from earlier baselines, and learned');
    }
    const sig = sign ? sign(d.digest) : null;
    repo.finish(gen, d, d.digest, sig?.signature ?? null, sig?.keyId ?? null);
    commit(db);
    open = false;
    const generation = repo.get(gen)!;
    ctx.log.info({ generation: gen, entries, bytes, errors: errors.length, digest: d.digest, kept: keptFiles }, 'baseline recorded');
    const mismatches = packages?.mismatches ?? [];
    if (mismatches.some((m) => !m.conffile))
      ctx.log.warn({ count: mismatches.filter((m) => !m.conffile).length }, 'packaged files differ from what their package shipped');
    const exitCode = exitCodeOf({ command: 'baseline', unreadable: errors.length, knownBad: iocMatches.length });
    return {
      generation,
      entries,
      bytes,
      seconds: (Date.now() - started) / 1000,
      errors,
      iocMatches,
      iocFeeds: ioc?.set.files ?? [],
      packageMismatches: mismatches.filter((m) => !m.conffile),
      conffilesModified: mismatches.filter((m) => m.conffile),
      packagedChecked: packages?.checked ?? 0,
      packagesUnverified: packages?.unverified ?? [],
      root: root || '/',
      exitCode,
      kept: keptFiles,
    };
  } catch (e) {
    await stopPackages?.();
    await ioc?.stop();
    if (open) rollbackQuietly(db);
    if (e instanceof IntegError) throw e;
    throw storeError(e, opts.db);
  } finally {
    progress?.stop();
    await releaseSpareWorkers();
    db.close();
  }
}

/**
 * The batches of a scan in job order (ids count up from 1 in walk order, and a batch is a run of
 * consecutive ids): one that comes back early waits for those before it. At most the batches in
 * flight wait.
 */
async function* inJobOrder<B extends { jobs: readonly { id: number }[] }>(batches: AsyncIterable<B>): AsyncGenerator<B> {
  const waiting = new Map<number, B>();
  let next = 1;
  for await (const b of batches) {
    if (b.jobs.length === 0) continue;
    waiting.set(b.jobs[0]!.id, b);
    for (let w = waiting.get(next); w; w = waiting.get(next)) {
      waiting.delete(next);
      next = w.jobs[w.jobs.length - 1]!.id + 1;
      yield w;
    }
  }
  // the scan ended early (it throws then) or ids had a gap: whatever waits still goes, in id order
  for (const id of [...waiting.keys()].sort((a, b) => a - b)) yield waiting.get(id)!;
}
