import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, tmpdir, treeRunEnv } from '../helpers/cli.js';
import { nativeMd5 } from '../../src/scan/md5-native.js';

const NATIVE_OUT = 'dist/native/libinteg-md5x16.so';
const NATIVE_SCAN = 'dist/native/libinteg-scan.so';

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const hasDpkg = has('dpkg-deb');
if (!hasDpkg) console.log('skipping the package tests: dpkg-deb is absent (Debian package dpkg)');
const hasAnalyze = has('systemd-analyze') && fs.existsSync('/lib/systemd/system/sysinit.target');
if (hasDpkg && !has('man')) console.log('skipping the man page test: man is absent (Debian package man-db)');
if (hasDpkg && !hasAnalyze) console.log('skipping systemd-analyze verify: systemd-analyze or the systemd unit files are absent (Debian package systemd)');

const run = (cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) =>
  spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, ...opts });

describe.runIf(hasDpkg)('npm run package:deb', () => {
  let dir: string;
  let deb: string;
  let rootfs: string;
  beforeAll(() => {
    dir = tmpdir('integ-deb-test-');
    // dist/ is built by "npm test" (tsc) before the suite runs; the script packages it.
    const r = run(process.execPath, [path.join(REPO, 'tools/package-deb.mjs'), '--out', dir]);
    expect(r.status, r.stderr).toBe(0);
    deb = r.stdout.trim();
    expect(path.dirname(deb)).toBe(dir);
    rootfs = path.join(dir, 'root');
    expect(run('dpkg-deb', ['-x', deb, rootfs]).status).toBe(0);
  }, 600_000);
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('control: Depends nodejs (>= 20), the /etc files are conffiles, maintainer scripts create the system user', () => {
    const info = run('dpkg-deb', ['-I', deb]).stdout;
    expect(info).toMatch(/^ Package: integ$/m);
    expect(info).toMatch(/^ Depends: nodejs \(>= 20\), adduser$/m);
    expect(info).toMatch(/^ Architecture: \S+$/m);
    const conffiles = run('dpkg-deb', ['-I', deb, 'conffiles']).stdout.trim().split('\n');
    expect(conffiles).toEqual(expect.arrayContaining(['/etc/integ/integ.yml', '/etc/integ/policy.yml', '/etc/cron.daily/integ', '/etc/logrotate.d/integ']));
    const postinst = run('dpkg-deb', ['-I', deb, 'postinst']).stdout;
    expect(postinst).toMatch(/adduser --system .*integ/);
    for (const s of ['postinst', 'prerm', 'postrm']) {
      const f = path.join(dir, s);
      fs.writeFileSync(f, run('dpkg-deb', ['-I', deb, s]).stdout);
      expect(run('sh', ['-n', f]).status).toBe(0);
    }
  });

  it('contents: /usr/bin/integ, the app with production dependencies only, units, cron, logrotate, man pages, completion', () => {
    const list = run('dpkg-deb', ['-c', deb]).stdout;
    const files = list
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(/\s+/).slice(5).join(' '));
    for (const f of [
      './usr/bin/integ',
      './usr/lib/integ/bin/integ.js',
      './usr/lib/integ/dist/bundle/cli.js',
      './usr/lib/integ/dist/bundle/hash.worker.js',
      './usr/lib/integ/dist/bundle/generation-reader.worker.js',
      './usr/lib/integ/baselines/default.yml',
      './usr/lib/integ/node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      './usr/lib/integ/node_modules/commander/package.json',
      './usr/lib/integ/node_modules/pino/package.json',
      './etc/integ/integ.yml',
      './etc/integ/policy.yml',
      './etc/integ/policy.d/README',
      './etc/cron.daily/integ',
      './etc/logrotate.d/integ',
      './usr/lib/systemd/system/integ-check.service',
      './usr/lib/systemd/system/integ-check.timer',
      './usr/lib/systemd/system/integ-baseline.service',
      './usr/share/man/man8/integ.8.gz',
      './usr/share/man/man5/integ-policy.5.gz',
      './usr/share/bash-completion/completions/integ',
    ])
      expect(files, f).toContain(f);
    // integ's native MD5 lanes, wherever this machine built them (tools/build-native.mjs: CI does)
    for (const lib of [NATIVE_OUT, NATIVE_SCAN])
      if (fs.existsSync(path.join(REPO, lib))) expect(files).toContain(`./usr/lib/integ/${lib}`);
      else console.log(`not built here, so not packaged: ${lib}`);
    // the bundle, not tsc's module tree (which the bundle is made from)
    expect(files.some((f) => f.startsWith('./usr/lib/integ/dist/src/'))).toBe(false);
    for (const dev of ['vitest', 'typescript', '@elastic/ecs', '@types/node', 'esbuild'])
      expect(
        files.some((f) => f.startsWith(`./usr/lib/integ/node_modules/${dev}/`)),
        dev,
      ).toBe(false);
    expect(files.some((f) => f.startsWith('./usr/lib/integ/dist/') && (f.endsWith('.map') || f.includes('/bench/')))).toBe(false);
    expect(files.some((f) => f.startsWith('./usr/lib/integ/node_modules/better-sqlite3/deps/'))).toBe(false);
    expect(list).toMatch(/^-rwxr-xr-x root\/root .* \.\/usr\/bin\/integ$/m);
    expect(list).toMatch(/^drwxr-xr-x root\/root .* \.\/$/m);
  });

  it('the packaged app runs from /usr/lib/integ with its production dependencies alone', () => {
    const t = path.join(dir, 'run');
    fs.mkdirSync(path.join(t, 'tree'), { recursive: true });
    fs.writeFileSync(path.join(t, 'tree', 'f'), '1\n');
    const bin = path.join(rootfs, 'usr/lib/integ/bin/integ.js');
    const env = treeRunEnv(t);
    expect(run(process.execPath, [bin, '--version'], { env, cwd: t }).stdout.trim()).toBe(
      JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version,
    );
    const b = run(process.execPath, [bin, 'baseline'], { env: { ...env, INTEG_LOG_LEVEL: 'debug' }, cwd: t });
    expect(b.status, b.stderr).toBe(0);
    // the packaged MD5 lanes load from /usr/lib/integ/dist/native where they were built and the CPU has AVX-512F
    const md5 = /"md5":"([^"]+)".*"msg":"packaged files: compared with their packages"/.exec(b.stderr)?.[1];
    expect(md5).toBe(fs.existsSync(path.join(REPO, NATIVE_OUT)) && nativeMd5() ? 'native AVX-512, 32 lanes' : expect.stringMatching(/^wasm SIMD, 8 lanes/));
    // and the packaged native scan from there too
    const scan = /"scan":"([^"]+)".*"msg":"files and folders: how they are scanned"/.exec(b.stderr)?.[1];
    expect(scan).toBe(fs.existsSync(path.join(REPO, NATIVE_SCAN)) ? 'native (libinteg-scan.so, BLAKE3 C 1.8.6)' : expect.stringMatching(/^JavaScript/));
    fs.writeFileSync(path.join(t, 'tree', 'f'), '2\n');
    const c = run(process.execPath, [bin, 'check', '--no-snapshot', '--format', 'ecs'], { env, cwd: t });
    expect(c.status, c.stderr).toBe(4);
    expect(JSON.parse(c.stdout.split('\n')[0]!).event.action).toBe('updated');
    // the /usr/bin/integ wrapper execs /usr/bin/node on that file
    expect(fs.readFileSync(path.join(rootfs, 'usr/bin/integ'), 'utf8')).toMatch(/^exec \/usr\/bin\/node \/usr\/lib\/integ\/bin\/integ\.js "\$@"$/m);
  });

  it('units: daily timer with a randomized delay; the service runs as user integ with least capabilities and hardening', () => {
    const svc = fs.readFileSync(path.join(rootfs, 'usr/lib/systemd/system/integ-check.service'), 'utf8');
    for (const line of [
      'User=integ',
      'AmbientCapabilities=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE',
      'CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'PrivateTmp=yes',
      'SystemCallFilter=@system-service',
      'Environment=INTEG_CONFIG=/etc/integ/integ.yml NO_COLOR=1',
      'ExecStart=/usr/bin/integ check --format ecs',
      'StandardOutput=append:/var/log/integ/events.ndjson',
    ])
      expect(svc.split('\n'), line).toContain(line);
    const timer = fs.readFileSync(path.join(rootfs, 'usr/lib/systemd/system/integ-check.timer'), 'utf8');
    for (const line of ['OnCalendar=daily', 'RandomizedDelaySec=1h', 'Persistent=true', 'WantedBy=timers.target']) expect(timer.split('\n')).toContain(line);
  });

  it.runIf(hasAnalyze)('systemd-analyze verify accepts the units (verified, not started: PID 1 need not be systemd)', () => {
    // systemd's own units beside ours, so dependencies such as sysinit.target resolve inside --root.
    const unitDir = path.join(rootfs, 'usr/lib/systemd/system');
    for (const f of fs.readdirSync('/lib/systemd/system')) {
      const src = path.join('/lib/systemd/system', f);
      if (!fs.existsSync(path.join(unitDir, f)) && fs.lstatSync(src).isFile()) fs.copyFileSync(src, path.join(unitDir, f));
    }
    const r = run('systemd-analyze', ['verify', '--man=no', `--root=${rootfs}`, 'integ-check.service', 'integ-check.timer', 'integ-baseline.service']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // and it does catch a broken unit
    const bad = path.join(unitDir, 'integ-check.service');
    const good = fs.readFileSync(bad, 'utf8');
    fs.writeFileSync(bad, good.replace('ExecStart=/usr/bin/integ', 'ExecStart=/usr/bin/integ-missing'));
    const r2 = run('systemd-analyze', ['verify', '--man=no', `--root=${rootfs}`, 'integ-check.service']);
    expect(r2.status).not.toBe(0);
    expect(r2.stderr).toMatch(/integ-missing/);
    fs.writeFileSync(bad, good);
  });

  it.runIf(has('man'))('man pages integ(8) and integ-policy(5) render without warnings', () => {
    const pages: [string, string][] = [
      ['usr/share/man/man8/integ.8.gz', 'integ - host integrity monitor'],
      ['usr/share/man/man5/integ-policy.5.gz', 'integ-policy - which paths'],
    ];
    for (const [p, name] of pages) {
      const r = run('man', ['--warnings', '-l', path.join(rootfs, p)], {
        env: { ...process.env, MANWIDTH: '100', LC_ALL: 'C.UTF-8', MANPAGER: 'cat', PAGER: 'cat' },
      });
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout.replace(/.\x08/g, '')).toContain(name);
    }
  });

  it('bash completion completes commands and flags', () => {
    const f = path.join(rootfs, 'usr/share/bash-completion/completions/integ');
    const complete = (words: string[]) =>
      run('bash', [
        '-c',
        `source "$1"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _integ; printf '%s\\n' "\${COMPREPLY[@]}"`,
        'x',
        f,
      ])
        .stdout.trim()
        .split('\n');
    expect(complete(['integ', 'ch'])).toEqual(['check']);
    expect(complete(['integ', 'check', '--form'])).toEqual(['--format']);
    expect(complete(['integ', 'check', '--format', 'e'])).toEqual(['ecs']);
    expect(complete(['integ', 'policy', 'ex'])).toEqual(['explain']);
  });

  it('cron.daily: quiet when clean; mails the text report when something changed', () => {
    const t = path.join(dir, 'cron');
    fs.mkdirSync(path.join(t, 'tree'), { recursive: true });
    fs.mkdirSync(path.join(t, 'bin'));
    fs.writeFileSync(path.join(t, 'tree', 'f'), '1\n');
    fs.writeFileSync(path.join(t, 'p.yml'), `version: 1\nrules:\n  - name: t\n    paths: ["${t}/tree/**"]\n`);
    fs.writeFileSync(path.join(t, 'integ.yml'), `db: ${t}/s.db\npolicy: ${t}/p.yml\nevidence: ${t}/ev\n`);
    fs.writeFileSync(path.join(t, 'default'), `CRON_DAILY_RUN=yes\nMAILTO=ops@example.org\nCHECK_ARGS="--no-snapshot"\n`);
    const integBin = path.join(t, 'bin', 'integ');
    fs.writeFileSync(integBin, `#!/bin/sh\nexec ${process.execPath} ${path.join(rootfs, 'usr/lib/integ/bin/integ.js')} "$@"\n`, { mode: 0o755 });
    // a stand-in mail(1) that records what it was asked to send
    fs.writeFileSync(path.join(t, 'bin', 'mail'), `#!/bin/sh\n{ echo "ARGS: $*"; cat; } > ${t}/mail.out\n`, { mode: 0o755 });
    const env = {
      PATH: `${t}/bin:${process.env.PATH}`,
      INTEG_BIN: integBin,
      INTEG_CONFIG: path.join(t, 'integ.yml'),
      INTEG_DEFAULTS: path.join(t, 'default'),
      INTEG_CRON_FORCE: '1',
      HOME: t,
    };
    expect(run(integBin, ['baseline'], { env }).status).toBe(0);
    const cron = path.join(rootfs, 'etc/cron.daily/integ');
    const clean = run(cron, [], { env });
    expect(clean.status).toBe(0);
    expect(clean.stdout + clean.stderr).toBe('');
    expect(fs.existsSync(path.join(t, 'mail.out'))).toBe(false);
    fs.writeFileSync(path.join(t, 'tree', 'f'), 'changed\n');
    const alert = run(cron, [], { env });
    expect(alert.status).toBe(0);
    expect(alert.stdout + alert.stderr).toBe('');
    const mail = fs.readFileSync(path.join(t, 'mail.out'), 'utf8');
    expect(mail).toMatch(/^ARGS: -s integ: \S+ check exit 4 ops@example\.org\n/);
    expect(mail).toMatch(/CHANGED {2}.*\/tree\/f {2}\[content/);
    expect(mail).toMatch(/ALERT 2 scanned, 0 added, 0 removed, 1 changed/);
  });

  it('logrotate: rotates the logs and event file weekly, compressed, recreated for the service user', () => {
    const lr = fs.readFileSync(path.join(rootfs, 'etc/logrotate.d/integ'), 'utf8');
    expect(lr).toMatch(/^\/var\/log\/integ\/\*\.log \/var\/log\/integ\/\*\.ndjson \{$/m);
    for (const w of ['weekly', 'compress', 'missingok', 'notifempty', 'create 0640 integ adm']) expect(lr).toContain(`\t${w}\n`);
  });
});
