/** Shared bits of the collector tests: fixture roots, a context, an in-memory BundleSink. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BundleSink, CollectContext } from '../../src/evidence/types.js';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures');
export const PROC = path.join(FIXTURES, 'proc');
export const SYS = path.join(FIXTURES, 'sys');
export const FSROOT = path.join(FIXTURES, 'fsroot');

export function ctxFor(over: Partial<CollectContext> = {}): CollectContext {
  return { procRoot: PROC, sysRoot: SYS, fsRoot: FSROOT, signal: new AbortController().signal, deadline: Date.now() + 10_000, ...over };
}

/** A BundleSink that keeps files in memory and log entries in order. */
export class MemSink implements BundleSink {
  readonly files = new Map<string, Buffer>();
  readonly order: string[] = [];
  readonly logs: Array<Record<string, unknown>> = [];
  async addFile(relPath: string, data: Buffer | string): Promise<{ file: string; size: number; sha256: string }> {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (this.files.has(relPath)) throw new Error(`duplicate file ${relPath}`);
    this.files.set(relPath, buf);
    this.order.push(relPath);
    return { file: relPath, size: buf.length, sha256: crypto.createHash('sha256').update(buf).digest('hex') };
  }
  log(entry: Record<string, unknown>): void {
    this.logs.push(entry);
  }
  json<T = any>(name: string): T {
    const b = this.files.get(`artifacts/${name}.json`);
    if (!b) throw new Error(`no artifact ${name}`);
    return JSON.parse(b.toString('utf8')) as T;
  }
  artifactMap(): Map<string, unknown> {
    const m = new Map<string, unknown>();
    for (const [k, v] of this.files) {
      const mm = /^artifacts\/(.+)\.json$/.exec(k);
      if (mm) m.set(mm[1]!, JSON.parse(v.toString('utf8')));
    }
    return m;
  }
}

const made: string[] = [];
/** A fresh temp folder, removed by cleanupTmp (call it from afterAll). */
export function tmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `integ-${prefix}-`));
  made.push(d);
  return d;
}
export function cleanupTmp(): void {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** Copy a fixture tree, keeping symlinks as they are. */
export function copyTree(src: string, dst: string): void {
  fs.cpSync(src, dst, { recursive: true, verbatimSymlinks: true });
}
