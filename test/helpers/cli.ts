import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(REPO, 'bin/integ.js');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface IntegOptions {
  /** added to (and overriding) the scrubbed environment */
  env?: Record<string, string>;
  input?: string;
  cwd?: string;
  /**
   * Run as `nobody` (uid/gid 65534) through setpriv, from the world-readable copy of the runtime
   * files that the global setup staged, so it works from any checkout (even a private 0700 one).
   */
  asNobody?: boolean;
  /** milliseconds before the run is killed (default 120 s) */
  timeout?: number;
}

/** True when the tests can drop privileges to nobody (root, setpriv present, runtime staged). */
export const canDropToNobody: boolean = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0 && Boolean(inject('stagedRoot'));
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];

/**
 * The environment every CLI test runs with: nothing of the caller's integ settings (INTEG_DB,
 * INTEG_POLICY, XDG_STATE_HOME …) leaks in; colour and progress off; logs only at error level.
 */
export function scrubbedEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    NO_COLOR: '1',
    INTEG_NO_PROGRESS: '1',
    INTEG_LOG_LEVEL: 'error',
    INTEG_CONFIG: '/dev/null',
    ...extra,
  };
}

function command(args: string[], opts: IntegOptions): { file: string; argv: string[]; cwd: string } {
  if (opts.asNobody) {
    const root = inject('stagedRoot');
    if (!root) throw new Error('asNobody needs root and the staged runtime (see test/helpers/global-setup.ts); guard the test with canDropToNobody');
    return { file: NOBODY[0]!, argv: [...NOBODY.slice(1), process.execPath, path.join(root, 'bin/integ.js'), ...args], cwd: opts.cwd ?? root };
  }
  return { file: process.execPath, argv: [BIN, ...args], cwd: opts.cwd ?? REPO };
}

/** Run the real CLI (built dist/ through bin/integ.js) in a scrubbed environment. */
export function integ(args: string[], opts: IntegOptions = {}): Run {
  const c = command(args, opts);
  const r = spawnSync(c.file, c.argv, { env: scrubbedEnv(opts.env), encoding: 'utf8', input: opts.input, cwd: c.cwd, timeout: opts.timeout ?? 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Start the real CLI in the background (same environment as integ()), for tests that signal it. */
export function integSpawn(args: string[], opts: IntegOptions = {}): ChildProcessWithoutNullStreams {
  const c = command(args, opts);
  return spawn(c.file, c.argv, { env: scrubbedEnv(opts.env), cwd: c.cwd });
}

/**
 * Resolves once the child's stderr has a line matching `re` (e.g. the debug log line written when
 * the store lock is held); rejects if the child exits first. Synchronises on the event, not on time.
 */
export function waitForStderr(child: ChildProcessWithoutNullStreams, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => re.test(l));
      if (line !== undefined) {
        cleanup();
        resolve(line);
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`integ exited (${code}) before writing a line matching ${re}:\n${buf}`));
    };
    const cleanup = (): void => {
      child.stderr.off('data', onData);
      child.off('exit', onExit);
    };
    child.stderr.on('data', onData);
    child.once('exit', onExit);
  });
}

/** A fresh temp folder for one test. */
/** A writer of files under `root`: `data` at `rel`, the folders on the way made as needed. */
export function writerUnder(root: string): (rel: string, data: string | Buffer) => void {
  return (rel, data) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
  };
}

export function tmpdir(prefix = 'integ-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * For a copy of the app run outside the checkout (the deb's, the bundle's): a one-rule policy over
 * DIR/tree, and a scrubbed environment that names it and the store DIR/s.db.
 */
export function treeRunEnv(dir: string): NodeJS.ProcessEnv {
  const policy = writePolicy(dir, path.join(dir, 'tree'));
  return { PATH: process.env.PATH, HOME: dir, INTEG_CONFIG: '/dev/null', INTEG_DB: path.join(dir, 's.db'), INTEG_POLICY: policy, NO_COLOR: '1' };
}

/** A policy covering `tree` with one rule; extra YAML appended to the rule. */
export function writePolicy(dir: string, tree: string, ruleExtra = '', top = ''): string {
  const p = path.join(dir, 'policy.yml');
  fs.writeFileSync(p, `version: 1\n${top}rules:\n  - name: tree\n    severity: high\n    paths: ["${tree}/**"]\n${ruleExtra}`);
  return p;
}
