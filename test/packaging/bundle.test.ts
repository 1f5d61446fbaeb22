/**
 * The bundle bin/integ.js runs (tools/bundle.mjs, from tsc's output): every worker thread the code
 * starts has its own bundle, and the bundles run on their own, with only the packages left outside
 * them in node_modules (no dist/src beside them to fall back on).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpdir, treeRunEnv } from '../helpers/cli.js';
import { filesUnder, packageClosure } from '../helpers/global-setup.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface BundleTool {
  ENTRIES: Record<string, string>;
  EXTERNAL: string[];
  OUT_DIR: string;
}

let tool: BundleTool;
const dirs: string[] = [];
beforeAll(async () => {
  tool = (await import(pathToFileURL(path.join(REPO, 'tools/bundle.mjs')).href)) as BundleTool;
});
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('the bundle', () => {
  it('has a bundle for every worker thread the code starts, under the name its starter resolves', () => {
    const started = new Set<string>();
    for (const f of filesUnder(path.join(REPO, 'src'), '.ts'))
      for (const m of fs.readFileSync(f, 'utf8').matchAll(/'([\w-]+\.worker)\.js'/g)) started.add(m[1]!);
    expect(started.size).toBeGreaterThanOrEqual(2);
    for (const w of started) {
      expect(Object.keys(tool.ENTRIES), w).toContain(w);
      expect(fs.existsSync(path.join(REPO, tool.OUT_DIR, `${w}.js`)), w).toBe(true);
    }
    for (const from of Object.values(tool.ENTRIES)) expect(fs.existsSync(path.join(REPO, from)), from).toBe(true);
    expect(fs.readFileSync(path.join(REPO, 'bin/integ.js'), 'utf8')).toContain("import('../dist/bundle/cli.js')");
  });

  it('runs baseline, check (worker threads included) and snapshot with no dist/src and only the external packages', () => {
    const app = tmpdir();
    dirs.push(app);
    for (const p of ['bin', tool.OUT_DIR, 'baselines', 'package.json']) fs.cpSync(path.join(REPO, p), path.join(app, p), { recursive: true });
    for (const name of packageClosure(REPO, tool.EXTERNAL))
      fs.cpSync(path.join(REPO, 'node_modules', name), path.join(app, 'node_modules', name), { recursive: true });
    expect(fs.existsSync(path.join(app, 'dist/src'))).toBe(false);
    expect(fs.existsSync(path.join(app, 'node_modules/zod'))).toBe(false); // bundled, not installed
    const t = path.join(app, 'work');
    fs.mkdirSync(path.join(t, 'tree'), { recursive: true });
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(t, 'tree', `f${i}`), `content ${i}\n`.repeat(i));
    const env = treeRunEnv(t);
    const integ = (...args: string[]) =>
      spawnSync(process.execPath, [path.join(app, 'bin/integ.js'), ...args], { env, cwd: t, encoding: 'utf8', timeout: 60_000 });
    const b = integ('baseline', '--jobs', '2');
    expect(b.status, b.stderr).toBe(0);
    fs.appendFileSync(path.join(t, 'tree', 'f7'), 'tampered\n');
    const c = integ('check', '--jobs', '2', '--no-snapshot', '--format', 'json');
    expect(c.status, c.stderr).toBe(4);
    const r = JSON.parse(c.stdout) as { summary: { scanned: number; changed: number }; changes: Array<{ path: string }> };
    expect(r.summary.scanned).toBe(301);
    expect(r.summary.changed).toBe(1);
    expect(r.changes.map((f) => f.path)).toEqual([path.join(t, 'tree', 'f7')]);
    const s = integ('snapshot', '--out', path.join(t, 'ev'));
    expect(s.status, s.stderr).toBe(0);
    expect(fs.readdirSync(path.join(t, 'ev')).length).toBeGreaterThan(0);
  });

  it('bin/integ.js without its bundle: one line that says how to build it, exit 70', () => {
    const app = tmpdir();
    dirs.push(app);
    fs.cpSync(path.join(REPO, 'bin'), path.join(app, 'bin'), { recursive: true });
    fs.copyFileSync(path.join(REPO, 'package.json'), path.join(app, 'package.json'));
    const r = spawnSync(process.execPath, [path.join(app, 'bin/integ.js'), '--version'], { encoding: 'utf8' });
    expect(r.status).toBe(70);
    expect(r.stderr).toBe('integ: dist/bundle/cli.js is missing: run "npm run build"\n');
  });
});
