import picomatch from 'picomatch';
import { describe, expect, it } from 'vitest';
import { Selector } from '../../src/core/selector.js';
import { rule } from '../helpers/build.js';

/** A small deterministic PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const SEGS = ['etc', 'usr', 'lib', 'a', 'b', 'ssh', '.hidden', 'x.conf', 'y.so.1', 'd-1'];
const GLOBS = ['*', '**', '*.conf', '*.so*', '{a,b}', '[ab]', '?', 'd-*'];

function randomPath(r: () => number): string {
  const n = 1 + Math.floor(r() * 4);
  return `/${Array.from({ length: n }, () => SEGS[Math.floor(r() * SEGS.length)]).join('/')}`;
}

function randomPattern(r: () => number): string {
  const n = 1 + Math.floor(r() * 4);
  const parts = Array.from({ length: n }, () => (r() < 0.3 ? GLOBS[Math.floor(r() * GLOBS.length)] : SEGS[Math.floor(r() * SEGS.length)]));
  return `/${parts.join('/')}`;
}

/** The obvious reference implementation the fast one must agree with. */
const isUnder = (child: string, parent: string): boolean => parent === '/' || child === parent || child.startsWith(`${parent}/`);
function staticBase(p: string): string {
  const s = picomatch.scan(p);
  const base = s.isGlob ? s.base : p;
  return base === '' ? '/' : base.replace(/\/+$/, '') || '/';
}

/** The per-pattern pruning rule (one matcher per pattern, asked for every directory). */
function belowRef(pattern: string, base: string): (dir: string) => boolean {
  if (/[{}()]/.test(pattern)) return (dir) => isUnder(dir, base) || isUnder(base, dir);
  const segs = pattern
    .split('/')
    .slice(1)
    .map((seg) => (seg === '**' ? null : picomatch(seg, { dot: true })));
  return (dir) => {
    const parts = dir === '/' ? [] : dir.split('/').slice(1);
    for (let i = 0; i < parts.length; i++) {
      if (i >= segs.length - 1) return segs.slice(0, i + 1).includes(null) || segs[segs.length - 1] === null;
      const m = segs[i] ?? null;
      if (m === null) return true;
      if (!m(parts[i]!)) return false;
    }
    return true;
  };
}

describe('Selector on large pattern lists agrees with plain picomatch', () => {
  it('ruleFor, mayDescend and roots match the reference on random patterns and paths', () => {
    const r = rng(42);
    for (let round = 0; round < 40; round++) {
      // Enough patterns that the grouped (not "few groups") path is exercised too.
      const paths = Array.from({ length: 5 + Math.floor(r() * 60) }, () => randomPattern(r));
      const exclude = Array.from({ length: Math.floor(r() * 4) }, () => randomPattern(r));
      const sel = new Selector({ exclude: [], rules: [rule({ name: 'r', paths, exclude })] });
      const inc = picomatch(paths, { dot: true });
      const exc = exclude.length ? picomatch(exclude, { dot: true }) : () => false;
      const bases = paths.map(staticBase);
      const trees = exclude.filter((p) => p.endsWith('/**')).map((p) => p.slice(0, -3) || '/');
      const excTree = trees.length ? picomatch(trees, { dot: true }) : () => false;
      for (let i = 0; i < 300; i++) {
        const p = randomPath(r);
        expect(sel.ruleFor(p) !== null, `${p} with ${JSON.stringify({ paths, exclude })}`).toBe(inc(p) && !exc(p));
        const want = !excTree(p) && paths.some((pt) => belowRef(pt, staticBase(pt))(p));
        expect(sel.mayDescend(p), `mayDescend ${p} with ${JSON.stringify(paths)}`).toBe(want);
      }
      const all = [...new Set(bases)].sort();
      expect(sel.roots).toEqual(all.filter((b) => !all.some((o) => o !== b && isUnder(b, o))));
    }
  });

  it('a rule of 20,000 literal paths and 20,000 globs compiles and matches (the old selector compared every pair)', () => {
    const paths: string[] = [];
    for (let i = 0; i < 20_000; i++) paths.push(`/srv/data/d${i % 200}/file${i}`);
    for (let i = 0; i < 20_000; i++) paths.push(`/srv/conf/c${i}/*.conf`);
    const sel = new Selector({ exclude: [], rules: [rule({ name: 'big', paths })] });
    expect(sel.roots.length).toBe(20_000 + 20_000);
    expect(sel.ruleFor('/srv/data/d7/file207')?.name).toBe('big');
    expect(sel.ruleFor('/srv/data/d7/file208')).toBeNull();
    expect(sel.ruleFor('/srv/conf/c19999/x.conf')?.name).toBe('big');
    expect(sel.ruleFor('/srv/conf/c19999/x.txt')).toBeNull();
    expect(sel.mayDescend('/srv/data')).toBe(true);
    expect(sel.mayDescend('/srv/other')).toBe(false);
  });
});
