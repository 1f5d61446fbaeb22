import fs from 'node:fs';
import { BaselineRepo, type Generation } from '../store/baseline-repo.js';
import { openWritable, storeError, vacuum, type DB } from '../store/db.js';
import { RunRepo } from '../store/run-repo.js';
import type { RunContext } from '../util/context.js';
import { IntegError, NoInputError, UsageError } from '../util/errors.js';

export interface PruneOptions {
  db: string;
  /** how many of the newest generations to keep (>= 1) */
  keep: number;
  /** also VACUUM, to give the freed pages back to the filesystem */
  vacuum: boolean;
  /** say what would be pruned, change nothing */
  dryRun: boolean;
}

export interface PruneResult {
  db: string;
  current: Generation;
  kept: Generation[];
  pruned: { id: number; digest: string }[];
  runsDeleted: number;
  vacuumed: boolean;
  dryRun: boolean;
  bytesBefore: number | null;
  bytesAfter: number | null;
}

/**
 * Remove every generation but the newest `keep`, in one transaction (call inside none).
 * Each removed generation's id and digest go to `pruned`, so the oldest kept generation's
 * parent link still verifies against its anchor; its entries, accept records, runs and
 * their findings go with it.
 */
export function pruneGenerations(
  db: DB,
  keep: number,
  at: string,
  dryRun = false,
): { kept: Generation[]; pruned: { id: number; digest: string }[]; runsDeleted: number } {
  if (!Number.isInteger(keep) || keep < 1) throw new UsageError(`--keep must be at least 1 (the current generation is always kept), got ${keep}`);
  const repo = new BaselineRepo(db);
  const runs = new RunRepo(db);
  return db
    .transaction(() => {
      const all = repo.list();
      const victims = all.slice(0, Math.max(0, all.length - keep));
      const kept = all.slice(victims.length);
      let runsDeleted = 0;
      if (!dryRun) {
        for (const g of victims) {
          runsDeleted += runs.deleteForGeneration(g.id);
          repo.prune(g.id, g.digest, at);
        }
      }
      return { kept, pruned: victims.map((g) => ({ id: g.id, digest: g.digest })), runsDeleted };
    })
    .immediate();
}

const size = (f: string): number | null => {
  try {
    return fs.statSync(f).size + (fs.existsSync(`${f}-wal`) ? fs.statSync(`${f}-wal`).size : 0);
  } catch {
    return null;
  }
};

/** integ prune: verify the chain first (never anchor a broken one), then prune. */
export async function runPrune(opts: PruneOptions, ctx: RunContext): Promise<PruneResult> {
  if (!Number.isInteger(opts.keep) || opts.keep < 1)
    throw new UsageError(`--keep must be at least 1 (the current generation is always kept), got ${opts.keep}`);
  if (!fs.existsSync(opts.db)) throw new NoInputError(`no baseline yet: ${opts.db} does not exist`);
  const bytesBefore = size(opts.db);
  const db = openWritable(opts.db);
  let result: PruneResult;
  try {
    const repo = new BaselineRepo(db);
    const cur = repo.current();
    if (!cur) throw new NoInputError(`no baseline yet in ${opts.db} (run "integ baseline" first)`);
    const { verifyTrust } = await import('./trust-gate.js');
    await verifyTrust(db, cur, { refusal: 'nothing pruned' }, ctx);
    const r = pruneGenerations(db, opts.keep, new Date().toISOString(), opts.dryRun);
    let vacuumed = false;
    if (opts.vacuum && !opts.dryRun && r.pruned.length) {
      vacuum(db);
      vacuumed = true;
    }
    ctx.log.info({ db: opts.db, pruned: r.pruned.map((p) => p.id), runsDeleted: r.runsDeleted, dryRun: opts.dryRun }, 'prune');
    result = { db: opts.db, current: cur, ...r, vacuumed, dryRun: opts.dryRun, bytesBefore, bytesAfter: null };
  } catch (e) {
    if (e instanceof IntegError) throw e;
    throw storeError(e, opts.db);
  } finally {
    db.close();
  }
  // Measured after close: closing the last connection checkpoints the WAL into the file.
  return { ...result, bytesAfter: size(opts.db) };
}
