import fs from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readBundle } from '../../src/evidence/bundle-reader.js';
import { DataError, NoInputError } from '../../src/util/errors.js';
import { SAMPLE_FILES, extract, makeBundle, rawTarGz, tmpDir } from './bundle-fixtures.js';

let dir: string;
beforeEach(() => {
  dir = tmpDir();
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('readBundle', () => {
  it('reads a sealed .tar.gz: name, every file, the parsed manifest, no problems', async () => {
    const sealed = await makeBundle(dir);
    const b = await readBundle(sealed.path);
    expect(b.name).toBe(sealed.name);
    expect(b.problems).toEqual([]);
    expect(b.source).toBe('archive');
    expect([...b.files.keys()].sort()).toEqual([
      'SHA256SUMS',
      'artifacts/processes.json',
      'artifacts/sockets.json',
      'log.jsonl',
      'manifest.json',
      'raw/net/tcp',
      'raw/proc/1/status',
    ]);
    for (const [rel, text] of Object.entries(SAMPLE_FILES)) expect(b.files.get(rel)?.toString('utf8')).toBe(text);
    expect(b.manifest?.bundle).toBe(sealed.name);
    expect(JSON.parse(b.files.get('artifacts/processes.json')?.toString() ?? 'null')).toEqual([
      { pid: 1, comm: 'systemd' },
      { pid: 4242, comm: 'nc' },
    ]);
  });

  it('reads an extracted folder, given the top folder or its parent', async () => {
    const sealed = await makeBundle(dir);
    const top = extract(sealed.path, path.join(dir, 'x'));
    for (const p of [top, path.join(dir, 'x')]) {
      const b = await readBundle(p);
      expect(b.name).toBe(sealed.name);
      expect(b.source).toBe('folder');
      expect(b.files.size).toBe(7);
      expect(b.problems).toEqual([]);
    }
  });

  it('throws NoInputError (66) for a missing bundle', async () => {
    const err = await readBundle(path.join(dir, 'nope.tar.gz')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoInputError);
    expect((err as NoInputError).exitCode).toBe(66);
  });

  it('reports a truncated gzip as a problem and returns what came before', async () => {
    const sealed = await makeBundle(dir);
    const bytes = fs.readFileSync(sealed.path);
    const cut = path.join(dir, 'cut.tar.gz');
    fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const b = await readBundle(cut);
    expect(b.problems.some((p) => p.startsWith('TRUNCATED archive'))).toBe(true);
    expect(b.files.size).toBeLessThan(7);
  });

  it('reports garbage instead of crashing', async () => {
    const junk = path.join(dir, 'junk.tar.gz');
    fs.writeFileSync(junk, Buffer.from('this is not an archive at all, just some words '.repeat(40)));
    const b = await readBundle(junk);
    expect(b.files.size).toBe(0);
    expect(b.problems.length).toBeGreaterThan(0);
    expect(b.name).toBe('');
  });

  it('never writes to disk, and reports ../, absolute and outside entries and links as UNSAFE', async () => {
    const archive = path.join(dir, 'evil.tar.gz');
    rawTarGz(archive, [
      { path: 'loose.txt', data: 'at the archive root' },
      { path: 'top/', type: 'Directory' },
      { path: 'top/ok.txt', data: 'ok' },
      { path: 'top/../../escape.txt', data: 'evil' },
      { path: '/tmp/integ-abs-evil.txt', data: 'evil' },
      { path: 'top/link', type: 'SymbolicLink', linkpath: '/etc/passwd' },
      { path: 'other/x', data: 'second top folder' },
    ]);
    const b = await readBundle(archive);
    expect(b.name).toBe('top');
    expect([...b.files.keys()]).toEqual(['ok.txt']);
    expect(b.problems).toEqual([
      'UNSAFE loose.txt: file outside the top folder',
      'UNSAFE top/../../escape.txt: path contains ".."',
      'UNSAFE /tmp/integ-abs-evil.txt: absolute or empty path',
      'UNSAFE link: unexpected SymbolicLink entry (bundles hold only regular files)',
      'UNSAFE other/x: file outside the top folder top',
    ]);
    expect(fs.existsSync(path.join(dir, '..', 'escape.txt'))).toBe(false);
    expect(fs.existsSync('/tmp/integ-abs-evil.txt')).toBe(false);
  });

  it('refuses a bundle beyond the size bound with DataError (65)', async () => {
    const sealed = await makeBundle(dir);
    const err = await readBundle(sealed.path, { maxBytes: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toMatch(/larger than the reading limit/);
    const top = extract(sealed.path, path.join(dir, 'x'));
    await expect(readBundle(top, { maxBytes: 100 })).rejects.toBeInstanceOf(DataError);
  });

  it('reports a path stored twice (a tar append attack) and keeps the last copy, as tar x would', async () => {
    const sealed = await makeBundle(dir);
    const top = extract(sealed.path, path.join(dir, 'x'));
    const plain = path.join(dir, 'dup.tar');
    await tar.c({ file: plain, cwd: path.dirname(top) }, [path.basename(top)]);
    fs.writeFileSync(path.join(top, 'raw', 'net', 'tcp'), 'swapped\n');
    await tar.r({ file: plain, cwd: path.dirname(top) }, [`${path.basename(top)}/raw/net/tcp`]);
    const b = await readBundle(plain);
    expect(b.problems).toContain('DUPLICATE raw/net/tcp: appears more than once in the archive; the last copy is used');
    expect(b.files.get('raw/net/tcp')?.toString()).toBe('swapped\n');
  });
});
