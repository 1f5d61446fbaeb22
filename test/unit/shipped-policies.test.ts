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
    expect(s.ruleFor('/etc/resolv.conf')?.check).toEqual(['type', 'mode', 'uid', 'gid', 'acl', 'caps', 'flags']);
    expect(s.ruleFor('/etc/mtab')).toBeNull();
    expect(s.ruleFor('/etc/hosts')?.name).toBe('system-config');
  });

  it("the default covers what attackers touch beyond /etc and the binaries (compared with AIDE's Debian configuration), without the churn", () => {
    const s = new Selector(loadPolicy(undefined, {}));
    const rule = (p: string): string | undefined => s.ruleFor(p)?.name;
    expect(rule('/usr/local/bin/backdoor')).toBe('local-software');
    expect(rule('/usr/local/share/app/run.sh')).toBe('local-software');
    expect(rule('/opt/vendor/bin/agent')).toBe('local-software');
    expect(rule('/usr/games/fortune')).toBe('system-binaries');
    expect(rule('/usr/lib/python3/dist-packages/requests/api.py')).toBe('interpreter-modules');
    expect(rule('/usr/lib/python3.11/os.py')).toBe('interpreter-modules');
    expect(rule('/usr/share/perl5/Debconf/Log.pm')).toBe('interpreter-modules');
    expect(rule('/usr/lib/x86_64-linux-gnu/perl-base/strict.pm')).toBe('interpreter-modules');
    expect(rule('/usr/lib/python3.11/__pycache__/os.cpython-311.pyc')).toBeUndefined();
    expect(rule('/usr/lib/python3/dist-packages/x.pyc')).toBeUndefined();
    expect(rule('/root/.bashrc')).toBe('login-scripts-and-keys');
    expect(rule('/root/.ssh/authorized_keys')).toBe('login-scripts-and-keys');
    expect(rule('/root/.ssh/known_hosts')).toBeUndefined();
    expect(rule('/home/alice/.profile')).toBe('login-scripts-and-keys');
    expect(rule('/home/alice/.ssh/authorized_keys')).toBe('login-scripts-and-keys');
    expect(rule('/home/alice/Documents/notes.txt')).toBeUndefined();
    expect(rule('/var/spool/cron/crontabs/root')).toBe('scheduled-jobs');
    expect(rule('/etc/cron.d/payload')).toBe('scheduled-jobs');
    expect(rule('/etc/cron.d')).toBe('scheduled-jobs');
    expect(rule('/usr/lib/systemd/system/ssh.service')).toBe('system-units-and-rules');
    expect(rule('/etc/systemd/system/evil.service')).toBe('system-units-and-rules');
    expect(rule('/usr/lib/udev/rules.d/99-evil.rules')).toBe('system-units-and-rules');
    expect(rule('/usr/lib/x86_64-linux-gnu/security/pam_unix.so')).toBe('identity-and-access');
    expect(rule('/etc/sudoers.d/90-evil')).toBe('identity-and-access');
    expect(rule('/etc/ld.so.conf.d/evil.conf')).toBe('identity-and-access');
    expect(rule('/lib/modules/6.1.0/kernel/evil.ko')).toBe('boot-and-modules');
    expect(s.mayDescend('/home/alice/Documents')).toBe(false);
  });

  it('INTEG_POLICY is used when no --policy is given', () => {
    const p = loadPolicy(undefined, { INTEG_POLICY: path.join(PACKAGE_ROOT, 'baselines', 'webserver.yml') });
    expect(p.hash).toEqual(['blake3', 'sha256']);
  });
});
