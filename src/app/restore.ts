import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { differingAttributes } from '../core/compare.js';
import { differingXattrNames, FLAG_APPEND, FLAG_IMMUTABLE, flagNames, parseXattrs } from '../core/fsattrs.js';
import { pathToText, pathJson } from '../core/pathenc.js';
import type { EntryRecord, HashAlgo } from '../core/types.js';
import { READ_SIZE, scanEntry } from '../scan/scan-entry.js';
import { BaselineRepo, type Generation, type StoredEntry } from '../store/baseline-repo.js';
import { ContentRepo, ContentProblem, matchesEntry } from '../store/content-repo.js';
import { beginWrite, commit, openReadOnly, openWritable, rollbackQuietly, storeError, type DB } from '../store/db.js';
import { recordRestores } from '../store/incident-repo.js';
import { computeGenerationDigest } from '../store/generation-digest.js';
import { EvidenceRepo } from '../store/record-repo.js';
import type { RunContext } from '../util/context.js';
import { DataError, EXIT, IntegError, NoInputError, TrustError, UsageError, writeErrorFor } from '../util/errors.js';
import { defaultEvidenceDir } from '../util/paths.js';
import { VERSION } from '../version.js';
import { loadPolicy, resolveRoot, whoami } from './common.js';
import { type MetaOutcome, type NotRestored, restoreFlags, restoreXattrs, suspectXattr, type Unlocked, unlockSuspect } from './restore-meta.js';
import { at, openParent, requireProcFd } from './safe-path.js';
import { signDigest } from './signing.js';

export interface RestoreOptions {
  paths: Buffer[];
  note: string;
  /** source generation (default: the current one) */
  generation?: number;
  root?: string;
  dryRun: boolean;
  db: string;
  /** evidence folder for the bundle holding the suspect versions */
  out?: string;
  policy?: string;
  signKey?: string;
  verifyKey?: string;
}

/** One path to put back, and what it is now. */
export interface RestoreItem {
  path: Buffer;
  entry: StoredEntry;
  /** kept content (files) */
  content: Buffer | null;
  contentDigest: string | null;
  /** what differs now from the known-good version ("missing" when it is gone) */
  differs: string[];
  /** after the restore: what the path is now */
  after: EntryRecord | null;
  action: 'restored' | 'unchanged' | 'would restore';
  /** extended attributes set (+/~) or removed (-) to match the record */
  metaChanged: string[];
  /** recorded attributes that could not be put back, and why (exit 8) */
  notRestored: NotRestored[];
}

export interface RestoreResult {
  source: Generation;
  generation: Generation | null;
  items: RestoreItem[];
  bundle: { path: string; sha256: string } | null;
  root: string;
  dryRun: boolean;
  exitCode: number;
}

/** Attributes compared between what is there now and the known-good record. */
const META_ATTRS = ['xattrs', 'caps', 'acl', 'label', 'flags'] as const;
const RESTORED_ATTRS = ['content', 'type', 'mode', 'uid', 'gid', 'size', 'target', ...META_ATTRS] as const;
const DIR_ATTRS = ['type', 'mode', 'uid', 'gid', ...META_ATTRS] as const;
const attrsFor = (rec: EntryRecord): string[] => [...(rec.type === 'dir' ? DIR_ATTRS : RESTORED_ATTRS)];

/**
 * Extended attributes of the known-good version, set on the open descriptor (of the new file
 * before its rename, so it appears with them; of a directory restored in place): exactly the
 * recorded set, extra ones removed, values byte-exact. See restore-meta.ts.
 */
export function restoreExtendedAttributes(fd: number, entry: StoredEntry, donor?: (name: Buffer) => Buffer | null): MetaOutcome {
  return restoreXattrs(fd, entry.rec, donor);
}

/** The current state of `p` under root, read without following symlinks (null when missing); xattrs/flags read when `like` recorded them. */
function observe(root: string, p: Buffer, algos: HashAlgo[], like?: EntryRecord): EntryRecord | null {
  let parent;
  try {
    parent = openParent(root, p);
  } catch (e) {
    if (e instanceof NoInputError) return null;
    throw e;
  }
  try {
    const res = scanEntry(
      {
        id: 1,
        path: p,
        real: at(parent.fd, parent.name),
        algos,
        growing: false,
        prefixLen: null,
        xattrs: (like?.xattrs ?? null) !== null,
        flags: typeof like?.flags === 'number',
      },
      Buffer.allocUnsafe(READ_SIZE),
    );
    return res.rec;
  } finally {
    fs.closeSync(parent.fd);
  }
}

/** Bytes of the suspect file as it is now (bounded), for the evidence bundle. */
function readSuspect(
  root: string,
  p: Buffer,
  max: number,
): { data: Buffer; size: number; truncated: boolean; mode: number; uid: number; gid: number; mtime: string } | null {
  let parent;
  try {
    parent = openParent(root, p);
  } catch {
    return null;
  }
  let fd: number | null = null;
  try {
    fd = fs.openSync(at(parent.fd, parent.name), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return null;
    const want = Math.min(st.size, max);
    const buf = Buffer.alloc(want);
    let got = 0;
    while (got < want) {
      const n = fs.readSync(fd, buf, got, want - got, got);
      if (n === 0) break;
      got += n;
    }
    return {
      data: buf.subarray(0, got),
      size: st.size,
      truncated: got < st.size,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: st.mtime.toISOString(),
    };
  } catch {
    return null;
  } finally {
    if (fd !== null) fs.closeSync(fd);
    fs.closeSync(parent.fd);
  }
}

/** Every path to restore, validated before anything is written: in the generation (65), content kept (66), content intact (16). */
function plan(repo: BaselineRepo, contents: ContentRepo, src: Generation, paths: Buffer[]): RestoreItem[] {
  const missing: string[] = [];
  const notKept: string[] = [];
  const items: RestoreItem[] = [];
  const seen = new Set<string>();
  for (const p of paths) {
    if (seen.has(p.toString('hex'))) continue;
    seen.add(p.toString('hex'));
    const entry = repo.lookup(src.id, p);
    if (!entry) {
      missing.push(pathToText(p));
      continue;
    }
    const t = entry.rec.type;
    if (t !== 'file' && t !== 'dir' && t !== 'symlink')
      throw new DataError(`${pathToText(p)}: a ${t} cannot be restored (only files, directories and symlinks)`);
    let content: Buffer | null = null;
    let digest: string | null = null;
    if (t === 'file') {
      digest = entry.error ? null : contents.keptDigest(src.id, p);
      if (!digest) {
        notKept.push(pathToText(p));
        continue;
      }
      try {
        content = contents.read(digest);
      } catch (e) {
        if (e instanceof ContentProblem) throw new TrustError(`${pathToText(p)}: ${e.message}; nothing restored`);
        throw e;
      }
      if (!matchesEntry(content, entry.rec))
        throw new TrustError(`${pathToText(p)}: the kept content does not match the digest generation #${src.id} recorded; nothing restored`);
    }
    items.push({ path: p, entry, content, contentDigest: digest, differs: [], after: null, action: 'would restore', metaChanged: [], notRestored: [] });
  }
  if (missing.length)
    throw new DataError(`not in generation #${src.id}: ${missing.join(', ')} (see "integ show PATH" for the generations that have it); nothing restored`);
  if (notKept.length)
    throw new NoInputError(
      `the content of ${notKept.join(', ')} was not kept in generation #${src.id} (its rule has no keep_content, the file was over keep_content_max_bytes, ` +
        'excluded as a secret, or unreadable then); restore it from a backup or a package instead; nothing restored',
    );
  return items;
}

/**
 * Write one file beside its final name (O_EXCL|O_NOFOLLOW), with owner, extended attributes,
 * mode, times, fsync; returns the temp name and its descriptor, held open so that the inode
 * flags are set on it after the rename (an immutable file cannot be renamed).
 */
function stageFile(dirfd: number, name: Buffer, it: RestoreItem): { tmp: Buffer; fd: number } {
  const tmp = Buffer.concat([Buffer.from('.'), name.subarray(0, 200), Buffer.from(`.integ-restore-${crypto.randomBytes(6).toString('hex')}`)]);
  const r = it.entry.rec;
  const fd = fs.openSync(at(dirfd, tmp), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    let off = 0;
    while (off < it.content!.length) off += fs.writeSync(fd, it.content!, off, it.content!.length - off);
    fs.fchownSync(fd, r.uid, r.gid);
    // after chown (it clears security.capability), before chmod (setting an ACL rewrites the group bits)
    const meta = restoreExtendedAttributes(fd, it.entry, (attr) => suspectXattr(dirfd, name, attr));
    it.metaChanged = meta.changed;
    it.notRestored.push(...meta.notRestored);
    fs.fchmodSync(fd, r.mode); // after chown: chown clears set-id bits
    const mtime = Number(r.mtimeNs / 1000n) / 1e6;
    fs.futimesSync(fd, mtime, mtime);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    try {
      fs.unlinkSync(at(dirfd, tmp));
    } catch {
      /* best effort */
    }
    throw e;
  }
  return { tmp, fd };
}

function stageSymlink(dirfd: number, name: Buffer, it: RestoreItem): Buffer {
  const tmp = Buffer.concat([Buffer.from('.'), name.subarray(0, 200), Buffer.from(`.integ-restore-${crypto.randomBytes(6).toString('hex')}`)]);
  fs.symlinkSync(it.entry.rec.target!, at(dirfd, tmp));
  try {
    fs.lchownSync(at(dirfd, tmp), it.entry.rec.uid, it.entry.rec.gid);
  } catch (e) {
    fs.unlinkSync(at(dirfd, tmp));
    throw e;
  }
  return tmp;
}

/** Put every item back; each path atomically (beside + rename), all staged before any rename. */
function apply(root: string, items: RestoreItem[], src: Generation, repo: BaselineRepo): RestoreItem[] {
  const staged: { dirfd: number; tmp: Buffer | null; fd: number | null; name: Buffer; it: RestoreItem }[] = [];
  const unlocked: Unlocked[] = [];
  /** directories recreated on the way: they become part of the restore generation too */
  const created: RestoreItem[] = [];
  const mkdirRec = (dir: Buffer): { mode: number; uid: number; gid: number } | null => {
    const e = repo.lookup(src.id, dir);
    if (!e || e.rec.type !== 'dir') return null;
    created.push({
      path: Buffer.from(dir),
      entry: e,
      content: null,
      contentDigest: null,
      differs: ['missing'],
      after: null,
      action: 'restored',
      metaChanged: [],
      notRestored: [],
    });
    return { mode: e.rec.mode, uid: e.rec.uid, gid: e.rec.gid };
  };
  try {
    for (const it of items) {
      if (it.action === 'unchanged') continue;
      const { fd, name } = openParent(root, it.path, { create: mkdirRec });
      const entry = { dirfd: fd, tmp: null as Buffer | null, fd: null as number | null, name, it };
      staged.push(entry);
      let cur: fs.Stats | null = null;
      try {
        cur = fs.lstatSync(at(fd, name));
      } catch {
        cur = null;
      }
      const t = it.entry.rec.type;
      if (t === 'dir') {
        if (cur && !cur.isDirectory())
          throw new DataError(`${pathToText(it.path)} is no longer a directory; move it aside (it is in the evidence bundle) and restore again`);
        if (!cur) fs.mkdirSync(at(fd, name), { mode: 0o700 });
        continue;
      }
      if (cur?.isDirectory()) throw new DataError(`${pathToText(it.path)} is a directory now; move it aside and restore again`);
      if (t === 'file') {
        const f = stageFile(fd, name, it);
        entry.tmp = f.tmp;
        entry.fd = f.fd;
      } else entry.tmp = stageSymlink(fd, name, it);
    }
    // An immutable or append-only suspect (sealed already) cannot be replaced or changed: clear
    // those two flags on it, all before the first rename; the known-good flags are set after.
    for (const s of staged) {
      const u = unlockSuspect(s.dirfd, s.name, pathToText(s.it.path));
      if (u) {
        unlocked.push(u);
        s.it.metaChanged.push(`suspect's ${flagNames(u.flags & (FLAG_IMMUTABLE | FLAG_APPEND)).join(' ')} cleared`);
      }
    }
    for (const s of staged) {
      if (s.it.entry.rec.type === 'dir') {
        const dfd = fs.openSync(at(s.dirfd, s.name), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
        try {
          fs.fchownSync(dfd, s.it.entry.rec.uid, s.it.entry.rec.gid);
          const meta = restoreExtendedAttributes(dfd, s.it.entry);
          s.it.metaChanged.push(...meta.changed);
          s.it.notRestored.push(...meta.notRestored);
          fs.fchmodSync(dfd, s.it.entry.rec.mode);
          s.it.notRestored.push(...restoreFlags(dfd, s.it.entry.rec));
        } finally {
          fs.closeSync(dfd);
        }
      } else {
        fs.renameSync(at(s.dirfd, s.tmp!), at(s.dirfd, s.name));
        s.tmp = null;
        if (s.fd !== null) {
          // on the descriptor of the inode just renamed into place: no path is resolved again
          s.it.notRestored.push(...restoreFlags(s.fd, s.it.entry.rec));
          fs.fsyncSync(s.fd);
        }
      }
      fs.fsyncSync(s.dirfd);
    }
    return created;
  } catch (e) {
    for (const u of unlocked) u.undo();
    for (const s of staged) {
      if (s.tmp) {
        try {
          fs.unlinkSync(at(s.dirfd, s.tmp));
        } catch {
          /* best effort */
        }
      }
    }
    throw e instanceof IntegError ? e : writeErrorFor(e, 'restore');
  } finally {
    for (const u of unlocked) u.release();
    for (const s of staged) {
      if (s.fd !== null) fs.closeSync(s.fd);
      fs.closeSync(s.dirfd);
    }
  }
}

/** Seal the suspect versions of every path into an evidence bundle before anything is changed. */
async function sealSuspects(
  items: RestoreItem[],
  src: Generation,
  o: RestoreOptions,
  root: string,
  maxCopy: number,
  ctx: RunContext,
): Promise<{ path: string; sha256: string; size: number }> {
  const { BundleWriter } = await import('../evidence/bundle-writer.js');
  const out = defaultEvidenceDir(o.out, ctx.env);
  const signKey = o.signKey ? await (await import('../trust/keys.js')).loadPrivateKey(o.signKey) : undefined;
  let writer: import('../evidence/bundle-writer.js').BundleWriter;
  try {
    writer = await BundleWriter.create({ outDir: out, hostname: os.hostname(), signal: ctx.signal });
  } catch (e) {
    throw e instanceof IntegError ? e : writeErrorFor(e, `cannot create evidence in ${out}`);
  }
  try {
    const started = new Date().toISOString();
    writer.log({ event: 'start', tool: `integ ${VERSION}`, argv: ctx.argv, trigger: 'restore', note: o.note });
    const suspects: unknown[] = [];
    let i = 0;
    for (const it of items) {
      i++;
      const now = observe(root, it.path, src.hashAlgos.split(',') as HashAlgo[], it.entry.rec);
      const entry: Record<string, unknown> = {
        ...pathJson(it.path),
        state: now ? now.type : 'missing',
        differs: it.differs,
        known_good: {
          generation: src.id,
          type: it.entry.rec.type,
          mode: it.entry.rec.mode.toString(8).padStart(4, '0'),
          uid: it.entry.rec.uid,
          gid: it.entry.rec.gid,
          blake3: it.entry.rec.blake3,
          sha256: it.entry.rec.sha256,
          xattrs: it.entry.rec.xattrs ?? null,
          flags: it.entry.rec.flags ?? null,
        },
        now: now
          ? {
              type: now.type,
              mode: now.mode.toString(8).padStart(4, '0'),
              uid: now.uid,
              gid: now.gid,
              size: now.size.toString(),
              blake3: now.blake3,
              sha256: now.sha256,
              target: now.target ? pathToText(now.target) : null,
              xattrs: now.xattrs ?? null,
              flags: now.flags ?? null,
            }
          : null,
        file: null,
        sha256: null,
        truncated: false,
      };
      if (now?.type === 'file') {
        const s = readSuspect(root, it.path, maxCopy);
        if (s) {
          const base = (it.path.toString('utf8').split('/').pop() ?? 'file').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80) || 'file';
          const res = await writer.addFile(`suspect/${String(i).padStart(4, '0')}-${base}`, s.data);
          Object.assign(entry, { file: res.file, sha256: res.sha256, truncated: s.truncated });
        }
      }
      suspects.push(entry);
    }
    const listing = await writer.addFile('restore/suspect.json', `${JSON.stringify(suspects, null, 2)}\n`);
    writer.log({ event: 'seal', suspects: suspects.length });
    const sealed = await writer.seal({
      manifest: {
        tool: { name: 'integ', version: VERSION },
        argv: ctx.argv,
        uid: process.getuid?.() ?? null,
        euid: process.geteuid?.() ?? null,
        hostname: os.hostname(),
        note: o.note,
        trigger: { kind: 'restore', generation: src.id, root: root || '/', suspects: listing.file },
        clocks: { start: { wall: started }, end: { wall: new Date().toISOString() } },
        artifacts: [],
      },
      signKey,
    });
    return { path: sealed.path, sha256: sealed.sha256, size: sealed.size };
  } catch (e) {
    await writer.abort().catch(() => undefined);
    throw e instanceof IntegError ? e : writeErrorFor(e, `writing evidence to ${out}`);
  }
}

/**
 * Put back the known-good version of each path from a generation: validate everything first
 * (65 not in the generation, 66 content not kept, 16 store or content not trustworthy), seal
 * the suspect versions into an evidence bundle, write each path beside its final name and
 * rename it into place (never through a symlink), re-read what was written, and record a
 * generation of kind `restore` (who, when, why) so the next check is clean for those paths.
 */
export async function runRestore(opts: RestoreOptions, ctx: RunContext): Promise<RestoreResult> {
  if (!opts.note || !opts.note.trim())
    throw new UsageError('--note TEXT is required: say why these paths are restored (it is recorded with the restore generation)');
  if (!opts.paths.length) throw new UsageError('name the PATHs to restore, as the check reported them');
  requireProcFd();
  if (opts.db !== ':memory:' && !fs.existsSync(opts.db)) throw new NoInputError(`no baseline yet: ${opts.db} does not exist (run "integ baseline" first)`);
  const policy = loadPolicy(opts.policy, ctx.env);
  const root = resolveRoot(opts.root);
  const sign = !opts.dryRun && opts.signKey ? await signDigest(opts.signKey) : null;
  const db = opts.dryRun ? openReadOnly(opts.db) : openWritable(opts.db);
  try {
    const repo = new BaselineRepo(db);
    const contents = new ContentRepo(db);
    const cur = repo.current();
    if (!cur) throw new NoInputError(`no baseline yet in ${opts.db} (run "integ baseline" first)`);
    const src = opts.generation === undefined ? cur : repo.get(opts.generation);
    if (!src) throw new NoInputError(`generation #${opts.generation} is not in ${opts.db} (see "integ history")`);
    const { verifyTrust, contentProblem } = await import('./trust-gate.js');
    await verifyTrust(db, cur, { verifyKey: opts.verifyKey ?? policy.trust.publicKey ?? undefined, refusal: 'nothing restored' }, ctx);
    if (src.id !== cur.id) {
      const p = contentProblem(db, src);
      if (p) throw new TrustError(`generation #${src.id} is not trustworthy, nothing restored:\n  - ${p}`);
    }
    const items = plan(repo, contents, src, opts.paths);
    const algos = src.hashAlgos.split(',') as HashAlgo[];
    for (const it of items) {
      const now = observe(root, it.path, algos, it.entry.rec);
      it.differs = now ? differingAttributes(it.entry.rec, now, attrsFor(it.entry.rec) as never) : ['missing'];
      if (!it.differs.length) {
        it.action = 'unchanged';
        it.after = now;
      }
    }
    if (opts.dryRun) return { source: src, generation: null, items, bundle: null, root: root || '/', dryRun: true, exitCode: 0 };
    // Everything already is what the generation knows: nothing to seal, write or record.
    if (items.every((it) => it.action === 'unchanged'))
      return { source: src, generation: null, items, bundle: null, root: root || '/', dryRun: false, exitCode: 0 };

    const bundle = await sealSuspects(items, src, opts, root, policy.onAlert.copyMaxFileBytes, ctx);
    ctx.log.info({ bundle: bundle.path, sha256: bundle.sha256 }, 'suspect versions sealed before restoring');
    const created = apply(root, items, src, repo);
    const known = new Set(items.map((it) => it.path.toString('hex')));
    items.push(...created.filter((c) => !known.has(c.path.toString('hex'))));
    // Re-read what is there now: that is what the restore generation records.
    for (const it of items) {
      const now = observe(root, it.path, algos, it.entry.rec);
      // A symlink has no descriptor to set extended attributes through (and user.* cannot be set
      // on one): what its record has and the new link has not is reported, not restored.
      if (now && it.entry.rec.type === 'symlink' && it.action !== 'unchanged' && now.xattrs != null && it.entry.rec.xattrs != null) {
        const b = parseXattrs(it.entry.rec.xattrs)!;
        const a = parseXattrs(now.xattrs)!;
        for (const cls of ['xattrs', 'caps', 'acl', 'label'] as const) {
          const d = differingXattrNames(b, a, cls);
          for (const name of [...d.appeared, ...d.vanished, ...d.changed])
            it.notRestored.push({
              attribute: cls,
              name,
              reason: 'restore sets no extended attributes on a symlink (a new link gets what the file system gives it)',
            });
        }
      }
      // attributes reported as not restorable (with why) are expected to still differ
      const skip = new Set(it.notRestored.map((n) => n.attribute));
      const still = now ? differingAttributes(it.entry.rec, now, attrsFor(it.entry.rec).filter((a) => !skip.has(a)) as never) : ['missing'];
      if (still.length)
        throw new DataError(
          `${pathToText(it.path)}: after restoring it still differs (${still.join(', ')}); something else is writing it. The suspect copy is in ${bundle.path}`,
        );
      it.after = now;
      if (it.action !== 'unchanged') it.action = 'restored';
    }
    // Writing beside and renaming changes each parent directory (its entries were created and
    // removed): what they are now is part of the restore, so the next check is clean for them too.
    const touched: { path: Buffer; rule: string; rec: EntryRecord }[] = [];
    const seenDirs = new Set(items.map((it) => it.path.toString('hex')));
    for (const it of items) {
      const cut = it.path.lastIndexOf(0x2f);
      if (cut <= 0) continue;
      const dir = it.path.subarray(0, cut);
      if (seenDirs.has(dir.toString('hex'))) continue;
      seenDirs.add(dir.toString('hex'));
      const e = repo.lookup(cur.id, dir);
      const now = e ? observe(root, Buffer.from(dir), algos, e.rec) : null;
      if (e && now) touched.push({ path: Buffer.from(dir), rule: e.rule, rec: now });
    }
    const gen = record(db, repo, contents, cur, src, items, touched, { note: opts.note, root, sign, bundle, policy }, opts.db);
    ctx.log.info({ generation: gen.id, source: src.id, paths: items.length, digest: gen.digest }, 'restore recorded');
    const partial = items.some((it) => it.notRestored.length > 0);
    return {
      source: src,
      generation: gen,
      items,
      bundle: { path: bundle.path, sha256: bundle.sha256 },
      root: root || '/',
      dryRun: false,
      exitCode: partial ? EXIT.INCOMPLETE : 0,
    };
  } catch (e) {
    if (e instanceof IntegError) throw e;
    throw storeError(e, opts.db);
  } finally {
    db.close();
  }
}

function record(
  db: DB,
  repo: BaselineRepo,
  contents: ContentRepo,
  cur: Generation,
  src: Generation,
  items: RestoreItem[],
  touched: readonly { path: Buffer; rule: string; rec: EntryRecord }[],
  o: {
    note: string;
    root: string;
    sign: ((d: string) => { signature: string; keyId: string }) | null;
    bundle: { path: string; sha256: string; size: number };
    policy: { source: string };
  },
  file: string,
): Generation {
  beginWrite(db, file);
  try {
    const now = repo.current();
    if (!now || now.id !== cur.id || now.digest !== cur.digest)
      throw new DataError(
        `generation #${now?.id ?? '-'} became current while restoring; the files are restored (suspect copies in ${o.bundle.path}) but no restore generation was recorded: run "integ check"`,
      );
    const who = whoami();
    const header = {
      createdAt: new Date().toISOString(),
      kind: 'restore' as const,
      user: who.user,
      uid: who.uid,
      hostname: who.hostname,
      note: o.note,
      root: o.root || '/',
      policySource: cur.policySource,
      policyText: cur.policyText,
      policyDigest: cur.policyDigest,
      hashAlgos: cur.hashAlgos,
      parentId: cur.id,
      parentDigest: cur.digest,
      toolVersion: VERSION,
    };
    const gen = repo.begin(header);
    repo.copyEntries(cur.id, gen);
    contents.copyKept(cur.id, gen);
    for (const it of items) {
      repo.deleteEntry(gen, it.path);
      contents.unlink(gen, it.path);
      repo.insert(gen, it.entry.rule, it.after!, null);
      if (it.contentDigest) contents.link(gen, it.path, it.contentDigest);
    }
    for (const t of touched) {
      repo.deleteEntry(gen, t.path);
      repo.insert(gen, t.rule, t.rec, null);
    }
    recordRestores(
      db,
      gen,
      items.map((it) => ({ path: it.path, fromGen: src.id, bundle: o.bundle.path })),
    );
    const d = computeGenerationDigest(db, { id: gen, ...header });
    const sig = o.sign ? o.sign(d.digest) : null;
    repo.finish(gen, d, d.digest, sig?.signature ?? null, sig?.keyId ?? null);
    new EvidenceRepo(db).add({
      sealedAt: header.createdAt,
      kind: 'restore',
      path: o.bundle.path,
      sha256: o.bundle.sha256,
      size: o.bundle.size,
      run: null,
      gen,
      note: o.note,
    });
    commit(db);
    return repo.get(gen)!;
  } catch (e) {
    rollbackQuietly(db);
    throw e;
  }
}
