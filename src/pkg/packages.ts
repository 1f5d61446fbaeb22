import { loadDpkg, type PackageIndex } from './dpkg.js';
import { loadRpm } from './rpm.js';

/**
 * The package database under ROOT: dpkg's, else rpm's (sqlite), else null. `digestsOnly`: only
 * files with a recorded digest are needed (baseline's comparison), not every owned path.
 */
export async function loadPackages(root: string, opts: { digestsOnly?: boolean } = {}): Promise<PackageIndex | null> {
  const dpkg = loadDpkg(root, opts.digestsOnly === true);
  if (dpkg) return dpkg;
  return loadRpm(root);
}
