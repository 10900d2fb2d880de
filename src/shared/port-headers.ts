/**
 * The headers Port signs a message with and the agent signs its requests with (SPEC §4, §6):
 * named here, below every stage, so the logger can redact them as well.
 */
export const SIGNATURE_HEADER = 'X-Port-Signature';
export const TIMESTAMP_HEADER = 'X-Port-Timestamp';
