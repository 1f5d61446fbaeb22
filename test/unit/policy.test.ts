import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { DataError } from '../../src/util/errors.js';

function err(text: string): string {
  try {
    parsePolicy(text, 'p.yml');
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    return (e as Error).message;
  }
  throw new Error('expected the policy to be rejected');
}

describe('parsePolicy', () => {
  it('applies defaults: blake3, every attribute, medium severity, snapshot on alert with 1h cooldown', () => {
    const p = parsePolicy('version: 1\nrules:\n  - name: a\n    paths: ["/etc/**"]\n', 'p.yml');
    expect(p.hash).toEqual(['blake3']);
    expect(p.rules[0]!.severity).toBe('medium');
    expect(p.rules[0]!.check).toEqual([
      'content',
      'type',
      'mode',
      'uid',
      'gid',
      'size',
      'mtime',
      'ctime',
      'inode',
      'nlink',
      'target',
      'xattrs',
      'caps',
      'acl',
      'label',
      'flags',
      'entries',
    ]);
    expect(p.onAlert).toMatchObject({ snapshot: true, cooldownSeconds: 3600 });
    expect(p.retention.maxBundles).toBe(50);
  });

  it('accepts a list of algorithms, durations and sizes', () => {
    const p = parsePolicy(
      'version: 1\nhash: [blake3, sha256]\non_alert: {snapshot: false, cooldown: 30m, copy_max_file_bytes: 1MiB}\nretention: {max_bundles: 3, max_bytes: 10MB}\nrules:\n  - name: a\n    paths: ["/x"]\n    check: [type, growing]\n',
      'p.yml',
    );
    expect(p.hash).toEqual(['blake3', 'sha256']);
    expect(p.onAlert).toMatchObject({ snapshot: false, cooldownSeconds: 1800, copyMaxFileBytes: 1048576 });
    expect(p.retention).toEqual({ maxBundles: 3, maxBytes: 10_000_000 });
    expect(p.rules[0]!.check).toEqual(['type', 'growing']);
  });

  it('names file, line and what was expected for a bad severity', () => {
    const m = err('version: 1\nrules:\n  - name: a\n    severity: urgent\n    paths: ["/etc/**"]\n');
    expect(m).toMatch(/^p\.yml:4:15: rules\[0\]\.severity: expected one of low \| medium \| high \| critical, got "urgent"/);
  });

  it('rejects unknown keys, relative paths, bad attributes, duplicate names, wrong version', () => {
    expect(err('version: 1\nrules:\n  - name: a\n    paths: ["/e"]\n    chek: [mode]\n')).toMatch(/^p\.yml:3:5: rules\[0\]: unknown key "chek"/);
    expect(err('version: 1\nrules:\n  - name: a\n    paths: ["etc/**"]\n')).toMatch(/p\.yml:4:13: rules\[0\]\.paths\[0\]: expected an absolute path/);
    expect(err('version: 1\nrules:\n  - name: a\n    paths: ["/e"]\n    check: [md5]\n')).toMatch(/rules\[0\]\.check\[0\]: expected one of content/);
    expect(err('version: 1\nrules:\n  - name: a\n    paths: ["/e"]\n  - name: a\n    paths: ["/f"]\n')).toMatch(
      /p\.yml:5:11: rules\[1\]\.name: duplicate rule name "a"/,
    );
    expect(err('version: 2\nrules: []\n')).toMatch(/p\.yml:1:10: version: expected version: 1, got 2/);
    expect(err('version: 1\n')).toMatch(/rules: missing/);
  });

  it('reports YAML syntax errors with their position', () => {
    expect(err('version: 1\nrules:\n  - name: [a\n')).toMatch(/^p\.yml:\d+:\d+: invalid YAML/);
    expect(err('- just\n- a list\n')).toMatch(/expected a mapping/);
  });
});
