import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../util/package-root.js';
import { parsePolicy } from '../core/policy.js';
import { mergeDropIns } from '../config/policy-d.js';
import type { Policy } from '../core/types.js';
import { NoInputError, UsageError } from '../util/errors.js';
import { readInputFile } from '../util/input-file.js';

/** The embedded default policy, shipped in the package. */
export const DEFAULT_POLICY_FILE = path.join(PACKAGE_ROOT, 'baselines', 'default.yml');

/**
 * Largest policy accepted. A policy listing every file of a distribution's packages
 * (~400,000 paths) is about 15 MB of YAML; anything past this is not a policy.
 */
export const MAX_POLICY_BYTES = 64 * 1024 * 1024;

/** --policy FILE, else $INTEG_POLICY, else the embedded default. */
export function loadPolicy(flag: string | undefined, env: NodeJS.ProcessEnv): Policy {
  const file = flag ?? env.INTEG_POLICY ?? DEFAULT_POLICY_FILE;
  const { data } = readInputFile(file, { maxBytes: MAX_POLICY_BYTES, what: 'policy' });
  const policy = parsePolicy(data.toString('utf8'), file === DEFAULT_POLICY_FILE ? 'embedded default policy (baselines/default.yml)' : file);
  // Relative feed paths are relative to the policy file, as a reader of the policy expects.
  policy.ioc = policy.ioc.map((f) => path.resolve(path.dirname(path.resolve(file)), f));
  // The configured policy (no --policy) is extended by /etc/integ/policy.d/*.yml drop-ins.
  return !flag && env.INTEG_POLICY_D ? mergeDropIns(policy, env.INTEG_POLICY_D) : policy;
}

/** The known-bad hash lists of this run: the policy's `ioc:` and every --ioc, loaded and merged (null when none). */
export async function loadIoc(policy: Policy, flags: string[] | undefined): Promise<import('../core/ioc.js').IocSet | null> {
  const files = [...policy.ioc, ...(flags ?? []).map((f) => path.resolve(f))];
  if (!files.length) return null;
  const { loadIocFeeds } = await import('../core/ioc.js');
  return loadIocFeeds([...new Set(files)]);
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

/** Hard ceiling for --jobs, whatever the machine. */
export const MAX_JOBS = 64;

/**
 * --jobs beyond 4× the available cores (and beyond 64) only adds threads that wait for the
 * disk, each with its own heap and buffers (--jobs 1000 took 3.75 GB): such a value is
 * clamped, with a notice, rather than refused, so one schedule can serve machines of
 * different sizes.
 */
export function clampJobs(requested: number, cores = defaultJobs()): { jobs: number; notice: string | null } {
  const limit = Math.min(MAX_JOBS, 4 * cores);
  if (requested <= limit) return { jobs: requested, notice: null };
  return { jobs: limit, notice: `--jobs ${requested} is more than this machine can use (4 × ${cores} cores, at most ${MAX_JOBS}); using ${limit}` };
}
