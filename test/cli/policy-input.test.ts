import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { integ, tmpdir, writePolicy } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true, maxRetries: 3 });
});

function setup(): { dir: string; tree: string; db: string; policy: string } {
  const dir = tmpdir('integ-policy-');
  dirs.push(dir);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(tree, `f${i}`), `file ${i}\n`);
  return { dir, tree, db: path.join(dir, 's.db'), policy: writePolicy(dir, tree) };
}

/** Exactly one line, "integ: FILE:LINE:COL: …", no stack trace, no Node warning. */
function expectPolicyError(r: { code: number; stderr: string }, file: string, line: number, what: RegExp): void {
  expect(r.code, r.stderr).toBe(65);
  expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr.startsWith(`integ: ${file}:${line}:`), r.stderr).toBe(true);
  expect(r.stderr).toMatch(what);
  expect(r.stderr).not.toMatch(/Warning|\n\s+at /);
}

describe('hostile policies: 65 with file:line, no crash, no slowdown', () => {
  const cases: Array<[string, string, number, RegExp]> = [
    ['undefined alias', 'version: 1\nrules:\n  - name: x\n    paths: *nope\n', 4, /alias \*nope refers to no anchor/],
    ['glob over 65,536 characters', `version: 1\nrules:\n  - name: x\n    paths: ["/${'a*'.repeat(40_000)}"]\n`, 4, /at most 4096 characters/],
    ['check: []', 'version: 1\nrules:\n  - name: x\n    paths: ["/etc/**"]\n    check: []\n', 5, /rules\[0\]\.check: expected at least one attribute/],
    ['".." in a rule path', 'version: 1\nrules:\n  - name: x\n    paths: ["/srv/img/../../etc/**"]\n', 4, /may not contain "\.\."/],
    [
      '".." in a rule exclude',
      'version: 1\nrules:\n  - name: x\n    paths: ["/etc/**"]\n    exclude: ["/etc/.."]\n',
      5,
      /rules\[0\]\.exclude\[0\]: a path or glob may not contain "\.\."/,
    ],
    [
      '".." in the global exclude',
      'version: 1\nexclude:\n  - /x/../y\nrules:\n  - name: x\n    paths: ["/etc/**"]\n',
      3,
      /exclude\[0\]: a path or glob may not contain "\.\."/,
    ],
    ['a collection as a key (no Node warning)', 'version: 1\n? [a, b]\n: c\nrules:\n  - name: x\n    paths: ["/etc/**"]\n', 1, /unknown key "\[ a, b \]"/],
  ];
  for (const [name, yaml, line, what] of cases) {
    it(name, () => {
      const s = setup();
      fs.writeFileSync(s.policy, yaml);
      expectPolicyError(integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0']), s.policy, line, what);
      expect(fs.existsSync(s.db)).toBe(false);
    });
  }

  it('an alias bomb ("billion laughs", generated): refused before it expands', () => {
    const s = setup();
    const lines = ['version: 1', 'l0: &l0 ["/x", "/x", "/x", "/x", "/x", "/x", "/x", "/x", "/x", "/x"]'];
    for (let i = 1; i <= 9; i++)
      lines.push(
        `l${i}: &l${i} [${Array(10)
          .fill(`*l${i - 1}`)
          .join(', ')}]`,
      );
    lines.push('rules:', '  - name: x', '    paths: *l9');
    fs.writeFileSync(s.policy, `${lines.join('\n')}\n`); // 10^10 paths if expanded
    expectPolicyError(integ(['check', '--db', s.db, '--policy', s.policy, '--jobs', '0']), s.policy, 3, /aliases expand too far|more than 100 aliases/);
  });

  it('a rule with 20,000 paths (and 20,000 globs) is compiled once and matched by lookup', () => {
    const s = setup();
    const paths: string[] = [];
    for (let i = 0; i < 20_000; i++) paths.push(`${s.tree}/f${i}`);
    for (let i = 0; i < 20_000; i++) paths.push(`${s.tree}/d${i}/*.conf`);
    fs.writeFileSync(s.policy, `version: 1\nrules:\n  - name: many\n    paths:\n${paths.map((p) => `      - "${p}"`).join('\n')}\n`);
    const r = integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0']);
    expect(r.code, r.stderr).toBe(0);
    const h = integ(['check', '--db', s.db, '--policy', s.policy, '--jobs', '0', '--no-snapshot', '--format', 'json']);
    expect(h.code, h.stderr).toBe(0);
    expect((JSON.parse(h.stdout) as { summary: { scanned: number } }).summary.scanned).toBe(3);
  }, 120_000);
});

describe('operator input files are bounded by type and size', () => {
  it('a FIFO, /dev/zero or a folder as --policy: 65 at once, never opened for reading', () => {
    const s = setup();
    const fifo = path.join(s.dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const [p, kind] of [
      [fifo, 'a FIFO'],
      ['/dev/zero', 'a character device'],
      [s.tree, 'a directory'],
    ] as const) {
      const r = integ(['check', '--db', s.db, '--policy', p, '--jobs', '0']);
      expect(r.code, r.stderr).toBe(65);
      expect(r.stderr).toBe(`integ: policy ${p} is not a regular file (${kind})\n`);
    }
  });

  it('a policy over 64 MiB is refused by its size (65)', () => {
    const s = setup();
    fs.truncateSync(s.policy, 65 * 1024 * 1024);
    const r = integ(['check', '--db', s.db, '--policy', s.policy, '--jobs', '0']);
    expect(r.code, r.stderr).toBe(65);
    expect(r.stderr).toMatch(/policy .* is too large \(65 MiB; at most 64 MiB\)/);
  });

  it('a FIFO or /dev/zero as a key file: 65, no hang', () => {
    const s = setup();
    expect(integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0']).code).toBe(0);
    const fifo = path.join(s.dir, 'key-fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const k of [fifo, '/dev/zero']) {
      const v = integ(['check', '--db', s.db, '--policy', s.policy, '--jobs', '0', '--no-snapshot', '--verify-key', k]);
      expect(v.code, v.stderr).toBe(65);
      expect(v.stderr).toMatch(/public key .* is not a regular file/);
      const b = integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0', '--sign-key', k]);
      expect(b.code, b.stderr).toBe(65);
      expect(b.stderr).toMatch(/private key .* is not a regular file/);
    }
  });

  it('--jobs far beyond the cores is clamped with a notice', () => {
    const s = setup();
    const cores = os.availableParallelism();
    const limit = Math.min(64, 4 * cores);
    const b = integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '1000000000']);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toContain(`integ: notice: --jobs 1000000000 is more than this machine can use (4 × ${cores} cores, at most 64); using ${limit}\n`);
    const c = integ(['check', '--db', s.db, '--policy', s.policy, '--jobs', '1000', '--no-snapshot']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toContain(`--jobs 1000 is more than this machine can use`);
    expect(integ(['check', '--db', s.db, '--policy', s.policy, '--jobs', String(limit), '--no-snapshot']).stderr).toBe('');
  });
});
