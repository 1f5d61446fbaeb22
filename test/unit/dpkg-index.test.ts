import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDpkg, PackageIndex, parseMd5sums } from '../../src/pkg/dpkg.js';
import { mulberry32 as prng } from '../../bench/lib/tree.js';
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

describe('parseMd5sums', () => {
  /** The reference: each line through the expression, as the loader read md5sums before. */
  function reference(text: string, pkg: string, idx: PackageIndex): void {
    for (const line of text.split('\n')) {
      const m = /^([0-9a-f]{32})\s+(.+)$/.exec(line);
      if (m) idx.addPath(`/${m[2]!.replace(/^\/+/, '')}`, pkg, m[1]!);
    }
  }
  const entries = (idx: PackageIndex): unknown[] => [...(idx as unknown as { paths: Map<string, unknown> }).paths];

  it('reads every line exactly as the expression does the decoded text, on random lines of every shape', () => {
    const rnd = prng(5);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const hex = [...'0123456789abcdef'];
    const pieces = ['a', 'b/c', '/', '//', ' ', '  ', '\t', '\r', '\u2028', '\u00a0', 'é', 'x y', 'A', 'G', '.', '\v'];
    for (let round = 0; round < 400; round++) {
      const lines: string[] = [];
      for (let n = Math.floor(rnd() * 8); n > 0; n--) {
        let d = '';
        const len = rnd() < 0.9 ? 32 : Math.floor(rnd() * 40);
        for (let k = 0; k < len; k++) d += rnd() < 0.97 ? pick(hex) : pick(['A', 'g', ' ']);
        let sep = rnd() < 0.8 ? '  ' : pick([' ', '\t', '   ', '', ' \t', '\u00a0 ']);
        let p = '';
        for (let k = Math.floor(rnd() * 6); k > 0; k--) p += pick(pieces);
        if (rnd() < 0.3) sep += pick(['/', '//', ' ', '']);
        lines.push(d + sep + p);
      }
      // bytes that are not UTF-8 too (a lone continuation byte, a sequence cut by the newline, 0xff)
      const raw = [Buffer.from([0x80]), Buffer.from([0xe2, 0x80]), Buffer.from([0xff])];
      const bytes = Buffer.concat(
        lines
          .flatMap((l, k) => [...(k ? [Buffer.from('\n')] : []), Buffer.from(l), ...(rnd() < 0.1 ? [pick(raw)] : [])])
          .concat(rnd() < 0.5 ? [Buffer.from('\n')] : []),
      );
      const text = bytes.toString('utf8');
      const a = new PackageIndex('', 'dpkg');
      const b = new PackageIndex('', 'dpkg');
      parseMd5sums(Buffer.from(bytes), 'p', a);
      reference(text, 'p', b);
      expect(entries(a), JSON.stringify(text)).toEqual(entries(b));
    }
  });

  it('takes the lines dpkg writes by hand (no expression), paths made /-rooted once', () => {
    const idx = new PackageIndex('', 'dpkg');
    parseMd5sums(Buffer.from(`${A}  usr/bin/x\n${B}  //etc/y\n\n${C}  usr/share/doc/a b\n`), 'p', idx);
    expect(entries(idx)).toEqual([
      ['/usr/bin/x', expect.objectContaining({ digest: A })],
      ['/etc/y', expect.objectContaining({ digest: B })],
      ['/usr/share/doc/a b', expect.objectContaining({ digest: C })],
    ]);
  });
});
