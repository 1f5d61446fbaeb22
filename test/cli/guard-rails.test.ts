import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { integ, tmpdir } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function setup(): { dir: string; tree: string; db: string; policy: string } {
  const dir = tmpdir();
  dirs.push(dir);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'a'), 'a\n');
  const policy = path.join(dir, 'p.yml');
  fs.writeFileSync(policy, `version: 1\nrules:\n  - name: tree\n    paths: ["${tree}/**"]\n`);
  const db = path.join(dir, 's.db');
  expect(integ(['baseline', '--db', db, '--policy', policy]).code).toBe(0);
  return { dir, tree, db, policy };
}

describe('--expect-digest and full digests', () => {
  it('the check report prints the full digest; --expect-digest takes it as printed, or bare hex; a shortened one is 64', () => {
    const s = setup();
    const args = ['check', '--db', s.db, '--policy', s.policy, '--no-snapshot'];
    const r = integ(args);
    expect(r.code).toBe(0);
    const digest = /baseline #1 (blake3:[0-9a-f]{64}) — exit 0$/m.exec(r.stdout)?.[1];
    expect(digest).toBeDefined();
    expect(integ([...args, '--expect-digest', digest!]).code).toBe(0);
    expect(integ([...args, '--expect-digest', ` ${digest!.slice(7).toUpperCase()} `]).code).toBe(0);
    const other = `blake3:${'0'.repeat(64)}`;
    const wrong = integ([...args, '--expect-digest', other]);
    expect(wrong.code).toBe(16);
    expect(wrong.stderr).toContain(`has digest ${digest}, expected ${other}`);
    const short = integ([...args, '--expect-digest', `${digest!.slice(0, 23)}…`]);
    expect(short.code).toBe(64);
    expect(short.stderr).toMatch(/--expect-digest: expected the full generation digest, .* \(that one was shortened\)\n$/);
  });
});

describe('show: clear messages', () => {
  it('a relative path is a usage error that suggests the absolute one', () => {
    const s = setup();
    const r = integ(['show', 'tree/a', '--db', s.db], { cwd: s.dir });
    expect(r.code).toBe(64);
    expect(r.stderr).toBe(
      `integ: "tree/a" is a relative path; the store records absolute paths as the policy names them (did you mean "${path.join(s.dir, 'tree/a')}"? With --root DIR, give the path without DIR)\n`,
    );
  });

  it('a path no rule covers says so; a covered path that never existed says that', () => {
    const s = setup();
    const r = integ(['show', '/etc/passwd', '--db', s.db]);
    expect(r.code).toBe(66);
    expect(r.stderr).toBe(
      `integ: /etc/passwd is in no generation of ${s.db}: no rule of the policy generation #1 was taken with (${s.policy}) covers it — no rule's paths match it ("integ policy explain /etc/passwd" says more)\n`,
    );
    const c = integ(['show', path.join(s.tree, 'later'), '--db', s.db]);
    expect(c.code).toBe(66);
    expect(c.stderr).toMatch(/is in no generation of .*, though rule "tree" covers it: it did not exist/);
    expect(integ(['show', path.join(s.tree, 'a'), '--db', s.db]).code).toBe(0);
  });
});
