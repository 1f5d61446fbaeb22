import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, integ, tmpdir, writePolicy } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true, maxRetries: 3 });
});

interface Done {
  code: number;
  stderr: string;
}

function run(args: string[]): Promise<Done> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1', INTEG_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

describe('readers during a concurrent baseline read one consistent snapshot (never a false 16)', () => {
  it('export and diff --generation while real baseline processes commit new generations: 0 or 75, never 16', async () => {
    const dir = tmpdir('integ-concurrent-');
    dirs.push(dir);
    const tree = path.join(dir, 'tree');
    fs.mkdirSync(tree);
    // Enough rows that verifying the current generation takes a while: a baseline can commit meanwhile.
    for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(tree, `f${i}`), `file ${i}\n`);
    const policy = writePolicy(dir, tree);
    const db = path.join(dir, 's.db');
    expect(integ(['baseline', '--db', db, '--policy', policy, '--jobs', '0']).code).toBe(0);
    expect(integ(['baseline', '--db', db, '--policy', policy, '--jobs', '0']).code).toBe(0);
    let stop = false;
    let baselines = 0;
    // A writer process committing one generation after another for the whole test.
    const writer = (async () => {
      while (!stop) {
        const r = await run(['baseline', '--db', db, '--policy', policy, '--jobs', '0']);
        expect(r.code, r.stderr).toBe(0);
        baselines++;
      }
    })();
    const results: Array<{ what: string } & Done> = [];
    try {
      for (let round = 0; round < 6; round++) {
        const out = path.join(dir, `export-${round}.db`);
        const [e, d] = await Promise.all([run(['export', '--db', db, '--out', out]), run(['diff', '--generation', '1', '2', '--db', db])]);
        results.push({ what: 'export', ...e }, { what: 'diff', ...d });
      }
    } finally {
      stop = true;
      await writer;
    }
    expect(baselines).toBeGreaterThan(0);
    for (const r of results) {
      expect(r.code === 16 ? `${r.what}: ${r.stderr}` : '').toBe('');
      expect([0, 75], `${r.what}: ${r.stderr}`).toContain(r.code);
    }
    // The copies are complete and trusted on their own.
    for (let round = 0; round < 6; round++) {
      const out = path.join(dir, `export-${round}.db`);
      if (fs.existsSync(out)) expect(integ(['history', '--db', out]).code).toBe(0);
    }
  }, 300_000);
});
