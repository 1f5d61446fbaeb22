import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LineCounter, isNode, parseDocument } from 'yaml';
import { z } from 'zod';
import { DataError, NoInputError } from '../util/errors.js';
import { dropInFiles } from './drop-ins.js';

/**
 * The configuration file: /etc/integ/integ.yml for root, $XDG_CONFIG_HOME/integ/integ.yml
 * (default ~/.config/integ/integ.yml) for other users, or $INTEG_CONFIG. Policy drop-ins live in
 * policy.d/*.yml beside it. Precedence: command-line flags, then INTEG_* variables, then this
 * file, then the built-in defaults — the file only fills INTEG_* variables that are unset.
 */
export const SYSTEM_CONFIG = '/etc/integ/integ.yml';

const schema = z
  .object({
    version: z.literal(1).default(1),
    db: z.string().min(1).optional(),
    evidence: z.string().min(1).optional(),
    policy: z.string().min(1).optional(),
    sign_key: z.string().min(1).optional(),
    verify_key: z.string().min(1).optional(),
    format: z.enum(['text', 'json', 'ndjson', 'ecs']).optional(),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
    syslog: z
      .union([z.string().min(1), z.object({ target: z.string().min(1).default('unix:/dev/log'), facility: z.string().min(1).optional() }).strict()])
      .optional(),
  })
  .strict();
export type ConfigFile = z.infer<typeof schema>;

/** Which configuration file applies (it may not exist). */
export function configPath(env: NodeJS.ProcessEnv): { file: string; explicit: boolean } {
  if (env.INTEG_CONFIG) return { file: path.resolve(env.INTEG_CONFIG), explicit: true };
  const isRoot = typeof process.geteuid === 'function' && process.geteuid() === 0;
  if (isRoot) return { file: SYSTEM_CONFIG, explicit: false };
  const xdg = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(os.homedir(), '.config');
  return { file: path.join(xdg, 'integ', 'integ.yml'), explicit: false };
}

/** Parse and validate; errors name the file, line and what was expected (exit 65). */
export function parseConfig(text: string, file: string): ConfigFile {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    throw new DataError(`${file}:${pos.line}:${pos.col}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new DataError(`${file}:1:1: expected a mapping of settings (db, policy, evidence, sign_key, verify_key, format, log_level, syslog)`);
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    let at = '1:1';
    // An unknown key is pointed at itself, not at its parent mapping.
    const where = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
    for (let n = where.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(where.slice(0, n), true);
      if (isNode(node) && node.range) {
        const pos = lc.linePos(node.range[0]);
        at = `${pos.line}:${pos.col}`;
        break;
      }
    }
    let msg = issue.message;
    if (issue.code === 'unrecognized_keys')
      msg = `unknown setting${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (known: db, evidence, policy, sign_key, verify_key, format, log_level, syslog)`;
    else if (issue.code === 'invalid_enum_value') msg = `expected one of ${issue.options.join(' | ')}, got ${JSON.stringify(issue.received)}`;
    throw new DataError(`${file}:${at}: ${issue.path.join('.') || '(top level)'}: ${msg}`);
  }
  return r.data;
}

export interface LoadedConfig {
  file: string;
  /** false when no configuration file exists (defaults apply) */
  found: boolean;
  config: ConfigFile;
  /** policy drop-ins found in policy.d/ beside the file, sorted */
  dropIns: string[];
}

export function loadConfig(env: NodeJS.ProcessEnv): LoadedConfig {
  const { file, explicit } = configPath(env);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return { file, found: false, config: { version: 1 }, dropIns: listDropIns(file) };
    if (code === 'ENOENT') throw new NoInputError(`configuration file not found: ${file} ($INTEG_CONFIG)`);
    throw new NoInputError(`cannot read configuration ${file}: ${(e as Error).message}`);
  }
  return { file, found: true, config: parseConfig(text, file), dropIns: listDropIns(file) };
}

function listDropIns(configFile: string): string[] {
  return dropInFiles(path.join(path.dirname(configFile), 'policy.d'));
}

/**
 * Fill unset INTEG_* variables from the configuration (paths relative to the file's folder).
 * INTEG_POLICY_D names the drop-in folder when the policy is the configured one (not one the
 * user chose with $INTEG_POLICY); --policy on a command line also bypasses the drop-ins.
 */
export function applyConfig(env: NodeJS.ProcessEnv): LoadedConfig {
  const loaded = loadConfig(env);
  const c = loaded.config;
  const dir = path.dirname(loaded.file);
  const abs = (p: string): string => (path.isAbsolute(p) ? p : path.resolve(dir, p));
  const userPolicy = env.INTEG_POLICY !== undefined;
  const set = (k: string, v: string | undefined): void => {
    if (v !== undefined && env[k] === undefined) env[k] = v;
  };
  set('INTEG_DB', c.db && abs(c.db));
  set('INTEG_EVIDENCE', c.evidence && abs(c.evidence));
  set('INTEG_POLICY', c.policy && abs(c.policy));
  set('INTEG_SIGN_KEY', c.sign_key && abs(c.sign_key));
  set('INTEG_VERIFY_KEY', c.verify_key && abs(c.verify_key));
  set('INTEG_FORMAT', c.format);
  set('INTEG_LOG_LEVEL', c.log_level);
  if (typeof c.syslog === 'string') set('INTEG_SYSLOG', c.syslog);
  else if (c.syslog) {
    set('INTEG_SYSLOG', c.syslog.target);
    set('INTEG_SYSLOG_FACILITY', c.syslog.facility);
  }
  if (!userPolicy && loaded.dropIns.length) set('INTEG_POLICY_D', path.join(dir, 'policy.d'));
  return loaded;
}
