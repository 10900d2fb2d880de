/**
 * The CAs every outgoing TLS connection trusts: Node.js's bundled Mozilla list (`tls.rootCertificates`,
 * not the OS store) and, as the official agent's image trusts them, the certificates of the files
 * SSL_CERT_FILE, REQUESTS_CA_BUNDLE and NODE_EXTRA_CA_CERTS name, of SSL_CERT_DIR's folders and of
 * the AGENT_CA_DIRECTORIES folders. Read once, at start. The same certificate found again (a
 * system bundle repeats most of Node's list) is trusted once.
 *
 * A file a variable names is the operator's explicit wish: unreadable, without a certificate or
 * with one Node.js cannot parse, it stops the agent. A file found in a folder is skipped with a
 * reason instead: a folder may hold what nobody checked, and one bad file must not stop the rest.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { ConfigError, describeError } from '../errors.js';
import { fileSystemReason, listCertificateFiles } from './ca-folders.js';
import type { SkippedSource } from './ca-folders.js';
import { pemCertificates, unreadableReason } from './pem-certificates.js';
import type { PemCertificate } from './pem-certificates.js';

export type CaFileVariable = 'SSL_CERT_FILE' | 'REQUESTS_CA_BUNDLE' | 'NODE_EXTRA_CA_CERTS';

/** Where certificates to trust besides Node.js's bundled Mozilla CA list come from. */
export interface CaSources {
  /** PEM files named by a variable: one that cannot be read or holds no certificate stops the agent. */
  files: { variable: CaFileVariable; path: string }[];
  /** SSL_CERT_DIR's folders, read without subfolders as OpenSSL reads them. */
  sslCertDirectories: string[];
  /** AGENT_CA_DIRECTORIES, read with their subfolders; a missing one is skipped. */
  directories: string[];
}

/** What one file or folder gave. */
export interface SourceSummary {
  /** The variable that named it: a file's own variable, SSL_CERT_DIR or AGENT_CA_DIRECTORIES. */
  variable: string;
  path: string;
  /** False for a folder that does not exist. */
  exists: boolean;
  /** Certificates found there (in every file of a folder). */
  certificates: number;
  /** Of those, the ones neither Node.js's list nor an earlier source had. */
  added: number;
}

export interface TrustedCas {
  /** Node.js's bundled CAs and the added ones; undefined when nothing was added (Node's defaults serve). */
  ca: string[] | undefined;
  added: number;
  sources: SourceSummary[];
  /** Folder files (and folders) not used, with why. */
  skipped: SkippedSource[];
}

/** Why a file's certificates cannot be trusted, or undefined when all of them can. */
function fileProblem(certificates: readonly PemCertificate[], isKnown: (certificate: PemCertificate) => boolean): string | undefined {
  if (certificates.length === 0) return 'no PEM certificate (a DER file needs converting: openssl x509 -inform der -in FILE -out FILE.crt)';
  for (const [index, certificate] of certificates.entries()) {
    // A copy of a CA already trusted (Node's own, or checked in an earlier file) needs no parse.
    const reason = isKnown(certificate) ? undefined : unreadableReason(certificate);
    if (reason !== undefined) return `certificate ${index + 1} of ${certificates.length} cannot be parsed: ${reason}`;
  }
  return undefined;
}

export function loadTrustedCas(sources: CaSources): TrustedCas {
  const read = (path: string): string => readFileSync(path, 'utf8');
  const identities = new Set(pemCertificates(rootCertificates.join('\n')).map((certificate) => certificate.identity));
  const isKnown = (certificate: PemCertificate): boolean => identities.has(certificate.identity);
  const added: string[] = [];
  const summaries: SourceSummary[] = [];
  const skipped: SkippedSource[] = [];
  /** Trusts the certificates of one source, returning how many of them were new. */
  const trust = (certificates: readonly PemCertificate[]): number => {
    let count = 0;
    for (const certificate of certificates) {
      if (isKnown(certificate)) continue;
      identities.add(certificate.identity);
      added.push(certificate.pem);
      count += 1;
    }
    return count;
  };

  for (const { variable, path } of sources.files) {
    let text: string;
    try {
      text = read(path);
    } catch (error) {
      throw new ConfigError(`Invalid configuration: ${variable} names a file that cannot be read (${path}: ${describeError(error)})`, { variable });
    }
    const certificates = pemCertificates(text);
    if (certificates.length === 0) throw new ConfigError(`Invalid configuration: ${variable} names a file without a PEM certificate (${path})`, { variable });
    const problem = fileProblem(certificates, isKnown);
    if (problem !== undefined) throw new ConfigError(`Invalid configuration: ${variable} names a file with a certificate Node.js cannot use (${path}: ${problem})`, { variable });
    summaries.push({ variable, path, exists: true, certificates: certificates.length, added: trust(certificates) });
  }

  const folders = [
    ...sources.sslCertDirectories.map((path) => ({ variable: 'SSL_CERT_DIR', path, recursive: false })),
    ...sources.directories.map((path) => ({ variable: 'AGENT_CA_DIRECTORIES', path, recursive: true })),
  ];
  for (const { variable, path, recursive } of folders) {
    const listing = listCertificateFiles(path, { recursive });
    skipped.push(...listing.skipped);
    const summary: SourceSummary = { variable, path, exists: listing.exists, certificates: 0, added: 0 };
    for (const file of listing.files) {
      let certificates: PemCertificate[];
      try {
        certificates = pemCertificates(read(file));
      } catch (error) {
        skipped.push({ path: file, reason: `the file cannot be read (${fileSystemReason(error)})` });
        continue;
      }
      const problem = fileProblem(certificates, isKnown);
      if (problem !== undefined) {
        skipped.push({ path: file, reason: problem });
        continue;
      }
      summary.certificates += certificates.length;
      summary.added += trust(certificates);
    }
    summaries.push(summary);
  }

  return { ca: added.length === 0 ? undefined : [...rootCertificates, ...added], added: added.length, sources: summaries, skipped };
}
