import fs from 'node:fs';
import path from 'node:path';

/**
 * The policy drop-ins of a folder: its *.yml and *.yaml files in name order, as full paths;
 * none when the folder is missing or unreadable. Kept apart from policy-d.ts so that reading
 * the configuration at start-up does not load the policy parser.
 */
export function dropInFiles(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir)
      .filter((n) => n.endsWith('.yml') || n.endsWith('.yaml'))
      .sort()
      .map((n) => path.join(dir, n));
  } catch {
    return [];
  }
}
