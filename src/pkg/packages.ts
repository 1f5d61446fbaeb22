import { loadDpkg, type PackageIndex } from './dpkg.js';
import { loadRpm } from './rpm.js';

/** The package database under ROOT: dpkg's, else rpm's (sqlite), else null. */
export async function loadPackages(root: string): Promise<PackageIndex | null> {
  const dpkg = loadDpkg(root);
  if (dpkg) return dpkg;
  return loadRpm(root);
}
