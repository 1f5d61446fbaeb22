import fs from 'node:fs';
import picomatch from 'picomatch';
import type { EntryRecord, Policy, Rule } from '../core/types.js';
import { matchesEntry } from '../store/content-repo.js';

/** Default per-file limit of keep_content (1 MiB). */
export const KEEP_CONTENT_DEFAULT_MAX = 1024 * 1024;

/**
 * Which files of which rule get their content kept: regular files of a rule with
 * `keep_content: true`, not larger than `keep_content_max_bytes`, not matched by
 * `keep_content_exclude` (secrets).
 */
export class KeepDecider {
  private readonly rules = new Map<string, { rule: Rule; exclude: (s: string) => boolean }>();

  constructor(policy: Pick<Policy, 'rules'>) {
    for (const r of policy.rules) {
      if (!r.keepContent) continue;
      const ex = r.keepContentExclude ?? [];
      const m = ex.length ? picomatch(ex, { dot: true }) : () => false;
      this.rules.set(r.name, { rule: r, exclude: m });
    }
  }

  get any(): boolean {
    return this.rules.size > 0;
  }

  /** Whether the content of this entry, governed by `ruleName`, is to be kept. */
  wants(ruleName: string, rec: EntryRecord): boolean {
    const r = this.rules.get(ruleName);
    if (!r || rec.type !== 'file') return false;
    if (!rec.blake3 && !rec.sha256) return false;
    if (rec.size > BigInt(r.rule.keepContentMaxBytes ?? KEEP_CONTENT_DEFAULT_MAX)) return false;
    return !r.exclude(rec.path.toString('utf8'));
  }

  /** The limit for a rule (for diffs of files whose content is kept). */
  maxBytes(ruleName: string): number {
    return this.rules.get(ruleName)?.rule.keepContentMaxBytes ?? KEEP_CONTENT_DEFAULT_MAX;
  }
}

/**
 * Read a regular file's bytes, at most `max`, without following a symlink and without blocking
 * on a FIFO. Returns null when it is not a regular file, larger than max, or unreadable.
 */
export function readRegular(real: Buffer | string, max: number): { data: Buffer; st: fs.Stats } | null {
  let fd: number | null = null;
  try {
    fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > max) return null;
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return { data: buf.subarray(0, got), st };
  } catch {
    return null;
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

/**
 * The content of a file exactly as `rec` recorded it, read again now; null when it changed in
 * between (the digests the hash pass computed must match the bytes kept).
 */
export function readAsRecorded(real: Buffer, rec: EntryRecord, max: number): Buffer | null {
  const r = readRegular(real, max);
  if (!r) return null;
  return matchesEntry(r.data, rec) ? r.data : null;
}
