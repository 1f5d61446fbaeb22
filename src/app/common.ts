import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../util/package-root.js';
import { parsePolicy } from '../core/policy.js';
import type { IocMatch, Observed, Policy } from '../core/types.js';
import { NoInputError, UsageError } from '../util/errors.js';

/** The embedded default policy, shipped in the package. */
export const DEFAULT_POLICY_FILE = path.join(PACKAGE_ROOT, 'baselines', 'default.yml');

/** --policy FILE, else $INTEG_POLICY, else the embedded default. */
export function loadPolicy(flag: string | undefined, env: NodeJS.ProcessEnv): Policy {
  const file = flag ?? env.INTEG_POLICY ?? DEFAULT_POLICY_FILE;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NoInputError(`policy file not found: ${file}`);
    if (code === 'EISDIR') throw new UsageError(`policy ${file} is a directory, expected a YAML file`);
    throw new NoInputError(`cannot read policy ${file}: ${(e as Error).message}`);
  }
  const policy = parsePolicy(text, file === DEFAULT_POLICY_FILE ? 'embedded default policy (baselines/default.yml)' : file);
  // Relative feed paths are relative to the policy file, as a reader of the policy expects.
  policy.ioc = policy.ioc.map((f) => path.resolve(path.dirname(path.resolve(file)), f));
  return policy;
}

/** The known-bad hash lists of this run: the policy's `ioc:` and every --ioc, loaded and merged (null when none). */
export async function loadIoc(policy: Policy, flags: string[] | undefined): Promise<import('../core/ioc.js').IocSet | null> {
  const files = [...policy.ioc, ...(flags ?? []).map((f) => path.resolve(f))];
  if (!files.length) return null;
  const { loadIocFeeds } = await import('../core/ioc.js');
  return loadIocFeeds([...new Set(files)]);
}

/** Match one scanned file against the feeds; digests computed in the same read (rec.extra) or stored. */
export function iocMatchOf(ioc: import('../core/ioc.js').IocSet, path: Buffer, rule: string, rec: Observed): IocMatch | null {
  if (rec.type !== 'file') return null;
  const hit = ioc.match({ sha256: rec.extra?.sha256 ?? rec.sha256, sha1: rec.extra?.sha1, md5: rec.extra?.md5 });
  return hit ? { path, rule, ...hit } : null;
}

/** Validate --root: an existing directory; returns "" for "/" (no prefix). */
export function resolveRoot(flag: string | undefined): string {
  if (flag === undefined || flag === '/') return '';
  const abs = path.resolve(flag);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new NoInputError(`--root ${flag}: no such directory`);
  }
  if (!st.isDirectory()) throw new UsageError(`--root ${flag}: not a directory`);
  return abs === '/' ? '' : abs;
}

export interface Who {
  user: string;
  uid: number;
  hostname: string;
}

export function whoami(): Who {
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  let user = String(uid);
  try {
    user = os.userInfo().username;
  } catch {
    /* a uid with no passwd entry (containers): keep the number */
  }
  return { user, uid, hostname: os.hostname() };
}

export function defaultJobs(): number {
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}
