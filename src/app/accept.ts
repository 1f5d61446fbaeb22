import { RootResolver } from '../scan/root-path.js';
import fs from 'node:fs';
import { differingAttributes } from '../core/compare.js';
import { pathToText } from '../core/pathenc.js';
import { ATTRIBUTES, type Attribute, type CheckItem, type FindingKind, type Policy, type Severity } from '../core/types.js';
import { READ_SIZE, scanEntry } from '../scan/scan-entry.js';
import { BaselineRepo, type Generation } from '../store/baseline-repo.js';
import { beginWrite, commit, openWritable, rollbackQuietly, storeError, type DB } from '../store/db.js';
import { computeGenerationDigest, policyDigest } from '../store/generation-digest.js';
import { RunRepo, type StoredFinding, type StoredRun } from '../store/run-repo.js';
import type { RunContext } from '../util/context.js';
import { DataError, IntegError, NoInputError, UsageError } from '../util/errors.js';
import { VERSION } from '../version.js';
import { loadPolicy, resolveRoot, whoami } from './common.js';
import { signDigest } from './signing.js';
import { parsePolicy } from '../core/policy.js';
import { policyByDigest } from '../store/policy-repo.js';
import { ContentRepo } from '../store/content-repo.js';
import { KeepDecider, readAsRecorded } from './keep-content.js';
import { metaWanted } from './entries.js';
import { riskTags } from '../core/risk.js';
import { fileDigest } from '../pkg/dpkg.js';
import { loadPackages } from '../pkg/packages.js';
import { exitCodeOf } from '../core/verdict.js';

export interface AcceptOptions {
  /** paths as bytes (the command decodes `b64:` arguments) */
  paths: Buffer[];
  all: boolean;
  /** only the findings whose new content matches what their package shipped */
  packaged?: boolean;
  /** only findings of this rule */
  rule?: string;
  /** why; required */
  note: string;
  /** accept what the check saw even when the path changed again since */
  force: boolean;
  signKey?: string;
  db: string;
  policy?: string;
  /** read the accepted paths under DIR (default: the root the check used) */
  root?: string;
}

/** One accepted finding, and what re-reading it now showed. */
export interface AcceptedItem {
  path: Buffer;
  kind: FindingKind;
  rule: string;
  severity: Severity;
  attributes: Attribute[];
  /** 'same': re-read now, identical to what the check saw; 'forced': it changed again and --force was given */
  recheck: 'same' | 'forced';
  /** what differs now from what the check saw (empty when 'same') */
  changedSince: string[];
}

export interface AcceptResult {
  generation: Generation;
  parent: Generation;
  run: StoredRun;
  accepted: AcceptedItem[];
  /** findings of that check that are still not part of the baseline */
  remaining: number;
  exitCode: number;
}

/** A path that changed again since the check, and how. */
interface Drift {
  item: StoredFinding;
  what: string[];
}

const FULL_CHECK: readonly CheckItem[] = [...ATTRIBUTES];

/**
 * The check run's findings that are still open against the current generation. The run
 * must have compared against the current generation — or against its ancestor, when every
 * generation in between is an accept of this same run (accepting a check's findings in
 * several steps). Anything else means the findings are stale: refuse.
 */
function openFindings(repo: BaselineRepo, cur: Generation, run: StoredRun, findings: StoredFinding[]): { open: StoredFinding[]; done: Map<string, number> } {
  const done = new Map<string, number>();
  let g: Generation | null = cur;
  while (g && g.id !== run.gen) {
    const acc = g.kind === 'accept' ? repo.acceptOf(g.id) : null;
    if (!acc || acc.run !== run.id || g.parentId === null) break;
    for (const f of findings) if (!done.has(f.path.toString('hex')) && repo.acceptedPath(g.id, f.path)) done.set(f.path.toString('hex'), g.id);
    g = repo.get(g.parentId);
  }
  if (!g || g.id !== run.gen || g.digest !== run.baselineDigest)
    throw new DataError(
      `the last check (run #${run.id}, ${run.finishedAt}) compared against generation #${run.gen ?? '-'}, but generation #${cur.id} ` +
        `(${cur.kind} by ${cur.user}, ${cur.createdAt}) is current now; its findings are stale. Run "integ check" again and accept from that run. Nothing was written.`,
    );
  return { open: findings.filter((f) => !done.has(f.path.toString('hex'))), done };
}

/** Which findings the operator chose; usage errors name what is wrong. */
function selectFindings(
  open: StoredFinding[],
  done: Map<string, number>,
  all: StoredFinding[],
  opts: Pick<AcceptOptions, 'paths' | 'all' | 'rule'>,
  runId: number,
): StoredFinding[] {
  if (opts.paths.length && opts.all) throw new UsageError('give PATHs or --all, not both');
  if (!opts.paths.length && !opts.all && opts.rule === undefined)
    throw new UsageError('nothing to accept: name the PATHs to accept, or --all, or --rule NAME (see "integ accept --help")');
  let pool = open;
  if (opts.rule !== undefined) {
    pool = open.filter((f) => f.rule === opts.rule);
    if (!pool.length && !opts.paths.length) {
      const rules = [...new Set(open.map((f) => f.rule))];
      throw new UsageError(
        `nothing to accept: no open finding of rule "${opts.rule}" in check run #${runId}${rules.length ? ` (rules with findings: ${rules.join(', ')})` : ''}`,
      );
    }
  }
  if (!opts.paths.length) {
    if (!pool.length) throw new UsageError(`nothing to accept: every finding of check run #${runId} is already accepted`);
    return pool;
  }
  const byPath = new Map(all.map((f) => [f.path.toString('hex'), f] as const));
  const unknown: string[] = [];
  const chosen = new Map<string, StoredFinding>();
  for (const p of opts.paths) {
    const key = p.toString('hex');
    const f = byPath.get(key);
    if (!f) {
      unknown.push(pathToText(p));
      continue;
    }
    const at = done.get(key);
    if (at !== undefined) throw new UsageError(`${pathToText(p)} was already accepted from check run #${runId} into generation #${at}`);
    if (opts.rule !== undefined && f.rule !== opts.rule) throw new UsageError(`${pathToText(p)} is a finding of rule "${f.rule}", not "${opts.rule}"`);
    chosen.set(key, f);
  }
  if (unknown.length)
    throw new UsageError(
      `not among the findings of the last check (run #${runId}): ${unknown.join(', ')}. ` +
        'Give paths exactly as the check reported them (b64:… for names that are not UTF-8).',
    );
  return [...chosen.values()];
}

/**
 * Tripwire's "secure mode high": re-read each accepted path now and compare with what the
 * check observed. Anything that differs means the operator reviewed something that is no
 * longer there. Returns what changed for each drifted path.
 */
export function recheck(findings: StoredFinding[], policy: Policy, root: string): Drift[] {
  const buf = Buffer.allocUnsafe(READ_SIZE);
  // Under --root, folders are resolved inside the root, as the walk does: never out of it.
  const resolver = root ? new RootResolver(root) : null;
  const drift: Drift[] = [];
  let id = 0;
  for (const f of findings) {
    const rule = policy.rules.find((r) => r.name === f.rule);
    const growing = Boolean(rule?.check.includes('growing')) && f.after?.type === 'file';
    const job = {
      id: ++id,
      path: f.path,
      real: f.path,
      algos: policy.hash,
      growing,
      prefixLen: growing && f.after ? Number(f.after.size) : null,
      ...(rule ? metaWanted(rule) : {}),
    };
    try {
      if (resolver) job.real = resolver.real(f.path);
    } catch (e) {
      drift.push({ item: f, what: [`cannot re-read: ${(e as NodeJS.ErrnoException).code ?? 'EIO'} ${(e as Error).message}`] });
      continue;
    }
    const res = scanEntry(job, buf);
    if (f.kind === 'removed') {
      if (res.rec) drift.push({ item: f, what: [`exists again (${res.rec.type})`] });
      else if (!res.ok && res.code !== 'ENOENT' && res.code !== 'ENOTDIR')
        drift.push({ item: f, what: [`cannot tell whether it is still gone: ${res.code} ${res.message}`] });
      continue;
    }
    const after = f.after!;
    if (!res.rec) {
      drift.push({ item: f, what: [res.ok ? 'vanished' : res.code === 'ENOENT' ? 'vanished' : `cannot re-read: ${res.code} ${res.message}`] });
      continue;
    }
    const what: string[] = differingAttributes(after, res.rec, growing ? [...FULL_CHECK, 'growing'] : FULL_CHECK);
    // Content the check could hash but that cannot be hashed now is not known to be the same.
    if (!res.ok && res.rec.type === 'file' && (after.blake3 || after.sha256)) what.push(`content unreadable now: ${res.code} ${res.message}`);
    if (what.length) drift.push({ item: f, what });
  }
  return drift;
}

/**
 * Fold chosen findings of the last check into a new generation (kind 'accept'): the current
 * generation's entries are copied inside SQLite, then each accepted finding is applied
 * (added → insert what the check saw, removed → delete, changed → replace), all in one
 * transaction with the header (who, when, why), the parent link, the digest and the
 * signature. Refused, with nothing written, when the findings are stale or a path changed
 * again since the check (unless force).
 */
export async function runAccept(opts: AcceptOptions, ctx: RunContext): Promise<AcceptResult> {
  if (opts.paths.length && opts.all) throw new UsageError('give PATHs or --all, not both');
  if (opts.packaged && (opts.paths.length || opts.all)) throw new UsageError('--packaged chooses the findings itself: give no PATHs and no --all');
  if (!opts.paths.length && !opts.all && opts.rule === undefined && !opts.packaged)
    throw new UsageError('nothing to accept: name the PATHs to accept, or --all, or --rule NAME, or --packaged (see "integ accept --help")');
  if (!opts.note || !opts.note.trim()) throw new UsageError('--note TEXT is required: say why these changes are accepted (it is recorded with the generation)');
  if (opts.db !== ':memory:' && !fs.existsSync(opts.db)) throw new NoInputError(`no baseline yet: ${opts.db} does not exist (run "integ baseline" first)`);
  let policy = opts.policy !== undefined ? loadPolicy(opts.policy, ctx.env) : null;
  const sign = opts.signKey ? await signDigest(opts.signKey) : null;
  const who = whoami();
  const db = openWritable(opts.db);
  try {
    // Fail fast (75, after the 2 s busy timeout) when another run holds the store, before
    // re-reading any file: the re-read can take long and would only be thrown away.
    beginWrite(db, opts.db);
    rollbackQuietly(db);
    const repo = new BaselineRepo(db);
    const runs = new RunRepo(db);
    const cur = repo.current();
    if (!cur) throw new NoInputError(`no baseline yet in ${opts.db} (run "integ baseline" first)`);
    const run = runs.last();
    if (!run) throw new UsageError(`no check has been run against ${opts.db} yet: run "integ check", review its findings, then accept them`);
    const findings = runs.findings(run.id);
    if (!findings.length) throw new UsageError(`nothing to accept: the last check (run #${run.id}, ${run.finishedAt}) found no differences`);
    // Without --policy: exactly the policy the last check used, as the store recorded it.
    if (!policy) {
      const rec = policyByDigest(db, run.policyDigest);
      policy = rec ? parsePolicy(rec.text, `${rec.source} (as used by check run #${run.id})`) : loadPolicy(undefined, ctx.env);
    }
    const { open, done } = openFindings(repo, cur, run, findings);
    const root0 = resolveRoot(opts.root ?? run.root);
    let pool = open;
    if (opts.packaged) {
      pool = await packagedFindings(open, root0);
      if (!pool.length)
        throw new UsageError(
          `nothing to accept: no open finding of check run #${run.id} has content that matches what its package shipped (${open.length} left for review)`,
        );
    }
    const chosen = selectFindings(pool, done, findings, opts.packaged ? { paths: [], all: true, rule: opts.rule } : opts, run.id);
    if (policyDigest(policy.text) !== run.policyDigest)
      throw new DataError(
        `the policy ${policy.source} is not the one the last check (run #${run.id}) used; pass the same --policy so paths are re-read the same way. Nothing was written.`,
      );
    const { verifyTrust } = await import('./trust-gate.js');
    await verifyTrust(db, cur, { verifyKey: policy.trust.publicKey ?? undefined, refusal: 'nothing accepted' }, ctx);

    const root = resolveRoot(opts.root ?? run.root);
    const drift = recheck(chosen, policy, root);
    if (drift.length && !opts.force) {
      throw new DataError(
        `refusing to accept: ${drift.length} path${drift.length > 1 ? 's' : ''} changed again since the check (run #${run.id}, ${run.finishedAt}):\n` +
          drift.map((d) => `  ${pathToText(d.item.path)}: ${d.what.join(', ')}`).join('\n') +
          '\nRun "integ check" again and review, or pass --force to record what that check saw. Nothing was written.',
      );
    }
    const drifted = new Map(drift.map((d) => [d.item.path.toString('hex'), d.what] as const));
    const errorCode = new Map(runs.errors(run.id).map((e) => [e.path.toString('hex'), e.code] as const));
    const accepted: AcceptedItem[] = chosen.map((f) => {
      const what = drifted.get(f.path.toString('hex'));
      return {
        path: f.path,
        kind: f.kind,
        rule: f.rule,
        severity: f.severity,
        attributes: f.attributes,
        recheck: what ? 'forced' : 'same',
        changedSince: what ?? [],
      };
    });
    const gen = write(db, repo, cur, run, chosen, accepted, { policy, root, who, note: opts.note, force: opts.force, sign, errorCode }, opts.db);
    for (const a of accepted.filter((x) => x.recheck === 'forced'))
      ctx.log.warn({ path: pathToText(a.path), changed: a.changedSince }, 'accepted with --force although it changed again since the check');
    ctx.log.info({ generation: gen.id, parent: cur.id, run: run.id, accepted: accepted.length, digest: gen.digest }, 'accept recorded');
    return { generation: gen, parent: cur, run, accepted, remaining: open.length - chosen.length, exitCode: exitCodeOf({ command: 'done' }) };
  } catch (e) {
    if (e instanceof IntegError) throw e;
    throw storeError(e, opts.db);
  } finally {
    db.close();
  }
}

/**
 * An accepted added, removed or replaced entry moved its directory's mtime and ctime: record
 * the directory's times as they are now, so the next check does not report that directory's
 * `entries` (a trace nothing explains any more once the child is part of the baseline).
 */
function refreshParents(repo: BaselineRepo, gen: number, chosen: StoredFinding[], root: string): void {
  const dirs = new Map<string, Buffer>();
  for (const f of chosen) {
    if (f.kind === 'changed' && !f.attributes.includes('inode') && !f.attributes.includes('type')) continue;
    const i = f.path.lastIndexOf(0x2f);
    const parent = i <= 0 ? Buffer.from('/') : f.path.subarray(0, i);
    dirs.set(parent.toString('hex'), parent);
  }
  const prefix = Buffer.from(root.replace(/\/+$/, ''), 'utf8');
  for (const dir of dirs.values()) {
    const cur = repo.lookup(gen, dir);
    if (!cur || cur.rec.type !== 'dir' || cur.error !== null) continue;
    let st: fs.BigIntStats;
    try {
      st = fs.lstatSync(prefix.length ? Buffer.concat([prefix, dir]) : dir, { bigint: true });
    } catch {
      continue;
    }
    if (!st.isDirectory() || st.ino !== cur.rec.inode) continue;
    repo.deleteEntry(gen, dir);
    repo.insert(gen, cur.rule, { ...cur.rec, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, size: st.size, nlink: Number(st.nlink) }, null);
  }
}

/** What a package upgrade changes in a file; anything else (mode, owner, capabilities, flags …) is not vouched for by a digest. */
const UPGRADE_ATTRS: ReadonlySet<string> = new Set(['content', 'size', 'mtime', 'ctime', 'inode', 'nlink']);

/**
 * The findings `--packaged` accepts: an added or changed regular file whose content now has
 * the digest its owning package recorded, that changed in nothing an upgrade would not change
 * and that carries no risk tag (a package's set-uid file is still for a person to accept).
 */
export async function packagedFindings(open: StoredFinding[], root: string): Promise<StoredFinding[]> {
  const candidates = open.filter((f) => {
    if (f.kind === 'removed' || !f.after || f.after.type !== 'file') return false;
    if (!f.attributes.every((a) => UPGRADE_ATTRS.has(a))) return false;
    return riskTags({ path: f.path, kind: f.kind, before: null, after: f.after }).length === 0;
  });
  if (!candidates.length) return [];
  const dpkg = await loadPackages(root, { only: candidates.map((f) => f.path.toString('utf8')) });
  if (!dpkg) return [];
  const prefix = Buffer.from(root.replace(/\/+$/, ''), 'utf8');
  return candidates.filter((f) => {
    const p = f.path.toString('utf8');
    const shipped = dpkg.lookup(p);
    if (!shipped?.digest) return false;
    const now = fileDigest(prefix.length ? Buffer.concat([prefix, f.path]) : f.path, shipped.algo);
    return dpkg.owner(p, now)?.digestMatches === true;
  });
}

function write(
  db: DB,
  repo: BaselineRepo,
  cur: Generation,
  run: StoredRun,
  chosen: StoredFinding[],
  accepted: AcceptedItem[],
  o: {
    policy: Policy;
    root: string;
    who: ReturnType<typeof whoami>;
    note: string;
    force: boolean;
    sign: ((d: string) => { signature: string; keyId: string }) | null;
    errorCode: Map<string, string>;
  },
  file: string,
): Generation {
  beginWrite(db, file);
  try {
    // Someone may have baselined or accepted while we were re-reading files.
    const now = repo.current();
    if (!now || now.id !== cur.id || now.digest !== cur.digest)
      throw new DataError(
        `generation #${now?.id ?? '-'} became current while accepting (another baseline or accept ran); nothing was written. Run "integ check" again.`,
      );
    const header = {
      createdAt: new Date().toISOString(),
      kind: 'accept' as const,
      user: o.who.user,
      uid: o.who.uid,
      hostname: o.who.hostname,
      note: o.note,
      root: o.root || '/',
      policySource: o.policy.source,
      policyText: o.policy.text,
      policyDigest: policyDigest(o.policy.text),
      hashAlgos: o.policy.hash.join(','),
      parentId: cur.id,
      parentDigest: cur.digest,
      toolVersion: VERSION,
    };
    const gen = repo.begin(header);
    repo.copyEntries(cur.id, gen);
    const contents = new ContentRepo(db);
    const keep = new KeepDecider(o.policy);
    contents.copyKept(cur.id, gen);
    for (const f of chosen) {
      repo.deleteEntry(gen, f.path);
      if (contents.available) contents.unlink(gen, f.path);
      if (f.kind !== 'removed' && f.after) {
        repo.insert(gen, f.rule, f.after, o.errorCode.get(f.path.toString('hex')) ?? null);
        // Keep the accepted content when the rule keeps content and the file still is what the check saw.
        if (contents.available && keep.wants(f.rule, f.after)) {
          const data = readAsRecorded(o.root ? Buffer.concat([Buffer.from(o.root), f.path]) : f.path, f.after, keep.maxBytes(f.rule));
          if (data) contents.keep(gen, f.path, data);
        }
      }
    }
    refreshParents(repo, gen, chosen, o.root);
    const d = computeGenerationDigest(db, { id: gen, ...header });
    const sig = o.sign ? o.sign(d.digest) : null;
    repo.finish(gen, d, d.digest, sig?.signature ?? null, sig?.keyId ?? null);
    repo.recordAccept(
      gen,
      { id: run.id, findingsDigest: run.findingsDigest },
      o.force && accepted.some((a) => a.recheck === 'forced'),
      accepted.map((a) => ({ path: a.path, kind: a.kind, rule: a.rule, recheck: a.recheck })),
    );
    commit(db);
    return repo.get(gen)!;
  } catch (e) {
    rollbackQuietly(db);
    throw e;
  }
}
