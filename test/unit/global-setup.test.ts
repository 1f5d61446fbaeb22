import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { staleBundle, staleSource } from '../helpers/global-setup.js';
import { tmpdir } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const T = new Date('2026-01-01T00:00:00Z');
/** Write a file (and its folders) modified `seconds` after T. */
function writeAt(file: string, seconds = 0): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (!fs.existsSync(file)) fs.writeFileSync(file, 'export {};\n');
  const t = new Date(T.getTime() + seconds * 1000);
  fs.utimesSync(file, t, t);
}

describe('global setup: the tests never run a stale build', () => {
  it('finds a source with no output, or one newer than its output, and nothing when dist/ is current', () => {
    const repo = tmpdir();
    dirs.push(repo);
    const src = path.join(repo, 'src', 'app', 'x.ts');
    const out = path.join(repo, 'dist', 'src', 'app', 'x.js');
    writeAt(src);
    expect(staleSource(repo)).toBe(src); // never built
    writeAt(out, 1);
    expect(staleSource(repo)).toBeNull(); // built after the last edit
    writeAt(src, 2);
    expect(staleSource(repo)).toBe(src); // edited after the build
  });

  it('finds the bundle missing, or older than a file of tsc output, and nothing when it is current', () => {
    const repo = tmpdir();
    dirs.push(repo);
    const out = path.join(repo, 'dist', 'src', 'scan', 'x.js');
    const bundled = path.join(repo, 'dist', 'bundle', 'cli.js');
    writeAt(out);
    expect(staleBundle(repo)).toBe(path.dirname(bundled)); // never bundled
    fs.mkdirSync(path.dirname(bundled), { recursive: true });
    expect(staleBundle(repo)).toBe(path.dirname(bundled)); // an empty folder is no bundle
    writeAt(bundled, 1);
    expect(staleBundle(repo)).toBeNull(); // bundled after the last build
    writeAt(out, 2);
    expect(staleBundle(repo)).toBe(out); // rebuilt after the bundle
  });
});
