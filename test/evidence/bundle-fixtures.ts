/** Shared helpers for the bundle writer, reader and verify tests. */
import { execFileSync } from 'node:child_process';
import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import * as tar from 'tar';
import { BundleWriter, type SealedBundle } from '../../src/evidence/bundle-writer.js';
import { treeFingerprint } from '../helpers/tamper.js';

export const NOW = new Date('2026-11-21T23:00:00.000Z');

export function tmpDir(prefix = 'integ-bundle-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const isRoot = typeof process.geteuid === 'function' && process.geteuid() === 0;

export function sha256(buf: Buffer | string): string {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

export const SAMPLE_FILES: Record<string, string> = {
  'artifacts/processes.json':
    JSON.stringify([
      { pid: 1, comm: 'systemd' },
      { pid: 4242, comm: 'nc' },
    ]) + '\n',
  'artifacts/sockets.json': JSON.stringify([{ proto: 'tcp', local: '0.0.0.0:22', pid: 812 }]) + '\n',
  'raw/net/tcp': '  sl  local_address rem_address   st\n   0: 00000000:0016 00000000:0000 0A\n',
  'raw/proc/1/status': 'Name:\tsystemd\nPid:\t1\n',
};

/** Write and seal a small bundle like `integ snapshot` would; 8 log lines. */
export async function makeBundle(outDir: string, opts: { signKey?: KeyObject; hostname?: string; now?: Date } = {}): Promise<SealedBundle> {
  const w = await BundleWriter.create({ outDir, hostname: opts.hostname ?? 'web1', now: opts.now ?? NOW });
  const artifacts: Array<Record<string, unknown>> = [];
  for (const [rel, text] of Object.entries(SAMPLE_FILES)) {
    w.log({ step: 'collect', file: rel });
    const r = await w.addFile(rel, text);
    w.log({ step: 'stored', file: r.file, sha256: r.sha256 });
    if (rel.startsWith('artifacts/')) {
      artifacts.push({
        name: path.basename(rel, '.json'),
        file: r.file,
        method: 'test',
        started_at: NOW.toISOString(),
        finished_at: NOW.toISOString(),
        status: 'ok',
        error: null,
        size: r.size,
        sha256: r.sha256,
      });
    }
  }
  return w.seal({
    manifest: { tool: { name: 'integ', version: '0.1.0' }, argv: ['integ', 'snapshot'], uid: 0, euid: 0, hostname: 'web1', artifacts },
    signKey: opts.signKey,
  });
}

/** Extract with the system tar into `dest`; returns the top folder. */
export function extract(archive: string, dest: string): string {
  fs.mkdirSync(dest, { recursive: true });
  execFileSync('tar', ['-xzf', archive, '-C', dest]);
  const entries = fs.readdirSync(dest);
  if (entries.length !== 1 || entries[0] === undefined) throw new Error(`expected one top folder, got ${entries.join(',')}`);
  return path.join(dest, entries[0]);
}

/** Re-pack an extracted top folder (as an attacker would after tampering). */
export function repack(topDir: string, archive: string): void {
  fs.rmSync(archive, { force: true });
  execFileSync('tar', ['-czf', archive, '-C', path.dirname(topDir), path.basename(topDir)]);
}

/** Extract, let `edit` change the top folder (it must: checked), re-pack over the original archive. */
export function tamper(archive: string, edit: (top: string) => void): void {
  const work = tmpDir('integ-tamper-');
  try {
    const top = extract(archive, work);
    const before = treeFingerprint(top);
    edit(top);
    if (treeFingerprint(top) === before) throw new Error(`tamper left ${path.basename(archive)} as it was`);
    repack(top, archive);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Rewrite SHA256SUMS to match the folder, as a careful attacker would. */
export function rewriteSums(top: string): void {
  const out = execFileSync('sh', ['-c', 'find . -type f ! -name SHA256SUMS | sed "s|^\\./||" | LC_ALL=C sort | xargs sha256sum'], { cwd: top });
  fs.writeFileSync(path.join(top, 'SHA256SUMS'), out);
}

/** A hand-made tar.gz, for entries the tar package refuses to write (../, links, duplicates). */
export function rawTarGz(
  file: string,
  entries: Array<{ path: string; type?: 'File' | 'Directory' | 'SymbolicLink'; data?: string; linkpath?: string; mode?: number }>,
): void {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    const type = e.type ?? 'File';
    const h = new tar.Header({
      path: e.path,
      type,
      size: type === 'File' ? data.length : 0,
      linkpath: e.linkpath,
      mode: e.mode ?? (type === 'Directory' ? 0o700 : 0o600),
      mtime: NOW,
      uid: 0,
      gid: 0,
    });
    const block = Buffer.alloc(512);
    h.encode(block, 0);
    blocks.push(block);
    if (type === 'File' && data.length > 0) blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  fs.writeFileSync(file, zlib.gzipSync(Buffer.concat(blocks)));
}
