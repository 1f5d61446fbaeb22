import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, REPO, canDropToNobody, integ, integSpawn, scrubbedEnv, tmpdir, waitForStderr, writePolicy } from '../helpers/cli.js';

const dirs: string[] = [];
function setup(files = 3): { dir: string; tree: string; db: string; policy: string } {
  const dir = tmpdir();
  dirs.push(dir);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  for (let i = 0; i < files; i++) fs.writeFileSync(path.join(tree, `f${i}`), `file ${i}\n`);
  return { dir, tree, db: path.join(dir, 's.db'), policy: writePolicy(dir, tree) };
}

afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true, maxRetries: 3 });
});

function oneLine(stderr: string): void {
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
}

describe("bad input: one clear line and the contract's exit code", () => {
  it('64 for an unknown flag or a bad --jobs / --format', () => {
    const s = setup();
    expect(integ(['check', '--bogus']).code).toBe(64);
    const j = integ(['check', '--jobs', 'many', '--db', s.db]);
    expect(j.code).toBe(64);
    expect(j.stderr).toBe('integ: --jobs must be a whole number >= 0, got "many"\n');
    expect(integ(['check', '--format', 'xml', '--db', s.db]).code).toBe(64);
  });

  it('65 for an invalid policy, naming file, line and what was expected', () => {
    const s = setup();
    fs.writeFileSync(s.policy, 'version: 1\nrules:\n  - name: x\n    paths: ["/tmp/**"]\n    severity: severe\n');
    const r = integ(['baseline', '--db', s.db, '--policy', s.policy]);
    expect(r.code).toBe(65);
    expect(r.stderr).toBe(`integ: ${s.policy}:5:15: rules[0].severity: expected one of low | medium | high | critical, got "severe"\n`);
    expect(fs.existsSync(s.db)).toBe(false);
  });

  it('66 when there is no baseline yet or the policy file is missing', () => {
    const s = setup();
    const r = integ(['check', '--db', s.db, '--policy', s.policy, '--no-snapshot']);
    expect(r.code).toBe(66);
    expect(r.stderr).toMatch(/no baseline yet/);
    oneLine(r.stderr);
    expect(integ(['baseline', '--db', s.db, '--policy', '/nonexistent.yml']).code).toBe(66);
  });

  it('16 for a corrupt store or one from a newer version, and the file is left exactly as it was', async () => {
    const s = setup();
    fs.writeFileSync(s.db, 'this is not a database, it is a text file that is long enough to have a header'.repeat(20));
    const before = fs.readFileSync(s.db);
    for (const cmd of ['check', 'baseline']) {
      const r = integ([cmd, '--db', s.db, '--policy', s.policy, ...(cmd === 'check' ? ['--no-snapshot'] : [])]);
      expect(r.code).toBe(16);
      oneLine(r.stderr);
      expect(r.stderr).toMatch(/corrupt or not an integ store/);
    }
    expect(fs.readFileSync(s.db).equals(before)).toBe(true);
    const s2 = setup();
    expect(integ(['baseline', '--db', s2.db, '--policy', s2.policy]).code).toBe(0);
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(s2.db);
    db.pragma('user_version = 99');
    db.close();
    const r = integ(['check', '--db', s2.db, '--policy', s2.policy, '--no-snapshot']);
    expect(r.code).toBe(16);
    expect(r.stderr).toMatch(/newer than this integ understands/);
  });

  it('73 when the store cannot be created', () => {
    const s = setup();
    const r = integ(['baseline', '--db', path.join(s.tree, 'f0', 'sub', 's.db'), '--policy', s.policy]);
    expect(r.code).toBe(73);
    oneLine(r.stderr);
  });

  it('--help lists examples and loads neither SQLite nor the wasm hasher', () => {
    const r = integ(['check', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Examples:/);
    const probe = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
      import { createRequire } from 'node:module';
      const { buildProgram } = await import(${JSON.stringify(path.join(REPO, 'dist/src/cli.js'))});
      const p = buildProgram(); p.configureOutput({ writeOut: () => {} });
      for (const argv of [['--help'], ['check', '--help'], ['baseline', '--help']]) { try { await p.parseAsync(['node', 'integ', ...argv]); } catch {} }
      const loaded = Object.keys(createRequire(import.meta.url).cache);
      process.stderr.write('LOADED ' + JSON.stringify(loaded.filter((k) => /better-sqlite3|blake3-wasm/.test(k))) + '\\n');
    `,
      ],
      { encoding: 'utf8' },
    );
    expect(probe.stdout).toMatch(/Usage: integ check/);
    const line = probe.stderr.split('\n').find((l) => l.startsWith('LOADED '));
    expect(JSON.parse(line!.slice(7))).toEqual([]);
  });
});

describe('unreadable entries (run as an unprivileged user)', () => {
  it.runIf(canDropToNobody)('lists them with their code, adds 8 to the exit code, and completes', () => {
    const s = setup();
    fs.chmodSync(s.dir, 0o755);
    fs.writeFileSync(path.join(s.tree, 'secret'), 'secret');
    fs.chmodSync(path.join(s.tree, 'secret'), 0o600);
    fs.mkdirSync(path.join(s.tree, 'private'));
    fs.writeFileSync(path.join(s.tree, 'private', 'inner'), 'x');
    fs.chmodSync(path.join(s.tree, 'private'), 0o700);
    const store = path.join(s.dir, 'store');
    fs.mkdirSync(store, { mode: 0o777 });
    fs.chmodSync(store, 0o777);
    const db = path.join(store, 's.db');
    const b = integ(['baseline', '--db', db, '--policy', s.policy, '--jobs', '1'], { asNobody: true });
    expect(b.code).toBe(8);
    expect(b.stdout).toMatch(/EACCES +.*\/secret: permission denied/);
    expect(b.stdout).toMatch(/EACCES +.*\/private: permission denied/);
    const c = integ(['check', '--db', db, '--policy', s.policy, '--jobs', '1', '--no-snapshot', '--format', 'json'], { asNobody: true });
    expect(c.code).toBe(8);
    const rep = JSON.parse(c.stdout) as { errors: Array<{ path: string; code: string }>; summary: { errors: number; removed: number } };
    expect(rep.errors.map((e) => [path.basename(e.path), e.code])).toEqual([
      ['private', 'EACCES'],
      ['secret', 'EACCES'],
    ]);
    expect(rep.summary.removed).toBe(0);
    // The store is private: 0600 file in a 0700 folder when integ creates it.
    const own = path.join(s.dir, 'own', 'deep', 's.db');
    expect(integ(['baseline', '--db', own, '--policy', s.policy]).code).toBe(0);
    expect(fs.statSync(own).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(own)).mode & 0o777).toBe(0o700);
  });
});

describe('crash safety and concurrency', () => {
  /**
   * A tree that takes far longer to hash than the test needs to act (one 64 GiB sparse file:
   * half a minute even at 2 GB/s), so the run is certainly still holding the lock when the test
   * signals it; interrupting it is immediate (workers are stopped, not waited for).
   */
  function slowSetup(): ReturnType<typeof setup> {
    const s = setup(5);
    const fd = fs.openSync(path.join(s.tree, 'big'), 'w');
    fs.ftruncateSync(fd, 64 * 1024 ** 3);
    fs.closeSync(fd);
    return s;
  }

  /** Written once the store's write lock is held and the new generation is open (a debug log line). */
  const LOCKED = /store locked, generation begun/;
  const debug = { env: { INTEG_LOG_LEVEL: 'debug' } };

  function generations(db: string): number[] {
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        `const D=require(${JSON.stringify(path.join(REPO, 'node_modules/better-sqlite3'))});const d=new D(${JSON.stringify(db)},{readonly:true});console.log(JSON.stringify({g:d.prepare('select id from generations').all().map(r=>r.id),ok:d.pragma('integrity_check',{simple:true})}))`,
      ],
      { encoding: 'utf8' },
    );
    const o = JSON.parse(r.stdout) as { g: number[]; ok: string };
    expect(o.ok).toBe('ok');
    return o.g;
  }

  it('kill -9 during baseline leaves the previous generation current and the store intact', async () => {
    const s = slowSetup();
    fs.writeFileSync(path.join(s.dir, 'small.yml'), `version: 1\nrules:\n  - name: t\n    paths: ["${s.tree}/f*"]\n`);
    expect(integ(['baseline', '--db', s.db, '--policy', path.join(s.dir, 'small.yml')]).code).toBe(0);
    const child = integSpawn(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '1'], debug);
    await waitForStderr(child, LOCKED);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(generations(s.db)).toEqual([1]);
    const c = integ(['check', '--db', s.db, '--policy', path.join(s.dir, 'small.yml'), '--no-snapshot']);
    expect(c.code).toBe(0);
  });

  it('Ctrl-C during baseline exits 130 and keeps the previous generation; a second run meanwhile exits 75', async () => {
    const s = slowSetup();
    fs.writeFileSync(path.join(s.dir, 'small.yml'), `version: 1\nrules:\n  - name: t\n    paths: ["${s.tree}/f*"]\n`);
    expect(integ(['baseline', '--db', s.db, '--policy', path.join(s.dir, 'small.yml')]).code).toBe(0);
    const child = integSpawn(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '1'], debug);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitForStderr(child, LOCKED);
    const second = integ(['baseline', '--db', s.db, '--policy', path.join(s.dir, 'small.yml')]);
    expect(second.code).toBe(75);
    expect(second.stderr).toMatch(/another integ run holds the store/);
    const check = integ(['check', '--db', s.db, '--policy', path.join(s.dir, 'small.yml'), '--no-snapshot']);
    expect(check.code).toBe(75);
    child.kill('SIGINT');
    const code = await new Promise((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(130);
    expect(stderr).toMatch(/SIGINT received/);
    expect(generations(s.db)).toEqual([1]);
  });
});

describe('progress', () => {
  const hasScript = spawnSync('script', ['--version']).status === 0;
  it.runIf(hasScript)('draws a bar with entries, bytes, rate and ETA on a terminal, and nothing when stderr is not one', () => {
    const s = setup(50);
    expect(integ(['baseline', '--db', s.db, '--policy', s.policy]).stderr).toBe('');
    const cmd = `${process.execPath} ${BIN} check --db ${s.db} --policy ${s.policy} --no-snapshot --jobs 1`;
    const { INTEG_NO_PROGRESS: _, ...env } = scrubbedEnv(); // progress on: that is what is tested
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env });
    expect(r.stdout).toMatch(/check \[[#.]+\] \d+% \d+ entries, [\d.]+ [kMG]?B, [\d.]+ [kMG]?B\/s, ETA \d+s/);
    expect(r.stdout).toMatch(/OK \d+ scanned, 0 added/);
  });
});

describe('colour', () => {
  const hasScript = spawnSync('script', ['--version']).status === 0;
  it.runIf(hasScript)('is on for a terminal and off with NO_COLOR', () => {
    const s = setup(1);
    expect(integ(['baseline', '--db', s.db, '--policy', s.policy]).code).toBe(0);
    const cmd = `${process.execPath} ${BIN} check --db ${s.db} --policy ${s.policy} --no-snapshot`;
    const { NO_COLOR: _, ...colourful } = scrubbedEnv({ TERM: 'xterm-256color' });
    const run = (env: Record<string, string>) => spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...colourful, ...env } }).stdout;
    expect(run({})).toContain('\u001b[32mOK');
    expect(run({ NO_COLOR: '1' })).not.toContain('\u001b[');
  });
});

describe('a full disk', () => {
  const canMount =
    process.getuid?.() === 0 &&
    (() => {
      const d = tmpdir();
      const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', d]).status === 0;
      if (ok) spawnSync('umount', [d]);
      fs.rmSync(d, { recursive: true, force: true });
      return ok;
    })();
  it.runIf(canMount)('baseline exits 74 with one line, and the previous generation stays current', () => {
    const s = setup(2);
    const mnt = tmpdir();
    dirs.push(mnt);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=400k', 'tmpfs', mnt]).status).toBe(0);
    try {
      const db = path.join(mnt, 's.db');
      expect(integ(['baseline', '--db', db, '--policy', s.policy]).code).toBe(0);
      for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(s.tree, `many-${i}-${'x'.repeat(100)}`), '');
      const r = integ(['baseline', '--db', db, '--policy', s.policy]);
      expect(r.code).toBe(74);
      expect(r.stderr).toMatch(/no space left on device; the previous baseline is unchanged/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      fs.rmSync(s.tree, { recursive: true });
      fs.mkdirSync(s.tree);
      for (let i = 0; i < 2; i++) fs.writeFileSync(path.join(s.tree, `f${i}`), `file ${i}\n`);
      const c = integ(['check', '--db', db, '--policy', s.policy, '--no-snapshot', '--format', 'json']);
      expect((JSON.parse(c.stdout) as { baseline: { generation: number } }).baseline.generation).toBe(1);
    } finally {
      spawnSync('umount', ['-l', mnt]);
    }
  });
});

describe('--log FILE', () => {
  it('writes JSON log lines to the file (0600) and keeps stderr clean', () => {
    const s = setup(2);
    const log = path.join(s.dir, 'integ.log');
    expect(integ(['baseline', '--db', s.db, '--policy', s.policy, '--log', log], { env: { INTEG_LOG_LEVEL: 'info' } }).stderr).toBe('');
    expect(fs.statSync(log).mode & 0o777).toBe(0o600);
    const lines = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; level: number });
    expect(lines.map((l) => l.msg)).toEqual(['baseline started', 'baseline recorded', 'baseline finished']);
  });
});
