/** Issue 13 item 11: a report written to a full standard output is not lost silently: exit 74 with one line. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, integ, tmpdir, writePolicy } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Run the CLI with stdout on /dev/full. */
function toFull(args: string[]): { code: number | null; stderr: string } {
  const full = fs.openSync('/dev/full', 'w');
  try {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      stdio: ['ignore', full, 'pipe'],
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1', INTEG_LOG_LEVEL: 'error' },
      timeout: 120_000,
    });
    return { code: r.status, stderr: r.stderr };
  } finally {
    fs.closeSync(full);
  }
}

const hasFull = fs.existsSync('/dev/full');
if (!hasFull) console.warn('full-stdout tests skipped: no /dev/full on this system');
describe.runIf(hasFull)('a report to a full standard output (> /dev/full)', () => {
  const d = tmpdir();
  dirs.push(d);
  const tree = path.join(d, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'a'), 'a\n');
  const policy = writePolicy(d, tree);
  const db = path.join(d, 's.db');
  const out = path.join(d, 'ev');
  let bundle = '';
  beforeAll(() => {
    expect(integ(['baseline', '--db', db, '--policy', policy, '--jobs', '0']).code).toBe(0);
    fs.writeFileSync(path.join(tree, 'a'), 'changed\n');
    expect(integ(['baseline', '--db', db, '--policy', policy, '--jobs', '0']).code).toBe(0);
    const s = integ(['snapshot', '--out', out, '--format', 'json']);
    expect(s.code, s.stderr).toBe(0);
    bundle = (JSON.parse(s.stdout) as { bundle: string }).bundle;
  });
  const cases: Array<[string, () => string[]]> = [
    ['--version', () => ['--version']],
    ['--help', () => ['--help']],
    ['check --help', () => ['check', '--help']],
    ['baseline', () => ['baseline', '--db', db, '--policy', policy, '--jobs', '0']],
    ['check', () => ['check', '--db', db, '--policy', policy, '--jobs', '0', '--no-snapshot']],
    ['check --format json', () => ['check', '--db', db, '--policy', policy, '--jobs', '0', '--no-snapshot', '--format', 'json']],
    ['history', () => ['history', '--db', db]],
    ['show', () => ['show', path.join(tree, 'a'), '--db', db]],
    ['diff --generation', () => ['diff', '--generation', '1', '2', '--db', db]],
    ['verify', () => ['verify', bundle]],
    ['snapshot', () => ['snapshot', '--out', out]],
  ];
  it.each(cases)('%s: exit 74 with one line on stderr', (_name, args) => {
    const r = toFull(args());
    expect(r.stderr).toMatch(/^integ: cannot write the report to standard output: no space left on device\n$/);
    expect(r.code).toBe(74);
  });
});
