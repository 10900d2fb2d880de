/**
 * The certificate files of a CA folder: every `*.crt` and `*.pem` file, symbolic links followed
 * (Debian's /etc/ssl/certs is mostly links). Subfolders are read too when asked, as
 * update-ca-certificates reads /usr/local/share/ca-certificates and Debian files its own CAs in
 * /usr/share/ca-certificates/mozilla/. Hidden entries are skipped: a Kubernetes volume keeps a
 * second copy of every file in a hidden `..<timestamp>` folder behind the visible links.
 */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describeError } from '../errors.js';

/** A file or folder the agent could not use, with why; it is skipped. */
export interface SkippedSource {
  path: string;
  reason: string;
}

export interface FolderListing {
  /** False when the folder does not exist (nothing else is reported then). */
  exists: boolean;
  /** The certificate files, sorted within each folder, subfolders' files after the folder's own. */
  files: string[];
  skipped: SkippedSource[];
}

const CERTIFICATE_FILE = /\.(?:crt|pem)$/;

/** `ENOENT`, `EACCES`, …: enough for an operator, without the path said twice. */
export function fileSystemReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : describeError(error);
}

export function listCertificateFiles(folder: string, options: { recursive: boolean }): FolderListing {
  const listing: FolderListing = { exists: true, files: [], skipped: [] };
  const visited = new Set<string>();
  const walk = (current: string, isTop: boolean): void => {
    let names: string[];
    try {
      // A link back up the tree would otherwise be walked for ever.
      const real = realpathSync(current);
      if (visited.has(real)) return;
      visited.add(real);
      names = readdirSync(current).sort();
    } catch (error) {
      if (isTop && fileSystemReason(error) === 'ENOENT') listing.exists = false;
      else listing.skipped.push({ path: current, reason: `the folder cannot be read (${fileSystemReason(error)})` });
      return;
    }
    const subfolders: string[] = [];
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const path = join(current, name);
      const isCertificateFile = CERTIFICATE_FILE.test(name);
      try {
        const stats = statSync(path);
        if (stats.isDirectory()) {
          if (options.recursive) subfolders.push(path);
        } else if (isCertificateFile && stats.isFile()) listing.files.push(path);
      } catch (error) {
        // A link to nowhere, say; only a certificate file's name promises something worth a word.
        if (isCertificateFile) listing.skipped.push({ path, reason: `the file cannot be read (${fileSystemReason(error)})` });
      }
    }
    for (const subfolder of subfolders) walk(subfolder, false);
  };
  walk(folder, true);
  return listing;
}
