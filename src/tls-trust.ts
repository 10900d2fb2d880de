/**
 * Extra trusted CAs (SPEC §1): NODE_EXTRA_CA_CERTS and, for compatibility with the official agent,
 * REQUESTS_CA_BUNDLE, trusted besides Node.js's bundled Mozilla CA list (`tls.rootCertificates`,
 * not the OS store) for every outgoing TLS connection. Node.js reads NODE_EXTRA_CA_CERTS by itself,
 * but only warns when the file is missing, and knows nothing of REQUESTS_CA_BUNDLE; here both are
 * read at start, a missing or empty file is a configuration error, and the resulting list is given
 * to every client that opens TLS connections.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { ConfigError, describeError } from './errors.js';
import type { NetworkConfig } from './config/load.js';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The CAs to trust: undefined when no extra file is configured (the clients keep Node's own
 * defaults), else the bundled Mozilla CAs and every certificate of the files.
 */
export function loadTrustedCas(files: NetworkConfig['extraCaFiles'], read: (path: string) => string = (path) => readFileSync(path, 'utf8')): string[] | undefined {
  if (files.length === 0) return undefined;
  const extra: string[] = [];
  for (const { variable, path } of files) {
    let text: string;
    try {
      text = read(path);
    } catch (error) {
      throw new ConfigError(`Invalid configuration: ${variable} names a file that cannot be read (${path}: ${describeError(error)})`, { variable });
    }
    const certificates = text.match(PEM_CERTIFICATE) ?? [];
    if (certificates.length === 0) throw new ConfigError(`Invalid configuration: ${variable} names a file without a PEM certificate (${path})`, { variable });
    extra.push(...certificates);
  }
  return [...rootCertificates, ...extra];
}
