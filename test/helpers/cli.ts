import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(REPO, 'bin/integ.js');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the real CLI (built dist/ through bin/integ.js) with colour off and no inherited integ settings. */
export function integ(args: string[], opts: { env?: Record<string, string>; input?: string; prefix?: string[]; cwd?: string } = {}): Run {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', NO_COLOR: '1', INTEG_LOG_LEVEL: 'error', INTEG_CONFIG: '/dev/null', ...opts.env };
  const cmd = opts.prefix ?? [];
  const r: SpawnSyncReturns<string> = spawnSync(cmd[0] ?? process.execPath, [...cmd.slice(1), ...(cmd.length ? [process.execPath] : []), BIN, ...args], {
    env,
    encoding: 'utf8',
    input: opts.input,
    cwd: opts.cwd ?? REPO,
    timeout: 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A fresh temp folder for one test. */
export function tmpdir(prefix = 'integ-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A policy covering `tree` with one rule; extra YAML appended to the rule. */
export function writePolicy(dir: string, tree: string, ruleExtra = '', top = ''): string {
  const p = path.join(dir, 'policy.yml');
  fs.writeFileSync(p, `version: 1\n${top}rules:\n  - name: tree\n    severity: high\n    paths: ["${tree}/**"]\n${ruleExtra}`);
  return p;
}
