import { differingAttributes } from '../core/compare.js';
import { ATTRIBUTES, type Attribute } from '../core/types.js';
import { BaselineRepo, type Generation, type StoredEntry } from '../store/baseline-repo.js';
import { openReadOnly, storeError } from '../store/db.js';
import { notFoundMessage } from './show-hint.js';
import { generationPolicy } from '../store/policy-repo.js';
import { IntegError, NoInputError } from '../util/errors.js';
import { chainProblems } from './trust-gate.js';

/** A generation with what `history` adds: for an accept, the check run it folded in. */
export interface HistoryEntry {
  generation: Generation;
  accept: { run: number; forced: boolean; paths: number } | null;
}

export interface HistoryResult {
  db: string;
  generations: HistoryEntry[];
  /** generations removed by prune/export; the oldest kept one links to the newest of these */
  pruned: { id: number; digest: string; prunedAt: string | null }[];
  current: Generation | null;
  /**
   * What is wrong with the hash chain over the generations' headers (empty: it verifies).
   * Rows are not re-hashed here; check, diff and export do that for what they read.
   */
  chainProblems: string[];
}

/** The store's generations, oldest first, and whether their chain verifies. Read-only. */
export function runHistory(opts: { db: string }): HistoryResult {
  const db = openReadOnly(opts.db);
  try {
    const repo = new BaselineRepo(db);
    const generations = repo.list().map((generation) => {
      const a = generation.kind === 'accept' ? repo.acceptOf(generation.id) : null;
      return { generation, accept: a ? { run: a.run, forced: a.forced, paths: a.paths } : null };
    });
    return {
      db: opts.db,
      generations,
      pruned: repo.prunedAnchors(),
      current: generations.at(-1)?.generation ?? null,
      chainProblems: chainProblems(db).problems,
    };
  } catch (e) {
    if (e instanceof IntegError) throw e;
    throw storeError(e, opts.db);
  } finally {
    db.close();
  }
}

/** How a path's record in one generation relates to the generation before it. */
export type ShowChange = 'first' | 'added' | 'removed' | 'changed' | 'same' | 'absent';

export interface ShowRow {
  generation: Generation;
  entry: StoredEntry | null;
  change: ShowChange;
  /** for 'changed': what differs from the previous generation's record (all attributes compared) */
  attributes: Attribute[];
  /** when this generation is an accept that took this path in: how */
  accepted: { kind: string; recheck: string } | null;
}

export interface ShowResult {
  db: string;
  path: Buffer;
  rows: ShowRow[];
}

/** "What was this file on date D": the path's record in every generation, oldest first. Read-only. */
export function runShow(opts: { db: string; path: Buffer }): ShowResult {
  const db = openReadOnly(opts.db);
  try {
    const repo = new BaselineRepo(db);
    const rows: ShowRow[] = [];
    let prev: StoredEntry | null | undefined; // undefined: no generation before
    let seen = false;
    for (const g of repo.list()) {
      const entry = repo.lookup(g.id, opts.path) ?? null;
      let change: ShowChange;
      let attributes: Attribute[] = [];
      if (prev === undefined) change = entry ? 'first' : 'absent';
      else if (entry && prev) {
        attributes = differingAttributes(prev.rec, entry.rec, ATTRIBUTES);
        change = attributes.length ? 'changed' : 'same';
      } else if (entry) change = 'added';
      else change = prev ? 'removed' : 'absent';
      if (entry) seen = true;
      const acc = g.kind === 'accept' ? repo.acceptedPath(g.id, opts.path) : null;
      rows.push({ generation: g, entry, change, attributes, accepted: acc ? { kind: acc.kind, recheck: acc.recheck } : null });
      prev = entry;
    }
    if (!rows.length) throw new NoInputError(`no baseline yet in ${opts.db} (run "integ baseline" first)`);
    if (!seen) {
      const cur = rows.at(-1)!.generation;
      const pol = generationPolicy(db, cur.id);
      throw new NoInputError(notFoundMessage(opts.path, opts.db, cur, pol?.text, pol?.source));
    }
    return { db: opts.db, path: opts.path, rows };
  } catch (e) {
    if (e instanceof IntegError) throw e;
    throw storeError(e, opts.db);
  } finally {
    db.close();
  }
}
