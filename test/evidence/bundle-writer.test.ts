import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BundleWriter, LOG_GENESIS, compactUtc, sanitiseHost } from '../../src/evidence/bundle-writer.js';
import { generateKeyPair, loadPrivateKey, loadPublicKey, verify } from '../../src/trust/keys.js';
import { CantCreateError, DataError, InterruptedError, IoError } from '../../src/util/errors.js';
import { NOW, SAMPLE_FILES, extract, isRoot, makeBundle, sha256, tmpDir } from './bundle-fixtures.js';

let dir: string;
beforeEach(() => {
  dir = tmpDir();
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const mode = (p: string): number => fs.lstatSync(p).mode & 0o777;

async function listArchive(file: string): Promise<Array<{ path: string; type: string; mode: number }>> {
  const out: Array<{ path: string; type: string; mode: number }> = [];
  await tar.t({ file, onReadEntry: (e) => out.push({ path: e.path, type: e.type, mode: (e.mode ?? 0) & 0o7777 }) });
  return out;
}

describe('BundleWriter: a sealed bundle', () => {
  it('is published as integ-<host>-<UTC stamp>.tar.gz with its sha256, leaving no .partial or staging', async () => {
    const out = path.join(dir, 'evidence', 'nested');
    const sealed = await makeBundle(out);
    expect(sealed.name).toBe('integ-web1-20261121T230000Z');
    expect(sealed.path).toBe(path.join(out, 'integ-web1-20261121T230000Z.tar.gz'));
    const bytes = fs.readFileSync(sealed.path);
    expect(sealed.sha256).toBe(sha256(bytes));
    expect(sealed.size).toBe(bytes.length);
    expect(fs.readdirSync(out)).toEqual(['integ-web1-20261121T230000Z.tar.gz']);
    expect(mode(sealed.path)).toBe(0o600);
    // mkdir -p created both levels private
    expect(mode(path.join(dir, 'evidence'))).toBe(0o700);
    expect(mode(out)).toBe(0o700);
  });

  it('holds one top folder, sorted entries, files 0600 and folders 0700', async () => {
    const sealed = await makeBundle(dir);
    const entries = await listArchive(sealed.path);
    const top = 'integ-web1-20261121T230000Z';
    expect(entries.map((e) => e.path)).toEqual([
      `${top}/`,
      `${top}/SHA256SUMS`,
      `${top}/artifacts/`,
      `${top}/artifacts/processes.json`,
      `${top}/artifacts/sockets.json`,
      `${top}/log.jsonl`,
      `${top}/manifest.json`,
      `${top}/raw/`,
      `${top}/raw/net/`,
      `${top}/raw/net/tcp`,
      `${top}/raw/proc/`,
      `${top}/raw/proc/1/`,
      `${top}/raw/proc/1/status`,
    ]);
    for (const e of entries) expect([e.path, e.mode]).toEqual([e.path, e.type === 'Directory' ? 0o700 : 0o600]);
  });

  it('extracts with the system tar to a folder where `sha256sum -c SHA256SUMS` passes, with 0600/0700 modes', async () => {
    const sealed = await makeBundle(dir);
    const top = extract(sealed.path, path.join(dir, 'x'));
    const r = spawnSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: top });
    expect(r.status, r.stdout.toString() + r.stderr.toString()).toBe(0);
    const checked = r.stdout.toString().trim().split('\n');
    expect(checked).toEqual([
      'artifacts/processes.json: OK',
      'artifacts/sockets.json: OK',
      'log.jsonl: OK',
      'manifest.json: OK',
      'raw/net/tcp: OK',
      'raw/proc/1/status: OK',
    ]);
    const walk = (d: string): void => {
      for (const name of fs.readdirSync(d)) {
        const p = path.join(d, name);
        if (fs.lstatSync(p).isDirectory()) {
          expect([p, mode(p)]).toEqual([p, 0o700]);
          walk(p);
        } else expect([p, mode(p)]).toEqual([p, 0o600]);
      }
    };
    expect(mode(top)).toBe(0o700);
    walk(top);
    for (const [rel, text] of Object.entries(SAMPLE_FILES)) expect(fs.readFileSync(path.join(top, rel), 'utf8')).toBe(text);
  });

  it('writes a manifest with the caller body, schema, bundle name, every file and the log record', async () => {
    const sealed = await makeBundle(dir);
    const top = extract(sealed.path, path.join(dir, 'x'));
    const m = JSON.parse(fs.readFileSync(path.join(top, 'manifest.json'), 'utf8'));
    expect(m.schema).toBe('integ.bundle/1');
    expect(m.bundle).toBe(sealed.name);
    expect(m.tool).toEqual({ name: 'integ', version: '0.1.0' });
    expect(m.artifacts.map((a: { file: string }) => a.file)).toEqual(['artifacts/processes.json', 'artifacts/sockets.json']);
    const files = m.files as Array<{ file: string; size: number; sha256: string }>;
    expect(files.map((f) => f.file)).toEqual(['artifacts/processes.json', 'artifacts/sockets.json', 'log.jsonl', 'raw/net/tcp', 'raw/proc/1/status']);
    for (const f of files) {
      const buf = fs.readFileSync(path.join(top, f.file));
      expect(f).toEqual({ file: f.file, size: buf.length, sha256: sha256(buf) });
    }
    const lines = fs.readFileSync(path.join(top, 'log.jsonl'), 'utf8').trimEnd().split('\n');
    expect(m.log).toEqual({ file: 'log.jsonl', lines: 8, last_sha256: sha256(lines[7] ?? '') });
  });

  it('chains the log: seq 1..n, prev = sha256 of the previous line, 64 zeros first', async () => {
    const sealed = await makeBundle(dir);
    const top = extract(sealed.path, path.join(dir, 'x'));
    const lines = fs.readFileSync(path.join(top, 'log.jsonl'), 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(8);
    let prev = LOG_GENESIS;
    lines.forEach((line, i) => {
      const e = JSON.parse(line);
      expect(Object.keys(e).slice(0, 3)).toEqual(['seq', 'ts', 'prev']);
      expect(e.seq).toBe(i + 1);
      expect(e.prev).toBe(prev);
      expect(e.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      prev = sha256(line);
    });
    expect(JSON.parse(lines[0] ?? '{}').step).toBe('collect');
  });

  it('does not let a log entry overwrite seq, ts or prev', async () => {
    const w = await BundleWriter.create({ outDir: dir, hostname: 'h', now: NOW });
    w.log({ seq: 99, prev: 'x', ts: 'then', step: 'a' });
    const sealed = await w.seal({ manifest: {} });
    const top = extract(sealed.path, path.join(dir, 'x'));
    const e = JSON.parse(fs.readFileSync(path.join(top, 'log.jsonl'), 'utf8'));
    expect([e.seq, e.prev, e.step]).toEqual([1, LOG_GENESIS, 'a']);
  });

  it('signs the exact manifest bytes into signature.json, covered by SHA256SUMS', async () => {
    const made = await generateKeyPair(path.join(dir, 'k'));
    const sealed = await makeBundle(path.join(dir, 'ev'), { signKey: await loadPrivateKey(made.privatePath) });
    const top = extract(sealed.path, path.join(dir, 'x'));
    const sig = JSON.parse(fs.readFileSync(path.join(top, 'signature.json'), 'utf8'));
    expect(sig).toEqual({ schema: 'integ.signature/1', alg: 'ed25519', key_id: made.keyId, signed_file: 'manifest.json', sig: expect.any(String) });
    const pub = await loadPublicKey(made.publicPath);
    expect(verify(fs.readFileSync(path.join(top, 'manifest.json')), sig.sig, pub)).toBe(true);
    expect(fs.readFileSync(path.join(top, 'SHA256SUMS'), 'utf8')).toMatch(/ {2}signature\.json\n/);
    expect(spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: top }).status).toBe(0);
    // openssl can check it too, with nothing but the .pub (README recipe)
    if (spawnSync('openssl', ['version']).status === 0) {
      fs.writeFileSync(path.join(dir, 'sig.bin'), Buffer.from(sig.sig, 'base64'));
      const r = spawnSync('openssl', [
        'pkeyutl',
        '-verify',
        '-pubin',
        '-inkey',
        made.publicPath,
        '-rawin',
        '-in',
        path.join(top, 'manifest.json'),
        '-sigfile',
        path.join(dir, 'sig.bin'),
      ]);
      expect(r.status, r.stderr.toString()).toBe(0);
    }
  });
});

describe('BundleWriter: names', () => {
  it('sanitises the hostname and formats the UTC stamp', () => {
    expect(sanitiseHost('web1.example.com')).toBe('web1.example.com');
    expect(sanitiseHost('evil/../host name')).toBe('evil_.._host_name');
    expect(sanitiseHost('..')).toBe('unknown');
    expect(sanitiseHost('')).toBe('unknown');
    expect(compactUtc(new Date('2026-01-02T03:04:05.678Z'))).toBe('20260102T030405Z');
  });

  it('adds -2, -3 when a bundle of that name exists or is being written', async () => {
    const first = await BundleWriter.create({ outDir: dir, hostname: 'web1', now: NOW });
    const second = await BundleWriter.create({ outDir: dir, hostname: 'web1', now: NOW });
    expect(first.name).toBe('integ-web1-20261121T230000Z');
    expect(second.name).toBe('integ-web1-20261121T230000Z-2');
    await first.seal({ manifest: {} });
    await second.abort();
    const third = await BundleWriter.create({ outDir: dir, hostname: 'web1', now: NOW });
    expect(third.name).toBe('integ-web1-20261121T230000Z-2');
    const sealed = await third.seal({ manifest: {} });
    const fourth = await BundleWriter.create({ outDir: dir, hostname: 'web1', now: NOW });
    expect(fourth.name).toBe('integ-web1-20261121T230000Z-3');
    await fourth.abort();
    expect(fs.readdirSync(dir).sort()).toEqual(['integ-web1-20261121T230000Z-2.tar.gz', 'integ-web1-20261121T230000Z.tar.gz']);
    expect(path.basename(sealed.path)).toBe('integ-web1-20261121T230000Z-2.tar.gz');
  });

  it('uses a hidden 0700 staging folder and a reserved .partial while open', async () => {
    const w = await BundleWriter.create({ outDir: dir, hostname: 'web1', now: NOW });
    const names = fs.readdirSync(dir).sort();
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(/^\.integ-web1-20261121T230000Z\.staging-/);
    expect(names[1]).toBe('integ-web1-20261121T230000Z.tar.gz.partial');
    expect(mode(path.join(dir, names[0] ?? ''))).toBe(0o700);
    expect(mode(path.join(dir, names[1] ?? ''))).toBe(0o600);
    expect(w.topDir).toBe(path.join(dir, names[0] ?? '', w.name));
    await w.abort();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('BundleWriter: addFile', () => {
  it('returns file, size and sha256', async () => {
    const w = await BundleWriter.create({ outDir: dir, hostname: 'h', now: NOW });
    const r = await w.addFile('artifacts/x.json', Buffer.from('{"a":1}'));
    expect(r).toEqual({ file: 'artifacts/x.json', size: 7, sha256: sha256('{"a":1}') });
    await w.abort();
  });

  it.each([['../escape'], ['a/../../b'], ['/etc/passwd'], ['a//b'], ['a/'], ['./a'], [''], ['a\nb'], ['a\\b']])('rejects the unsafe path %j', async (rel) => {
    const w = await BundleWriter.create({ outDir: dir, hostname: 'h', now: NOW });
    await expect(w.addFile(rel, 'x')).rejects.toBeInstanceOf(DataError);
    // the writer is still usable after a refused path
    await w.addFile('ok.txt', 'x');
    await w.abort();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('rejects reserved names, duplicates and a file used as a folder', async () => {
    const w = await BundleWriter.create({ outDir: dir, hostname: 'h', now: NOW });
    await expect(w.addFile('manifest.json', '{}')).rejects.toThrow(/reserved/);
    await expect(w.addFile('SHA256SUMS', '')).rejects.toThrow(/reserved/);
    await w.addFile('a/b', 'x');
    await expect(w.addFile('a/b', 'y')).rejects.toThrow(/already added/);
    await expect(w.addFile('a', 'y')).rejects.toThrow(/already added/);
    await expect(w.addFile('a/b/c', 'y')).rejects.toThrow(/a\/b is a file/);
    await w.abort();
  });

  it('waits for addFile calls in flight before sealing', async () => {
    const w = await BundleWriter.create({ outDir: dir, hostname: 'h', now: NOW });
    const pending = Array.from({ length: 20 }, (_, i) => w.addFile(`raw/f${i}`, Buffer.alloc(50_000, i)));
    const sealed = await w.seal({ manifest: {} });
    await Promise.all(pending);
    const top = extract(sealed.path, path.join(dir, 'x'));
    expect(spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: top }).status).toBe(0);
    expect(fs.readdirSync(path.join(top, 'raw'))).toHaveLength(20);
  });

  it('files added at once under a folder none of them made yet all land (each waits for the one mkdir)', async () => {
    for (let round = 0; round < 5; round++) {
      const w = await BundleWriter.create({ outDir: path.join(dir, `r${round}`), hostname: 'h', now: NOW });
      const adds = Array.from({ length: 8 }, (_, i) => w.addFile(`deep/er/d${i % 2}/f${i}`, `x${i}`));
      await Promise.all(adds);
      const sealed = await w.seal({ manifest: {} });
      const top = extract(sealed.path, path.join(dir, `x${round}`));
      expect(fs.readdirSync(path.join(top, 'deep/er/d0')).sort()).toEqual(['f0', 'f2', 'f4', 'f6']);
      expect(fs.readdirSync(path.join(top, 'deep/er/d1')).sort()).toEqual(['f1', 'f3', 'f5', 'f7']);
    }
  });

  it('refuses use after seal', async () => {
    const w = await BundleWriter.create({ outDir: dir, hostname: 'h', now: NOW });
    await w.seal({ manifest: {} });
    await expect(w.addFile('x', 'y')).rejects.toThrow(/after sealed/);
    expect(() => w.log({})).toThrow(/after sealed/);
  });
});

describe('BundleWriter: failures leave nothing behind', () => {
  it('cannot create the evidence folder under a file: exit 73, nothing created', async () => {
    const file = path.join(dir, 'afile');
    fs.writeFileSync(file, 'x');
    const err = await BundleWriter.create({ outDir: path.join(file, 'evidence'), hostname: 'h', now: NOW }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CantCreateError);
    expect((err as CantCreateError).exitCode).toBe(73);
    expect((err as Error).message).toMatch(/cannot create evidence folder .*afile\/evidence/);
    expect(fs.readdirSync(dir)).toEqual(['afile']);
  });

  it.skipIf(isRoot)('cannot write into a read-only (0500) folder: exit 73, nothing created', async () => {
    const ro = path.join(dir, 'ro');
    fs.mkdirSync(ro, { mode: 0o500 });
    try {
      const err = await BundleWriter.create({ outDir: ro, hostname: 'h', now: NOW }).catch((e: unknown) => e);
      expect((err as CantCreateError).exitCode).toBe(73);
      expect(fs.readdirSync(ro)).toEqual([]);
    } finally {
      fs.chmodSync(ro, 0o700);
    }
  });

  it('abort() removes the staging folder and the .partial', async () => {
    const w = await BundleWriter.create({ outDir: dir, hostname: 'h', now: NOW });
    await w.addFile('artifacts/a.json', '{}');
    w.log({ step: 'x' });
    await w.abort();
    await w.abort(); // idempotent
    expect(fs.readdirSync(dir)).toEqual([]);
    await expect(w.seal({ manifest: {} })).rejects.toBeInstanceOf(InterruptedError);
  });

  it('honours the AbortSignal: the next call throws InterruptedError (130) and everything is removed', async () => {
    const ac = new AbortController();
    const w = await BundleWriter.create({ outDir: dir, hostname: 'h', now: NOW, signal: ac.signal });
    await w.addFile('a', 'x');
    ac.abort(new InterruptedError('interrupted by SIGINT'));
    const err = await w.addFile('b', 'y').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as InterruptedError).exitCode).toBe(130);
    expect((err as Error).message).toBe('interrupted by SIGINT');
    // The cleanup is awaited before the error is thrown: nothing is left at this point already.
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('an abort while sealing removes everything', async () => {
    const ac = new AbortController();
    const w = await BundleWriter.create({ outDir: dir, hostname: 'h', now: NOW, signal: ac.signal });
    await w.addFile('big', Buffer.alloc(4 * 1024 * 1024, 7));
    const p = w.seal({ manifest: {} });
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(InterruptedError);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('an abort without a reason of ours is still InterruptedError (130), never a plain error (70)', async () => {
    const ac = new AbortController();
    const w = await BundleWriter.create({ outDir: dir, hostname: 'h', now: NOW, signal: ac.signal });
    ac.abort(); // reason: a DOMException, as any library's abort would give
    const err = await w.addFile('a', 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as InterruptedError).exitCode).toBe(130);
    expect(fs.readdirSync(dir)).toEqual([]);
    const { readBundle } = await import('../../src/evidence/bundle-reader.js');
    const sealed = await makeBundle(path.join(dir, 'ev'));
    const r = await readBundle(sealed.path, { signal: ac.signal }).catch((e: unknown) => e);
    expect(r).toBeInstanceOf(InterruptedError);
  });

  it('refuses to create when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(BundleWriter.create({ outDir: dir, hostname: 'h', signal: ac.signal })).rejects.toBeInstanceOf(InterruptedError);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

// A real full disk: a tiny tmpfs (needs root and mount(2); skipped elsewhere — see
// bundle-faults.test.ts for the same paths with injected errors).
const canMount =
  isRoot &&
  (() => {
    const probe = tmpDir('integ-mount-probe-');
    const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]).status === 0;
    if (ok) spawnSync('umount', [probe]);
    fs.rmSync(probe, { recursive: true, force: true });
    return ok;
  })();

describe.skipIf(!canMount)('BundleWriter on a full disk (tmpfs)', () => {
  let mnt: string;
  beforeEach(() => {
    mnt = tmpDir('integ-tmpfs-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=0700', 'tmpfs', mnt]);
  });
  afterEach(() => {
    // a lazy unmount if something still holds it, so a failing test never leaves a mount behind
    if (spawnSync('umount', [mnt]).status !== 0) spawnSync('umount', ['-l', mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  });

  it('ENOSPC while sealing: exit 74, no .tar.gz, no .partial, no staging', async () => {
    const w = await BundleWriter.create({ outDir: mnt, hostname: 'h', now: NOW });
    // incompressible, so the archive needs as much room again as the staged copy
    await w.addFile('raw/blob', Buffer.from(Array.from({ length: 300_000 }, () => Math.floor(Math.random() * 256))));
    const err = await w.seal({ manifest: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IoError);
    expect((err as IoError).exitCode).toBe(74);
    expect((err as Error).message).toMatch(/no space left on device/);
    expect(fs.readdirSync(mnt)).toEqual([]);
  });

  it('ENOSPC while adding a file: exit 74 and nothing left', async () => {
    const w = await BundleWriter.create({ outDir: mnt, hostname: 'h', now: NOW });
    const err = await w.addFile('raw/huge', Buffer.alloc(2 * 1024 * 1024)).catch((e: unknown) => e);
    expect((err as IoError).exitCode).toBe(74);
    expect(fs.readdirSync(mnt)).toEqual([]);
    // the writer stays failed
    await expect(w.seal({ manifest: {} })).rejects.toBe(err);
  });
});
