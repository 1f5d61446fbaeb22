import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/trust/keys.js';
import { integ as run } from '../helpers/cli.js';

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A temp tree under a two-rule policy (t: everything, conf: the conf/ folder), and a runner bound to its store. */
function scenario() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-accept-'));
  dirs.push(dir);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'conf'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'a'), 'a\n');
  fs.writeFileSync(path.join(tree, 'b'), 'b\n');
  fs.writeFileSync(path.join(tree, 'conf', 'c.conf'), 'c=1\n');
  const policy = path.join(dir, 'p.yml');
  fs.writeFileSync(policy, `version: 1\nrules:\n  - name: t\n    paths: ["${tree}/**"]\n  - name: conf\n    severity: high\n    paths: ["${tree}/conf/**"]\n`);
  const db = path.join(dir, 's.db');
  const integ = (...args: string[]): Run => {
    const r = run(args);
    return { ...r, status: r.code };
  };
  const s = {
    dir,
    tree,
    policy,
    db,
    integ,
    p: (rel: string) => path.join(tree, rel),
    baseline: (...extra: string[]) => integ('baseline', '--db', db, '--policy', policy, '--jobs', '0', ...extra),
    check: (...extra: string[]) => integ('check', '--db', db, '--policy', policy, '--jobs', '0', '--no-snapshot', ...extra),
    accept: (...args: string[]) => integ('accept', '--db', db, '--policy', policy, ...args),
    checkJson: () =>
      JSON.parse(s.check('--format', 'json').stdout) as {
        exit_code: number;
        baseline: { generation: number; digest: string };
        changes: { path: string; kind: string; rule: string }[];
      },
    generations: () =>
      (JSON.parse(integ('history', '--db', db, '--format', 'json').stdout) as { generations: { generation: number; kind: string; note: string }[] })
        .generations,
  };
  return s;
}

/** Baseline, then: a changed, b removed, n added, conf/c.conf changed; then check (exit 7). */
function withFindings() {
  const s = scenario();
  expect(s.baseline('--note', 'first').status).toBe(0);
  fs.appendFileSync(s.p('a'), 'more\n');
  fs.rmSync(s.p('b'));
  fs.writeFileSync(s.p('n'), 'new\n');
  fs.writeFileSync(s.p('conf/c.conf'), 'c=2\n');
  expect(s.check().status).toBe(7);
  return s;
}

describe('integ accept', () => {
  it('folds one path into a new accept generation recording who, when, why and the parent; the next check no longer reports it', () => {
    const s = withFindings();
    const before = s.generations()[0]!;
    const r = s.accept(s.p('a'), '--note', 'CHG-1: a grew', '--format', 'json');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.schema).toBe('integ.accept/1');
    expect(j.generation).toMatchObject({
      generation: 2,
      kind: 'accept',
      note: 'CHG-1: a grew',
      user: os.userInfo().username,
      uid: process.getuid!(),
      signed: false,
    });
    expect(j.generation.digest).toMatch(/^blake3:[0-9a-f]{64}$/);
    expect(j.generation.parent).toEqual({ generation: 1, digest: expect.stringMatching(/^blake3:/) });
    expect(j.accepted).toEqual([expect.objectContaining({ path: s.p('a'), kind: 'changed', rule: 't', recheck: 'same' })]);
    expect(j.remaining).toBe(3);
    expect(before.generation).toBe(1);
    const c = s.checkJson();
    expect(c.baseline.generation).toBe(2);
    expect(c.baseline.digest).toBe(j.generation.digest);
    expect(c.changes.map((x) => x.path).sort()).toEqual([s.p('b'), s.p('conf/c.conf'), s.p('n')]);
  });

  it('--all accepts added, removed and changed findings; the next check is clean', () => {
    const s = withFindings();
    const r = s.accept('--all', '--note', 'release 1.2');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/accepted 4 findings of check run #1 .* into generation #2 \(accept, parent #1\)/);
    expect(r.stdout).toMatch(/^digest blake3:[0-9a-f]{64}$/m);
    expect(s.check().status).toBe(0);
  });

  it("--rule accepts only that rule's findings, and a path of another rule is refused", () => {
    const s = withFindings();
    const bad = s.accept(s.p('a'), '--rule', 'conf', '--note', 'x');
    expect(bad.status).toBe(64);
    expect(bad.stderr).toMatch(/is a finding of rule "t", not "conf"/);
    const r = s.accept('--rule', 'conf', '--note', 'config rollout', '--format', 'json');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).accepted.map((a: { path: string }) => a.path)).toEqual([s.p('conf/c.conf')]);
    expect(s.checkJson().changes.map((x) => x.rule)).not.toContain('conf');
    expect(s.accept('--rule', 'nosuch', '--note', 'x').stderr).toMatch(/no open finding of rule "nosuch"/);
  });

  it('refuses (65, nothing written) when an accepted path changed again since the check; --force records what the check saw', () => {
    const s = withFindings();
    fs.appendFileSync(s.p('a'), 'and again\n');
    const r = s.accept(s.p('a'), s.p('n'), '--note', 'x');
    expect(r.status).toBe(65);
    expect(r.stderr).toContain(`${s.p('a')}: content, size`);
    expect(r.stderr).toMatch(/changed again since the check .*Nothing was written/s);
    expect(r.stderr).not.toContain(`${s.p('n')}:`);
    expect(s.generations()).toHaveLength(1);
    // A removed finding that reappeared is a change too.
    fs.writeFileSync(s.p('b'), 'back\n');
    expect(s.accept(s.p('b'), '--note', 'x').stderr).toMatch(/exists again/);

    const f = s.accept(s.p('a'), '--note', 'forced', '--force', '--format', 'json');
    expect(f.status, f.stderr).toBe(0);
    expect(JSON.parse(f.stdout).accepted[0]).toMatchObject({ recheck: 'forced', changed_since: expect.arrayContaining(['content', 'size']) });
    // The generation holds what the check saw, so the newer change is reported.
    const c = s.checkJson();
    expect(c.changes.find((x) => x.path === s.p('a'))).toMatchObject({ kind: 'changed' });
  });

  it('usage errors (64): no --note, nothing named, an unknown path, no prior check; nothing is written', () => {
    const s = scenario();
    expect(s.baseline().status).toBe(0);
    const none = s.accept(s.p('a'), '--note', 'x');
    expect(none.status).toBe(64);
    expect(none.stderr).toMatch(/no check has been run/);
    fs.appendFileSync(s.p('a'), 'x');
    expect(s.check().status).toBe(4);
    const noNote = s.accept(s.p('a'));
    expect(noNote.status).toBe(64);
    expect(noNote.stderr).toMatch(/--note TEXT is required/);
    const nothing = s.accept('--note', 'x');
    expect(nothing.status).toBe(64);
    expect(nothing.stderr).toMatch(/nothing to accept/);
    const unknown = s.accept(s.p('a'), s.p('zzz'), '--note', 'x');
    expect(unknown.status).toBe(64);
    expect(unknown.stderr).toContain(`not among the findings of the last check (run #1): ${s.p('zzz')}`);
    expect(s.accept(s.p('a'), '--all', '--note', 'x').status).toBe(64);
    expect(s.generations()).toHaveLength(1);
    expect(s.integ('accept', '--db', path.join(s.dir, 'missing.db'), '--all', '--note', 'x').status).toBe(66);
    expect(fs.existsSync(path.join(s.dir, 'missing.db'))).toBe(false);
  });

  it('refuses stale findings (65) once another baseline became current, but allows accepting one check in several steps', () => {
    const s = withFindings();
    expect(s.accept(s.p('a'), '--note', 'step 1').status).toBe(0);
    expect(s.accept(s.p('n'), '--note', 'step 2').status).toBe(0);
    const again = s.accept(s.p('a'), '--note', 'twice');
    expect(again.status).toBe(64);
    expect(again.stderr).toMatch(/already accepted from check run #1 into generation #2/);
    expect(s.generations().map((g) => g.note)).toEqual(['first', 'step 1', 'step 2']);
    expect(s.baseline('--note', 'rebaseline').status).toBe(0);
    const stale = s.accept(s.p('b'), '--note', 'x');
    expect(stale.status).toBe(65);
    expect(stale.stderr).toMatch(/compared against generation #1, but generation #4 .* is current now; its findings are stale/);
    expect(s.generations()).toHaveLength(4);
  });

  it('takes b64: paths for names that are not UTF-8, and signs with --sign-key so check --verify-key passes', async () => {
    const s = scenario();
    const key = (await generateKeyPair(path.join(s.dir, 'k'))).privatePath;
    expect(s.baseline('--sign-key', key).status).toBe(0);
    const odd = Buffer.concat([Buffer.from(`${s.tree}/`), Buffer.from([0x66, 0xff, 0x0a])]); // "f\xff\n"
    fs.writeFileSync(odd, 'odd');
    expect(s.check().status).toBe(1);
    const r = s.accept(`b64:${odd.toString('base64')}`, '--note', 'odd name reviewed', '--sign-key', key, '--format', 'json');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.accepted[0].path_b64).toBe(odd.toString('base64'));
    expect(j.generation.signed).toBe(true);
    expect(j.generation.key_id).toMatch(/^[0-9a-f]{16}$/);
    expect(s.check('--verify-key', `${key}.pub`).status).toBe(0);
  });
});
