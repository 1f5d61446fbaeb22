import fs from 'node:fs';
import path from 'node:path';
import { BaselineRepo, type Generation } from '../store/baseline-repo.js';
import { journalModeOf, openCopy, openReadOnly, prepareForReadOnlyMedia, storeError } from '../store/db.js';
import { RunRepo } from '../store/run-repo.js';
import type { RunContext } from '../util/context.js';
import { CantCreateError, IntegError, NoInputError, TrustError, writeErrorFor } from '../util/errors.js';
import { chainProblems, contentProblem } from './trust-gate.js';
import { sha256File } from '../util/sha256.js';

export interface ExportOptions {
  db: string;
  out: string;
  /** verify the source's chain and signatures with this key before copying */
  verifyKey?: string;
}

export interface ExportResult {
  source: string;
  out: string;
  generation: Generation;
  /** generations left out of the copy, recorded there as pruned anchors */
  omitted: number[];
  journalMode: string;
  bytes: number;
  sha256: string;
}

/**
 * Write a self-contained copy of the current generation that works from read-only media
 * (a CD, a write-protected USB stick, a read-only bind mount): SQLite's online backup takes a
 * consistent copy while other runs may write; in the copy every other generation and every
 * run is removed (their digests kept in `pruned`, so the chain check passes), the journal
 * mode is switched from WAL to DELETE (a WAL store needs a writable -shm beside it) and the
 * file is vacuumed. Written as OUT.partial and linked into place: an existing OUT is never
 * replaced, and a failed export leaves nothing behind.
 */
export async function runExport(opts: ExportOptions, ctx: RunContext): Promise<ExportResult> {
  if (fs.existsSync(opts.out)) throw new CantCreateError(`${opts.out} already exists; refusing to overwrite it (choose another --out)`);
  const dir = path.dirname(path.resolve(opts.out));
  if (!fs.existsSync(dir)) throw new CantCreateError(`cannot create ${opts.out}: folder ${dir} does not exist`);
  const src = openReadOnly(opts.db);
  const tmp = `${opts.out}.partial`;
  const cleanup = (): void => {
    for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`, `${tmp}-journal`]) fs.rmSync(f, { force: true });
  };
  let generation: Generation;
  try {
    const cur = new BaselineRepo(src).current();
    if (!cur) throw new NoInputError(`no baseline yet in ${opts.db} (run "integ baseline" first)`);
    generation = cur;
    const { verifyTrust } = await import('./trust-gate.js');
    await verifyTrust(src, cur, { verifyKey: opts.verifyKey, refusal: 'nothing exported' }, ctx);
    cleanup(); // a .partial left by a killed export is ours to replace
    try {
      await src.backup(tmp);
    } catch (e) {
      throw writeErrorFor(e, `cannot write ${tmp}`);
    }
  } catch (e) {
    cleanup();
    if (e instanceof IntegError) throw e;
    throw storeError(e, opts.db);
  } finally {
    src.close();
  }
  let omitted: number[] = [];
  try {
    fs.chmodSync(tmp, 0o600);
    const copy = openCopy(tmp);
    try {
      const repo = new BaselineRepo(copy);
      const at = new Date().toISOString();
      omitted = copy
        .transaction(() => {
          const others = repo.list().filter((g) => g.id !== generation.id);
          for (const g of others) repo.prune(g.id, g.digest, at);
          new RunRepo(copy).deleteAll();
          return others.map((g) => g.id);
        })
        .immediate();
      // Self-check: the copy must pass the same gate the source did.
      const problems = [...chainProblems(copy).problems];
      const g = repo.current();
      if (!g || g.id !== generation.id || g.digest !== generation.digest) problems.push("the copy's current generation is not the source's");
      else {
        const c = contentProblem(copy, g);
        if (c) problems.push(c);
      }
      if (problems.length) throw new TrustError(`export self-check failed, nothing exported:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
      prepareForReadOnlyMedia(copy);
    } finally {
      copy.close();
    }
    const fd = fs.openSync(tmp, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // link() fails if OUT appeared meanwhile: never clobber.
    fs.linkSync(tmp, opts.out);
    fs.rmSync(tmp);
  } catch (e) {
    cleanup();
    if (e instanceof IntegError) throw e;
    if ((e as { code?: string }).code?.startsWith('SQLITE')) throw storeError(e, tmp);
    throw writeErrorFor(e, `cannot write ${opts.out}`);
  }
  const { bytes, sha256 } = sha256File(opts.out);
  const journalMode = journalModeOf(opts.out);
  ctx.log.info({ out: opts.out, generation: generation.id, omitted, journalMode }, 'export written');
  return {
    source: opts.db,
    out: opts.out,
    generation,
    omitted,
    journalMode,
    bytes,
    sha256,
  };
}
