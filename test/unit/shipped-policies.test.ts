import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY_FILE, loadPolicy } from '../../src/app/common.js';
import { Selector } from '../../src/core/selector.js';
import { PACKAGE_ROOT } from '../../src/util/package-root.js';

describe('shipped policy profiles', () => {
  const files = fs.readdirSync(path.join(PACKAGE_ROOT, 'baselines')).filter((f) => f.endsWith('.yml'));

  it.each(files)('%s is valid', (f) => {
    const p = loadPolicy(path.join(PACKAGE_ROOT, 'baselines', f), {});
    expect(p.rules.length).toBeGreaterThan(0);
  });

  it('the embedded default is used without flags or environment and governs what intruders touch first', () => {
    const p = loadPolicy(undefined, {});
    expect(p.source).toMatch(/embedded default/);
    expect(DEFAULT_POLICY_FILE).toBe(path.join(PACKAGE_ROOT, 'baselines', 'default.yml'));
    const s = new Selector(p);
    expect(s.ruleFor('/etc/shadow')?.severity).toBe('critical');
    expect(s.ruleFor('/etc/ssh/sshd_config')?.name).toBe('identity-and-access');
    expect(s.ruleFor('/usr/bin/sudo')?.name).toBe('system-binaries');
    expect(s.ruleFor('/usr/lib/x86_64-linux-gnu/libc.so.6')?.name).toBe('shared-libraries');
    expect(s.ruleFor('/usr/share/doc/README')).toBeNull();
    expect(s.ruleFor('/etc/resolv.conf')?.check).toEqual(['type', 'mode', 'uid', 'gid']);
    expect(s.ruleFor('/etc/mtab')).toBeNull();
    expect(s.ruleFor('/etc/hosts')?.name).toBe('system-config');
  });

  it('INTEG_POLICY is used when no --policy is given', () => {
    const p = loadPolicy(undefined, { INTEG_POLICY: path.join(PACKAGE_ROOT, 'baselines', 'webserver.yml') });
    expect(p.hash).toEqual(['blake3', 'sha256']);
  });
});
