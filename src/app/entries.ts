import fs from 'node:fs';
import type { Selector } from '../core/selector.js';
import type { Finding, Rule, ScanError } from '../core/types.js';

/** Which file-system metadata a rule's check list needs read (each costs syscalls). */
export function metaWanted(rule: Rule): { xattrs: boolean; flags: boolean } {
  const c = rule.check as string[];
  return { xattrs: c.includes('xattrs') || c.includes('caps') || c.includes('acl') || c.includes('label'), flags: c.includes('flags') };
}

function parentOf(p: Buffer): string {
  const i = p.lastIndexOf(0x2f);
  return (i <= 0 ? Buffer.from('/') : p.subarray(0, i)).toString('hex');
}

/**
 * Keep `entries` on a directory only when nothing else explains why its mtime/ctime moved: a
 * child added, removed or replaced (inode or type changed, e.g. an editor's rename) explains
 * it, as does a child that could not be read, or a child out of the policy's scope (an
 * excluded file that is rewritten legitimately). What remains is a trace of an entry that
 * was created and removed between baseline and check. Findings left with no attribute go.
 */
export function explainEntries(findings: Finding[], errors: readonly ScanError[], hasOutOfScopeChild: (dir: Buffer) => boolean): void {
  const explained = new Set<string>();
  for (const f of findings) if (f.kind !== 'changed' || f.attributes.includes('inode') || f.attributes.includes('type')) explained.add(parentOf(f.path));
  for (const e of errors) explained.add(parentOf(e.path));
  for (let i = findings.length - 1; i >= 0; i--) {
    const f = findings[i]!;
    if (!f.attributes.includes('entries')) continue;
    if (!explained.has(f.path.toString('hex')) && !hasOutOfScopeChild(f.path)) continue;
    f.attributes = f.attributes.filter((a) => a !== 'entries');
    if (f.attributes.length === 0) findings.splice(i, 1);
  }
}

/** Whether directory `dir` (as the policy names it) holds an entry the policy does not cover. */
export function outOfScopeChild(dir: Buffer, root: string, selector: Selector): boolean {
  const prefix = Buffer.from(root.replace(/\/+$/, ''), 'utf8');
  let names: Buffer[];
  try {
    names = fs.readdirSync(prefix.length ? Buffer.concat([prefix, dir]) : dir, { encoding: 'buffer' });
  } catch {
    return true; // cannot tell
  }
  const base = dir.length === 1 ? dir : Buffer.concat([dir, Buffer.from('/')]);
  return names.some((n) => !selector.ruleFor(Buffer.concat([base, n]).toString('utf8')));
}
