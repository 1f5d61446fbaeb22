import { describe, expect, it } from 'vitest';
import { Selector } from '../../src/core/selector.js';
import { rule } from '../helpers/build.js';

describe('Selector', () => {
  const sel = new Selector({
    exclude: ['/etc/mtab', '/var/cache/**'],
    rules: [
      rule({ name: 'config', paths: ['/etc/**'], exclude: ['/etc/ssl/**'] }),
      rule({ name: 'ssh', paths: ['/etc/ssh/**'] }),
      rule({ name: 'bins', paths: ['/usr/bin/**', '/usr/**/*.so*'] }),
      rule({ name: 'cache', paths: ['/var/**'] }),
    ],
  });

  it('lets the last matching rule govern a path, so narrow rules override broad ones', () => {
    expect(sel.ruleFor('/etc/passwd')?.name).toBe('config');
    expect(sel.ruleFor('/etc/ssh/sshd_config')?.name).toBe('ssh');
    expect(sel.ruleFor('/etc')?.name).toBe('config');
  });

  it('falls back to no rule when the only matching rule excludes the path; global exclude wins over all', () => {
    expect(sel.ruleFor('/etc/ssl/private/key')).toBeNull();
    expect(sel.ruleFor('/etc/mtab')).toBeNull();
    expect(sel.ruleFor('/var/cache/x')).toBeNull();
    expect(sel.ruleFor('/var/log/x')?.name).toBe('cache');
    expect(sel.ruleFor('/home/user/x')).toBeNull();
  });

  it('walks each static base once, none below another', () => {
    expect(sel.roots).toEqual(['/etc', '/usr', '/var']);
  });

  it('prunes subtrees nothing can match', () => {
    expect(sel.mayDescend('/etc')).toBe(true);
    expect(sel.mayDescend('/etc/ssl')).toBe(false); // 'config' excludes the tree and no other rule reaches it
    expect(sel.mayDescend('/var/cache')).toBe(false);
    expect(sel.mayDescend('/usr/share')).toBe(true); // **/*.so* may match below
    expect(new Selector({ exclude: [], rules: [rule({ paths: ['/etc/**'], exclude: ['/etc/ssl/**'] })] }).mayDescend('/etc/ssl')).toBe(false);
  });

  it('prunes by every segment of a glob, not only its static base: dot-files in /home/* do not walk whole homes', () => {
    const s = new Selector({ exclude: [], rules: [rule({ paths: ['/home/*/.bashrc', '/home/*/.ssh/**', '/usr/lib/python3*/**'] })] });
    expect(s.mayDescend('/home')).toBe(true);
    expect(s.mayDescend('/home/alice')).toBe(true);
    expect(s.mayDescend('/home/alice/.ssh')).toBe(true);
    expect(s.mayDescend('/home/alice/.ssh/keys.d')).toBe(true);
    expect(s.mayDescend('/home/alice/Downloads')).toBe(false);
    expect(s.mayDescend('/usr/lib/python3.11/email')).toBe(true);
    expect(s.mayDescend('/usr/lib/perl5')).toBe(false);
  });

  it('matches dot files', () => {
    expect(sel.ruleFor('/etc/.hidden')?.name).toBe('config');
  });
});
