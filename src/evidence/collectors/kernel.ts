/**
 * Step 4a, kernel state: loaded modules cross-checked with /sys/module, the taint mask,
 * mounts, and /etc/ld.so.preload. Artifacts: modules, kernel, mounts, ld_so_preload.
 */
import fs from 'node:fs';
import type { ArtifactOutput, CollectContext, CollectError } from '../types.js';
import { decodeLossless, errCode, expired, fileType, readProcFile, readRegular, timeoutError, toError, under } from './fsread.js';
import { sha256Hex } from '../../util/sha256.js';

export interface ProcModule {
  name: string;
  size: number;
  refcount: number;
  used_by: string[];
  state: string;
  /** taint letters of the module, e.g. "OE" (out-of-tree, unsigned) */
  taint: string;
}

/** /proc/modules: "name size refcnt deps state address [(taints)]". */
export function parseProcModules(text: string): ProcModule[] {
  const out: ProcModule[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !f[0]) continue;
    const deps = f[3] === '-' ? [] : (f[3] ?? '').split(',').filter(Boolean);
    const taint = /\(([A-Z]+)\)/.exec(line)?.[1] ?? '';
    out.push({ name: f[0], size: Number(f[1]), refcount: Number(f[2]), used_by: deps, state: f[4] ?? '', taint });
  }
  return out;
}

/** Bits of /proc/sys/kernel/tainted (Documentation/admin-guide/tainted-kernels.rst). */
export const TAINT_FLAGS: ReadonlyArray<{ bit: number; letter: string; meaning: string }> = [
  { bit: 0, letter: 'P', meaning: 'proprietary module was loaded' },
  { bit: 1, letter: 'F', meaning: 'module was force loaded' },
  { bit: 2, letter: 'S', meaning: 'kernel running on an out of specification system' },
  { bit: 3, letter: 'R', meaning: 'module was force unloaded' },
  { bit: 4, letter: 'M', meaning: 'processor reported a Machine Check Exception' },
  { bit: 5, letter: 'B', meaning: 'bad page referenced or some unexpected page flags' },
  { bit: 6, letter: 'U', meaning: 'taint requested by userspace application' },
  { bit: 7, letter: 'D', meaning: 'kernel died recently (OOPS or BUG)' },
  { bit: 8, letter: 'A', meaning: 'ACPI table overridden by user' },
  { bit: 9, letter: 'W', meaning: 'kernel issued warning' },
  { bit: 10, letter: 'C', meaning: 'staging driver was loaded' },
  { bit: 11, letter: 'I', meaning: 'workaround for bug in platform firmware applied' },
  { bit: 12, letter: 'O', meaning: 'externally-built ("out-of-tree") module was loaded' },
  { bit: 13, letter: 'E', meaning: 'unsigned module was loaded' },
  { bit: 14, letter: 'L', meaning: 'soft lockup occurred' },
  { bit: 15, letter: 'K', meaning: 'kernel has been live patched' },
  { bit: 16, letter: 'X', meaning: 'auxiliary taint, defined for and used by distros' },
  { bit: 17, letter: 'T', meaning: 'kernel was built with the struct randomization plugin' },
  { bit: 18, letter: 'N', meaning: 'an in-kernel test has been run' },
  { bit: 19, letter: 'J', meaning: 'userspace used a mutating debug operation in fwctl' },
];

export function decodeTaint(value: bigint): { value: string; flags: Array<{ bit: number; letter: string; meaning: string }>; unknown_bits: number[] } {
  const flags = TAINT_FLAGS.filter((f) => (value >> BigInt(f.bit)) & 1n);
  const unknown: number[] = [];
  for (let b = 0; b < 64; b++) if ((value >> BigInt(b)) & 1n && !TAINT_FLAGS.some((f) => f.bit === b)) unknown.push(b);
  return { value: value.toString(), flags, unknown_bits: unknown };
}

/** Undo the kernel's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash), losslessly. */
export function unescapeOctal(s: string): string {
  if (!s.includes('\\')) return s;
  const latin = Buffer.from(s, 'utf8')
    .toString('latin1')
    .replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return decodeLossless(Buffer.from(latin, 'latin1'));
}

export interface MountEntry {
  mount_id: number;
  parent_id: number;
  dev: string;
  root: string;
  mount_point: string;
  options: string;
  optional: string[];
  fs_type: string;
  source: string;
  super_options: string;
}

/** /proc/PID/mountinfo (proc(5)): fields up to the optional ones, a "-", then type, source, super options. */
export function parseMountinfo(text: string): { mounts: MountEntry[]; bad: string[] } {
  const mounts: MountEntry[] = [];
  const bad: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0 || f.length < sep + 4) {
      bad.push(line);
      continue;
    }
    mounts.push({
      mount_id: Number(f[0]),
      parent_id: Number(f[1]),
      dev: f[2]!,
      root: unescapeOctal(f[3]!),
      mount_point: unescapeOctal(f[4]!),
      options: f[5]!,
      optional: f.slice(6, sep),
      fs_type: unescapeOctal(f[sep + 1]!),
      source: unescapeOctal(f[sep + 2]!),
      super_options: f.slice(sep + 3).join(' '),
    });
  }
  return { mounts, bad };
}

function readSysText(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return null;
  }
}

export async function collectKernel(ctx: CollectContext): Promise<ArtifactOutput> {
  const errors: CollectError[] = [];
  const raw: ArtifactOutput['raw'] = [];
  const P = ctx.procRoot;
  const json: ArtifactOutput['json'] = [];

  // ---- modules
  const modsBuf = readProcFile(`${P}/modules`, errors, { optional: true, artifact: 'modules' });
  if (modsBuf) raw.push({ file: 'proc/modules', data: modsBuf });
  const procMods = modsBuf ? parseProcModules(modsBuf.toString('utf8')) : [];
  const sysMods = new Map<string, { initstate: string | null; refcnt: string | null; taint: string | null; srcversion: string | null }>();
  let builtins = 0;
  const sysModDir = `${ctx.sysRoot}/module`;
  try {
    for (const name of fs.readdirSync(sysModDir).sort()) {
      if (expired(ctx)) {
        errors.push(timeoutError('/sys/module scan', 'modules'));
        break;
      }
      // Built-in modules appear under /sys/module too (for their parameters) but have no initstate.
      const initstate = readSysText(`${sysModDir}/${name}/initstate`);
      if (initstate === null) {
        builtins++;
        continue;
      }
      sysMods.set(name, {
        initstate,
        refcnt: readSysText(`${sysModDir}/${name}/refcnt`),
        taint: readSysText(`${sysModDir}/${name}/taint`),
        srcversion: readSysText(`${sysModDir}/${name}/srcversion`),
      });
    }
  } catch (err) {
    if (errCode(err) !== 'ENOENT') errors.push(toError(err, sysModDir, 'modules'));
  }
  const procNames = new Set(procMods.map((m) => m.name));
  const modules = procMods.map((m) => ({ ...m, sysfs: sysMods.get(m.name) ?? null }));
  const onlyInProc = procMods.filter((m) => !sysMods.has(m.name)).map((m) => m.name);
  const onlyInSys = [...sysMods.keys()].filter((n) => !procNames.has(n));
  json.push({
    name: 'modules',
    data: {
      supported: modsBuf !== null,
      count: modules.length,
      modules,
      builtin_count: builtins,
      // A module unlinked from the kernel's list (hidden from /proc/modules) usually keeps its kobject in /sys/module.
      only_in_proc_modules: onlyInProc,
      only_in_sys_module: onlyInSys,
      notes: modsBuf === null ? ['/proc/modules absent: kernel built without loadable module support'] : [],
    },
    method: 'read /proc/modules; readdir /sys/module, loadable modules are those with an initstate file',
  });

  // ---- taint
  const taintBuf = readProcFile(`${P}/sys/kernel/tainted`, errors, { artifact: 'kernel' });
  if (taintBuf) raw.push({ file: 'proc/sys/kernel/tainted', data: taintBuf });
  let taint: ReturnType<typeof decodeTaint> | null = null;
  if (taintBuf) {
    const t = taintBuf.toString('utf8').trim();
    if (/^\d+$/.test(t)) taint = decodeTaint(BigInt(t));
    else errors.push({ path: `${P}/sys/kernel/tainted`, code: 'EPARSE', message: `unexpected value "${t.slice(0, 40)}"`, artifact: 'kernel' });
  }
  const knobs: Record<string, string | null> = {};
  for (const k of ['modules_disabled', 'kptr_restrict', 'dmesg_restrict', 'yama/ptrace_scope', 'randomize_va_space', 'kexec_load_disabled'])
    knobs[k] = readSysText(`${P}/sys/kernel/${k}`);
  const lockdown = readSysText(`${ctx.sysRoot}/kernel/security/lockdown`);
  json.push({
    name: 'kernel',
    data: { tainted: taint !== null && taint.value !== '0', taint, sysctl: knobs, lockdown },
    method: 'read /proc/sys/kernel/tainted (decoded bit by bit) and a few hardening sysctls',
  });

  // ---- mounts
  const miBuf = readProcFile(`${P}/self/mountinfo`, errors, { artifact: 'mounts' });
  if (miBuf) raw.push({ file: 'proc/self/mountinfo', data: miBuf });
  const mi = miBuf ? parseMountinfo(miBuf.toString('utf8')) : { mounts: [], bad: [] };
  json.push({
    name: 'mounts',
    data: { count: mi.mounts.length, mounts: mi.mounts, unparsed_lines: mi.bad },
    method: 'read /proc/self/mountinfo (octal escapes decoded)',
  });

  // ---- /etc/ld.so.preload
  json.push({ name: 'ld_so_preload', data: readLdSoPreload(ctx, errors, raw), method: 'lstat and read /etc/ld.so.preload (regular file, bounded)' });

  return { json, raw, errors };
}

export interface LdSoPreload {
  path: string;
  present: boolean;
  type: string | null;
  symlink_target: string | null;
  size: number | null;
  mode: string | null;
  uid: number | null;
  mtime: string | null;
  ctime: string | null;
  sha256: string | null;
  content: string | null;
  truncated: boolean;
  /** libraries named, in order (whitespace or colon separated, as ld.so reads them) */
  entries: string[];
  /** the LD_PRELOAD of integ's own environment */
  integ_env_ld_preload: string | null;
}

function readLdSoPreload(ctx: CollectContext, errors: CollectError[], raw: ArtifactOutput['raw']): LdSoPreload {
  const p = under(ctx.fsRoot, 'etc/ld.so.preload');
  const out: LdSoPreload = {
    path: '/etc/ld.so.preload',
    present: false,
    type: null,
    symlink_target: null,
    size: null,
    mode: null,
    uid: null,
    mtime: null,
    ctime: null,
    sha256: null,
    content: null,
    truncated: false,
    entries: [],
    integ_env_ld_preload: process.env['LD_PRELOAD'] ?? null,
  };
  let target = p;
  try {
    const lst = fs.lstatSync(p);
    out.present = true;
    out.type = fileType(lst);
    if (lst.isSymbolicLink()) {
      out.symlink_target = fs.readlinkSync(p);
      target = fs.realpathSync(p);
    }
    const r = readRegular(target, 1 << 20);
    out.size = r.stat.size;
    out.mode = (r.stat.mode & 0o7777).toString(8).padStart(4, '0');
    out.uid = r.stat.uid;
    out.mtime = r.stat.mtime.toISOString();
    out.ctime = r.stat.ctime.toISOString();
    out.sha256 = sha256Hex(r.data);
    out.content = decodeLossless(r.data);
    out.truncated = r.truncated;
    out.entries = out.content.split(/[\s:]+/).filter(Boolean);
    raw.push({ file: 'etc/ld.so.preload', data: r.data });
  } catch (err) {
    if (errCode(err) !== 'ENOENT' || out.present) errors.push(toError(err, p, 'ld_so_preload'));
  }
  return out;
}
