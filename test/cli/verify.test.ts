/**
 * End to end through bin/integ.js (needs the build: `npm test` runs tsc first).
 * Bundles are written with the real BundleWriter, then tampered with as an attacker would.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPair, loadPrivateKey } from '../../src/trust/keys.js';
import { makeBundle, tamper } from '../evidence/bundle-fixtures.js';
import { integ, tmpdir } from '../helpers/cli.js';

const dirs: string[] = [];
function fresh(): string {
  const d = tmpdir('integ-cli-verify-');
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('integ keygen (CLI)', () => {
  it('is listed in integ --help', () => {
    const help = integ(['--help']).stdout;
    expect(help).toMatch(/^\s+verify\b/m);
    expect(help).toMatch(/^\s+keygen\b/m);
  });

  it('writes FILE (0600) and FILE.pub, prints both paths and the key id; refuses to overwrite (73)', () => {
    const d = fresh();
    const key = path.join(d, 'signing.key');
    const r = integ(['keygen', '--out', key]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^private key: ${key} .*\\npublic key: +${key}\\.pub\\nkey id: +[0-9a-f]{16}\\n$`));
    expect(fs.statSync(key).mode & 0o777).toBe(0o600);
    const again = integ(['keygen', '--out', key]);
    expect(again.code).toBe(73);
    expect(again.stdout).toBe('');
    expect(again.stderr).toBe(`integ: ${key} already exists; refusing to overwrite a key (choose another --out)\n`);
  });
});

describe('integ verify (CLI)', () => {
  it('exit 0 and one OK line for an intact bundle; stdout carries only the report', async () => {
    const sealed = await makeBundle(fresh());
    const r = integ(['verify', sealed.path]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      `OK ${sealed.name}: 7 files match SHA256SUMS and manifest.json; log chain intact (8 lines); not signed\n` + `archive sha256: ${sealed.sha256}\n`,
    );
  });

  it('exit 16 naming each altered, added and removed file', async () => {
    const sealed = await makeBundle(fresh());
    tamper(sealed.path, (top) => {
      fs.writeFileSync(path.join(top, 'artifacts', 'processes.json'), '[]\n');
      fs.writeFileSync(path.join(top, 'evil.txt'), 'planted\n');
      fs.rmSync(path.join(top, 'raw', 'net', 'tcp'));
    });
    const r = integ(['verify', sealed.path]);
    expect(r.code).toBe(16);
    const lines = r.stdout.trimEnd().split('\n');
    expect(
      lines
        .filter((l) => /^(ALTERED|ADDED|REMOVED) /.test(l))
        .map((l) => l.replace(/:.*/, ''))
        .sort(),
    ).toEqual(['ADDED evil.txt', 'ALTERED artifacts/processes.json', 'REMOVED raw/net/tcp']);
    expect(lines).toContain(`FAILED ${sealed.name}: 3 problems; not signed; this bundle is not trustworthy`);
  });

  it('exit 16 for a truncated archive and a broken log chain', async () => {
    const d = fresh();
    const sealed = await makeBundle(d);
    const cut = path.join(d, 'cut.tar.gz');
    const bytes = fs.readFileSync(sealed.path);
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
    const t = integ(['verify', cut]);
    expect(t.code).toBe(16);
    expect(t.stdout).toMatch(/^TRUNCATED archive: /m);

    tamper(sealed.path, (top) => {
      const p = path.join(top, 'log.jsonl');
      const ls = fs.readFileSync(p, 'utf8').split('\n');
      ls.splice(6, 1);
      fs.writeFileSync(p, ls.join('\n'));
    });
    const l = integ(['verify', sealed.path]);
    expect(l.code).toBe(16);
    expect(l.stdout).toMatch(/^LOG line 7: chain broken/m);
  });

  it('--format json: one document with schema, ok, signature and problems', async () => {
    const sealed = await makeBundle(fresh());
    tamper(sealed.path, (top) => fs.writeFileSync(path.join(top, 'evil.txt'), 'x'));
    const r = integ(['verify', sealed.path, '--format', 'json']);
    expect(r.code).toBe(16);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ schema: 'integ.verify/1', bundle: sealed.path, ok: false, signature: 'absent' });
    expect(doc.problems).toEqual([{ kind: 'ADDED', file: 'evil.txt', detail: 'not listed in SHA256SUMS' }]);
  });

  it('--verify-key: valid 0, another key 16, unsigned 16', async () => {
    const d = fresh();
    const k = await generateKeyPair(path.join(d, 'k'));
    const other = await generateKeyPair(path.join(d, 'other'));
    const signed = await makeBundle(path.join(d, 'a'), { signKey: await loadPrivateKey(k.privatePath) });
    const unsigned = await makeBundle(path.join(d, 'b'));

    const ok = integ(['verify', signed.path, '--verify-key', k.publicPath, '--format', 'json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, signature: 'valid', key_id: k.keyId });

    const wrong = integ(['verify', signed.path, '--verify-key', other.publicPath]);
    expect(wrong.code).toBe(16);
    expect(wrong.stdout).toMatch(/^SIGNATURE manifest\.json: signed by key [0-9a-f]{16}, not by the --verify-key/m);

    const absent = integ(['verify', unsigned.path, '--verify-key', k.publicPath]);
    expect(absent.code).toBe(16);
    expect(absent.stdout).toMatch(/^SIGNATURE signature\.json: bundle is not signed, but --verify-key was given$/m);
  });

  it('exit 66 with one line on stderr when the bundle or the key does not exist', async () => {
    const d = fresh();
    const missing = integ(['verify', path.join(d, 'nope.tar.gz')]);
    expect(missing.code).toBe(66);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toBe(`integ: bundle ${path.join(d, 'nope.tar.gz')} not found\n`);
    const sealed = await makeBundle(d);
    const nokey = integ(['verify', sealed.path, '--verify-key', path.join(d, 'none.pub')]);
    expect(nokey.code).toBe(66);
  });

  it('--help exits 0 with examples', () => {
    const r = integ(['verify', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toContain('--verify-key <file>');
  });
});
