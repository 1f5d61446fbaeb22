import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDpkg, PackageIndex, parseDiversions, parseMd5sums } from '../../src/pkg/dpkg.js';
import { mulberry32 as prng } from '../../bench/lib/tree.js';
import { tmpdir, writerUnder } from '../helpers/cli.js';

/** A root with merged /usr (bin -> usr/bin) and a dpkg database of two packages, one removed. */
const R = tmpdir('integ-dpkg-');
afterAll(() => fs.rmSync(R, { recursive: true, force: true }));
const w = writerUnder(R);
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

/**
 * A root with merged /usr whose dpkg database has diversions, as dpkg-divert writes them: from, to,
 * diverter (":" for a local one). postgresql-common diverts libpq-dev's pg_config (the case on a
 * real Debian), and a file it does not ship itself; the admin diverted one locally; dash diverts
 * /bin/sh, which another package lists under the alias; libpq-dev's conffile is diverted too.
 */
const V = tmpdir('integ-dpkg-div-');
afterAll(() => fs.rmSync(V, { recursive: true, force: true }));
const wv = writerUnder(V);
fs.mkdirSync(path.join(V, 'usr/bin'), { recursive: true });
fs.symlinkSync('usr/bin', path.join(V, 'bin'));
const D = 'd'.repeat(32);
const E = 'e'.repeat(32);
const F = 'f'.repeat(32);
const DIVERSIONS = [
  '/usr/bin/pg_config\n/usr/bin/pg_config.libpq-dev\npostgresql-common\n',
  '/usr/bin/ghost\n/usr/bin/ghost.real\npostgresql-common\n',
  '/usr/bin/local\n/usr/bin/local.orig\n:\n',
  '/bin/sh\n/bin/sh.distrib\ndash\n',
  '/etc/pq.conf\n/etc/pq.conf.dist\npostgresql-common\n',
].join('');
wv('var/lib/dpkg/diversions', DIVERSIONS);
wv(
  'var/lib/dpkg/status',
  ['libpq-dev', 'postgresql-common', 'dash', 'sh-alt']
    .map((n) => `Package: ${n}\nStatus: install ok installed\nVersion: 1\nArchitecture: ${n === 'postgresql-common' ? 'all' : 'amd64'}\n`)
    .join('\n')
    .replace('Architecture: amd64\n', `Architecture: amd64\nConffiles:\n /etc/pq.conf ${E}\n`),
);
wv('var/lib/dpkg/info/libpq-dev:amd64.md5sums', `${A}  usr/bin/pg_config\n${B}  usr/bin/ghost\n${C}  usr/bin/local\n`);
wv('var/lib/dpkg/info/libpq-dev:amd64.list', '/.\n/usr/bin/pg_config\n/usr/bin/ghost\n/usr/bin/local\n/etc/pq.conf\n');
wv('var/lib/dpkg/info/postgresql-common.md5sums', `${D}  usr/bin/pg_config\n`);
wv('var/lib/dpkg/info/postgresql-common.list', '/.\n/usr/bin/pg_config\n');
wv('var/lib/dpkg/info/dash:amd64.list', '/.\n/bin/sh\n');
wv('var/lib/dpkg/info/sh-alt.md5sums', `${F}  bin/sh\n`);

describe('the dpkg index with diversions', () => {
  it('finds a file diverted away from a package at the diversion’s target, with its digest; the diverter’s own file keeps the name', () => {
    for (const idx of [loadDpkg(V)!, loadDpkg(V, true)!]) {
      expect(idx.lookup('/usr/bin/pg_config')).toMatchObject({ digest: D, pkg: { name: 'postgresql-common' } });
      expect(idx.lookup('/usr/bin/pg_config.libpq-dev')).toMatchObject({ digest: A, conffile: false, pkg: { name: 'libpq-dev' } });
      // status's conffiles are diverted too
      expect(idx.lookup('/etc/pq.conf.dist')).toMatchObject({ digest: E, conffile: true, pkg: { name: 'libpq-dev' } });
      expect(idx.lookup('/etc/pq.conf')).toBeUndefined();
      // a `to` under a merged-/usr alias is found by the walk's path too
      expect(idx.lookup('/usr/bin/sh.distrib')).toMatchObject({ digest: F, pkg: { name: 'sh-alt' } });
      expect(idx.lookup('/bin/sh.distrib')).toMatchObject({ digest: F });
    }
    // the diverter's .list entry (dash:amd64.list: the name without :arch is what the diversion names)
    expect(loadDpkg(V)!.lookup('/usr/bin/sh')).toMatchObject({ digest: null, pkg: { name: 'dash' } });
  });

  it('the diverter owns the diverted name whichever package is read first', () => {
    for (const diverterFirst of [true, false]) {
      const idx = new PackageIndex('', 'dpkg');
      for (const name of ['libpq-dev', 'postgresql-common']) idx.addPackage({ name, arch: 'amd64', version: '1' });
      parseDiversions(Buffer.from(DIVERSIONS), idx);
      const reads = [
        () => parseMd5sums(Buffer.from(`${D}  usr/bin/pg_config\n`), 'postgresql-common:amd64', idx),
        () => parseMd5sums(Buffer.from(`${A}  usr/bin/pg_config\n`), 'libpq-dev', idx),
      ];
      for (const read of diverterFirst ? reads : reads.reverse()) read();
      expect(idx.lookup('/usr/bin/pg_config')).toMatchObject({ digest: D, pkg: { name: 'postgresql-common' } });
      expect(idx.lookup('/usr/bin/pg_config.libpq-dev')).toMatchObject({ digest: A, pkg: { name: 'libpq-dev' } });
    }
  });

  it('a package whose name only begins with the diverter’s is diverted like any other', () => {
    const idx = new PackageIndex('', 'dpkg');
    idx.addPackage({ name: 'dash-extra', arch: 'amd64', version: '1' });
    idx.addDiversion('/usr/bin/x', '/usr/bin/x.orig', 'dash');
    parseMd5sums(Buffer.from(`${A}  usr/bin/x\n`), 'dash-extra:amd64', idx);
    expect(idx.lookup('/usr/bin/x.orig')).toMatchObject({ digest: A });
    expect(idx.lookup('/usr/bin/x')).toBeUndefined();
  });

  it('a local diversion (":") moves every package’s file: the diverted name is nobody’s', () => {
    const idx = loadDpkg(V)!;
    expect(idx.lookup('/usr/bin/local.orig')).toMatchObject({ digest: C, pkg: { name: 'libpq-dev' } });
    expect(idx.lookup('/usr/bin/local')).toBeUndefined();
  });

  it('a diversion by a package that ships nothing at that name: the other package’s file is at the target, the name is nobody’s', () => {
    const idx = loadDpkg(V)!;
    expect(idx.lookup('/usr/bin/ghost.real')).toMatchObject({ digest: B, pkg: { name: 'libpq-dev' } });
    expect(idx.lookup('/usr/bin/ghost')).toBeUndefined();
  });

  it('a damaged diversions file costs only its damaged groups; a missing one, nothing', () => {
    const at = (idx: PackageIndex) =>
      ['/usr/bin/pg_config', '/usr/bin/pg_config.libpq-dev', '/usr/bin/ghost', '/usr/bin/ghost.real'].map((p) => idx.lookup(p)?.pkg.name);
    const first = '/usr/bin/pg_config\n/usr/bin/pg_config.libpq-dev\npostgresql-common\n';
    const undiverted = [expect.any(String), undefined, 'libpq-dev', undefined]; // pg_config: whichever package was read first
    const cases: Array<[string | Buffer, unknown[]]> = [
      // an incomplete group at the end, with and without its last newline: the complete ones count
      [`${first}/usr/bin/ghost\n/usr/bin/ghost.real\n`, ['postgresql-common', 'libpq-dev', 'libpq-dev', undefined]],
      [`${first}/usr/bin/ghost\n/usr/bin/ghost.real`, ['postgresql-common', 'libpq-dev', 'libpq-dev', undefined]],
      [`${first}/usr/bin/ghost`, ['postgresql-common', 'libpq-dev', 'libpq-dev', undefined]],
      // cut inside the first group: no diversion
      ['/usr/bin/pg_config\n/usr/bin/pg_config.libpq-dev\n', undiverted],
      // not paths, empty, not text
      ['pg_config\npg_config.libpq-dev\npostgresql-common\n', undiverted],
      [`/usr/bin/pg_config\n/usr/bin/pg_config.libpq-dev\n\n`, undiverted],
      ['', undiverted],
      [Buffer.from([0xff, 0x00, 0x0a, 0x0a, 0x0a, 0x80, 0x0a]), undiverted],
    ];
    try {
      for (const [text, want] of cases) {
        wv('var/lib/dpkg/diversions', text);
        expect(at(loadDpkg(V)!), JSON.stringify(text.toString())).toEqual(want);
      }
      fs.rmSync(path.join(V, 'var/lib/dpkg/diversions'));
      expect(at(loadDpkg(V)!)).toEqual(undiverted);
    } finally {
      wv('var/lib/dpkg/diversions', DIVERSIONS);
    }
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

describe('the dpkg index for a few paths (check’s findings, accept --packaged)', () => {
  const same = (root: string, paths: string[], digestsOnly = false): void => {
    const full = loadDpkg(root, digestsOnly)!;
    const few = loadDpkg(root, digestsOnly, paths)!;
    for (const p of paths) expect(few.lookup(p), p).toEqual(full.lookup(p));
  };

  it('says of each path what the full index says: aliases, diversions, conffiles, removed packages, unknown paths', () => {
    const paths = [
      ...[
        '/usr/bin/tool',
        '/bin/tool',
        '/usr/share/tool/data',
        '/usr/share/tool/link',
        '/usr/share/tool',
        '/etc/tool.conf',
        '/usr/bin/gone',
        '/usr/bin/nope',
      ].map((p) => [R, p] as const),
      ...[
        '/usr/bin/pg_config',
        '/usr/bin/pg_config.libpq-dev',
        '/etc/pq.conf',
        '/etc/pq.conf.dist',
        '/usr/bin/sh',
        '/bin/sh',
        '/usr/bin/sh.distrib',
        '/bin/sh.distrib',
        '/usr/bin/local',
        '/usr/bin/local.orig',
        '/usr/bin/ghost',
        '/usr/bin/ghost.real',
      ].map((p) => [V, p] as const),
    ];
    for (const [root, p] of paths) for (const digestsOnly of [false, true]) same(root, [p], digestsOnly);
    same(
      V,
      paths.filter(([r]) => r === V).map(([, p]) => p),
    ); // more names than it searches for: read in full
    same(V, ['/usr/bin/pg_config.libpq-dev', '/usr/bin/ghost.real', '/bin/sh.distrib']);
  });

  it('parses only the package files that can mention them; a diverted file is found through the name its package lists', () => {
    const full = loadDpkg(R)!;
    const few = loadDpkg(R, false, ['/usr/bin/tool'])!;
    expect(few.size).toBeLessThan(full.size);
    expect(loadDpkg(R, false, ['/usr/bin/nope'])!.size).toBe(1); // status's conffile only
    // libpq-dev lists it as usr/bin/pg_config: without the diversion's name it would be nobody's
    expect(loadDpkg(V, false, ['/usr/bin/pg_config.libpq-dev'])!.lookup('/usr/bin/pg_config.libpq-dev')).toMatchObject({
      digest: A,
      pkg: { name: 'libpq-dev' },
    });
  });

  it('a path that is not UTF-8 is looked up in the full index', () => {
    const name = Buffer.concat([Buffer.from('usr/bin/'), Buffer.from([0xff, 0x41])]);
    try {
      w('var/lib/dpkg/info/odd.md5sums', Buffer.concat([Buffer.from(`${A}  `), name, Buffer.from('\n')]));
      w(
        'var/lib/dpkg/status',
        `${fs.readFileSync(path.join(R, 'var/lib/dpkg/status'), 'utf8')}\nPackage: odd\nStatus: install ok installed\nVersion: 3\nArchitecture: all\n`,
      );
      const p = `/${name.toString('utf8')}`;
      expect(loadDpkg(R)!.lookup(p)).toMatchObject({ digest: A, pkg: { name: 'odd' } });
      same(R, [p]);
    } finally {
      fs.rmSync(path.join(R, 'var/lib/dpkg/info/odd.md5sums'));
    }
  });

  const real = fs.existsSync('/var/lib/dpkg/status') && fs.existsSync('/var/lib/dpkg/info');
  it.skipIf(!real)('on this host’s dpkg database: the same answers for random packaged paths, alone and eight at a time', () => {
    if (!real) console.log('skipped: no dpkg database on this host');
    const rnd = prng(12);
    const lists = fs.readdirSync('/var/lib/dpkg/info').filter((n) => n.endsWith('.list'));
    const paths: string[] = [];
    for (let k = 0; k < 24 && lists.length; k++) {
      const lines = fs.readFileSync(path.join('/var/lib/dpkg/info', lists[Math.floor(rnd() * lists.length)]!), 'utf8').split('\n');
      const p = lines[Math.floor(rnd() * lines.length)];
      if (p?.startsWith('/') && p !== '/.') paths.push(p);
    }
    paths.push('/usr/bin/pg_config', '/usr/bin/pg_config.libpq-dev', '/usr/lib/x86_64-linux-gnu/libpthread.so.0', '/etc/passwd', '/usr/bin/integ-nothing');
    // folders many packages list, and both forms of merged-/usr paths
    paths.push(
      '/usr/bin',
      '/usr/local/bin',
      '/usr/share/doc',
      '/bin/sh',
      '/usr/bin/sh',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/usr/lib/x86_64-linux-gnu/libc.so.6',
      '/etc',
    );
    const full = loadDpkg('/')!;
    for (let k = 0; k < paths.length; k += 8) {
      const group = paths.slice(k, k + 8);
      const few = loadDpkg('/', false, group)!;
      for (const p of group) expect(few.lookup(p), p).toEqual(full.lookup(p));
    }
    for (const p of paths.slice(0, 6)) expect(loadDpkg('/', false, [p])!.lookup(p), p).toEqual(full.lookup(p));
    for (const p of paths.slice(-8)) expect(loadDpkg('/', false, [p])!.lookup(p), p).toEqual(full.lookup(p));
    // a folder's finding is searched for as its whole path, not its last name ("bin" is in nearly every package's files)
    expect(loadDpkg('/', false, ['/usr/local/bin', '/usr/local/bin/convert'])!.size).toBeLessThan(full.size / 10);
  });
});
