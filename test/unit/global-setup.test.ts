import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { staleBundle, staleSource } from '../helpers/global-setup.js';
import { tmpdir } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('global setup: the tests never run a stale build', () => {
  it('finds a source with no output, or one newer than its output, and nothing when dist/ is current', () => {
    const repo = tmpdir();
    dirs.push(repo);
    const src = path.join(repo, 'src', 'app', 'x.ts');
    const out = path.join(repo, 'dist', 'src', 'app', 'x.js');
    fs.mkdirSync(path.dirname(src), { recursive: true });
    fs.writeFileSync(src, 'export {};\n');
    expect(staleSource(repo)).toBe(src); // never built
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, 'export {};\n');
    const t = new Date('2026-01-01T00:00:00Z');
    fs.utimesSync(src, t, t);
    expect(staleSource(repo)).toBeNull(); // built after the last edit
    fs.utimesSync(src, new Date(t.getTime() + 1000), new Date(t.getTime() + 1000));
    fs.utimesSync(out, t, t);
    expect(staleSource(repo)).toBe(src); // edited after the build
  });

  it('finds the bundle missing, or older than a file of tsc output, and nothing when it is current', () => {
    const repo = tmpdir();
    dirs.push(repo);
    const out = path.join(repo, 'dist', 'src', 'scan', 'x.js');
    const bundled = path.join(repo, 'dist', 'bundle', 'cli.js');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, 'export {};\n');
    expect(staleBundle(repo)).toBe(path.dirname(bundled)); // never bundled
    fs.mkdirSync(path.dirname(bundled), { recursive: true });
    expect(staleBundle(repo)).toBe(path.dirname(bundled)); // an empty folder is no bundle
    fs.writeFileSync(bundled, 'export {};\n');
    const t = new Date('2026-01-01T00:00:00Z');
    fs.utimesSync(out, t, t);
    expect(staleBundle(repo)).toBeNull(); // bundled after the last build
    fs.utimesSync(out, new Date(t.getTime() + 1000), new Date(t.getTime() + 1000));
    fs.utimesSync(bundled, t, t);
    expect(staleBundle(repo)).toBe(out); // rebuilt after the bundle
  });
});
