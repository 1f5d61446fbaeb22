import os from 'node:os';
import path from 'node:path';

function stateDir(env: NodeJS.ProcessEnv): string {
  const isRoot = typeof process.geteuid === 'function' && process.geteuid() === 0;
  if (isRoot) return '/var/lib/integ';
  const xdg = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state');
  return path.join(xdg, 'integ');
}

/** --db FILE, else $INTEG_DB, else /var/lib/integ/integ.db (root) or $XDG_STATE_HOME/integ/integ.db. */
export function defaultDbPath(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env.INTEG_DB ?? path.join(stateDir(env), 'integ.db');
}

/** --out DIR, else $INTEG_EVIDENCE, else /var/lib/integ/evidence (root) or $XDG_STATE_HOME/integ/evidence. */
export function defaultEvidenceDir(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env.INTEG_EVIDENCE ?? path.join(stateDir(env), 'evidence');
}
