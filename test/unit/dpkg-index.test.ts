import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDpkg } from '../../src/pkg/dpkg.js';
import { tmpdir } from '../helpers/cli.js';

/** A root with merged /usr (bin -> usr/bin) and a dpkg database of two packages, one removed. */
const R = tmpdir('integ-dpkg-');
afterAll(() => fs.rmSync(R, { recursive: true, force: true }));
const w = (rel: string, text: string): void => {
  fs.mkdirSync(path.dirname(path.join(R, rel)), { recursive: true });
  fs.writeFileSync(path.join(R, rel), text);
};
fs.mkdirSync(path.join(R, 'usr/bin'), { recursive: true });
fs.symlinkSync('usr/bin', path.join(R, 'bin'));
const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const C = 'c'.repeat(32);
w(
  'var/lib/dpkg/status',
  'Package: tool\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nConffiles:\n /etc/tool.conf ' +
    C +
    '\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 2\nArchitecture: amd64\n',
);
// dpkg lists the binary under the alias, as packages built before merged /usr do
w('var/lib/dpkg/info/tool.md5sums', `${A}  bin/tool\n${B}  usr/share/tool/data\n`);
w('var/lib/dpkg/info/tool.list', '/.\n/bin\n/bin/tool\n/usr/share/tool\n/usr/share/tool/data\n/usr/share/tool/link\n/etc/tool.conf\n');
w('var/lib/dpkg/info/gone.md5sums', `${A}  usr/bin/gone\n`);

describe('the dpkg index', () => {
  it('finds a file listed under a merged-/usr alias by the path the walk gives (/usr/bin/…), and by the alias', () => {
    const idx = loadDpkg(R)!;
    expect(idx.lookup('/usr/bin/tool')).toMatchObject({ digest: A, algo: 'md5', conffile: false, pkg: { name: 'tool', version: '1.0' } });
    expect(idx.lookup('/bin/tool')).toMatchObject({ digest: A });
    expect(idx.lookup('/usr/share/tool/data')).toMatchObject({ digest: B });
    expect(idx.lookup('/etc/tool.conf')).toMatchObject({ digest: C, conffile: true });
  });

  it('a path of a package that is no longer installed is nobody’s; an unlisted path is nobody’s', () => {
    const idx = loadDpkg(R)!;
    expect(idx.lookup('/usr/bin/gone')).toBeUndefined();
    expect(idx.lookup('/usr/bin/other')).toBeUndefined();
  });

  it('digestsOnly skips the .list files: paths without a digest (directories, symlinks) are not known, digests are', () => {
    const full = loadDpkg(R)!;
    const lean = loadDpkg(R, true)!;
    expect(full.lookup('/usr/share/tool/link')).toMatchObject({ digest: null });
    expect(lean.lookup('/usr/share/tool/link')).toBeUndefined();
    expect(full.lookup('/usr/share/tool')).toMatchObject({ digest: null });
    expect(lean.lookup('/usr/share/tool')).toBeUndefined();
    for (const p of ['/usr/bin/tool', '/usr/share/tool/data', '/etc/tool.conf']) expect(lean.lookup(p)).toEqual(full.lookup(p));
    expect(lean.size).toBeLessThan(full.size);
  });
});
