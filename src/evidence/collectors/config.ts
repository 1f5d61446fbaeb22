/**
 * Step 6, configuration at a glance: name resolution, cron, and systemd units changed
 * lately, copied under raw/config/ (regular files only, bounded). Artifact: config.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ArtifactOutput, CollectContext, CollectError } from '../types.js';
import { errCode, expired, timeoutError, toError, under } from './fsread.js';
import { CopyBudget, emptyFileFields, firstVisit, setStatFields, type FileFields } from './file-entry.js';

export interface ConfigOptions {
  /** systemd units changed (mtime or ctime) within this many days (default 7) */
  recentDays?: number;
  /** files listed at most (default 2000) */
  maxFiles?: number;
  /** bytes copied in all (default 32 MiB) */
  maxTotalBytes?: number;
  /** bytes copied per file (default 1 MiB) */
  maxFileBytes?: number;
  /** "now" for the recency window (tests) */
  now?: number;
}

export interface ConfigEntry extends FileFields {
  /** path as on the host, e.g. /etc/hosts */
  path: string;
  /** why it is listed */
  reason: string;
}

/** The fixed files; a trailing "/*" lists the regular entries of a directory. */
const LISTED = ['etc/resolv.conf', 'etc/hosts', 'etc/crontab', 'etc/cron.d/*', 'var/spool/cron/crontabs/*', 'var/spool/cron/*'];
const UNIT_DIRS = ['etc/systemd/system', 'lib/systemd/system', 'usr/lib/systemd/system'];

export async function collectConfig(ctx: CollectContext, opts: ConfigOptions = {}): Promise<ArtifactOutput> {
  const errors: CollectError[] = [];
  const raw: ArtifactOutput['raw'] = [];
  const entries: ConfigEntry[] = [];
  const R = ctx.fsRoot;
  const maxFiles = opts.maxFiles ?? 2000;
  const maxTotal = opts.maxTotalBytes ?? 32 << 20;
  const maxFile = opts.maxFileBytes ?? 1 << 20;
  const now = opts.now ?? Date.now();
  const since = now - (opts.recentDays ?? 7) * 86400_000;
  const budget = new CopyBudget(maxTotal, maxFile);
  let limited: string | null = null;
  const seen = new Set<string>();

  const add = (rel: string, reason: string, lst?: fs.Stats): void => {
    if (seen.has(rel)) return;
    if (entries.length >= maxFiles) {
      limited ??= `stopped at ${maxFiles} files`;
      return;
    }
    seen.add(rel);
    const abs = under(R, rel);
    const e: ConfigEntry = { path: `/${rel}`, reason, ...emptyFileFields() };
    entries.push(e);
    try {
      const st = lst ?? fs.lstatSync(abs);
      setStatFields(e, st);
      if (st.isSymbolicLink()) {
        e.symlink_target = fs.readlinkSync(abs);
        return; // the link is the evidence (e.g. an enabled unit); its target is listed on its own if in scope
      }
      if (!st.isFile()) return; // a FIFO or device is listed, never opened
      if (!budget.copy(e, abs, `config/${rel}`, raw)) limited ??= `stopped copying at ${maxTotal} bytes`;
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT' && !lst) {
        entries.pop();
        return; // not on this host
      }
      e.error = `${code}: ${toError(err, abs).message}`;
      errors.push(toError(err, abs, 'config'));
    }
  };

  // resolv.conf is often a symlink into /run: list the link, then its target re-rooted under fsRoot.
  const followLink = (rel: string, reason: string): void => {
    let cur = rel;
    for (let hop = 0; hop < 8; hop++) {
      let target: string;
      try {
        if (!fs.lstatSync(under(R, cur)).isSymbolicLink()) break;
        target = fs.readlinkSync(under(R, cur));
      } catch {
        break;
      }
      const next = path.posix.normalize(target.startsWith('/') ? target : path.posix.join(path.posix.dirname(`/${cur}`), target)).replace(/^\/+/, '');
      add(next, `${reason} (target of /${cur})`);
      cur = next;
    }
  };

  for (const spec of LISTED) {
    if (expired(ctx)) break;
    if (spec.endsWith('/*')) {
      const dir = spec.slice(0, -2);
      let names: string[];
      try {
        names = fs.readdirSync(under(R, dir)).sort();
      } catch (err) {
        if (errCode(err) !== 'ENOENT' && errCode(err) !== 'ENOTDIR') errors.push(toError(err, under(R, dir), 'config'));
        continue;
      }
      for (const n of names) {
        let st: fs.Stats;
        try {
          st = fs.lstatSync(under(R, `${dir}/${n}`));
        } catch {
          continue;
        }
        if (st.isDirectory()) continue; // var/spool/cron/crontabs is handled by its own spec
        add(`${dir}/${n}`, 'listed', st);
      }
    } else {
      add(spec, 'listed');
      followLink(spec, 'listed');
    }
  }

  // systemd units changed lately; /lib is often a symlink to /usr/lib: walk each real directory once.
  const walkedReal = new Set<string>();
  const recentReason = `systemd unit changed in the last ${opts.recentDays ?? 7} days`;
  const walk = (rel: string, depth: number): void => {
    if (expired(ctx) || depth > 4) return;
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(under(R, rel), { withFileTypes: true });
    } catch (err) {
      if (errCode(err) !== 'ENOENT') errors.push(toError(err, under(R, rel), 'config'));
      return;
    }
    names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of names) {
      const child = `${rel}/${d.name}`;
      if (d.isDirectory()) {
        walk(child, depth + 1);
        continue;
      }
      let st: fs.Stats;
      try {
        st = fs.lstatSync(under(R, child));
      } catch {
        continue;
      }
      if (Math.max(st.mtimeMs, st.ctimeMs) >= since) add(child, recentReason, st);
    }
  };
  for (const dir of UNIT_DIRS) if (firstVisit(R, dir, walkedReal)) walk(dir, 0);
  if (expired(ctx)) errors.push(timeoutError(`config listing stopped after ${entries.length} files`, 'config'));
  if (limited) errors.push({ code: 'ELIMIT', message: limited, artifact: 'config' });

  return {
    json: [
      {
        name: 'config',
        data: {
          recent_days: opts.recentDays ?? 7,
          bounds: { max_files: maxFiles, max_total_bytes: maxTotal, max_file_bytes: maxFile },
          copied_bytes: budget.total,
          files: entries,
        },
        method:
          'lstat; copy regular files only (O_NOFOLLOW|O_NONBLOCK, bounded): /etc/resolv.conf, /etc/hosts, /etc/crontab, /etc/cron.d/*, /var/spool/cron/*, systemd units under /etc/systemd/system, /lib/systemd/system, /usr/lib/systemd/system with mtime or ctime in the window',
      },
    ],
    raw,
    errors,
  };
}
