/** A target host's circuit breaker, as delivery keeps it and the metrics show it. */

/**
 * - closed: requests go through (failures so far, if any, are below the threshold)
 * - open: the host failed too often; requests are refused until its cool-down ends
 * - half-open: the cool-down ended; one probe request decides whether it closes or opens again
 */
export type CircuitState = 'closed' | 'half-open' | 'open';

export interface HostCircuit {
  /** host[:port], as in the request URL. */
  host: string;
  state: CircuitState;
}
