import { isUtf8 } from 'node:buffer';
import fs from 'node:fs';
import { at, openParent } from './safe-path.js';
import { structuredPatch } from 'diff';
import type { Finding } from '../core/types.js';
import { BaselineRepo } from '../store/baseline-repo.js';
import { ContentRepo, ContentProblem, matchesEntry } from '../store/content-repo.js';
import { openReadOnly, type DB } from '../store/db.js';
import { KeepDecider, KEEP_CONTENT_DEFAULT_MAX, readRegular } from './keep-content.js';
import type { CheckResult } from './check.js';

/** Lines of context around each change. */
export const DIFF_CONTEXT = 3;
/** At most this many diff lines per file, and in all, in a text report. */
export const DIFF_MAX_LINES_PER_FILE = 60;
export const DIFF_MAX_LINES_TOTAL = 400;
/** Diffs for at most this many files per report. */
export const DIFF_MAX_FILES = 100;
/** Give up on a line diff with more edits than this (or after 2 s). */
export const DIFF_MAX_EDIT = 5000;

/** What `check` shows under a changed file whose known-good content is kept. */
export type ContentDiff =
  | { kind: 'text'; lines: string[]; omitted: number }
  | { kind: 'binary'; bytesDiffer: number; oldSize: number; newSize: number }
  | { kind: 'none'; reason: string };

function isText(b: Buffer): boolean {
  return !b.subarray(0, 8192).includes(0) && isUtf8(b);
}

/** Positions whose byte differs, counting the length difference. */
export function bytesDiffer(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  let d = Math.abs(a.length - b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) d++;
  return d;
}

/** A bounded unified diff (headers and hunks) of two texts. */
export function unifiedLines(label: string, a: string, b: string, maxLines: number): { lines: string[]; omitted: number } {
  // Bounded work: a pathological pair of large texts gives up instead of stalling the report.
  const p = structuredPatch(`a${label}`, `b${label}`, a, b, 'known-good', 'now', { context: DIFF_CONTEXT, maxEditLength: DIFF_MAX_EDIT, timeout: 2000 });
  const all: string[] = [`--- a${label}\t(known-good)`, `+++ b${label}\t(now)`];
  if (!p) return { lines: [...all, `(more than ${DIFF_MAX_EDIT} lines differ: no line-by-line diff)`], omitted: 0 };
  for (const h of p.hunks) {
    all.push(`@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`);
    for (const l of h.lines) all.push(l.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
  }
  return all.length > maxLines ? { lines: all.slice(0, maxLines), omitted: all.length - maxLines } : { lines: all, omitted: 0 };
}

/** The file as it is now, reached without following a symlink on the way where Linux allows it. */
function readNow(root: string, p: Buffer, max: number): ReturnType<typeof readRegular> {
  if (!fs.existsSync('/proc/self/fd')) return readRegular(root ? Buffer.concat([Buffer.from(root), p]) : p, max);
  let parent;
  try {
    parent = openParent(root, p);
  } catch {
    return null;
  }
  try {
    return readRegular(at(parent.fd, parent.name), max);
  } finally {
    fs.closeSync(parent.fd);
  }
}

/** Diff for one changed file; the old side from the store, the new side read now (bounded). */
export function diffFinding(contents: ContentRepo, gen: number, f: Finding, root: string, maxBytes: number, maxLines: number): ContentDiff | null {
  if (f.kind !== 'changed' || !f.attributes.includes('content') || f.before?.type !== 'file' || f.after?.type !== 'file') return null;
  const digest = contents.keptDigest(gen, f.path);
  if (!digest) return null;
  let old: Buffer;
  try {
    old = contents.read(digest);
  } catch (e) {
    if (e instanceof ContentProblem) return { kind: 'none', reason: e.message };
    throw e;
  }
  if (!matchesEntry(old, f.before)) return { kind: 'none', reason: 'kept content does not match the baseline entry (the store was altered)' };
  const now = readNow(root, f.path, maxBytes);
  if (!now) return { kind: 'none', reason: `current content not readable or larger than ${maxBytes} bytes` };
  if (!isText(old) || !isText(now.data)) return { kind: 'binary', bytesDiffer: bytesDiffer(old, now.data), oldSize: old.length, newSize: now.data.length };
  const label = f.path.toString('utf8');
  return { kind: 'text', ...unifiedLines(label, old.toString('utf8'), now.data.toString('utf8'), maxLines) };
}

/**
 * Diffs for the changed files of a check whose old content the baseline kept, keyed by the
 * path's hex. Bounded per file and in total; a store without kept content gives an empty map.
 */
export function contentDiffs(r: CheckResult, dbFile: string): Map<string, ContentDiff> {
  const out = new Map<string, ContentDiff>();
  const candidates = r.findings.filter((f) => f.kind === 'changed' && f.attributes.includes('content'));
  if (!candidates.length) return out;
  let db: DB;
  try {
    db = openReadOnly(dbFile);
  } catch {
    return out;
  }
  try {
    const contents = new ContentRepo(db);
    if (!contents.available) return out;
    // The generation the check compared with must still be the one we read from.
    const g = new BaselineRepo(db).get(r.baseline.id);
    if (!g || g.digest !== r.baseline.digest) return out;
    const keep = new KeepDecider(r.policy);
    const root = r.root === '/' ? '' : r.root;
    let budget = DIFF_MAX_LINES_TOTAL;
    for (const f of candidates) {
      if (budget <= 0 || out.size >= DIFF_MAX_FILES) break;
      const d = diffFinding(contents, g.id, f, root, Math.max(keep.maxBytes(f.rule), KEEP_CONTENT_DEFAULT_MAX), Math.min(DIFF_MAX_LINES_PER_FILE, budget));
      if (!d) continue;
      if (d.kind === 'text') budget -= d.lines.length;
      out.set(f.path.toString('hex'), d);
    }
  } finally {
    db.close();
  }
  return out;
}
