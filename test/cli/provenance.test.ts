import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { integ, tmpdir } from '../helpers/cli.js';

/** A root holding a small dpkg database the test makes: one package with two binaries and a conffile. */
const md5 = (s: string): string => crypto.createHash('md5').update(s).digest('hex');
const sha256 = (s: string): string => crypto.createHash('sha256').update(s).digest('hex');

const d = tmpdir();
afterAll(() => fs.rmSync(d, { recursive: true, force: true }));
const R = path.join(d, 'root');
const w = (rel: string, text: string): void => {
  fs.mkdirSync(path.dirname(path.join(R, rel)), { recursive: true });
  fs.writeFileSync(path.join(R, rel), text);
};
function packageDb(version: string, files: Record<string, string>, conf: Record<string, string>): void {
  w('var/lib/dpkg/status',
    'Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\n\n' +
    `Package: toolpkg\nStatus: install ok installed\nPriority: optional\nVersion: ${version}\nArchitecture: amd64\nConffiles:\n` +
    Object.entries(conf).map(([p, t]) => ` ${p} ${md5(t)}\n`).join('') +
    'Description: a test package\n multi-line description\n\n' +
    'Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n');
  w('var/lib/dpkg/info/toolpkg.md5sums', Object.entries(files).map(([p, t]) => `${md5(t)}  ${p.slice(1)}\n`).join(''));
  w('var/lib/dpkg/info/toolpkg.list', ['/.', '/usr', '/usr/bin', ...Object.keys(files), ...Object.keys(conf)].join('\n') + '\n');
  w('var/lib/dpkg/info/gone.list', '/usr/bin/unowned\n');
}

const db = path.join(d, 's.db');
const policy = path.join(d, 'policy.yml');
fs.writeFileSync(policy, 'version: 1\nrules:\n  - name: bin\n    severity: critical\n    paths: ["/usr/bin/**"]\n  - name: conf\n    severity: high\n    paths: ["/etc/**"]\n');
const run = (cmd: string, ...a: string[]) => integ([cmd, '--db', db, '--policy', policy, ...(cmd === 'accept' ? [] : ['--root', R, '--jobs', '1']), ...(cmd === 'check' ? ['--no-snapshot'] : []), ...a]);

interface Change { path: string; kind: string; attributes: string[]; package: Record<string, unknown> | null }

describe('package provenance (dpkg) under --root', () => {
  it('baseline names packaged files that already differ from their package; edited conffiles are a quieter category', () => {
    w('usr/bin/tool', 'tool v1\n');
    w('usr/bin/other', 'trojaned other\n');
    w('usr/bin/unowned', 'local script\n');
    w('etc/app.conf', 'edited by the admin\n');
    packageDb('1.0-1', { '/usr/bin/tool': 'tool v1\n', '/usr/bin/other': 'other v1\n' }, { '/etc/app.conf': 'shipped conf\n' });
    const j = run('baseline', '--format', 'json');
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.stdout) as Record<string, unknown>;
    expect(doc.packaged_checked).toBe(3);
    expect(doc.package_mismatches).toEqual([
      { path: '/usr/bin/other', package: { manager: 'dpkg', name: 'toolpkg', version: '1.0-1' }, expected_md5: md5('other v1\n'), actual_md5: md5('trojaned other\n'), conffile: false },
    ]);
    expect(doc.conffiles_modified).toEqual([expect.objectContaining({ path: '/etc/app.conf', conffile: true, expected_md5: md5('shipped conf\n') })]);
    const t = run('baseline');
    expect(t.code).toBe(0);
    expect(t.stdout).toContain('WARNING: 1 packaged file already differs from what the package shipped');
    expect(t.stdout).toContain(`  DOES NOT MATCH  /usr/bin/other  (toolpkg 1.0-1: md5 ${md5('other v1\n')} shipped, ${md5('trojaned other\n')} now)`);
    expect(t.stdout).toContain('  edited  /etc/app.conf  (toolpkg 1.0-1)');
  });

  it('check says for each change which package owns it and whether it matches; accept --packaged takes exactly those that match', () => {
    // Patch day: toolpkg 1.0-2 ships a new tool; meanwhile someone replaced `other` and the local script.
    w('usr/bin/tool', 'tool v2\n');
    w('usr/bin/new-helper', 'helper\n');
    packageDb('1.0-2', { '/usr/bin/tool': 'tool v2\n', '/usr/bin/other': 'other v1\n', '/usr/bin/new-helper': 'helper\n' }, { '/etc/app.conf': 'shipped conf\n' });
    w('usr/bin/other', 'trojaned other, again\n');
    w('usr/bin/unowned', 'local script, changed\n');
    const j = run('check', '--format', 'json', '--ioc', path.join(d, 'feed.txt'));
    const doc = JSON.parse(j.stdout) as { changes: Change[]; ioc_matches: Array<{ path: string }> };
    const by = (p: string) => doc.changes.find((c) => c.path === p)!;
    expect(by('/usr/bin/tool').package).toEqual({ manager: 'dpkg', name: 'toolpkg', version: '1.0-2', digest_matches: true, conffile: false });
    expect(by('/usr/bin/new-helper').package).toEqual({ manager: 'dpkg', name: 'toolpkg', version: '1.0-2', digest_matches: true, conffile: false });
    expect(by('/usr/bin/other').package).toEqual({ manager: 'dpkg', name: 'toolpkg', version: '1.0-2', digest_matches: false, conffile: false });
    expect(by('/usr/bin/unowned').package).toBeNull(); // listed only by a package that is no longer installed
    // The IOC feed matches the trojan under --root too.
    expect(doc.ioc_matches.map((m) => m.path)).toEqual(['/usr/bin/other']);
    expect(j.code).toBe(1 | 4 | 32);
    const t = run('check');
    expect(t.stdout).toContain('package: matches toolpkg 1.0-2 as shipped');
    expect(t.stdout).toContain('package: DOES NOT MATCH what toolpkg 1.0-2 shipped');

    const a = run('accept', '--packaged', '--note', 'patch day', '--format', 'json');
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    const acc = JSON.parse(a.stdout) as { accepted: Array<{ path: string }>; remaining: number };
    expect(acc.accepted.map((x) => x.path).sort()).toEqual(['/usr/bin/new-helper', '/usr/bin/tool']);
    expect(acc.remaining).toBe(2);
    const after = JSON.parse(run('check', '--format', 'json').stdout) as { changes: Change[] };
    expect(after.changes.map((c) => c.path).sort()).toEqual(['/usr/bin/other', '/usr/bin/unowned']);
    // Nothing left that a package vouches for.
    const again = run('accept', '--packaged', '--note', 'again');
    expect(again.code).toBe(64);
    expect(again.stderr).toMatch(/^integ: nothing to accept: no open finding of check run #\d+ has content that matches what its package shipped \(2 left for review\)\n$/);
  });
});
fs.writeFileSync(path.join(d, 'feed.txt'), `${sha256('trojaned other, again\n')} Trojan.Other\n`);
