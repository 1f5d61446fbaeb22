import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { BaselineRepo } from '../../src/store/baseline-repo.js';
import { computeGenerationDigest } from '../../src/store/generation-digest.js';
import { canDropToNobody, integ, tmpdir } from '../helpers/cli.js';

/**
 * baseline takes the generation digest from the values it binds to each INSERT, in path order,
 * instead of reading the generation back. These tests hold that digest to the one computed from
 * the stored rows (the way check and verify compute it), over every shape of row, and make sure the
 * baseline really took the fast way (it falls back to reading the rows back, silently but for a
 * debug line, when rows come out of path order).
 */
const d = tmpdir('integ-bdigest-');
afterAll(() => fs.rmSync(d, { recursive: true, force: true }));
const has = (tool: string): boolean => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

/** A tree with many files of mixed sizes (batches then come back out of order) and every entry shape. */
function makeTree(root: string): void {
  fs.mkdirSync(root, { recursive: true });
  let seed = 1;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 40; i++) {
    const sub = path.join(root, `d${String(i).padStart(2, '0')}`);
    fs.mkdirSync(sub);
    for (let j = 0; j < 60; j++) {
      // mostly small files; now and then one of a few MiB, so a batch with it finishes late
      const size = rnd() < 0.01 ? 2_000_000 + Math.floor(rnd() * 3_000_000) : Math.floor(rnd() * 5000);
      fs.writeFileSync(path.join(sub, `f${j}`), crypto.randomBytes(size));
    }
  }
  fs.symlinkSync('d00/f1', path.join(root, 'link'));
  fs.symlinkSync('/nonexistent/target with spaces', path.join(root, 'dangling'));
  spawnSync('mkfifo', [path.join(root, 'fifo')]);
  fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/n`), Buffer.from([0xff, 0xfe, 0x0a, 0x20, 0x22])]), 'newline, space and a quote in the name');
  fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/raw-`), Buffer.from([0xc3, 0x28, 0x80])]), 'not utf-8 name');
  fs.writeFileSync(path.join(root, 'empty'), '');
  const locked = path.join(root, 'unreadable');
  fs.writeFileSync(locked, 'secret');
  fs.chmodSync(locked, 0o000);
  if (has('setfattr')) spawnSync('setfattr', ['-n', 'user.note', '-v', 'a "quoted" value', path.join(root, 'd01/f2')]);
  if (has('setfacl')) spawnSync('setfacl', ['-m', 'u:65534:r', path.join(root, 'd02/f3')]);
}

/** The digest baseline recorded, and the one computed from the stored rows (as verification does). */
function storedDigest(db: string): { recorded: string; recomputed: string } {
  const h = new Database(db, { readonly: true });
  try {
    const g = new BaselineRepo(h).current()!;
    return { recorded: g.digest!, recomputed: computeGenerationDigest(h, g).digest };
  } finally {
    h.close();
  }
}

describe('baseline: the generation digest taken while inserting', () => {
  const tree = path.join(d, 'tree');
  makeTree(tree);
  const policy = path.join(d, 'policy.yml');
  // keep_content adds kept rows, which the digest covers too
  fs.writeFileSync(
    policy,
    `version: 1\nrules:\n  - name: tree\n    severity: high\n    paths: ["${tree}/**"]\n    keep_content: true\n    keep_content_max_bytes: 1KiB\n  - name: other-rule\n    paths: ["${tree}/d39/**"]\n`,
  );

  it.each([2, 0])('equals the digest of the stored rows, over every shape of row (--jobs %i); check accepts the generation', (jobs) => {
    const db = path.join(d, `s${jobs}.db`);
    const b = integ(['baseline', '--db', db, '--policy', policy, '--jobs', String(jobs), '--format', 'json'], { env: { INTEG_LOG_LEVEL: 'debug' } });
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).not.toContain('computed from the store instead');
    const r = storedDigest(db);
    expect(r.recorded).toBe(r.recomputed);
    expect(JSON.parse(b.stdout).digest).toBe(r.recorded);
    // check verifies the stored generation's digest before it compares anything
    const c = integ(['check', '--db', db, '--policy', policy, '--no-snapshot', '--jobs', String(jobs)]);
    expect(c.code, c.stdout + c.stderr).toBe(0);
  });
});

describe.skipIf(!canDropToNobody)('baseline as an unprivileged user: rows with an error code', () => {
  it('an unreadable file is a row with an error, and the digest still equals the stored rows’ one', () => {
    const home = tmpdir('integ-bdigest-nobody-');
    try {
      fs.chmodSync(home, 0o755);
      const tree = path.join(home, 'tree');
      makeTree(tree);
      spawnSync('chmod', ['-R', 'a+rX', tree]);
      fs.chmodSync(path.join(tree, 'unreadable'), 0o000);
      const store = path.join(home, 'store');
      fs.mkdirSync(store, { mode: 0o700 });
      fs.chownSync(store, 65534, 65534);
      const policy = path.join(home, 'policy.yml');
      fs.writeFileSync(policy, `version: 1\nrules:\n  - name: tree\n    paths: ["${tree}/**"]\n`);
      fs.chmodSync(policy, 0o644);
      const db = path.join(store, 's.db');
      const b = integ(['baseline', '--db', db, '--policy', policy, '--format', 'json'], { asNobody: true, env: { INTEG_LOG_LEVEL: 'debug' } });
      expect(b.code, b.stderr).toBe(8); // unreadable
      expect(b.stderr).not.toContain('computed from the store instead');
      expect(JSON.parse(b.stdout).errors.map((e: { code: string }) => e.code)).toContain('EACCES');
      const r = storedDigest(db);
      expect(r.recorded).toBe(r.recomputed);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
