import { loadDpkg, type PackageIndex } from './dpkg.js';
import { loadRpm } from './rpm.js';

/**
 * The package database under ROOT: dpkg's, else rpm's (sqlite), else null. `digestsOnly`: only
 * files with a recorded digest are needed (baseline's comparison), not every owned path. `only`:
 * only these paths will be looked up (dpkg then parses just the files that can mention them; rpm
 * reads everything, as before).
 */
export async function loadPackages(root: string, opts: { digestsOnly?: boolean; only?: readonly string[] } = {}): Promise<PackageIndex | null> {
  const dpkg = loadDpkg(root, opts.digestsOnly === true, opts.only);
  if (dpkg) return dpkg;
  return loadRpm(root);
}
