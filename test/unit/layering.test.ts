/**
 * The architecture, checked: no import cycles among src/ modules (type-only imports included),
 * and each folder imports only the layers below it. A cycle or an upward import fails here, so
 * the seams cannot quietly come back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

const SRC = path.join(REPO, 'src');

function* files(dir: string): Generator<string> {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else if (e.name.endsWith('.ts')) yield p;
  }
}

/** Relative module specifiers of a file: static imports and exports, dynamic import('…'). */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)|^import\s+'(\.[^']+)'/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

/** src-relative module → the src-relative modules it imports. */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of files(SRC)) {
    const rel = path.relative(SRC, f);
    const deps = importsOf(fs.readFileSync(f, 'utf8')).map((s) => path.relative(SRC, path.resolve(path.dirname(f), s.replace(/\.js$/, '.ts'))));
    g.set(rel, deps);
  }
  return g;
}

function cycles(g: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...g.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

/** What each folder may import besides itself (src/*.ts files are the entry and version). */
const ALLOWED: Record<string, string[]> = {
  util: [],
  core: ['util'],
  trust: ['util'],
  scan: ['core', 'util'],
  store: ['core', 'util', 'scan'],
  pkg: ['core', 'util'],
  evidence: ['core', 'util', 'trust', 'scan', 'version.ts'],
  config: ['core', 'util'],
  report: ['core', 'util', 'app', 'store', 'evidence', 'pkg', 'version.ts'],
  app: ['core', 'util', 'trust', 'scan', 'store', 'evidence', 'report', 'pkg', 'config', 'version.ts'],
  output: ['core', 'util', 'app', 'report', 'version.ts'],
  commands: ['core', 'util', 'app', 'report', 'store', 'scan', 'evidence', 'trust', 'config', 'output', 'version.ts'],
};

const layer = (rel: string): string => (rel.includes(path.sep) ? rel.split(path.sep)[0]! : rel);

describe('layering', () => {
  const g = graph();

  it('finds the imports it checks (the parser is not blind)', () => {
    expect(importsOf("import a from './a.js';\nimport type { B } from '../b.js';\nexport { c } from './c.js';\nconst d = await import('./d.js');")).toEqual([
      './a.js',
      '../b.js',
      './c.js',
      './d.js',
    ]);
    expect(g.get(path.join('app', 'check.ts'))).toContain(path.join('core', 'verdict.ts'));
    expect(g.size).toBeGreaterThan(50);
    expect(
      cycles(
        new Map([
          ['a', ['b']],
          ['b', ['c']],
          ['c', ['a']],
          ['d', ['a']],
        ]),
      ),
    ).toEqual([['a', 'b', 'c', 'a']]);
  });

  it('has no import cycles', () => {
    expect(cycles(g).map((c) => c.join(' → '))).toEqual([]);
  });

  it('each folder imports only the layers it may (util/ nothing of integ; core/ no I/O layers)', () => {
    const bad: string[] = [];
    for (const [from, deps] of g) {
      const allowed = ALLOWED[layer(from)];
      if (!allowed) continue;
      for (const d of deps) if (layer(d) !== layer(from) && !allowed.includes(layer(d))) bad.push(`${from} → ${d}`);
    }
    expect(bad).toEqual([]);
  });

  it('SQL only in store/ (the wtmpdb reader and the rpm database reader open foreign databases, not the store)', () => {
    const outside: string[] = [];
    for (const f of files(SRC)) {
      const rel = path.relative(SRC, f);
      if (layer(rel) === 'store' || rel === path.join('evidence', 'collectors', 'sessions.ts') || rel === path.join('pkg', 'rpm.ts')) continue;
      const text = fs.readFileSync(f, 'utf8');
      if (/from 'better-sqlite3'|\.prepare(<[^>]*>)?\(|\.pragma\(|\.exec\('|\b(SELECT|INSERT|UPDATE|DELETE) .*\b(FROM|INTO|SET)\b/.test(text))
        outside.push(rel);
    }
    expect(outside).toEqual([]);
  });
});
