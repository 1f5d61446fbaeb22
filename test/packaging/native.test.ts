/**
 * tools/build-native.mjs: integ's optional native code (native/md5x16.c, MD5 of 32 files at a time in
 * AVX-512). Built where a C compiler is; without one the build goes on and the MD5 lanes run in
 * WebAssembly; a compiler that fails stops the build.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, tmpdir } from '../helpers/cli.js';

const TOOL = path.join(REPO, 'tools/build-native.mjs');
const hasCc = spawnSync('cc', ['--version']).status === 0;
const x64 = process.platform === 'linux' && process.arch === 'x64';
if (!hasCc || !x64) console.log(`skipping the native build test: ${hasCc ? 'not linux-x64' : 'no C compiler (Debian package gcc)'}`);

const dir = tmpdir('integ-native-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const build = (out: string, env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [TOOL, '--out', out], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });

describe.runIf(x64)('tools/build-native.mjs', () => {
  it('no C compiler: exit 0, one line saying the lanes run in WebAssembly, nothing built', () => {
    const out = path.join(dir, 'none', 'lib.so');
    const r = build(out, { CC: path.join(dir, 'no-such-cc') });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^build-native: no C compiler \(.*no-such-cc\): .*lib\.so not built, MD5 lanes in WebAssembly\n$/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('a compiler that fails: exit 1, one line, nothing built and no temporary file left', () => {
    const out = path.join(dir, 'fail', 'lib.so');
    const r = build(out, { CC: 'false' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('build-native: false failed on native/md5x16.c\n');
    expect(fs.readdirSync(path.dirname(out))).toEqual([]);
  });

  it.runIf(hasCc)('builds a library koffi loads, exporting only its three functions; up to date: not built again', () => {
    const out = path.join(dir, 'ok', 'lib.so');
    const r = build(out);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^build-native: .*lib\.so \(\d+ KiB\)\n$/);
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const lib = koffi.load(out);
    expect(typeof lib.func('int integ_md5x16_ok(void)')).toBe('function');
    const nm = spawnSync('nm', ['-D', '--defined-only', out], { encoding: 'utf8' });
    if (nm.status === 0)
      expect(
        nm.stdout
          .match(/ T (\w+)/g)
          ?.map((m) => m.slice(3))
          .sort(),
      ).toEqual(['integ_md5x1', 'integ_md5x16_ok', 'integ_md5x32']);
    const mtime = fs.statSync(out).mtimeMs;
    const again = build(out);
    expect(again.status).toBe(0);
    expect(again.stdout).toBe('');
    expect(fs.statSync(out).mtimeMs).toBe(mtime);
  });

  it('npm run build runs it', () => {
    const scripts = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).scripts as Record<string, string>;
    expect(scripts.build).toMatch(/&& node tools\/build-native\.mjs$/);
  });
});
