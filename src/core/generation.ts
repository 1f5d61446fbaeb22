/**
 * A generation as stored (the `generations` table). Its digest covers the header fields and every
 * entry (see store/generation-digest.ts). Here, below app/, store/ and report/, which all use it.
 */
export interface Generation {
  id: number;
  createdAt: string;
  kind: 'baseline' | 'accept' | 'restore';
  user: string;
  uid: number;
  hostname: string;
  note: string | null;
  root: string;
  policySource: string;
  policyText: string;
  policyDigest: string;
  hashAlgos: string;
  entryCount: number;
  totalBytes: number;
  errorCount: number;
  parentId: number | null;
  parentDigest: string | null;
  digest: string;
  signature: string | null;
  keyId: string | null;
  toolVersion: string;
}
