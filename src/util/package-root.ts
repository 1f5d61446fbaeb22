import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function find(): string {
  // Built code runs from dist/src/…, tests from src/…: walk up to the folder with package.json.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    dir = path.dirname(dir);
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
  }
  throw new Error('package.json not found above integ');
}

/** The installed package's root folder (holds package.json and baselines/). */
export const PACKAGE_ROOT: string = find();
