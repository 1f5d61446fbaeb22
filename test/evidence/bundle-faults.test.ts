/**
 * The writer's failure paths with injected errors, so they are exercised on every
 * machine (bundle-writer.test.ts also fills a real tmpfs when it can mount one).
 */
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const faults = vi.hoisted(() => ({ rename: '' as string, writeAfter: -1, writeCode: 'ENOSPC' }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: injected`), { code });
  const wrapped = {
    ...real,
    rename: async (a: string, b: string) => {
      if (faults.rename && String(a).endsWith('.partial')) throw errno(faults.rename);
      return real.rename(a, b);
    },
    open: async (...args: Parameters<typeof real.open>) => {
      const handle = await real.open(...args);
      if (faults.writeAfter < 0 || !String(args[0]).endsWith('.partial')) return handle;
      let written = 0;
      const write = handle.write.bind(handle) as (...a: unknown[]) => Promise<{ bytesWritten: number }>;
      (handle as unknown as { write: unknown }).write = async (...a: unknown[]) => {
        const buf = a[0] as Buffer;
        if (written + buf.length > faults.writeAfter) throw errno(faults.writeCode);
        const r = await write(...a);
        written += r.bytesWritten;
        return r;
      };
      return handle;
    },
  };
  return { ...wrapped, default: wrapped };
});

const { BundleWriter } = await import('../../src/evidence/bundle-writer.js');
const { NOW, tmpDir } = await import('./bundle-fixtures.js');

let dir: string;
beforeEach(() => {
  dir = tmpDir();
  faults.rename = '';
  faults.writeAfter = -1;
  faults.writeCode = 'ENOSPC';
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function filled() {
  const w = await BundleWriter.create({ outDir: dir, hostname: 'h', now: NOW });
  await w.addFile('artifacts/a.json', '{"a":1}\n');
  await w.addFile('raw/blob', Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251)));
  w.log({ step: 'x' });
  return w;
}

describe('BundleWriter with injected write errors', () => {
  it.each([
    ['ENOSPC', 74, /no space left on device/],
    ['EIO', 74, /EIO/],
    ['EACCES', 73, /EACCES/],
    ['EROFS', 73, /EROFS/],
  ])('%s while writing the archive → exit %i, nothing left', async (code, exit, msg) => {
    faults.writeAfter = 1000;
    faults.writeCode = code;
    const w = await filled();
    const err = await w.seal({ manifest: {} }).catch((e: unknown) => e);
    expect((err as { exitCode: number }).exitCode).toBe(exit);
    expect((err as Error).message).toMatch(msg);
    expect((err as Error).message).toMatch(/cannot seal bundle integ-h-20261121T230000Z/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('EROFS on the final rename → exit 73, no .tar.gz and no .partial', async () => {
    faults.rename = 'EROFS';
    const w = await filled();
    const err = await w.seal({ manifest: {} }).catch((e: unknown) => e);
    expect((err as { exitCode: number }).exitCode).toBe(73);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a later seal or addFile repeats the failure instead of writing more', async () => {
    faults.writeAfter = 0;
    const w = await filled();
    const err = await w.seal({ manifest: {} }).catch((e: unknown) => e);
    await expect(w.addFile('b', 'x')).rejects.toBe(err);
  });
});
