/**
 * The certificates of a PEM text, each with an identity that is the same for the same certificate
 * however its file wraps the lines, so that the same CA found in several places is trusted once.
 */
import { X509Certificate } from 'node:crypto';
import { describeError } from '../errors.js';

export interface PemCertificate {
  pem: string;
  /** The certificate's DER bytes in base64. */
  identity: string;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/g;

/** Every `BEGIN CERTIFICATE` block of `text`, in order; anything else in the text is ignored. */
export function pemCertificates(text: string): PemCertificate[] {
  return [...text.matchAll(PEM_CERTIFICATE)].map((match) => ({ pem: match[0], identity: (match[1] ?? '').replace(/\s+/g, '') }));
}

/**
 * Why Node.js cannot use `certificate` as a CA, or undefined when it can. Node's TLS code skips
 * such a block without a word, so it is checked here, where the file can still be named.
 */
export function unreadableReason(certificate: PemCertificate): string | undefined {
  try {
    new X509Certificate(certificate.pem);
    return undefined;
  } catch (error) {
    return describeError(error);
  }
}
