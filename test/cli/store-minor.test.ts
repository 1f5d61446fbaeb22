import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { integ, tmpdir, writePolicy } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true, maxRetries: 3 });
});

function setup(): { dir: string; tree: string; db: string; policy: string } {
  const dir = tmpdir('integ-minor-');
  dirs.push(dir);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(tree, `f${i}`), `file ${i}\n`);
  return { dir, tree, db: path.join(dir, 's.db'), policy: writePolicy(dir, tree) };
}

/** Another process holding the store's write lock until killed. */
async function holdWriteLock(db: string, exclusive = false): Promise<{ release(): Promise<void> }> {
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  const lock = exclusive
    ? "d.pragma('locking_mode=EXCLUSIVE');d.exec('BEGIN EXCLUSIVE');d.prepare('SELECT 1 FROM generations').get();"
    : "d.exec('BEGIN IMMEDIATE');";
  const p = spawn(
    process.execPath,
    ['-e', `const D=require(${JSON.stringify(sqlite)});const d=new D(${JSON.stringify(db)});${lock}console.log('locked');setInterval(()=>{},1000);`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    p.stdout.once('data', () => resolve());
    p.once('exit', (c) => reject(new Error(`lock holder exited ${c}`)));
  });
  return {
    release: () =>
      new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGKILL');
      }),
  };
}

describe('accept on a busy store', () => {
  it('exits 75 before re-reading any file (a path that changed again would otherwise give 65 after the re-read)', async () => {
    const s = setup();
    expect(integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0']).code).toBe(0);
    fs.writeFileSync(path.join(s.tree, 'f0'), 'changed\n');
    expect(integ(['check', '--db', s.db, '--policy', s.policy, '--no-snapshot', '--jobs', '0']).code).toBe(4);
    fs.writeFileSync(path.join(s.tree, 'f0'), 'changed again, after the check\n');
    const lock = await holdWriteLock(s.db);
    try {
      const r = integ(['accept', '--all', '--note', 'x', '--db', s.db, '--policy', s.policy]);
      expect(r.code, r.stderr).toBe(75);
      expect(r.stderr).toBe(`integ: ${s.db}: another integ run holds the store; try again later\n`);
    } finally {
      await lock.release();
    }
    // Once free, the re-read runs and finds the drift.
    expect(integ(['accept', '--all', '--note', 'x', '--db', s.db, '--policy', s.policy]).code).toBe(65);
  });
});

describe('a store locked even for readers', () => {
  it('read-only commands exit 75 with one line (not an internal error)', async () => {
    const s = setup();
    expect(integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0']).code).toBe(0);
    const lock = await holdWriteLock(s.db, true);
    try {
      for (const args of [
        ['history', '--db', s.db],
        ['check', '--db', s.db, '--policy', s.policy, '--no-snapshot', '--jobs', '0'],
      ]) {
        const r = integ(args);
        expect(r.code, r.stderr).toBe(75);
        expect(r.stderr).toBe(`integ: ${s.db}: another integ run holds the store; try again later\n`);
      }
    } finally {
      await lock.release();
    }
  });
});

describe('history says when the chain does not verify', () => {
  it('lists the generations, names the problem, exits 16', () => {
    const s = setup();
    expect(integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0']).code).toBe(0);
    expect(integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0']).code).toBe(0);
    const ok = integ(['history', '--db', s.db]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/chain verified/);
    const db = new Database(s.db);
    const changed = db.prepare("UPDATE generations SET digest = 'blake3:' || hex(zeroblob(32)) WHERE id = 1").run().changes;
    db.close();
    expect(changed).toBe(1);
    const t = integ(['history', '--db', s.db]);
    expect(t.code).toBe(16);
    expect(t.stdout).toMatch(/#1 [\s\S]*#2 /);
    expect(t.stdout).toMatch(/THE CHAIN DOES NOT VERIFY[\s\S]*generation #2: records parent digest/);
    expect(t.stderr).toMatch(/^integ: the chain of generations in .* does not verify \(1 problem, listed in the report\)\n$/);
    const j = integ(['history', '--db', s.db, '--format', 'json']);
    expect(j.code).toBe(16);
    expect((JSON.parse(j.stdout) as { chain: { verified: boolean; problems: string[] } }).chain).toMatchObject({
      verified: false,
      problems: [expect.stringMatching(/generation #2/)],
    });
  });
});
