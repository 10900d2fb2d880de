/**
 * What the agent says at start about the CAs it trusts: one info line with how many it added and
 * from where (counts, never the certificates), and one warn line naming every file it skipped.
 */
import { rootCertificates } from 'node:tls';
import type { Logger } from '../log.js';
import type { SkippedSource } from './ca-folders.js';
import type { TrustedCas } from './trusted-cas.js';

export const TRUSTED_CAS_MESSAGE = 'trusted certificate authorities';
export const SKIPPED_CA_FILES_MESSAGE = 'certificate files skipped: nothing in them is trusted';

/** The counts, as the log line and `port-agent check-config` show them. */
export function trustSummary(trusted: TrustedCas): { bundled: number; added: number; sources: TrustedCas['sources'] } {
  return { bundled: rootCertificates.length, added: trusted.added, sources: trusted.sources };
}

/** One line per skipped file, for a terminal. */
export function describeSkipped(skipped: SkippedSource): string {
  return `${skipped.path}: ${skipped.reason}`;
}

export function logTrustedCas(trusted: TrustedCas, logger: Logger): void {
  logger.info(trustSummary(trusted), TRUSTED_CAS_MESSAGE);
  if (trusted.skipped.length > 0) logger.warn({ skipped: trusted.skipped }, SKIPPED_CA_FILES_MESSAGE);
}
