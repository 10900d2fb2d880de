/**
 * SPEC §6: X-Port-Timestamp is now in whole seconds, X-Port-Signature signs exactly the body bytes
 * sent, so a receiver can verify the raw body it got.
 */
import { computePortSignature } from '../message/signature.js';

export interface SignatureHeaders {
  'X-Port-Timestamp': string;
  'X-Port-Signature': string;
}

export function signatureHeaders(secret: string, bodyText: string, nowMs: number = Date.now()): SignatureHeaders {
  const timestamp = String(Math.floor(nowMs / 1000));
  return { 'X-Port-Timestamp': timestamp, 'X-Port-Signature': computePortSignature(secret, timestamp, bodyText) };
}
