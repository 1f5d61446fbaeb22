import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RootResolver } from '../../src/scan/root-path.js';
import { integ, tmpdir } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true, maxRetries: 3 });
});

/**
 * An image whose /var/lib is an absolute symlink to a folder that exists both on the host
 * (holding a "host secret") and inside the image: integ must read the image's copy.
 */
function image(): { dir: string; img: string; outside: string } {
  const dir = tmpdir('integ-root-');
  dirs.push(dir);
  const img = path.join(dir, 'img');
  const outside = path.join(dir, 'outside'); // an absolute host path
  fs.mkdirSync(path.join(outside, 'pkg'), { recursive: true });
  fs.writeFileSync(path.join(outside, 'pkg', 'file'), 'HOST SECRET, must never be read\n');
  fs.mkdirSync(path.join(img, outside, 'pkg'), { recursive: true });
  fs.writeFileSync(path.join(img, outside, 'pkg', 'file'), 'image\n');
  fs.mkdirSync(path.join(img, 'var'), { recursive: true });
  fs.symlinkSync(outside, path.join(img, 'var', 'lib')); // absolute target
  fs.mkdirSync(path.join(img, 'opt'), { recursive: true });
  fs.symlinkSync('../../../../../../../../../..', path.join(img, 'opt', 'up')); // climbs past the root
  return { dir, img, outside };
}

describe('RootResolver: every component resolved inside --root', () => {
  it('an absolute symlink resolves from the root, ".." stops at the root, the last component is not followed', () => {
    const { img, outside } = image();
    const r = new RootResolver(img);
    expect(r.real(Buffer.from('/var/lib/pkg/file')).toString()).toBe(path.join(img, outside, 'pkg', 'file'));
    expect(r.real(Buffer.from(`/opt/up${outside}/pkg/file`)).toString()).toBe(path.join(img, outside, 'pkg', 'file'));
    expect(r.real(Buffer.from('/var/lib')).toString()).toBe(path.join(img, 'var', 'lib'));
    expect(r.real(Buffer.from('/missing/x/y')).toString()).toBe(path.join(img, 'missing', 'x', 'y'));
  });

  it('a symlink loop inside the image is ELOOP, not a hang', () => {
    const { img } = image();
    fs.symlinkSync('b', path.join(img, 'a'));
    fs.symlinkSync('/a', path.join(img, 'b'));
    expect(() => new RootResolver(img).real(Buffer.from('/a/x'))).toThrow(expect.objectContaining({ code: 'ELOOP' }));
  });
});

describe('baseline/check --root never read outside the root', () => {
  it('paths below a symlinked folder are read from the image, not from the host', () => {
    const { dir, img, outside } = image();
    const policy = path.join(dir, 'p.yml');
    fs.writeFileSync(policy, `version: 1\nrules:\n  - name: lib\n    paths: ["/var/lib/pkg/**", "/opt/up${outside}/pkg/**"]\n`);
    const db = path.join(dir, 's.db');
    const b = integ(['baseline', '--db', db, '--policy', policy, '--root', img, '--jobs', '0']);
    expect(b.code, b.stderr).toBe(0);
    for (const p of ['/var/lib/pkg/file', `/opt/up${outside}/pkg/file`]) {
      const s = integ(['show', p, '--db', db, '--format', 'json']);
      expect(s.code, s.stderr).toBe(0);
      expect(s.stdout).toMatch(/"size": 6,/); // "image\n", not the host's 32 bytes
    }
    // Changing the host copy changes nothing for the image; changing the image's copy is found.
    fs.writeFileSync(path.join(outside, 'pkg', 'file'), 'host changed\n');
    expect(integ(['check', '--db', db, '--policy', policy, '--root', img, '--jobs', '0', '--no-snapshot']).code).toBe(0);
    fs.writeFileSync(path.join(img, outside, 'pkg', 'file'), 'image changed\n');
    const c = integ(['check', '--db', db, '--policy', policy, '--root', img, '--jobs', '0', '--no-snapshot', '--format', 'json']);
    expect(c.code, c.stderr).toBe(4);
    const j = JSON.parse(c.stdout) as { changes: Array<{ path: string }> };
    expect(j.changes.map((x) => x.path).sort()).toEqual([`/opt/up${outside}/pkg/file`, '/var/lib/pkg/file'].sort());
    // accept re-reads inside the root too (the host copy differs from what the check saw).
    const a = integ(['accept', '--all', '--note', 'image update', '--db', db, '--policy', policy]);
    expect(a.code, a.stderr).toBe(0);
  });
});
