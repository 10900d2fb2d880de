/**
 * SPEC §6: X-Port-Timestamp is now in whole seconds, X-Port-Signature signs exactly the body bytes
 * sent, so a receiver can verify the raw body it got.
 */
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, computePortSignature } from '../message/signature.js';

export type SignatureHeaders = Record<typeof TIMESTAMP_HEADER | typeof SIGNATURE_HEADER, string>;

export function signatureHeaders(secret: string, bodyText: string, nowMs: number = Date.now()): SignatureHeaders {
  const timestamp = String(Math.floor(nowMs / 1000));
  return { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: computePortSignature(secret, timestamp, bodyText) };
}
