#!/usr/bin/env node
// npm run package:deb [-- --out DIR]: build integ_<version>_<arch>.deb with dpkg-deb alone.
// Layout: /usr/bin/integ, the app and its production dependencies in /usr/lib/integ, /etc/integ
// (conffiles), systemd units, cron.daily, logrotate, man pages, bash completion.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outArg = args.indexOf('--out');
const outDir = path.resolve(outArg >= 0 ? args[outArg + 1] : path.join(REPO, 'dist', 'deb'));
const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
const lock = JSON.parse(fs.readFileSync(path.join(REPO, 'package-lock.json'), 'utf8'));
const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
const version = `${pkg.version}-1`;

if (!fs.existsSync(path.join(REPO, 'dist', 'bundle', 'cli.js'))) {
  console.error('package:deb: dist/bundle/cli.js is missing; run "npm run build" first');
  process.exit(66);
}

const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-deb-'));
fs.chmodSync(stage, 0o755); // the package's ./ must not carry mkdtemp's 0700
const root = (p) => path.join(stage, p);
const mkdir = (p, mode = 0o755) => fs.mkdirSync(root(p), { recursive: true, mode });
function put(dest, src, mode = 0o644) {
  mkdir(path.dirname(dest));
  fs.copyFileSync(path.join(REPO, src), root(dest));
  fs.chmodSync(root(dest), mode);
}
function write(dest, text, mode = 0o644) {
  mkdir(path.dirname(dest));
  fs.writeFileSync(root(dest), text);
  fs.chmodSync(root(dest), mode);
}
/** Copy a tree, skipping what `skip(relativePath)` rejects; files 0644 (0755 if executable), dirs 0755. */
function copyTree(src, dest, skip = () => false, rel = '') {
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (skip(r, e)) continue;
    const s = path.join(src, e.name);
    const d = path.join(dest, e.name);
    if (e.isDirectory()) {
      fs.mkdirSync(d, { recursive: true, mode: 0o755 });
      copyTree(s, d, skip, r);
    } else if (e.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(s), d);
    } else if (e.isFile()) {
      fs.copyFileSync(s, d);
      fs.chmodSync(d, fs.statSync(s).mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

try {
  // The application.
  const app = 'usr/lib/integ';
  mkdir(app);
  const runtimePkg = {
    name: pkg.name,
    version: pkg.version,
    description: pkg.description,
    license: pkg.license,
    type: pkg.type,
    bin: pkg.bin,
    engines: pkg.engines,
    dependencies: pkg.dependencies,
  };
  write(`${app}/package.json`, `${JSON.stringify(runtimePkg, null, 2)}\n`);
  put(`${app}/bin/integ.js`, 'bin/integ.js', 0o755);
  // What bin/integ.js runs: the bundle (tools/bundle.mjs), not tsc's module tree.
  mkdir(`${app}/dist/bundle`);
  copyTree(path.join(REPO, 'dist', 'bundle'), root(`${app}/dist/bundle`), (r) => r.endsWith('.map'));
  // integ's native libraries, the MD5 lanes and the scan (tools/build-native.mjs), where this machine built them: hosts need no compiler
  if (fs.existsSync(path.join(REPO, 'dist', 'native'))) {
    mkdir(`${app}/dist/native`);
    copyTree(path.join(REPO, 'dist', 'native'), root(`${app}/dist/native`), (r) => !r.endsWith('.so'));
  }
  mkdir(`${app}/baselines`);
  copyTree(path.join(REPO, 'baselines'), root(`${app}/baselines`));
  // Production dependencies only, as package-lock.json resolves them.
  for (const [key, meta] of Object.entries(lock.packages)) {
    if (!key || meta.dev || meta.link) continue;
    const src = path.join(REPO, key);
    if (!fs.existsSync(src)) continue; // an optional dependency for another platform
    const dest = root(`${app}/${key}`);
    fs.mkdirSync(dest, { recursive: true, mode: 0o755 });
    // better-sqlite3: the compiled module only, not its C sources and build objects.
    const native = key.endsWith('node_modules/better-sqlite3');
    copyTree(
      src,
      dest,
      (r, e) =>
        r === 'node_modules' ||
        (native &&
          (r === 'deps' ||
            r === 'src' ||
            (r.startsWith('build/') && r !== 'build/Release' && r !== 'build/Release/better_sqlite3.node' && !(e.isDirectory() && r === 'build/Release')))),
    );
  }
  write('usr/bin/integ', '#!/bin/sh\n# integ(8): the application lives in /usr/lib/integ\nexec /usr/bin/node /usr/lib/integ/bin/integ.js "$@"\n', 0o755);

  // Configuration (conffiles).
  put('etc/integ/integ.yml', 'packaging/etc/integ.yml');
  put('etc/integ/policy.yml', 'baselines/default.yml');
  put('etc/integ/policy.d/README', 'packaging/etc/policy.d-README');
  put('etc/default/integ', 'packaging/etc/default-integ');
  put('etc/cron.daily/integ', 'packaging/etc/cron.daily-integ', 0o755);
  put('etc/logrotate.d/integ', 'packaging/etc/logrotate-integ');
  const conffiles = [
    '/etc/integ/integ.yml',
    '/etc/integ/policy.yml',
    '/etc/integ/policy.d/README',
    '/etc/default/integ',
    '/etc/cron.daily/integ',
    '/etc/logrotate.d/integ',
  ];

  // systemd, man pages, completion, docs.
  for (const u of ['integ-check.service', 'integ-check.timer', 'integ-baseline.service']) put(`usr/lib/systemd/system/${u}`, `packaging/systemd/${u}`);
  for (const [page, sec] of [
    ['integ', 8],
    ['integ-policy', 5],
  ]) {
    mkdir(`usr/share/man/man${sec}`);
    fs.writeFileSync(
      root(`usr/share/man/man${sec}/${page}.${sec}.gz`),
      zlib.gzipSync(fs.readFileSync(path.join(REPO, `packaging/man/${page}.${sec}`)), { level: 9 }),
    );
  }
  put('usr/share/bash-completion/completions/integ', 'packaging/completion/integ');
  put('usr/share/doc/integ/README.md', 'README.md');
  write(
    'usr/share/doc/integ/copyright',
    `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: integ\n\nFiles: *\nLicense: ${pkg.license}\n On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.\n`,
  );

  // Control area.
  mkdir('DEBIAN');
  const md5 = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(root(d), { withFileTypes: true })) {
      const r = d ? `${d}/${e.name}` : e.name;
      if (r === 'DEBIAN') continue;
      if (e.isDirectory()) walk(r);
      else if (e.isFile() && !r.startsWith('etc/'))
        md5.push(
          `${createHash('md5')
            .update(fs.readFileSync(root(r)))
            .digest('hex')}  ${r}`,
        );
    }
  };
  walk('');
  write('DEBIAN/md5sums', `${md5.sort((a, b) => (a.slice(34) < b.slice(34) ? -1 : 1)).join('\n')}\n`);
  write('DEBIAN/conffiles', `${conffiles.join('\n')}\n`);
  const installedKb = Number(execFileSync('du', ['-sk', '--exclude=DEBIAN', stage], { encoding: 'utf8' }).split(/\s/)[0]);
  write(
    'DEBIAN/control',
    [
      'Package: integ',
      `Version: ${version}`,
      'Section: admin',
      'Priority: optional',
      `Architecture: ${arch}`,
      'Maintainer: integ maintainers <integ@localhost>',
      `Installed-Size: ${installedKb}`,
      'Depends: nodejs (>= 20), adduser',
      'Recommends: bsd-mailx | mailx, logrotate',
      'Suggests: rsyslog | system-log-daemon',
      'Homepage: https://github.com/integ-project/integ',
      'Description: host integrity monitor and live-response collector for Linux',
      ' integ records what a host normally looks like (a baseline of file digests and',
      ' metadata), detects tampering by re-hashing and comparing, and on an incident',
      ' preserves volatile state in a sealed, verifiable evidence bundle.',
      ' .',
      ' This package runs a daily check from a systemd timer (or cron.daily) as a',
      ' dedicated system user and can report to syslog and SIEMs (ndjson, ECS).',
      '',
    ].join('\n'),
  );
  for (const s of ['postinst', 'prerm', 'postrm']) put(`DEBIAN/${s}`, `packaging/debian/${s}`, 0o755);

  fs.mkdirSync(outDir, { recursive: true });
  const deb = path.join(outDir, `integ_${version}_${arch}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, deb], { stdio: ['ignore', 'ignore', 'inherit'] });
  console.log(deb);
} finally {
  fs.rmSync(stage, { recursive: true, force: true });
}
