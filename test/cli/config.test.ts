import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, integ, tmpdir } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A config folder (integ.yml + policy.yml relative to it) and a tree it covers. */
function setup(extra = ''): { dir: string; tree: string; conf: string; db: string; env: Record<string, string> } {
  const dir = tmpdir();
  dirs.push(dir);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(tree, 'var'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'etc', 'a.conf'), 'a\n');
  fs.writeFileSync(path.join(tree, 'var', 'cache'), 'c\n');
  const etc = path.join(dir, 'etc-integ');
  fs.mkdirSync(etc);
  fs.writeFileSync(path.join(etc, 'policy.yml'), `version: 1\nrules:\n  - name: etc\n    severity: high\n    paths: ["${tree}/etc/**"]\n`);
  const db = path.join(dir, 'state', 'integ.db');
  const conf = path.join(etc, 'integ.yml');
  fs.writeFileSync(conf, `# test configuration\ndb: ${db}\npolicy: policy.yml\nevidence: ${path.join(dir, 'evidence')}\n${extra}`);
  return { dir, tree, conf, db, env: { INTEG_CONFIG: conf } };
}

describe('configuration file', () => {
  it('supplies store, policy and format; flags and INTEG_* variables win', () => {
    const s = setup('format: ndjson\n');
    expect(integ(['baseline'], { env: s.env }).code).toBe(0);
    expect(fs.existsSync(s.db)).toBe(true);
    fs.appendFileSync(path.join(s.tree, 'etc', 'a.conf'), 'x\n');
    const r = integ(['check', '--no-snapshot'], { env: s.env });
    expect(r.code).toBe(4);
    const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(last).toMatchObject({ type: 'summary', policy: path.join(path.dirname(s.conf), 'policy.yml') });
    // --format on the command line wins over the file; INTEG_DB wins over the file's db.
    expect(integ(['check', '--no-snapshot', '--format', 'text'], { env: s.env }).stdout).toMatch(/^HIGH \(1\)/);
    const other = path.join(s.dir, 'other.db');
    const r2 = integ(['check', '--no-snapshot'], { env: { ...s.env, INTEG_DB: other } });
    expect(r2.code).toBe(66);
    expect(r2.stdout).toContain(other);
    expect(integ(['check', '--no-snapshot', '--db', other], { env: s.env }).code).toBe(66);
  });

  it('a bad configuration is 65 naming file and line; a missing $INTEG_CONFIG is 66; --help still works', () => {
    const s = setup('colour: yes\n');
    const r = integ(['check'], { env: s.env });
    expect(r.code).toBe(65);
    expect(r.stderr).toBe(
      `integ: ${s.conf}:5:9: (top level): unknown setting "colour" (known: db, evidence, policy, sign_key, verify_key, format, log_level, syslog)\n`,
    );
    fs.writeFileSync(s.conf, 'db: /x\nformat: xml\n');
    expect(integ(['check'], { env: s.env }).stderr).toBe(`integ: ${s.conf}:2:9: format: expected one of text | json | ndjson | ecs, got "xml"\n`);
    const m = integ(['check'], { env: { INTEG_CONFIG: path.join(s.dir, 'nope.yml') } });
    expect(m.code).toBe(66);
    expect(m.stderr).toMatch(/configuration file not found: .*nope\.yml/);
    expect(integ(['check', '--help'], { env: s.env }).code).toBe(0);
  });

  it('policy.d drop-ins extend the configured policy (a later rule can narrow); errors name the drop-in', () => {
    const s = setup();
    const pd = path.join(path.dirname(s.conf), 'policy.d');
    fs.mkdirSync(pd);
    fs.writeFileSync(path.join(pd, '50-var.yml'), `version: 1\nrules:\n  - name: var\n    severity: low\n    paths: ["${s.tree}/var/**"]\n`);
    const pc = integ(['policy', 'check'], { env: s.env });
    expect(pc.code).toBe(0);
    expect(pc.stdout).toContain(`drop-ins: ${path.join(pd, '50-var.yml')}`);
    expect(pc.stdout).toMatch(/#2 var \[low\]/);
    const ex = integ(['policy', 'explain', path.join(s.tree, 'var', 'cache')], { env: s.env });
    expect(ex.code).toBe(0);
    expect(ex.stdout).toMatch(/governed by rule #2 "var": it matches ".*\/var\/\*\*"/);
    expect(integ(['baseline'], { env: s.env }).code).toBe(0);
    fs.appendFileSync(path.join(s.tree, 'var', 'cache'), 'more\n');
    const c = integ(['check', '--no-snapshot', '--format', 'json'], { env: s.env });
    expect(c.code).toBe(4);
    expect(JSON.parse(c.stdout).changes.map((x: { rule: string }) => x.rule)).toEqual(['var']);
    // --policy bypasses the drop-ins
    const direct = integ(['policy', 'explain', path.join(s.tree, 'var', 'cache'), '--policy', path.join(path.dirname(s.conf), 'policy.yml')], { env: s.env });
    expect(direct.code).toBe(1);
    expect(direct.stdout).toMatch(/not covered: no rule's paths match it/);
    // errors
    fs.writeFileSync(path.join(pd, '60-bad.yml'), 'version: 1\nrules:\n  - name: bad\n    paths: ["relative/**"]\n');
    const bad = integ(['policy', 'check'], { env: s.env });
    expect(bad.code).toBe(65);
    expect(bad.stderr).toBe(`integ: ${path.join(pd, '60-bad.yml')}:4:13: rules[0].paths[0]: expected an absolute path or glob starting with "/"\n`);
    fs.writeFileSync(path.join(pd, '60-bad.yml'), `version: 1\nhash: sha256\nrules:\n  - name: x\n    paths: ["/x"]\n`);
    expect(integ(['policy', 'check'], { env: s.env }).stderr).toMatch(/60-bad\.yml: a policy drop-in may only add "rules" and "exclude", not "hash"/);
    fs.writeFileSync(path.join(pd, '60-bad.yml'), `version: 1\nrules:\n  - name: etc\n    paths: ["/x"]\n`);
    expect(integ(['policy', 'check'], { env: s.env }).stderr).toMatch(/60-bad\.yml: rule name "etc" is already used in/);
  });

  it("policy explain: global excludes, a rule's own exclude, and a relative path", () => {
    const s = setup();
    const pol = path.join(s.dir, 'p.yml');
    fs.writeFileSync(
      pol,
      'version: 1\nexclude: ["/etc/mtab"]\nrules:\n  - name: all\n    paths: ["/etc/**"]\n  - name: ssh\n    severity: critical\n    paths: ["/etc/ssh/**"]\n    exclude: ["/etc/ssh/*.pub"]\n',
    );
    const e1 = integ(['policy', 'explain', '/etc/ssh/sshd_config', '--policy', pol, '--format', 'json']);
    expect(JSON.parse(e1.stdout)).toMatchObject({ covered: true, rule: { name: 'ssh', severity: 'critical' } });
    const e2 = integ(['policy', 'explain', '/etc/ssh/host.pub', '--policy', pol]);
    expect(e2.stdout).toMatch(
      /governed by rule #1 "all": it matches "\/etc\/\*\*"; rule #2 "ssh" matches "\/etc\/ssh\/\*\*" but excludes it by "\/etc\/ssh\/\*\.pub", so it falls back to this rule/,
    );
    const e3 = integ(['policy', 'explain', '/etc/mtab', '--policy', pol]);
    expect(e3.code).toBe(1);
    expect(e3.stdout).toMatch(/out of scope: the global exclude "\/etc\/mtab" removes it from every rule/);
    const e4 = integ(['policy', 'explain', 'etc/passwd', '--policy', pol]);
    expect(e4.code).toBe(64);
    expect(e4.stderr).toMatch(/"etc\/passwd" is a relative path; the policy names absolute paths/);
  });

  it('for a user other than root: $XDG_CONFIG_HOME/integ/integ.yml', () => {
    const dir = tmpdir();
    dirs.push(dir);
    fs.chmodSync(dir, 0o755);
    const cfgHome = path.join(dir, 'config');
    fs.mkdirSync(path.join(cfgHome, 'integ'), { recursive: true });
    fs.writeFileSync(path.join(cfgHome, 'integ', 'integ.yml'), 'policy: p.yml\n');
    fs.writeFileSync(path.join(cfgHome, 'integ', 'p.yml'), 'version: 1\nrules:\n  - name: mine\n    paths: ["/home/me/**"]\n');
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'policy', 'check'], {
      encoding: 'utf8',
      cwd: dir,
      env: { PATH: process.env.PATH!, HOME: dir, XDG_CONFIG_HOME: cfgHome, NO_COLOR: '1' },
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`configuration: ${path.join(cfgHome, 'integ', 'integ.yml')}`);
    expect(r.stdout).toMatch(/#1 mine \[medium\] \/home\/me\/\*\*/);
  });
});

describe('guard rails for signed stores', () => {
  it('baseline/accept without a key after a signed generation: 64, nothing written; the key may come from the configuration', () => {
    const s = setup();
    const key = path.join(s.dir, 'integ.key');
    expect(integ(['keygen', '--out', key]).code).toBe(0);
    expect(integ(['baseline', '--sign-key', key], { env: s.env }).code).toBe(0);
    const before = fs.readFileSync(s.db);
    const r = integ(['baseline', '--note', 'oops'], { env: s.env });
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(
      /generation #1 of .* is signed \(key id [^)]+\): an unsigned baseline would break the signed chain .* --sign-key FILE \(or sign_key: in the configuration\), or --allow-unsigned .* Nothing was written\.\n$/,
    );
    expect(fs.readFileSync(s.db).equals(before)).toBe(true);
    // accept: the same refusal
    fs.appendFileSync(path.join(s.tree, 'etc', 'a.conf'), 'x\n');
    expect(integ(['check', '--no-snapshot', '--verify-key', `${key}.pub`], { env: s.env }).code).toBe(4);
    const a = integ(['accept', '--all', '--note', 'change'], { env: s.env });
    expect(a.code).toBe(64);
    expect(a.stderr).toMatch(/an unsigned accept would break the signed chain/);
    // sign_key from the configuration: accepted and signed, so check --verify-key still passes
    fs.appendFileSync(s.conf, `sign_key: ${key}\nverify_key: ${key}.pub\n`);
    expect(integ(['accept', '--all', '--note', 'change'], { env: s.env }).code).toBe(0);
    const h = JSON.parse(integ(['history', '--format', 'json'], { env: s.env }).stdout);
    expect(h.generations.map((g: { signed: boolean }) => g.signed)).toEqual([true, true]);
    expect(integ(['check', '--no-snapshot'], { env: s.env }).code).toBe(0);
    // --allow-unsigned knowingly breaks the chain
    const u = integ(['baseline', '--allow-unsigned', '--note', 'lab'], {
      env: { INTEG_CONFIG: '/dev/null', INTEG_DB: s.db, INTEG_POLICY: path.join(path.dirname(s.conf), 'policy.yml') },
    });
    expect(u.code).toBe(0);
  });

  it('accept re-reads paths with the policy the last check used (recorded in the store), no second --policy', () => {
    const dir = tmpdir();
    dirs.push(dir);
    const tree = path.join(dir, 'tree');
    fs.mkdirSync(tree);
    fs.writeFileSync(path.join(tree, 'f'), '1\n');
    const pol = path.join(dir, 'p.yml');
    fs.writeFileSync(pol, `version: 1\nhash: sha256\nrules:\n  - name: t\n    paths: ["${tree}/**"]\n`);
    const db = path.join(dir, 's.db');
    expect(integ(['baseline', '--db', db, '--policy', pol]).code).toBe(0);
    fs.writeFileSync(path.join(tree, 'f'), '2\n');
    expect(integ(['check', '--db', db, '--policy', pol, '--no-snapshot']).code).toBe(4);
    fs.rmSync(pol); // the policy file is gone: only the store knows it now
    const r = integ(['accept', '--all', '--db', db, '--note', 'expected', '--format', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(integ(['check', '--db', db, '--policy', path.join(dir, 'missing.yml'), '--no-snapshot']).code).toBe(66);
  });
});
