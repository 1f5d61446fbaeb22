import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { IocCheck } from '../../src/app/ioc-check.js';
import { parseIocText } from '../../src/core/ioc.js';
import type { Observed } from '../../src/core/types.js';
import { tmpdir } from '../helpers/cli.js';
import { capturedLog, recordOf } from '../helpers/records.js';

const hash = (algo: string, b: string | Buffer): string => crypto.createHash(algo).update(b).digest('hex');
const silent = pino({ level: 'silent' });

describe('IocCheck: the feeds’ MD5 of a file its read did not give comes from a second read', () => {
  const d = tmpdir('integ-ioccheck-');
  afterAll(() => fs.rmSync(d, { recursive: true, force: true }));
  const files = new Map<string, Buffer>();
  const put = (name: string, data: Buffer): string => {
    const p = path.join(d, name);
    fs.writeFileSync(p, data);
    files.set(p, data);
    return p;
  };
  // past a lane (128 KiB), as check and baseline leave them to the second read
  const bad = put('bad', crypto.randomBytes(300_000));
  const badToo = put('bad-too', crypto.randomBytes(200_000));
  const clean = put('clean', crypto.randomBytes(250_000));
  const bySha = put('by-sha', crypto.randomBytes(140_000));
  const feedText = [
    `${hash('md5', files.get(bad)!)} bad.kit`,
    `${hash('md5', files.get(badToo)!)} bad-too.kit`,
    `${hash('sha256', files.get(bySha)!)} sha.kit`,
  ].join('\n');
  const feed = () => parseIocText(feedText, 'feed.txt');

  /** The record a scan made of p, with the digests its read computed (no MD5: past a lane). */
  const recOf = (p: string, over: Partial<Observed> = {}): Observed => recordOf(p, p, { extra: { sha256: hash('sha256', files.get(p)!) }, ...over });
  const matched = (c: IocCheck): string[][] => c.results().matches.map((m) => [path.basename(m.path.toString()), m.algorithm, m.label ?? '']);

  it('the read is asked for the feeds’ other digests, never MD5; a feed without MD5 never defers', () => {
    const c = new IocCheck(feed(), silent);
    expect(c.md5).toBe(true);
    expect(c.scanExtra()).toEqual(['sha256']);
    const noMd5 = new IocCheck(parseIocText(`${hash('sha256', files.get(bySha)!)} sha.kit\n`, 'f'), silent);
    expect(noMd5.md5).toBe(false);
    expect(noMd5.matchOrThen(Buffer.from(bySha), 'r', recOf(bySha))).toBeNull();
    expect(matched(noMd5)).toEqual([['by-sha', 'sha256', 'sha.kit']]);
  });

  it('a record that carries its MD5 (from a lane) is matched at once; one without gets a callback that matches when the MD5 comes', () => {
    const c = new IocCheck(feed(), silent);
    expect(c.matchOrThen(Buffer.from(bad), 'r', recOf(bad, { extra: { md5: hash('md5', files.get(bad)!) } }))).toBeNull();
    expect(matched(c)).toEqual([['bad', 'md5', 'bad.kit']]);
    const then = c.matchOrThen(Buffer.from(badToo), 'r', recOf(badToo));
    expect(then).toBeTypeOf('function');
    expect(c.results().matches).toHaveLength(1); // not before its MD5
    then!(hash('md5', files.get(badToo)!));
    expect(matched(c)).toEqual([
      ['bad', 'md5', 'bad.kit'],
      ['bad-too', 'md5', 'bad-too.kit'],
    ]);
    // not a file: nothing to match, nothing to wait for
    expect(c.matchOrThen(Buffer.from(d), 'r', { ...recOf(bad), type: 'dir' })).toBeNull();
  });

  for (const jobs of [0, 2])
    it(`later() + finish(${jobs}): matched by the MD5 of a second read; a file that changed in between is an error, still matched by SHA-256`, async () => {
      const { log, lines } = capturedLog('warn');
      const c = new IocCheck(feed(), log);
      for (const p of [clean, bad, bySha, badToo])
        c.add(Buffer.from(p), Buffer.from(p), 'r', recOf(p, p === bySha || p === badToo ? { ctimeNs: recOf(p).ctimeNs + 1n } : {}));
      expect(c.results().matches, 'nothing before finish()').toEqual([]);
      await c.finish(jobs, new AbortController().signal);
      // bad-too's MD5 is in the feed, but the file is not what the scan recorded (its ctime): not matched by MD5
      expect(matched(c)).toEqual([
        ['bad', 'md5', 'bad.kit'],
        ['by-sha', 'sha256', 'sha.kit'],
      ]);
      expect(c.results().errors.map((e) => [path.basename(e.path.toString()), e.code])).toEqual([
        ['bad-too', 'ECHANGED'],
        ['by-sha', 'ECHANGED'],
      ]);
      expect(c.results().errors[0]!.message).toBe('changed after it was recorded; not matched with the MD5s of the known-bad lists');
      const logged = lines.map((l) => JSON.parse(l) as { level: number; path: string; msg: string });
      expect(
        logged
          .filter((l) => l.msg === 'known-bad content')
          .map((l) => path.basename(l.path))
          .sort(),
      ).toEqual(['bad', 'by-sha']);
      expect(
        logged
          .filter((l) => l.level === 40)
          .map((l) => path.basename(l.path))
          .sort(),
      ).toEqual(['bad-too', 'by-sha']);
    });

  it('a vanished file: its error, no match; stop() before finish() leaves nothing running', async () => {
    const gone = put('gone', crypto.randomBytes(150_000));
    const rec = recOf(gone);
    fs.rmSync(gone);
    const c = new IocCheck(feed(), silent);
    c.add(Buffer.from(gone), Buffer.from(gone), 'r', rec);
    await c.finish(0, new AbortController().signal);
    expect(c.results().errors.map((e) => e.code)).toEqual(['ENOENT']);
    expect(c.results().errors[0]!.message).toMatch(/; not matched with the MD5s of the known-bad lists$/);
    const s = new IocCheck(feed(), silent);
    s.add(Buffer.from(bad), Buffer.from(bad), 'r', recOf(bad));
    await s.stop();
    await s.stop();
  });
});
