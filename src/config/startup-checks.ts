/**
 * The checks the agent makes at start before it connects anywhere, and `port-agent check-config`
 * makes too: the decryption key against the mappings that decrypt, Kafka security, CA files.
 */
import { ConfigError } from '../errors.js';
import { loadTrustedCas } from '../trust/trusted-cas.js';
import type { TrustedCas } from '../trust/trusted-cas.js';
import { kafkaSecurity } from './kafka-security.js';
import type { Config } from './load.js';

/** What the checks read of a compiled mapping. */
export interface DecryptingMapping {
  index: number;
  fieldsToDecryptPaths: readonly unknown[];
}

/**
 * The rules the agent applies at start after the mapping file is loaded, with the agent's texts:
 * the decryption key, the Kafka security settings, the CA files and folders. Returns the CAs to
 * trust (read once, here) with what was skipped.
 * @throws ConfigError when the configuration cannot start.
 */
export function startupChecks(config: Config, mappings: readonly DecryptingMapping[], decryptionKey: Buffer | undefined): TrustedCas {
  const decrypting = mappings.find((mapping) => mapping.fieldsToDecryptPaths.length > 0);
  if (decrypting && decryptionKey === undefined) {
    throw new ConfigError(
      `Invalid configuration: PORT_CLIENT_SECRET is shorter than the 32 bytes of an AES-256 key, and mapping ${decrypting.index} asks to decrypt fields (fieldsToDecryptPaths)`,
      { variable: 'PORT_CLIENT_SECRET' },
    );
  }
  if (config.streamerName === 'KAFKA') kafkaSecurity(config.kafka);
  return loadTrustedCas(config.network.caSources);
}
