/**
 * What the file-listing collectors (config, persistence) record about one path and how they
 * copy it into the bundle under shared byte bounds: one implementation, so the two artifacts
 * cannot drift apart in what a field means.
 */
import fs from 'node:fs';
import type { ArtifactOutput } from '../types.js';
import { bundleSafePath, fileType, readRegular, under } from './fsread.js';
import { sha256Hex } from '../../util/sha256.js';

/** The fields every listed file carries, whatever its artifact. */
export interface FileFields {
  type: string;
  symlink_target: string | null;
  size: number | null;
  mode: string | null;
  uid: number | null;
  gid: number | null;
  mtime: string | null;
  ctime: string | null;
  sha256: string | null;
  /** where the copy is in the bundle (raw/…), or null */
  copy: string | null;
  truncated: boolean;
  error: string | null;
}

/** Nothing known yet (spread after the artifact's own leading fields, so the key order stays). */
export function emptyFileFields(): FileFields {
  return {
    type: 'unknown',
    symlink_target: null,
    size: null,
    mode: null,
    uid: null,
    gid: null,
    mtime: null,
    ctime: null,
    sha256: null,
    copy: null,
    truncated: false,
    error: null,
  };
}

/** Record an lstat: type, size, mode (4 octal digits), owner, mtime, ctime. */
export function setStatFields(e: FileFields, st: fs.Stats): void {
  e.type = fileType(st);
  e.size = st.size;
  e.mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  e.uid = st.uid;
  e.gid = st.gid;
  e.mtime = st.mtime.toISOString();
  e.ctime = st.ctime.toISOString();
}

/** Bytes copied into the bundle so far, against a total and a per-file bound. */
export class CopyBudget {
  total = 0;
  constructor(
    readonly maxTotal: number,
    readonly maxFile: number,
  ) {}

  /**
   * Copy the regular file abs to raw/<bundleRel> (bounded, never opening anything but a regular
   * file) and record sha256 (whole file read only), truncated and copy in e. With tailSize (the
   * file's size) a file larger than the room left is copied from its end and e.tail_from says
   * where. Returns false, with e.error set and nothing read, when the total bound is reached.
   * Read errors are thrown (the caller records them).
   */
  copy(e: FileFields & { tail_from?: number }, abs: string | Buffer, bundleRel: string, raw: ArtifactOutput['raw'], tailSize?: number): boolean {
    if (this.total >= this.maxTotal) {
      e.error = 'not copied: total size bound reached';
      return false;
    }
    const room = Math.min(this.maxFile, this.maxTotal - this.total);
    const offset = tailSize !== undefined && tailSize > room ? tailSize - room : 0;
    const r = readRegular(abs, room, offset);
    this.total += r.data.length;
    if (offset === 0 && !r.truncated) e.sha256 = sha256Hex(r.data);
    e.truncated = r.truncated || offset > 0;
    if (offset > 0) e.tail_from = offset;
    const file = bundleSafePath(bundleRel);
    e.copy = `raw/${file}`;
    raw.push({ file, data: r.data });
    return true;
  }
}

/**
 * True the first time a directory (below root) is met by its real path, and it exists: /lib is
 * often a symlink to /usr/lib, and each real directory is walked once. Adds it to walked.
 */
export function firstVisit(root: string, dir: string, walked: Set<string>): boolean {
  let real: string;
  try {
    real = fs.realpathSync(under(root, dir));
  } catch {
    return false;
  }
  if (walked.has(real)) return false;
  walked.add(real);
  return true;
}
