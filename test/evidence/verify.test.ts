import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyBundle, type VerifyResult } from '../../src/evidence/verify.js';
import { renderVerify } from '../../src/report/verify-report.js';
import { generateKeyPair, loadPrivateKey } from '../../src/trust/keys.js';
import { NoInputError } from '../../src/util/errors.js';
import { extract, makeBundle, rawTarGz, rewriteSums, sha256, tamper, tmpDir } from './bundle-fixtures.js';

let dir: string;
beforeEach(() => {
  dir = tmpDir('integ-verify-');
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** What the command would exit with. */
const exitOf = (r: VerifyResult): number => (r.ok ? 0 : 16);
const lines = (r: VerifyResult): string[] => renderVerify(r, 'text').trimEnd().split('\n');
const kinds = (r: VerifyResult): string[] => r.problems.map((p) => `${p.kind} ${p.file ?? 'archive'}`);

async function keys(name = 'k') {
  const made = await generateKeyPair(path.join(dir, name));
  return { ...made, priv: await loadPrivateKey(made.privatePath) };
}

describe('verifyBundle: intact bundles', () => {
  it('a fresh bundle verifies: ok, exit 0, signature absent, archive sha256 reported', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    const r = await verifyBundle(sealed.path);
    expect(r).toMatchObject({
      schema: 'integ.verify/1',
      bundle: sealed.path,
      name: sealed.name,
      ok: true,
      signature: 'absent',
      key_id: null,
      archive_sha256: sealed.sha256,
      files: 7,
      log_lines: 8,
      problems: [],
    });
    expect(exitOf(r)).toBe(0);
    expect(lines(r)).toEqual([
      `OK ${sealed.name}: 7 files match SHA256SUMS and manifest.json; log chain intact (8 lines); not signed`,
      `archive sha256: ${sealed.sha256}`,
    ]);
  });

  it('an extracted folder verifies too', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    const top = extract(sealed.path, path.join(dir, 'x'));
    const r = await verifyBundle(top);
    expect(r.ok).toBe(true);
    expect(r.archive_sha256).toBeNull();
  });

  it('a bundle that does not exist is NoInputError (66)', async () => {
    const err = await verifyBundle(path.join(dir, 'missing.tar.gz')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoInputError);
    expect((err as NoInputError).exitCode).toBe(66);
  });
});

describe('verifyBundle: tampering is detected (16) and each file named', () => {
  it('ALTERED: an artifact edited after sealing', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    tamper(sealed.path, (top) => fs.writeFileSync(path.join(top, 'artifacts', 'processes.json'), '[{"pid":1,"comm":"systemd"}]\n'));
    const r = await verifyBundle(sealed.path);
    expect(exitOf(r)).toBe(16);
    expect(kinds(r)).toEqual(['ALTERED artifacts/processes.json']);
    expect(lines(r)[0]).toMatch(/^ALTERED artifacts\/processes\.json: sha256 [0-9a-f]{64} does not match SHA256SUMS/);
    expect(lines(r)).toContain(`FAILED ${sealed.name}: 1 problem; not signed; this bundle is not trustworthy`);
  });

  it('ALTERED even when the attacker rewrote SHA256SUMS to match (manifest.json still records the truth)', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    tamper(sealed.path, (top) => {
      fs.writeFileSync(path.join(top, 'raw', 'net', 'tcp'), 'nothing listening\n');
      rewriteSums(top);
    });
    const r = await verifyBundle(sealed.path);
    expect(exitOf(r)).toBe(16);
    expect(kinds(r)).toEqual(['ALTERED raw/net/tcp']);
    expect(r.problems[0]?.detail).toMatch(/matches SHA256SUMS but not manifest\.json.*SHA256SUMS was rewritten/);
  });

  it('ADDED: a planted file', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    tamper(sealed.path, (top) => fs.writeFileSync(path.join(top, 'evil.txt'), 'planted'));
    const r = await verifyBundle(sealed.path);
    expect(exitOf(r)).toBe(16);
    expect(kinds(r)).toEqual(['ADDED evil.txt']);
    expect(lines(r)[0]).toBe('ADDED evil.txt: not listed in SHA256SUMS');
  });

  it('REMOVED: a raw copy deleted', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    tamper(sealed.path, (top) => fs.rmSync(path.join(top, 'raw', 'net', 'tcp')));
    const r = await verifyBundle(sealed.path);
    expect(exitOf(r)).toBe(16);
    expect(kinds(r)).toEqual(['REMOVED raw/net/tcp']);
    expect(lines(r)[0]).toBe('REMOVED raw/net/tcp: listed in SHA256SUMS but not in the bundle');
  });

  it('REMOVED and ADDED also work on an extracted folder', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    const top = extract(sealed.path, path.join(dir, 'x'));
    fs.rmSync(path.join(top, 'artifacts', 'sockets.json'));
    fs.writeFileSync(path.join(top, 'artifacts', 'rootkit.json'), '{}');
    const r = await verifyBundle(top);
    expect(kinds(r).sort()).toEqual(['ADDED artifacts/rootkit.json', 'REMOVED artifacts/sockets.json']);
  });

  it('LOG: an edited log line breaks the chain at the next line', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    tamper(sealed.path, (top) => {
      const p = path.join(top, 'log.jsonl');
      const ls = fs.readFileSync(p, 'utf8').split('\n');
      ls[5] = (ls[5] ?? '').replace('"step":"stored"', '"step":"skipped"');
      fs.writeFileSync(p, ls.join('\n'));
      rewriteSums(top);
    });
    const r = await verifyBundle(sealed.path);
    expect(exitOf(r)).toBe(16);
    expect(kinds(r)).toEqual(['ALTERED log.jsonl', 'LOG log.jsonl']);
    expect(lines(r)).toContain('LOG line 7: chain broken (prev does not match line 6: line 6 was edited or lines before 7 were removed)');
  });

  it('LOG: a removed log line', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    tamper(sealed.path, (top) => {
      const p = path.join(top, 'log.jsonl');
      const ls = fs.readFileSync(p, 'utf8').split('\n');
      ls.splice(3, 1);
      fs.writeFileSync(p, ls.join('\n'));
    });
    const r = await verifyBundle(sealed.path);
    expect(exitOf(r)).toBe(16);
    const text = lines(r);
    expect(text).toContain('LOG line 4: chain broken (prev does not match line 3: line 3 was edited or lines before 4 were removed; seq 5, expected 4)');
    expect(text).toContain('LOG line 8: missing (manifest.json records 8 lines, found 7)');
    expect(text.some((l) => l.startsWith('ALTERED log.jsonl'))).toBe(true);
  });

  it('LOG: the last line removed is caught by the manifest record', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    const top = extract(sealed.path, path.join(dir, 'x'));
    const p = path.join(top, 'log.jsonl');
    const ls = fs.readFileSync(p, 'utf8').trimEnd().split('\n');
    fs.writeFileSync(p, ls.slice(0, -1).join('\n') + '\n');
    rewriteSums(top);
    const r = await verifyBundle(top);
    expect(lines(r)).toContain('LOG line 8: missing (manifest.json records 8 lines, found 7)');
  });

  it('TRUNCATED: a .tar.gz cut short', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    const bytes = fs.readFileSync(sealed.path);
    fs.writeFileSync(sealed.path, bytes.subarray(0, bytes.length - 200));
    const r = await verifyBundle(sealed.path);
    expect(exitOf(r)).toBe(16);
    expect(kinds(r)[0]).toBe('TRUNCATED archive');
    expect(lines(r)[0]).toMatch(/^TRUNCATED archive: /);
  });

  it('TRUNCATED: cut in the middle names the files that never arrived', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    const bytes = fs.readFileSync(sealed.path);
    fs.writeFileSync(sealed.path, bytes.subarray(0, Math.floor(bytes.length / 3)));
    const r = await verifyBundle(sealed.path);
    expect(exitOf(r)).toBe(16);
    expect(kinds(r)).toContain('TRUNCATED archive');
    expect(kinds(r).some((k) => k.startsWith('REMOVED ') || k === 'REMOVED SHA256SUMS')).toBe(true);
  });

  it('an archive that is not a bundle at all', async () => {
    const junk = path.join(dir, 'junk.tar.gz');
    fs.writeFileSync(junk, 'hello\n'.repeat(200));
    const r = await verifyBundle(junk);
    expect(exitOf(r)).toBe(16);
    expect(kinds(r)).toEqual(expect.arrayContaining(['REMOVED SHA256SUMS', 'REMOVED manifest.json']));
  });

  it('UNSAFE entries (path traversal, links) fail verification', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    const top = extract(sealed.path, path.join(dir, 'x'));
    const entries: Parameters<typeof rawTarGz>[1] = [{ path: `${sealed.name}/`, type: 'Directory' }];
    const walk = (d: string, rel: string): void => {
      for (const n of fs.readdirSync(d).sort()) {
        const p = path.join(d, n);
        if (fs.statSync(p).isDirectory()) walk(p, `${rel}${n}/`);
        else entries.push({ path: `${sealed.name}/${rel}${n}`, data: fs.readFileSync(p, 'utf8') });
      }
    };
    walk(top, '');
    entries.push({ path: `${sealed.name}/../../etc/cron.d/evil`, data: '* * * * * root sh\n' });
    entries.push({ path: `${sealed.name}/artifacts/link`, type: 'SymbolicLink', linkpath: '/etc/shadow' });
    const crafted = path.join(dir, 'crafted.tar.gz');
    rawTarGz(crafted, entries);
    const r = await verifyBundle(crafted);
    expect(exitOf(r)).toBe(16);
    expect(kinds(r)).toEqual([`UNSAFE ${sealed.name}/../../etc/cron.d/evil`, 'UNSAFE artifacts/link']);
  });

  it('a manifest naming another bundle', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    const top = extract(sealed.path, path.join(dir, 'x'));
    const renamed = path.join(dir, 'x', 'integ-web2-20261121T230000Z');
    fs.renameSync(top, renamed);
    const r = await verifyBundle(renamed);
    expect(kinds(r)).toEqual(['MANIFEST manifest.json']);
    expect(r.problems[0]?.detail).toBe(`names bundle "${sealed.name}" but the top folder is integ-web2-20261121T230000Z`);
  });
});

describe('verifyBundle: signatures', () => {
  it('valid with the signing key; exit 0', async () => {
    const k = await keys();
    const sealed = await makeBundle(path.join(dir, 'ev'), { signKey: k.priv });
    const r = await verifyBundle(sealed.path, { verifyKey: k.publicPath });
    expect(r).toMatchObject({ ok: true, signature: 'valid', key_id: k.keyId, problems: [] });
    expect(lines(r)[0]).toContain(`signature valid (key ${k.keyId})`);
  });

  it('not-checked without --verify-key, still ok', async () => {
    const k = await keys();
    const sealed = await makeBundle(path.join(dir, 'ev'), { signKey: k.priv });
    const r = await verifyBundle(sealed.path);
    expect(r).toMatchObject({ ok: true, signature: 'not-checked', key_id: k.keyId });
  });

  it('invalid with another key: 16, naming both key ids', async () => {
    const k = await keys('a');
    const other = await keys('b');
    const sealed = await makeBundle(path.join(dir, 'ev'), { signKey: k.priv });
    const r = await verifyBundle(sealed.path, { verifyKey: other.publicPath });
    expect(r.ok).toBe(false);
    expect(r.signature).toBe('invalid');
    expect(r.problems).toEqual([{ kind: 'SIGNATURE', file: 'manifest.json', detail: `signed by key ${k.keyId}, not by the --verify-key (${other.keyId})` }]);
  });

  it('absent when a key is demanded: 16', async () => {
    const k = await keys();
    const sealed = await makeBundle(path.join(dir, 'ev'));
    const r = await verifyBundle(sealed.path, { verifyKey: k.publicPath });
    expect(r.ok).toBe(false);
    expect(r.signature).toBe('absent');
    expect(lines(r)[0]).toBe('SIGNATURE signature.json: bundle is not signed, but --verify-key was given');
  });

  it('a signed manifest tampered with, everything else made consistent: signature invalid, 16', async () => {
    const k = await keys();
    const sealed = await makeBundle(path.join(dir, 'ev'), { signKey: k.priv });
    tamper(sealed.path, (top) => {
      // hide a process: edit the artifact, fix the manifest's hashes, rewrite SHA256SUMS
      const art = path.join(top, 'artifacts', 'processes.json');
      fs.writeFileSync(art, '[{"pid":1,"comm":"systemd"}]\n');
      const mp = path.join(top, 'manifest.json');
      const m = JSON.parse(fs.readFileSync(mp, 'utf8'));
      for (const f of [...m.files, ...m.artifacts]) {
        if (f.file === 'artifacts/processes.json') Object.assign(f, { sha256: sha256(fs.readFileSync(art)), size: fs.statSync(art).size });
      }
      fs.writeFileSync(mp, JSON.stringify(m, null, 2) + '\n');
      rewriteSums(top);
    });
    const unchecked = await verifyBundle(sealed.path);
    expect(unchecked.ok).toBe(true); // without the key, a consistent forgery cannot be told apart …
    expect(unchecked.archive_sha256).not.toBe(sealed.sha256); // … except by the archive hash on paper
    const r = await verifyBundle(sealed.path, { verifyKey: k.publicPath });
    expect(exitOf(r)).toBe(16);
    expect(r.signature).toBe('invalid');
    expect(lines(r)[0]).toBe(`SIGNATURE manifest.json: signature does not match manifest.json (altered after signing) for key ${k.keyId}`);
  });

  it('a replaced signature.json is caught by SHA256SUMS even without a key', async () => {
    const k = await keys('a');
    const other = await keys('b');
    const sealed = await makeBundle(path.join(dir, 'ev'), { signKey: k.priv });
    tamper(sealed.path, (top) => {
      const p = path.join(top, 'signature.json');
      const s = JSON.parse(fs.readFileSync(p, 'utf8'));
      s.key_id = other.keyId;
      fs.writeFileSync(p, JSON.stringify(s, null, 2) + '\n');
    });
    const r = await verifyBundle(sealed.path);
    expect(kinds(r)).toEqual(['ALTERED signature.json']);
  });
});

describe('renderVerify', () => {
  it('json is one document with the contract fields', async () => {
    const sealed = await makeBundle(path.join(dir, 'ev'));
    tamper(sealed.path, (top) => fs.writeFileSync(path.join(top, 'evil.txt'), 'x'));
    const r = await verifyBundle(sealed.path);
    const doc = JSON.parse(renderVerify(r, 'json'));
    expect(doc).toMatchObject({ schema: 'integ.verify/1', bundle: sealed.path, ok: false, signature: 'absent' });
    expect(doc.problems).toEqual([{ kind: 'ADDED', file: 'evil.txt', detail: 'not listed in SHA256SUMS' }]);
  });
});
