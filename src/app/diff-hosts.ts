import { ATTRIBUTES, type Attribute } from '../core/types.js';
import type { Generation } from '../store/baseline-repo.js';
import { UsageError } from '../util/errors.js';

/** Attributes that differ between any two hosts or roots even when the files are identical. */
export const HOST_LOCAL: readonly Attribute[] = ['inode', 'ctime', 'mtime', 'nlink'];

/** Validates --compare ATTRS ("all" restores every host-local attribute). */
export function parseCompare(v: string | undefined): Attribute[] {
  if (v === undefined) return [];
  const list = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.includes('all')) return [...ATTRIBUTES];
  for (const x of list)
    if (!(ATTRIBUTES as readonly string[]).includes(x))
      throw new UsageError(`--compare: unknown attribute "${x}" (expected some of: ${ATTRIBUTES.join(', ')}, or all)`);
  return list as Attribute[];
}

/**
 * Two generations from different hosts or roots: compare only host-independent attributes
 * (content, type, mode, uid, gid, size, target …) unless --compare names host-local ones,
 * and say so in the report's header.
 */
export function hostAwareAttributes(
  a: Generation,
  b: Generation,
  attributes: Attribute[],
  compare: readonly Attribute[],
): { attributes: Attribute[]; notices: string[] } {
  const where = (g: Generation): string => `${g.hostname}:${g.root}`;
  if (a.hostname === b.hostname && a.root === b.root) return { attributes, notices: [] };
  const dropped = HOST_LOCAL.filter((x) => attributes.includes(x) && !compare.includes(x));
  if (!dropped.length) return { attributes, notices: [] };
  return {
    attributes: attributes.filter((x) => !dropped.includes(x)),
    notices: [
      `A and B come from different ${a.hostname !== b.hostname ? 'hosts' : 'roots'} (${where(a)} vs ${where(b)}): comparing only host-independent attributes; ` +
        `not ${dropped.join(', ')} (--compare ${dropped.join(',')} compares them too)`,
    ],
  };
}
