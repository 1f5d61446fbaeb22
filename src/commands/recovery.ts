import type { Command } from 'commander';
import { registerRestore } from './restore.js';
import { registerNote } from './note.js';
import { registerTimeline } from './timeline.js';
import { registerReport } from './report.js';
import { registerDrill } from './drill.js';

/** Recovery and the incident record (issue 10): one registration point, so cli.ts changes by one line. */
export function registerRecoveryCommands(program: Command): void {
  registerRestore(program);
  registerNote(program);
  registerTimeline(program);
  registerReport(program);
  registerDrill(program);
}
