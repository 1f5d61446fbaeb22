/**
 * tools/build-native.mjs: integ's optional native code (native/md5x16.c, MD5 of 32 files at a time in
 * AVX-512; native/scan.c with the vendored BLAKE3 C, a batch of files scanned in one call). Built
 * where a C compiler is; without one the build goes on and the same work runs in JavaScript and
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
  spawnSync(process.execPath, [TOOL, '--out-dir', out], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
const LIBS = ['libinteg-md5x16.so', 'libinteg-scan.so'];

describe.runIf(x64)('tools/build-native.mjs', () => {
  it('no C compiler: exit 0, one line saying what runs in JavaScript and WebAssembly instead, nothing built', () => {
    const out = path.join(dir, 'none');
    const r = build(out, { CC: path.join(dir, 'no-such-cc') });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^build-native: no C compiler \(.*no-such-cc\): .*none not built \(MD5 lanes in WebAssembly, files scanned in JavaScript\)\n$/);
    expect(fs.readdirSync(out)).toEqual([]);
  });

  it('a compiler that fails: exit 1, one line, nothing built and no temporary file left', () => {
    const out = path.join(dir, 'fail');
    const r = build(out, { CC: 'false' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('build-native: false failed on native/md5x16.c\n');
    expect(fs.readdirSync(out)).toEqual([]);
  });

  it.runIf(hasCc)('builds libraries koffi loads, each exporting only its own functions; up to date: not built again', () => {
    const out = path.join(dir, 'ok');
    const r = build(out);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^build-native: .*libinteg-md5x16\.so \(\d+ KiB\)\nbuild-native: .*libinteg-scan\.so \(\d+ KiB\)\n$/);
    expect(fs.readdirSync(out).sort()).toEqual(LIBS);
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    expect(typeof koffi.load(path.join(out, LIBS[0]!)).func('int integ_md5x16_ok(void)')).toBe('function');
    expect(typeof koffi.load(path.join(out, LIBS[1]!)).func('void integ_blake3_hex(const void *data, uint64_t len, void *out)')).toBe('function');
    const exported = (lib: string): string[] | undefined =>
      spawnSync('nm', ['-D', '--defined-only', path.join(out, lib)], { encoding: 'utf8' })
        .stdout.match(/ T (\w+)/g)
        ?.map((m) => m.slice(3))
        .sort();
    if (spawnSync('nm', ['--version']).status === 0) {
      expect(exported(LIBS[0]!)).toEqual(['integ_md5x1', 'integ_md5x16_ok', 'integ_md5x32']);
      expect(exported(LIBS[1]!)).toEqual(['integ_blake3_hex', 'integ_scan', 'integ_scan_lanes']); // BLAKE3's and the MD5 lanes' own stay inside
    }
    const mtimes = LIBS.map((l) => fs.statSync(path.join(out, l)).mtimeMs);
    const again = build(out);
    expect(again.status).toBe(0);
    expect(again.stdout).toBe('');
    expect(LIBS.map((l) => fs.statSync(path.join(out, l)).mtimeMs)).toEqual(mtimes);
  });

  it('npm run build runs it', () => {
    const scripts = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).scripts as Record<string, string>;
    expect(scripts.build).toMatch(/&& node tools\/build-native\.mjs$/);
  });
});
