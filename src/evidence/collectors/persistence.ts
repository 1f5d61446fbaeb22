/**
 * Step 8, persistence and accounts: the places an intruder returns through (authorized_keys,
 * shell start-up files, systemd units and timers, cron, at, rc/profile scripts, PAM, udev,
 * ld.so.conf, sudoers) and the account databases; plus the firewall state /proc shows.
 * Regular files are copied under raw/fs/ (bounded); symlinks are recorded, never followed
 * out of a home directory; FIFOs and devices are listed, never opened.
 * Artifacts: accounts, persistence, firewall.
 */
import { isUtf8 } from 'node:buffer';
import fs from 'node:fs';
import path from 'node:path';
import { pathToText } from '../../core/pathenc.js';
import type { ArtifactOutput, CollectContext, CollectError } from '../types.js';
import { decodeLossless, errCode, expired, readRegular, timeoutError, toError, under } from './fsread.js';
import { CopyBudget, emptyFileFields, firstVisit, setStatFields, type FileFields } from './file-entry.js';
import { sha256Hex } from '../../util/sha256.js';

export interface PersistenceOptions {
  /** keep password hashes of shadow/gshadow in the bundle (default false: redacted) */
  shadowHashes?: boolean;
  /** entries listed at most (default 20000) */
  maxFiles?: number;
  /** bytes copied in all (default 64 MiB) */
  maxTotalBytes?: number;
  /** bytes copied per file (default 1 MiB; shell histories keep their last bytes) */
  maxFileBytes?: number;
  /** accounts whose home directory is read at most (default 5000) */
  maxAccounts?: number;
}

export type PersistenceCategory =
  | 'authorized_keys'
  | 'shell_history'
  | 'shell_startup'
  | 'systemd_unit'
  | 'systemd_user_unit'
  | 'cron'
  | 'at'
  | 'rc'
  | 'profile'
  | 'pam'
  | 'pam_module'
  | 'udev'
  | 'ld_so_conf'
  | 'sudoers'
  | 'ssh'
  | 'autostart';

/** copy: the copy in the bundle (raw/fs/…), or null (not a regular file, hashed only, or a bound) */
export interface PersistenceEntry extends FileFields {
  /** the path; a name that is not UTF-8 shows its bytes as \xHH and is given exactly in path_b64 */
  path: string;
  path_b64?: string;
  category: PersistenceCategory;
  /** the account whose home directory it is in */
  user?: string;
  /** a history copied from its end: the offset the copy starts at */
  tail_from?: number;
  /** systemd: the .wants/.requires directories whose links enable this unit */
  enabled_by?: string[];
}

export interface Account {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
  /** from shadow: "hash" (a password is set), "locked" (! or *), "empty" (no password!), "none" (no shadow line) */
  password: 'hash' | 'locked' | 'empty' | 'none' | 'unknown';
  /** crypt scheme id of the hash ($6$ sha512crypt, $y$ yescrypt …) */
  hash_scheme: string | null;
  /** the hash itself only with --shadow-hashes */
  hash?: string;
  /** sha256 of the hash, first 16 hex: compares two snapshots without revealing the hash */
  hash_fingerprint: string | null;
  last_change_days: number | null;
}

const HOME_FILES: Array<[string, PersistenceCategory]> = [
  ['.ssh/authorized_keys', 'authorized_keys'],
  ['.ssh/authorized_keys2', 'authorized_keys'],
  ['.ssh/rc', 'shell_startup'],
  ['.bash_history', 'shell_history'],
  ['.zsh_history', 'shell_history'],
  ['.history', 'shell_history'],
  ['.sh_history', 'shell_history'],
  ['.ash_history', 'shell_history'],
  ['.local/share/fish/fish_history', 'shell_history'],
  ['.python_history', 'shell_history'],
  ['.mysql_history', 'shell_history'],
  ['.psql_history', 'shell_history'],
  ['.bashrc', 'shell_startup'],
  ['.bash_profile', 'shell_startup'],
  ['.bash_login', 'shell_startup'],
  ['.bash_logout', 'shell_startup'],
  ['.profile', 'shell_startup'],
  ['.zshrc', 'shell_startup'],
  ['.zprofile', 'shell_startup'],
  ['.zshenv', 'shell_startup'],
  ['.config/fish/config.fish', 'shell_startup'],
];
const HOME_DIRS: Array<[string, PersistenceCategory, number]> = [
  ['.config/systemd/user', 'systemd_user_unit', 3],
  ['.config/autostart', 'autostart', 0],
];

/** [dir relative to the root, category, depth]; depth 0 = the entries of dir only */
const PLACES: Array<[string, PersistenceCategory, number]> = [
  ['etc/systemd/system', 'systemd_unit', 3],
  ['run/systemd/system', 'systemd_unit', 3],
  ['usr/local/lib/systemd/system', 'systemd_unit', 3],
  ['lib/systemd/system', 'systemd_unit', 3],
  ['usr/lib/systemd/system', 'systemd_unit', 3],
  ['etc/systemd/user', 'systemd_user_unit', 3],
  ['usr/local/lib/systemd/user', 'systemd_user_unit', 3],
  ['lib/systemd/user', 'systemd_user_unit', 3],
  ['usr/lib/systemd/user', 'systemd_user_unit', 3],
  ['etc/cron.d', 'cron', 0],
  ['etc/cron.hourly', 'cron', 0],
  ['etc/cron.daily', 'cron', 0],
  ['etc/cron.weekly', 'cron', 0],
  ['etc/cron.monthly', 'cron', 0],
  ['var/spool/cron', 'cron', 2],
  ['var/spool/at', 'at', 2],
  ['etc/init.d', 'rc', 0],
  ['etc/rc.d', 'rc', 2],
  ['etc/profile.d', 'profile', 0],
  ['etc/zsh', 'profile', 0],
  ['etc/xdg/autostart', 'autostart', 0],
  ['etc/pam.d', 'pam', 0],
  ['etc/security', 'pam', 1],
  ['etc/udev/rules.d', 'udev', 0],
  ['run/udev/rules.d', 'udev', 0],
  ['lib/udev/rules.d', 'udev', 0],
  ['usr/lib/udev/rules.d', 'udev', 0],
  ['etc/ld.so.conf.d', 'ld_so_conf', 0],
  ['etc/sudoers.d', 'sudoers', 0],
  ['etc/ssh/sshd_config.d', 'ssh', 0],
];
const SINGLE_FILES: Array<[string, PersistenceCategory]> = [
  ['etc/crontab', 'cron'],
  ['etc/anacrontab', 'cron'],
  ['etc/cron.allow', 'cron'],
  ['etc/cron.deny', 'cron'],
  ['etc/at.allow', 'at'],
  ['etc/at.deny', 'at'],
  ['etc/rc.local', 'rc'],
  ['etc/profile', 'profile'],
  ['etc/bash.bashrc', 'profile'],
  ['etc/bashrc', 'profile'],
  ['etc/environment', 'profile'],
  ['etc/zshrc', 'profile'],
  ['etc/pam.conf', 'pam'],
  ['etc/ld.so.conf', 'ld_so_conf'],
  ['etc/ld.so.preload', 'ld_so_conf'],
  ['etc/sudoers', 'sudoers'],
  ['etc/ssh/sshd_config', 'ssh'],
];
/** PAM module directories: hashed, not copied (they are binaries from packages). */
const PAM_MODULE_DIRS = [
  'lib/security',
  'lib64/security',
  'usr/lib/security',
  'usr/lib64/security',
  'lib/x86_64-linux-gnu/security',
  'usr/lib/x86_64-linux-gnu/security',
  'lib/aarch64-linux-gnu/security',
  'usr/lib/aarch64-linux-gnu/security',
];

/** passwd lines → accounts (shadow state filled in later). */
export function parsePasswd(text: string): Array<Omit<Account, 'password' | 'hash_scheme' | 'hash_fingerprint' | 'last_change_days'>> {
  const out: Array<Omit<Account, 'password' | 'hash_scheme' | 'hash_fingerprint' | 'last_change_days'>> = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || !f[0] || line.startsWith('#')) continue;
    out.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), gecos: f[4] ?? '', home: f[5] ?? '', shell: f[6] ?? '' });
  }
  return out;
}

/** A shadow-format password field → what it says, without the hash. */
export function passwordState(field: string | undefined): { password: Account['password']; scheme: string | null } {
  if (field === undefined) return { password: 'none', scheme: null };
  if (field === '') return { password: 'empty', scheme: null };
  if (field.startsWith('!') || field.startsWith('*')) return { password: 'locked', scheme: /^[!*]*(\$[^$]+\$)/.exec(field)?.[1] ?? null };
  return { password: 'hash', scheme: /^(\$[^$]+\$)/.exec(field)?.[1] ?? 'des' };
}

/** shadow/gshadow with every password field replaced by its state: "$6$<redacted>", "!", "" … */
export function redactShadow(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      const f = line.split(':');
      if (f.length < 2 || line.startsWith('#')) return line;
      const st = passwordState(f[1]);
      const lockPrefix = /^[!*]*/.exec(f[1] ?? '')?.[0] ?? '';
      f[1] =
        st.password === 'hash'
          ? `${st.scheme ?? ''}<redacted>`
          : st.password === 'locked'
            ? `${lockPrefix}${st.scheme ? `${st.scheme}<redacted>` : ''}`
            : (f[1] ?? '');
      return f.join(':');
    })
    .join('\n');
}

export async function collectPersistence(ctx: CollectContext, opts: PersistenceOptions = {}): Promise<ArtifactOutput> {
  const errors: CollectError[] = [];
  const raw: ArtifactOutput['raw'] = [];
  const R = ctx.fsRoot;
  const maxFiles = opts.maxFiles ?? 20000;
  const maxTotal = opts.maxTotalBytes ?? 64 << 20;
  const maxFile = opts.maxFileBytes ?? 1 << 20;
  const entries: PersistenceEntry[] = [];
  const seen = new Set<string>();
  const budget = new CopyBudget(maxTotal, maxFile);
  const limits: string[] = [];
  let timedOut = false;

  const rootSlash = Buffer.from(R.endsWith('/') ? R : `${R}/`);
  const absBytes = (relBytes: Buffer): Buffer => Buffer.concat([rootSlash, relBytes]);

  const stop = (): boolean => {
    if (!timedOut && expired(ctx)) {
      timedOut = true;
      errors.push(timeoutError(`persistence listing stopped after ${entries.length} entries`, 'persistence'));
    }
    return timedOut;
  };

  /** List one path (relative to the root); copy it when it is a regular file. */
  const add = (
    rel: string,
    category: PersistenceCategory,
    extra: { user?: string; hashOnly?: boolean; tail?: boolean; lst?: fs.Stats; bytes?: Buffer } = {},
  ): PersistenceEntry | null => {
    if (seen.has(rel)) return entries.find((e) => e.path === `/${rel}`) ?? null;
    if (entries.length >= maxFiles) {
      if (!limits.includes('files')) limits.push('files');
      return null;
    }
    // extra.bytes: the exact relative path when a name is not UTF-8 (rel is then its \xHH text)
    const abs: string | Buffer = extra.bytes ? absBytes(extra.bytes) : under(R, rel);
    const absText = typeof abs === 'string' ? abs : under(R, rel);
    let st: fs.Stats;
    try {
      st = extra.lst ?? fs.lstatSync(abs);
    } catch (err) {
      if (errCode(err) !== 'ENOENT' && errCode(err) !== 'ENOTDIR') {
        errors.push(toError(err, absText, 'persistence'));
        seen.add(rel);
        const e = blank(rel, category, extra.user);
        e.error = `${errCode(err)}: ${toError(err, absText).message}`;
        entries.push(e);
        return e;
      }
      return null;
    }
    seen.add(rel);
    const e = blank(rel, category, extra.user);
    if (extra.bytes) e.path_b64 = Buffer.concat([Buffer.from('/'), extra.bytes]).toString('base64');
    entries.push(e);
    setStatFields(e, st);
    try {
      if (st.isSymbolicLink()) {
        e.symlink_target = decodeLossless(fs.readlinkSync(abs, { encoding: 'buffer' }));
        return e;
      }
      if (!st.isFile()) return e;
      if (extra.hashOnly) {
        const r = readRegular(abs, 64 << 20);
        e.sha256 = r.truncated ? null : sha256Hex(r.data);
        e.truncated = r.truncated;
        return e;
      }
      if (!budget.copy(e, abs, `fs/${rel}`, raw, extra.tail ? st.size : undefined) && !limits.includes('bytes')) limits.push('bytes');
    } catch (err) {
      e.error = `${errCode(err)}: ${toError(err, absText).message}`;
      errors.push(toError(err, absText, 'persistence'));
    }
    return e;
  };

  /** List a directory's entries (recursing depth levels), never following a symlinked directory. */
  // Names are read as bytes: a name that is not UTF-8 (a way to hide a cron job from tools that
  // decode names) is listed with its exact bytes, never dropped.
  const addDir = (rel: string, category: PersistenceCategory, depth: number, extra: { user?: string; hashOnly?: boolean; bytes?: Buffer } = {}): void => {
    if (stop()) return;
    const relBytes = extra.bytes ?? Buffer.from(rel);
    let names: Array<fs.Dirent<Buffer>>;
    try {
      names = fs.readdirSync(absBytes(relBytes), { withFileTypes: true, encoding: 'buffer' });
    } catch (err) {
      if (errCode(err) !== 'ENOENT' && errCode(err) !== 'ENOTDIR') errors.push(toError(err, under(R, rel), 'persistence'));
      return;
    }
    names.sort((a, b) => Buffer.compare(a.name, b.name));
    for (const d of names) {
      if (stop()) return;
      const childBytes = Buffer.concat([relBytes, Buffer.from('/'), d.name]);
      const exact = !extra.bytes && isUtf8(d.name);
      const child = exact ? `${rel}/${d.name.toString('utf8')}` : pathToText(childBytes);
      const sub = { user: extra.user, hashOnly: extra.hashOnly, ...(exact ? {} : { bytes: childBytes }) };
      if (d.isDirectory()) {
        if (depth > 0) addDir(child, category, depth - 1, sub);
        continue;
      }
      add(child, category, sub);
    }
  };

  // ---- accounts
  const accounts: Account[] = [];
  const readAcct = (rel: string): string | null => {
    try {
      return readRegular(under(R, rel), 16 << 20).data.toString('utf8');
    } catch (err) {
      if (errCode(err) !== 'ENOENT') errors.push(toError(err, under(R, rel), 'accounts'));
      return null;
    }
  };
  const passwd = readAcct('etc/passwd');
  const group = readAcct('etc/group');
  const shadow = readAcct('etc/shadow');
  const gshadow = readAcct('etc/gshadow');
  if (passwd !== null) raw.push({ file: 'fs/etc/passwd', data: Buffer.from(passwd) });
  if (group !== null) raw.push({ file: 'fs/etc/group', data: Buffer.from(group) });
  if (shadow !== null) raw.push({ file: 'fs/etc/shadow', data: Buffer.from(opts.shadowHashes ? shadow : redactShadow(shadow)) });
  if (gshadow !== null) raw.push({ file: 'fs/etc/gshadow', data: Buffer.from(opts.shadowHashes ? gshadow : redactShadow(gshadow)) });
  const shadowBy = new Map<string, string[]>();
  for (const line of (shadow ?? '').split('\n')) {
    const f = line.split(':');
    if (f[0] && f.length >= 2) shadowBy.set(f[0], f);
  }
  for (const a of parsePasswd(passwd ?? '')) {
    const sf = shadowBy.get(a.name);
    const st = shadow === null ? { password: 'unknown' as const, scheme: null } : passwordState(sf?.[1]);
    const acct: Account = {
      ...a,
      password: st.password,
      hash_scheme: st.scheme,
      hash_fingerprint: sf?.[1] ? sha256Hex(sf[1]).slice(0, 16) : null,
      last_change_days: sf?.[2] ? Number(sf[2]) : null,
    };
    if (opts.shadowHashes && sf?.[1] !== undefined) acct.hash = sf[1];
    accounts.push(acct);
  }
  const groups = (group ?? '')
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 4 && f[0])
    .map((f) => ({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }));

  // ---- home directories: read below each home without following a symlink anywhere under it
  const homes = new Map<string, string>();
  for (const a of accounts) if (a.home.startsWith('/') && !homes.has(path.posix.normalize(a.home))) homes.set(path.posix.normalize(a.home), a.name);
  let homesRead = 0;
  const maxAccounts = opts.maxAccounts ?? 5000;
  const homeNotes: Array<{ user: string; home: string; note: string }> = [];
  /** Is every directory between home and rel's parent a real directory (not a symlink)? */
  const safeUnder = (home: string, relInHome: string, user: string): boolean => {
    const parts = relInHome.split('/').slice(0, -1);
    let cur = home;
    for (const p of parts) {
      cur = path.posix.join(cur, p);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(under(R, cur));
      } catch {
        return false;
      }
      if (st.isSymbolicLink()) {
        let target = '';
        try {
          target = fs.readlinkSync(under(R, cur));
        } catch {
          // unreadable link
        }
        if (!seen.has(cur.slice(1))) {
          add(cur.slice(1), 'shell_startup', { user, lst: st });
          homeNotes.push({ user, home, note: `${cur} is a symlink to ${target}: not followed` });
        }
        return false;
      }
      if (!st.isDirectory()) return false;
    }
    return true;
  };
  for (const [home, user] of homes) {
    if (stop()) break;
    if (homesRead >= maxAccounts) {
      limits.push('accounts');
      break;
    }
    let hst: fs.Stats;
    try {
      hst = fs.lstatSync(under(R, home));
    } catch {
      continue; // no such home (system accounts)
    }
    if (hst.isSymbolicLink()) {
      homeNotes.push({ user, home, note: 'home directory is a symlink: not followed' });
      continue;
    }
    if (!hst.isDirectory() || home === '/') continue;
    homesRead++;
    const rel = home.replace(/^\/+/, '');
    for (const [f, cat] of HOME_FILES) {
      if (!safeUnder(home, f, user)) continue;
      add(`${rel}/${f}`, cat, { user, tail: cat === 'shell_history' });
    }
    for (const [d, cat, depth] of HOME_DIRS) {
      if (!safeUnder(home, `${d}/x`, user)) continue;
      try {
        if (fs.lstatSync(under(R, `${rel}/${d}`)).isDirectory()) addDir(`${rel}/${d}`, cat, depth, { user });
      } catch {
        // absent
      }
    }
  }

  // ---- system places; /lib is often a symlink to /usr/lib: each real directory once
  const walked = new Set<string>();
  for (const [dir, cat, depth] of PLACES) {
    if (stop()) break;
    if (firstVisit(R, dir, walked)) addDir(dir, cat, depth);
  }
  for (const [f, cat] of SINGLE_FILES) if (!stop()) add(f, cat);
  for (const dir of PAM_MODULE_DIRS) {
    if (stop()) break;
    if (firstVisit(R, dir, walked)) addDir(dir, 'pam_module', 0, { hashOnly: true });
  }

  // ---- systemd: which units the .wants/.requires links enable
  for (const e of entries) {
    if ((e.category !== 'systemd_unit' && e.category !== 'systemd_user_unit') || e.type !== 'symlink') continue;
    const m = /\/([^/]+\.(?:wants|requires|upholds))\/([^/]+)$/.exec(e.path);
    if (!m) continue;
    const unit = m[2]!;
    for (const u of entries) {
      if ((u.category === 'systemd_unit' || u.category === 'systemd_user_unit') && u.type === 'file' && path.posix.basename(u.path) === unit)
        (u.enabled_by ??= []).includes(m[1]!) || u.enabled_by.push(m[1]!);
    }
    e.enabled_by = [m[1]!];
  }

  if (limits.length) errors.push({ code: 'ELIMIT', message: `bounds reached: ${limits.join(', ')} (see bounds)`, artifact: 'persistence' });

  // ---- firewall: what /proc shows without netlink
  const fw = firewallState(ctx);

  const units = entries.filter((e) => (e.category === 'systemd_unit' || e.category === 'systemd_user_unit') && e.type === 'file');
  return {
    json: [
      {
        name: 'accounts',
        data: {
          shadow_hashes: opts.shadowHashes ? 'kept' : 'redacted',
          shadow_readable: shadow !== null,
          accounts,
          groups,
          uid0: accounts.filter((a) => a.uid === 0).map((a) => a.name),
          empty_passwords: accounts.filter((a) => a.password === 'empty').map((a) => a.name),
          homes: { read: homesRead, notes: homeNotes },
          notes: [
            opts.shadowHashes
              ? 'password hashes kept (--shadow-hashes): treat this bundle as a credential store'
              : "password hashes redacted (default): the bundle keeps each account's state, hash scheme and a fingerprint (sha256 of the hash, 16 hex) that shows a change between two snapshots; --shadow-hashes keeps the hashes",
          ],
        },
        method:
          'read /etc/passwd, /etc/group, /etc/shadow, /etc/gshadow (regular files, bounded); raw copies under raw/fs/etc/ (shadow redacted unless --shadow-hashes)',
      },
      {
        name: 'persistence',
        data: {
          bounds: { max_files: maxFiles, max_total_bytes: maxTotal, max_file_bytes: maxFile },
          copied_bytes: budget.total,
          enabled_units: units.filter((u) => u.enabled_by?.length).map((u) => ({ path: u.path, enabled_by: u.enabled_by })),
          entries,
        },
        method:
          'lstat and copy (regular files only, O_NOFOLLOW|O_NONBLOCK, bounded) authorized_keys, shell histories (their end) and start-up files of every home in passwd (no symlink followed below a home), systemd units and timers (system and user, enabled from .wants/.requires links), cron, at, rc/init.d, profile, PAM (modules hashed), udev rules, ld.so.conf, sudoers, sshd_config',
      },
      { name: 'firewall', data: fw, method: 'read /proc/net/{ip,ip6,arp}_tables_names, forwarding sysctls, netfilter modules from /proc/modules' },
    ],
    raw,
    errors,
  };
}

function blank(rel: string, category: PersistenceCategory, user: string | undefined): PersistenceEntry {
  const e: PersistenceEntry = { path: `/${rel}`, category, ...emptyFileFields() };
  if (user !== undefined) e.user = user;
  return e;
}

function firewallState(ctx: CollectContext): Record<string, unknown> {
  const P = ctx.procRoot;
  const text = (rel: string): string | null => {
    try {
      return decodeLossless(fs.readFileSync(`${P}/${rel}`)).trim();
    } catch {
      return null;
    }
  };
  const lines = (rel: string): string[] | null => text(rel)?.split('\n').filter(Boolean) ?? null;
  const mods = (text('modules') ?? '')
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => /^(nf_|nft_|ip_tables|ip6_tables|iptable_|ip6table_|x_tables|xt_|ebtable|arptable|ip_set)/.test(n));
  return {
    iptables_tables: { ipv4: lines('net/ip_tables_names'), ipv6: lines('net/ip6_tables_names'), arp: lines('net/arp_tables_names') },
    netfilter_modules: mods.sort(),
    nf_conntrack_count: text('sys/net/netfilter/nf_conntrack_count'),
    ip_forward: text('sys/net/ipv4/ip_forward'),
    ipv6_forwarding: text('sys/net/ipv6/conf/all/forwarding'),
    notes: [
      'the rules themselves need netlink (nft list ruleset) or the iptables getsockopt interface, which integ does not use: only the tables in use, the netfilter modules and the forwarding switches are recorded',
    ],
  };
}
