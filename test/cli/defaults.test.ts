import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canDropToNobody, integ, tmpdir, writePolicy } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('zero configuration', () => {
  // The default policy covers /usr/local and /opt like AIDE does: on a machine with gigabytes
  // there (this image keeps package caches in /opt) a cold baseline takes minutes.
  it('baseline then check on the embedded default policy, with no flags; an unchanged host stays at exit 0', { timeout: 900_000 }, () => {
    const d = tmpdir();
    dirs.push(d);
    const env = { INTEG_DB: path.join(d, 'integ.db'), INTEG_EVIDENCE: path.join(d, 'ev') };
    const b = integ(['baseline'], { env, timeout: 420_000 });
    expect([0, 8]).toContain(b.code); // 8 only when run unprivileged
    expect(b.stdout).toMatch(/baseline #1 recorded: \d+ entries, [\d.]+ MB in [\d.]+ s \([\d.]+ MB\/s\)/);
    const c = integ(['check', '--format', 'json'], { env, timeout: 420_000 });
    const j = JSON.parse(c.stdout) as { policy: { source: string }; summary: { scanned: number; added: number; removed: number; changed: number } };
    expect(j.policy.source).toMatch(/embedded default policy/);
    expect(j.summary.scanned).toBeGreaterThan(100);
    expect(j.summary).toMatchObject({ added: 0, removed: 0, changed: 0 });
    expect(c.code).toBe(b.code);
  });

  it('INTEG_POLICY picks the policy; a non-root user gets a store under XDG_STATE_HOME', () => {
    const d = tmpdir();
    dirs.push(d);
    fs.chmodSync(d, 0o777);
    const tree = path.join(d, 'tree');
    fs.mkdirSync(tree);
    fs.writeFileSync(path.join(tree, 'a'), 'a');
    const policy = writePolicy(d, tree);
    fs.chmodSync(policy, 0o644);
    const state = path.join(d, 'state');
    fs.mkdirSync(state, { mode: 0o777 });
    fs.chmodSync(state, 0o777);
    // As root, run as nobody: the point is the per-user store location.
    const asNobody = canDropToNobody;
    const env = { INTEG_POLICY: policy, XDG_STATE_HOME: state, HOME: d };
    expect(integ(['baseline'], { env, asNobody }).code).toBe(0);
    expect(fs.existsSync(path.join(state, 'integ', 'integ.db'))).toBe(true);
    fs.writeFileSync(path.join(tree, 'b'), 'b');
    expect(integ(['check', '--no-snapshot'], { env, asNobody }).code).toBe(1);
  });
});
