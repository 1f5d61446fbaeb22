#!/usr/bin/env node
// Peak memory of baseline and check on one directory holding N empty files (issue 13: a check of
// 300k files in one directory peaked at 432 MB). Not a test: run by hand, on a quiet machine.
//   node tools/wide-dir-memory.mjs [N=300000] [--keep DIR]
// Needs GNU time (/usr/bin/time) and a built tree (npx tsc -p tsconfig.json).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/integ.js');
const n = Number(process.argv[2] ?? 300_000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-wide-'));
const tree = path.join(dir, 'tree');
fs.mkdirSync(tree);
for (let i = 0; i < n; i++) fs.closeSync(fs.openSync(path.join(tree, `file-with-a-longish-name-${String(i).padStart(7, '0')}.conf`), 'w'));
fs.writeFileSync(path.join(dir, 'p.yml'), `version: 1\nrules:\n  - name: t\n    paths: ["${tree}/**"]\n`);
const run = (label, args) => {
  const r = spawnSync('/usr/bin/time', ['-f', '%M %e', process.execPath, bin, ...args], { encoding: 'utf8' });
  const [kb, s] = r.stderr.trim().split('\n').at(-1).split(' ');
  console.log(`${label.padEnd(16)} exit ${r.status}  peak RSS ${(Number(kb) / 1024).toFixed(0)} MiB  ${s} s`);
};
const db = path.join(dir, 's.db');
run('baseline', ['baseline', '--db', db, '--policy', path.join(dir, 'p.yml'), '--jobs', '1']);
run('check --jobs 1', ['check', '--db', db, '--policy', path.join(dir, 'p.yml'), '--jobs', '1', '--no-snapshot']);
run('check --jobs 0', ['check', '--db', db, '--policy', path.join(dir, 'p.yml'), '--jobs', '0', '--no-snapshot']);
if (!process.argv.includes('--keep')) fs.rmSync(dir, { recursive: true, force: true });
else console.log(`kept ${dir}`);
