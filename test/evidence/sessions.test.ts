import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { collectSessions, parseLogindSession, parseUtmp, parseUtmpRecord, readWtmpTail, UTMP_RECORD_SIZE } from '../../src/evidence/collectors/sessions.js';
import { cleanupTmp, ctxFor, FSROOT, tmpDir } from './collect-helpers.js';

afterAll(cleanupTmp);

interface Rec {
  type: number;
  pid?: number;
  line?: string;
  id?: string;
  user?: string;
  host?: string;
  exit?: [number, number];
  session?: number;
  sec?: number;
  usec?: number;
  addr?: number[];
}

/** One glibc x86_64 struct utmp, byte by byte at the documented offsets. */
function utmp(r: Rec): Buffer {
  const b = Buffer.alloc(UTMP_RECORD_SIZE);
  b.writeInt32LE(r.type, 0);
  b.writeInt32LE(r.pid ?? 0, 4);
  // Buffer.write stops at the field length: a string that fills it has no NUL terminator.
  b.write(r.line ?? '', 8, 32, 'latin1');
  b.write(r.id ?? '', 40, 4, 'latin1');
  b.write(r.user ?? '', 44, 32, 'latin1');
  b.write(r.host ?? '', 76, 256, 'latin1');
  b.writeInt16LE(r.exit?.[0] ?? 0, 332);
  b.writeInt16LE(r.exit?.[1] ?? 0, 334);
  b.writeInt32LE(r.session ?? 0, 336);
  b.writeInt32LE(r.sec ?? 0, 340);
  b.writeInt32LE(r.usec ?? 0, 344);
  Buffer.from(r.addr ?? []).copy(b, 348);
  return b;
}

describe('utmp records', () => {
  it('decodes every field at its offset', () => {
    const buf = utmp({
      type: 7,
      pid: 4242,
      line: 'pts/0',
      id: 'ts/0',
      user: 'alice',
      host: '203.0.113.9',
      exit: [1, 2],
      session: 77,
      sec: 1763766000,
      usec: 250000,
      addr: [203, 0, 113, 9],
    });
    expect(parseUtmpRecord(buf, 0, 0)).toEqual({
      index: 0,
      type: 'USER_PROCESS',
      type_code: 7,
      pid: 4242,
      line: 'pts/0',
      id: 'ts/0',
      user: 'alice',
      host: '203.0.113.9',
      exit: { termination: 1, exit: 2 },
      session: 77,
      time: '2025-11-21T23:00:00.250Z',
      tv_sec: 1763766000,
      tv_usec: 250000,
      addr: '203.0.113.9',
    });
  });

  it('stops a field at its end when it has no NUL terminator', () => {
    const user32 = 'u'.repeat(32);
    const line32 = 'L'.repeat(32);
    const r = parseUtmpRecord(utmp({ type: 7, line: line32, id: 'abcd', user: user32, host: 'next-field' }), 0, 0);
    expect(r.user).toBe(user32);
    expect(r.line).toBe(line32);
    expect(r.id).toBe('abcd');
    expect(r.host).toBe('next-field');
  });

  it('decodes an IPv6 ut_addr_v6 and keeps non-UTF-8 bytes visible', () => {
    const addr = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const b = utmp({ type: 7, user: 'bob', addr });
    b[44 + 3] = 0xff; // "bob\xff"
    const r = parseUtmpRecord(b, 0, 0);
    expect(r.addr).toBe('2001:db8::1');
    expect(r.user).toBe('bob\\xff');
  });

  it('parses whole records and reports a trailing partial one', () => {
    const buf = Buffer.concat([utmp({ type: 2, user: 'reboot', sec: 1000 }), utmp({ type: 7, user: 'a', line: 'tty1' }), Buffer.alloc(100, 0x41)]);
    const { records, trailing_bytes } = parseUtmp(buf);
    expect(records.map((r) => r.type)).toEqual(['BOOT_TIME', 'USER_PROCESS']);
    expect(trailing_bytes).toBe(100);
  });
});

describe('logind session files', () => {
  it('parses the recorded key=value file', () => {
    const s = parseLogindSession('3', fs.readFileSync(path.join(FSROOT, 'run/systemd/sessions/3'), 'utf8'));
    expect(s).toMatchObject({
      id: '3',
      user: 'alice',
      uid: 1000,
      tty: 'pts/0',
      remote_host: '203.0.113.9',
      service: 'sshd',
      type: 'tty',
      class: 'user',
      state: 'active',
      active: true,
      remote: true,
      leader: 4242,
      scope: 'session-3.scope',
    });
    expect(s.started_at).toBe('2025-11-21T23:00:00.123Z');
    expect(s.fields['ORIGINAL_TYPE']).toBe('tty');
  });
});

function wtmpImage(): Buffer {
  return Buffer.concat([
    utmp({ type: 2, line: '~', user: 'reboot', host: '6.8.0-49-generic', sec: 1000 }),
    utmp({ type: 7, pid: 10, line: 'tty1', user: 'alice', sec: 1100 }),
    utmp({ type: 8, pid: 10, line: 'tty1', sec: 1200 }),
    utmp({ type: 7, pid: 11, line: 'pts/0', user: 'bob', host: '198.51.100.7', sec: 1300 }),
    utmp({ type: 7, pid: 12, line: 'pts/1', user: 'carol', sec: 1400 }),
    utmp({ type: 8, pid: 11, line: 'pts/0', sec: 1500 }),
    utmp({ type: 7, pid: 13, line: 'pts/0', user: 'dave', sec: 1600 }),
  ]);
}
const iso = (s: number): string => new Date(s * 1000).toISOString();

describe('wtmp read from its end', () => {
  it('returns the last N logins, newest first, each paired with its logout', () => {
    const d = tmpDir('wtmp');
    fs.writeFileSync(path.join(d, 'wtmp'), Buffer.concat([wtmpImage(), Buffer.alloc(10)]));
    const t = readWtmpTail(path.join(d, 'wtmp'), 3, 1 << 20, Date.now() + 5000);
    expect(t.logins.map((l) => [l.user, l.line, l.login_at, l.logout_at])).toEqual([
      ['dave', 'pts/0', iso(1600), null],
      ['carol', 'pts/1', iso(1400), null],
      ['bob', 'pts/0', iso(1300), iso(1500)],
    ]);
    expect(t.trailing_bytes).toBe(10);
    // the file is smaller than one read chunk: it was read whole, the partial tail excluded
    expect(t.bytes_read).toBe(7 * UTMP_RECORD_SIZE);

    const all = readWtmpTail(path.join(d, 'wtmp'), 50, 1 << 20, Date.now() + 5000);
    expect(all.logins.map((l) => l.user)).toEqual(['dave', 'carol', 'bob', 'alice']);
    expect(all.logins[3]!.logout_at).toBe(iso(1200));
    expect(all.boots).toEqual([{ time: iso(1000), kernel: '6.8.0-49-generic' }]);
    expect(all.reached_start).toBe(true);
  });

  it('reads no more than its byte bound', () => {
    const d = tmpDir('wtmp');
    fs.writeFileSync(path.join(d, 'wtmp'), wtmpImage());
    const t = readWtmpTail(path.join(d, 'wtmp'), 50, 2 * UTMP_RECORD_SIZE, Date.now() + 5000);
    expect(t.bytes_read).toBe(2 * UTMP_RECORD_SIZE);
    expect(t.logins.map((l) => l.user)).toEqual(['dave']);
    expect(t.reached_start).toBe(false);
  });
});

describe('collectSessions', () => {
  function host(): string {
    const root = tmpDir('sessions');
    fs.mkdirSync(path.join(root, 'var/run'), { recursive: true });
    fs.mkdirSync(path.join(root, 'var/log'), { recursive: true });
    fs.mkdirSync(path.join(root, 'run/systemd/sessions'), { recursive: true });
    fs.writeFileSync(
      path.join(root, 'var/run/utmp'),
      Buffer.concat([
        utmp({ type: 2, line: '~', user: 'reboot', sec: 1000 }),
        utmp({ type: 6, pid: 600, line: 'tty1', id: 'tty1', user: 'LOGIN' }),
        utmp({ type: 7, pid: 4242, line: 'pts/0', id: 'ts/0', user: 'alice', host: '203.0.113.9', sec: 1763766000, addr: [203, 0, 113, 9] }),
        utmp({ type: 0 }),
      ]),
    );
    fs.copyFileSync(path.join(FSROOT, 'run/systemd/sessions/3'), path.join(root, 'run/systemd/sessions/3'));
    // logind keeps a FIFO beside each session file: it must never be opened
    execFileSync('mkfifo', [path.join(root, 'run/systemd/sessions/3.ref')]);
    execFileSync('mkfifo', [path.join(root, 'run/systemd/sessions/4')]);
    fs.writeFileSync(path.join(root, 'var/log/wtmp'), wtmpImage());
    return root;
  }

  it('collects utmp, logind (skipping FIFOs) and wtmp into sessions and logins', async () => {
    const root = host();
    const out = await collectSessions(ctxFor({ fsRoot: root }), { logins: 2 });
    expect(out.errors).toEqual([]);
    const sessions = out.json.find((j) => j.name === 'sessions')!.data as any;
    expect(sessions.current).toEqual([
      { user: 'alice', line: 'pts/0', host: '203.0.113.9', addr: '203.0.113.9', pid: 4242, login_at: '2025-11-21T23:00:00.000Z' },
    ]);
    expect(sessions.utmp.records.map((r: any) => r.type)).toEqual(['BOOT_TIME', 'LOGIN_PROCESS', 'USER_PROCESS']);
    expect(sessions.logind.map((s: any) => s.id)).toEqual(['3']);
    const logins = out.json.find((j) => j.name === 'logins')!.data as any;
    expect(logins.wtmp.logins.map((l: any) => l.user)).toEqual(['dave', 'carol']);
    expect(logins.wtmpdb).toBeNull();
    expect(out.raw.map((r) => r.file).sort()).toEqual(['run/systemd/sessions/3', 'var/log/wtmp.tail', 'var/run/utmp']);
  });

  it('reads wtmpdb read-only when present', async () => {
    const root = host();
    fs.mkdirSync(path.join(root, 'var/lib/wtmpdb'), { recursive: true });
    const dbFile = path.join(root, 'var/lib/wtmpdb/wtmp.db');
    const db = new Database(dbFile);
    db.exec(
      'CREATE TABLE wtmp(ID INTEGER PRIMARY KEY, Type INTEGER, User TEXT NOT NULL, Login INTEGER, Logout INTEGER, TTY TEXT, RemoteHost TEXT, Service TEXT)',
    );
    const ins = db.prepare('INSERT INTO wtmp(Type, User, Login, Logout, TTY, RemoteHost, Service) VALUES (?, ?, ?, ?, ?, ?, ?)');
    ins.run(3, 'alice', 1763766000_000000, 1763769600_000000, 'pts/0', '203.0.113.9', 'sshd');
    ins.run(3, 'mallory', 1763770000_000000, null, 'pts/1', '192.0.2.66', 'sshd');
    db.close();
    const before = fs.readFileSync(dbFile);
    const out = await collectSessions(ctxFor({ fsRoot: root }));
    const logins = out.json.find((j) => j.name === 'logins')!.data as any;
    expect(logins.wtmpdb).toEqual([
      {
        id: 2,
        type: 3,
        user: 'mallory',
        line: 'pts/1',
        host: '192.0.2.66',
        service: 'sshd',
        login_at: new Date(1763770000_000).toISOString(),
        logout_at: null,
      },
      {
        id: 1,
        type: 3,
        user: 'alice',
        line: 'pts/0',
        host: '203.0.113.9',
        service: 'sshd',
        login_at: new Date(1763766000_000).toISOString(),
        logout_at: new Date(1763769600_000).toISOString(),
      },
    ]);
    expect(fs.readFileSync(dbFile).equals(before)).toBe(true);
  });

  it('says so when there is no utmp and no wtmp, without errors', async () => {
    const out = await collectSessions(ctxFor({ fsRoot: tmpDir('empty') }));
    expect(out.errors).toEqual([]);
    expect((out.json[0]!.data as any).utmp).toBeNull();
    expect((out.json[1]!.data as any).notes.join(' ')).toMatch(/neither/);
  });
});
