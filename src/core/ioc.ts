import fs from 'node:fs';
import readline from 'node:readline';
import { DataError, NoInputError, UsageError } from '../util/errors.js';

/**
 * Known-bad hash lists (threat-intelligence feeds). One digest a line: sha256, sha1 or md5 in
 * hex (told apart by length), optionally followed by whitespace and a label (a malware family,
 * a file name as in `sha256sum` output). `#` comments and blank lines are ignored; anything
 * else is a malformed line: exit 65 naming file:line. Unlike the rest of core/ this module reads
 * files (streamed line by line, so memory holds the set, not the file).
 */

export type IocAlgo = 'sha256' | 'sha1' | 'md5';

export interface IocHit {
  algorithm: IocAlgo;
  /** lower-case hex */
  digest: string;
  /** the label of the feed line, or null */
  label: string | null;
  /** where the digest was listed: "FILE:LINE" */
  source: string;
}

const LENGTHS: Record<number, IocAlgo> = { 64: 'sha256', 40: 'sha1', 32: 'md5' };
const LINE = /^([0-9a-fA-F]+)(?:\s+(.*?))?\s*$/;

/** The union of every loaded feed. */
export class IocSet {
  private readonly maps: Record<IocAlgo, Map<string, { label: string | null; source: string }>> = { sha256: new Map(), sha1: new Map(), md5: new Map() };
  /** the feed files, in the order given */
  readonly files: string[] = [];

  get size(): number {
    return this.maps.sha256.size + this.maps.sha1.size + this.maps.md5.size;
  }

  /** The algorithms at least one feed lists: what a scan must compute for match() to see everything. */
  algorithms(): IocAlgo[] {
    return (['sha256', 'sha1', 'md5'] as const).filter((a) => this.maps[a].size > 0);
  }

  /** Add one digest (hex, any case). The first listing of a digest wins. */
  add(digest: string, label: string | null, source: string): void {
    const algo = LENGTHS[digest.length];
    if (!algo || !/^[0-9a-fA-F]+$/.test(digest)) throw new DataError(`${source}: expected a sha256, sha1 or md5 hex digest`);
    const d = digest.toLowerCase();
    if (!this.maps[algo].has(d)) this.maps[algo].set(d, { label, source });
  }

  /** The first feed entry that lists one of these digests (sha256 first), or undefined. */
  match(d: { sha256?: string | null; sha1?: string | null; md5?: string | null }): IocHit | undefined {
    for (const algo of ['sha256', 'sha1', 'md5'] as const) {
      const v = d[algo];
      if (!v) continue;
      const hit = this.maps[algo].get(v.toLowerCase());
      if (hit) return { algorithm: algo, digest: v.toLowerCase(), label: hit.label, source: hit.source };
    }
    return undefined;
  }
}

/** Parse one feed's text into `set`; `name` is used in file:line errors. */
export function parseIocText(text: string, name: string, set: IocSet = new IocSet()): IocSet {
  text.split('\n').forEach((line, i) => addLine(set, line, name, i + 1));
  return set;
}

function addLine(set: IocSet, raw: string, file: string, n: number): void {
  const line = raw.replace(/\r$/, '');
  const t = line.trim();
  if (t === '' || t.startsWith('#')) return;
  const m = LINE.exec(t);
  const where = `${file}:${n}`;
  if (!m || !LENGTHS[m[1]!.length]) {
    const shown = t.length > 40 ? `${t.slice(0, 40)}…` : t;
    throw new DataError(`${where}: expected a sha256 (64), sha1 (40) or md5 (32) hex digest, optionally followed by a label; got ${JSON.stringify(shown)}`);
  }
  set.add(m[1]!, m[2] ? m[2] : null, where);
}

/**
 * Load and merge feed files (repeatable --ioc and the policy's `ioc:` list). A missing file is
 * exit 66, an unreadable one 66 too, a malformed line 65 with file:line.
 */
export async function loadIocFeeds(files: string[]): Promise<IocSet> {
  const set = new IocSet();
  for (const file of files) {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NoInputError(`known-bad hash list not found: ${file}`);
      throw new NoInputError(`cannot read known-bad hash list ${file}: ${(e as Error).message}`);
    }
    if (st.isDirectory()) throw new UsageError(`known-bad hash list ${file} is a directory, expected a file`);
    const stream = fs.createReadStream(file, { encoding: 'utf8' });
    const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
    let n = 0;
    try {
      for await (const line of rl) addLine(set, line, file, ++n);
    } catch (e) {
      if (e instanceof DataError) throw e;
      throw new NoInputError(`cannot read known-bad hash list ${file}: ${(e as Error).message}`);
    } finally {
      rl.close();
      stream.destroy();
    }
    set.files.push(file);
  }
  return set;
}
