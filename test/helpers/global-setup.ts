/**
 * vitest global setup: the tests run the code they claim to.
 *
 * 1. dist/ is rebuilt when any source under src/ or bench/ is newer than its output (or the
 *    output is missing), and dist/bundle/ (what bin/integ.js runs) when tsc's output is newer
 *    than it, so a CLI test never runs yesterday's build; dist/native/ (tools/build-native.mjs)
 *    when native/md5x16.c is newer than it. A failing build fails the run.
 * 2. When running as root, the runtime files (bin/, dist/, baselines/, package.json and the
 *    production dependencies) are staged in a world-readable temporary folder, so the tests that
 *    drop privileges to `nobody` work from any checkout, even one in a private 0700 home.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

declare module 'vitest' {
  export interface ProvidedContext {
    /** A world-readable copy of the runtime files ('' when not staged: not root). */
    stagedRoot: string;
  }
}

/** Every file below `dir` whose name ends with `ext` (declaration files excluded for '.ts'). */
export function* filesUnder(dir: string, ext: '.ts' | '.js'): Generator<string> {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* filesUnder(p, ext);
    else if (e.name.endsWith(ext) && !e.name.endsWith('.d.ts')) yield p;
  }
}

/** The first source whose build output is missing or older than it, or null when dist/ is current. */
export function staleSource(repo = REPO): string | null {
  for (const top of ['src', 'bench']) {
    const dir = path.join(repo, top);
    if (!fs.existsSync(dir)) continue;
    for (const src of filesUnder(dir, '.ts')) {
      const out = path.join(repo, 'dist', path.relative(repo, src)).replace(/\.ts$/, '.js');
      let outMtime: number;
      try {
        outMtime = fs.statSync(out).mtimeMs;
      } catch {
        return src;
      }
      if (fs.statSync(src).mtimeMs > outMtime) return src;
    }
  }
  return null;
}

/**
 * What bin/integ.js runs, dist/bundle/ (tools/bundle.mjs), when it is missing, empty or older than
 * a file of tsc's output it is made from: that file (or the bundle folder), else null.
 */
export function staleBundle(repo = REPO): string | null {
  const dir = path.join(repo, 'dist/bundle');
  let oldest = Number.POSITIVE_INFINITY;
  try {
    for (const f of filesUnder(dir, '.js')) oldest = Math.min(oldest, fs.statSync(f).mtimeMs);
  } catch {
    return dir;
  }
  if (oldest === Number.POSITIVE_INFINITY) return dir;
  for (const f of filesUnder(path.join(repo, 'dist/src'), '.js')) if (fs.statSync(f).mtimeMs > oldest) return f;
  return null;
}

/** Run a build step (a node script) when `stale()` names a file, and fail unless nothing is stale after it. */
function refresh(stale: () => string | null, what: string, script: string, ...args: string[]): void {
  const old = stale();
  if (!old) return;
  process.stderr.write(`global setup: ${what} is older than ${path.relative(REPO, old)}, running ${path.basename(script)}\n`);
  const r = spawnSync(process.execPath, [path.join(REPO, script), ...args], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`global setup: ${script} failed; the tests would run stale code`);
  const still = stale();
  if (still) throw new Error(`global setup: ${what} is still older than ${still} after ${path.basename(script)}`);
}

function build(): void {
  refresh(staleSource, 'dist/', 'node_modules/typescript/bin/tsc', '-p', path.join(REPO, 'tsconfig.json'));
  refresh(staleBundle, 'dist/bundle/', 'tools/bundle.mjs');
  // the native MD5 lanes: the tool itself does nothing when dist/native is newer than native/*.c
  const r = spawnSync(process.execPath, [path.join(REPO, 'tools/build-native.mjs')], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('global setup: tools/build-native.mjs failed; the tests would run stale code');
}

/** Package names the production dependencies need, transitively (npm hoists them into node_modules/). */
function runtimePackages(repo: string): string[] {
  const top = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  return packageClosure(repo, Object.keys(top.dependencies));
}

/** These packages and every package they need, transitively, as installed in repo/node_modules. */
export function packageClosure(repo: string, names: readonly string[]): string[] {
  const seen = new Set<string>();
  const visit = (name: string): void => {
    if (seen.has(name)) return;
    const pj = path.join(repo, 'node_modules', name, 'package.json');
    if (!fs.existsSync(pj)) return; // an optional dependency not installed on this platform
    seen.add(name);
    const m = JSON.parse(fs.readFileSync(pj, 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    for (const d of Object.keys({ ...m.dependencies, ...m.optionalDependencies })) visit(d);
  };
  for (const d of names) visit(d);
  return [...seen].sort();
}

/** Copy what `node bin/integ.js` needs into a fresh folder that every user can read. */
export function stageRuntime(repo = REPO): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-staged-'));
  fs.chmodSync(dir, 0o755);
  for (const p of ['bin', 'dist', 'baselines', 'package.json']) fs.cpSync(path.join(repo, p), path.join(dir, p), { recursive: true });
  for (const name of runtimePackages(repo)) fs.cpSync(path.join(repo, 'node_modules', name), path.join(dir, 'node_modules', name), { recursive: true });
  // Whatever the checkout's modes, the staged copy is readable (and folders traversable) by all.
  const open = (p: string): void => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return;
    fs.chmodSync(p, st.mode | (st.isDirectory() || st.mode & 0o100 ? 0o555 : 0o444));
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) open(path.join(p, e));
  };
  open(dir);
  return dir;
}

export default function setup(project: TestProject): () => void {
  build();
  const staged = process.getuid?.() === 0 ? stageRuntime() : '';
  project.provide('stagedRoot', staged);
  return () => {
    if (staged) fs.rmSync(staged, { recursive: true, force: true });
  };
}
