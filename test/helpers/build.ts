import type { EntryRecord, Rule } from '../../src/core/types.js';

/** A plausible regular-file record; override what the test is about. */
export function rec(over: Partial<EntryRecord> = {}): EntryRecord {
  return {
    path: Buffer.from('/etc/example'),
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: 10n,
    mtimeNs: 1_700_000_000_000_000_000n,
    ctimeNs: 1_700_000_000_000_000_000n,
    inode: 1234n,
    nlink: 1,
    target: null,
    blake3: 'aa'.repeat(32),
    sha256: null,
    ...over,
  };
}

export function rule(over: Partial<Rule> = {}): Rule {
  return {
    name: 'r',
    severity: 'high',
    paths: ['/etc/**'],
    exclude: [],
    check: ['content', 'type', 'mode', 'uid', 'gid', 'size', 'mtime', 'ctime', 'inode', 'nlink', 'target'],
    ...over,
  };
}
