import { capsList, FLAG_APPEND, FLAG_IMMUTABLE, parseXattrs } from './fsattrs.js';
import type { EntryRecord, Finding } from './types.js';

/**
 * Risk tags: what makes a finding worth reading first, whatever its rule's severity.
 * - `setuid` / `setgid`: an entry that is set-uid/set-gid and was not before (or is new);
 * - `world-writable`: a file or directory anyone may write, newly so;
 * - `capability`: a file capability that is new (or grants names it did not);
 * - `immutable` / `append-only`: the inode flag was set (a persistence trick: root's own tools then fail);
 * - `exec-in-config-or-temp`: an executable file added under /etc, /tmp, /var/tmp, /dev/shm, /run;
 * - `preload`: /etc/ld.so.preload changed, added or removed;
 * - `pam`: a PAM module (…/security/*.so) or PAM configuration (/etc/pam.d) changed.
 */
export const RISK_TAGS = ['setuid', 'setgid', 'capability', 'preload', 'pam', 'immutable', 'append-only', 'world-writable', 'exec-in-config-or-temp'] as const;
export type RiskTag = (typeof RISK_TAGS)[number];

const CONFIG_OR_TEMP = /^\/(etc|tmp|var\/tmp|dev\/shm|run)\//s;
const PAM_MODULE = /^\/(usr\/)?lib(64)?\/(.*\/)?security\/[^/]+\.so$/s;

function newly(before: EntryRecord | null, after: EntryRecord, test: (r: EntryRecord) => boolean): boolean {
  return test(after) && !(before && test(before));
}

const flagSet =
  (bit: number) =>
  (r: EntryRecord): boolean =>
    typeof r.flags === 'number' && r.flags !== -1 && (r.flags & bit) !== 0;

export function riskTags(f: Pick<Finding, 'path' | 'kind' | 'before' | 'after'>): RiskTag[] {
  const tags = new Set<RiskTag>();
  const path = f.path.toString('utf8');
  const a = f.after;
  const b = f.before;
  if (path === '/etc/ld.so.preload') tags.add('preload');
  if (PAM_MODULE.test(path) || path.startsWith('/etc/pam.d/') || path === '/etc/pam.conf') tags.add('pam');
  if (a) {
    const notLink = a.type !== 'symlink';
    if (notLink && newly(b, a, (r) => r.type !== 'symlink' && (r.mode & 0o4000) !== 0)) tags.add('setuid');
    if (notLink && newly(b, a, (r) => r.type !== 'symlink' && (r.mode & 0o2000) !== 0 && r.type !== 'dir')) tags.add('setgid');
    if ((a.type === 'file' || a.type === 'dir') && newly(b, a, (r) => (r.type === 'file' || r.type === 'dir') && (r.mode & 0o002) !== 0))
      tags.add('world-writable');
    const capsAfter = capsList(parseXattrs(a.xattrs));
    const capsBefore = b ? capsList(parseXattrs(b.xattrs)) : [];
    if (capsAfter.some((c) => !capsBefore.includes(c)) && (b === null || (b.xattrs ?? null) !== null)) tags.add('capability');
    if (newly(b, a, flagSet(FLAG_IMMUTABLE)) && (b === null || typeof b.flags === 'number')) tags.add('immutable');
    if (newly(b, a, flagSet(FLAG_APPEND)) && (b === null || typeof b.flags === 'number')) tags.add('append-only');
    if (f.kind === 'added' && a.type === 'file' && (a.mode & 0o111) !== 0 && CONFIG_OR_TEMP.test(path)) tags.add('exec-in-config-or-temp');
  }
  return RISK_TAGS.filter((t) => tags.has(t));
}
