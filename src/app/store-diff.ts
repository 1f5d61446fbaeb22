import { differingAttributes } from '../core/compare.js';
import { ATTRIBUTES, type Attribute, type EntryRecord } from '../core/types.js';
import { BaselineRepo, type Generation, type StoredEntry } from '../store/baseline-repo.js';
import { openReadOnly, storeError, type DB } from '../store/db.js';
import type { RunContext } from '../util/context.js';
import { IntegError, NoInputError, TrustError, UsageError } from '../util/errors.js';
import { contentProblem, verifyTrust } from './trust-gate.js';
import { hostAwareAttributes } from './diff-hosts.js';

/** One side of a diff: which store and generation. */
export interface DiffSide {
  /** the store file */
  db: string;
  generation: Generation;
}

/** One differing path, A → B: added = only in B, removed = only in A. */
export interface Difference {
  path: Buffer;
  kind: 'added' | 'removed' | 'changed';
  attributes: Attribute[];
  a: EntryRecord | null;
  b: EntryRecord | null;
}

export interface DiffSummary {
  added: number;
  removed: number;
  changed: number;
  /** entries read on each side */
  entriesA: number;
  entriesB: number;
}

/**
 * A diff ready to be streamed: `differences` yields in path byte order while both
 * generations are read in step (merge join over ORDER BY path), so memory stays flat however
 * large the stores are. Call close() when done.
 */
export interface StoreDiff {
  a: DiffSide;
  b: DiffSide;
  /** the attributes compared */
  attributes: Attribute[];
  /** caveats the reader must see, e.g. content hashed with different algorithms on each side */
  notices: string[];
  differences: Generator<Difference, DiffSummary>;
  close(): void;
}

export interface StoreDiffOptions {
  /** two stores … */
  stores?: [string, string];
  /** … or two generation numbers of one store */
  generations?: [number, number];
  db?: string;
  /** attributes not to compare, e.g. inode,ctime,mtime between two hosts */
  ignore: Attribute[];
  /** host-local attributes to compare even between different hosts or roots (--compare) */
  compare?: Attribute[];
  verifyKey?: string;
}

/** Merge join of two path-ordered entry streams. Pure: works on any two sorted iterables. */
export function* mergeDiff(a: Iterable<StoredEntry>, b: Iterable<StoredEntry>, check: readonly Attribute[]): Generator<Difference, DiffSummary> {
  const s: DiffSummary = { added: 0, removed: 0, changed: 0, entriesA: 0, entriesB: 0 };
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  try {
    let x = ia.next();
    let y = ib.next();
    if (!x.done) s.entriesA++;
    if (!y.done) s.entriesB++;
    while (!x.done || !y.done) {
      const c = x.done ? 1 : y.done ? -1 : Buffer.compare(x.value.rec.path, y.value.rec.path);
      if (c < 0) {
        const e = x.value as StoredEntry;
        s.removed++;
        yield { path: e.rec.path, kind: 'removed', attributes: [], a: e.rec, b: null };
        x = ia.next();
        if (!x.done) s.entriesA++;
      } else if (c > 0) {
        const e = y.value as StoredEntry;
        s.added++;
        yield { path: e.rec.path, kind: 'added', attributes: [], a: null, b: e.rec };
        y = ib.next();
        if (!y.done) s.entriesB++;
      } else {
        const ea = x.value as StoredEntry;
        const eb = y.value as StoredEntry;
        const attrs = differingAttributes(ea.rec, eb.rec, check);
        if (attrs.length) {
          s.changed++;
          yield { path: ea.rec.path, kind: 'changed', attributes: attrs, a: ea.rec, b: eb.rec };
        }
        x = ia.next();
        y = ib.next();
        if (!x.done) s.entriesA++;
        if (!y.done) s.entriesB++;
      }
    }
    return s;
  } finally {
    // Stopped early (closed output, error): release the statements so the connections can close.
    ia.return?.();
    ib.return?.();
  }
}

/** Content is only compared where both sides hash with a common algorithm. */
function algoNotices(a: Generation, b: Generation, attributes: readonly Attribute[]): string[] {
  if (!attributes.includes('content')) return [];
  const x = a.hashAlgos.split(',');
  const common = b.hashAlgos.split(',').filter((h) => x.includes(h));
  if (common.length) return [];
  return [`A hashes with ${a.hashAlgos} and B with ${b.hashAlgos}: file content cannot be compared, only metadata`];
}

function generationOf(repo: BaselineRepo, db: string, n: number): Generation {
  const g = repo.get(n);
  if (g) return g;
  const p = repo.prunedAnchors().find((a) => a.id === n);
  if (p) throw new NoInputError(`generation #${n} of ${db} was pruned${p.prunedAt ? ` on ${p.prunedAt}` : ''}; only its digest ${p.digest} is kept`);
  throw new NoInputError(`${db} has no generation #${n} (see "integ history --db ${db}")`);
}

/**
 * Open what to compare and check it first: each store must pass the trust gate (its
 * chain and current generation's content; signatures too with a key); with --generation,
 * both generations' rows are re-hashed against their digests, since we are about to read
 * them. Returns the streaming diff.
 */
export async function openStoreDiff(opts: StoreDiffOptions, ctx: RunContext): Promise<StoreDiff> {
  const attributes = ATTRIBUTES.filter((a) => a !== 'entries' && !opts.ignore.includes(a));
  if (!attributes.length) throw new UsageError('--ignore leaves no attribute to compare');
  const opened: DB[] = [];
  const close = (): void => {
    for (const d of opened) d.close();
  };
  try {
    const open = async (file: string): Promise<{ db: DB; repo: BaselineRepo; cur: Generation }> => {
      const db = openReadOnly(file);
      opened.push(db);
      const repo = new BaselineRepo(db);
      const cur = repo.current();
      if (!cur) throw new NoInputError(`no baseline yet in ${file}`);
      await verifyTrust(db, cur, { verifyKey: opts.verifyKey, refusal: 'nothing compared' }, ctx);
      return { db, repo, cur };
    };
    if (opts.stores) {
      const [fa, fb] = opts.stores;
      const A = await open(fa);
      const B = await open(fb);
      const h = hostAwareAttributes(A.cur, B.cur, attributes, opts.compare ?? []);
      return {
        a: { db: fa, generation: A.cur },
        b: { db: fb, generation: B.cur },
        attributes: h.attributes,
        notices: [...h.notices, ...algoNotices(A.cur, B.cur, h.attributes)],
        differences: mergeDiff(A.repo.entriesByPath(A.cur.id), B.repo.entriesByPath(B.cur.id), h.attributes),
        close,
      };
    }
    if (!opts.generations || !opts.db) throw new UsageError('give two stores (integ diff A B) or --generation N M');
    const S = await open(opts.db);
    const [n, m] = opts.generations;
    const ga = generationOf(S.repo, opts.db, n);
    const gb = generationOf(S.repo, opts.db, m);
    const problems = [ga, gb]
      .filter((g, i) => g.id !== S.cur.id && (i === 0 || gb.id !== ga.id))
      .map((g) => contentProblem(S.db, g))
      .filter((p): p is string => p !== null);
    if (problems.length) throw new TrustError(`baseline not trustworthy, nothing compared:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    // Two iterators on one connection read in one implicit transaction: a consistent view.
    const h = hostAwareAttributes(ga, gb, attributes, opts.compare ?? []);
    return {
      a: { db: opts.db, generation: ga },
      b: { db: opts.db, generation: gb },
      attributes: h.attributes,
      notices: [...h.notices, ...algoNotices(ga, gb, h.attributes)],
      differences: mergeDiff(S.repo.entriesByPath(ga.id), S.repo.entriesByPath(gb.id), h.attributes),
      close,
    };
  } catch (e) {
    close();
    if (e instanceof IntegError) throw e;
    throw storeError(e, opts.db ?? opts.stores?.[0] ?? '');
  }
}
