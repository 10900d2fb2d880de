/**
 * A cap on the keep-alive connections a Node.js agent keeps idle across all hosts. Node.js bounds
 * idle sockets per host only (`maxFreeSockets`); a mapping that sends each tenant's runs to a host
 * of its own leaves one idle socket per host, each holding 20-40 KB of heap, and the churn of
 * thousands of them moved into V8's old space made the heap, and the RSS, grow with the number of
 * hosts called rather than the hosts in use. Past the cap, the connection idle the longest closes.
 */
import type { Agent } from 'node:http';
import type { Socket } from 'node:net';

/** The agent's pool as Node.js documents it: `agent.freeSockets`, keyed by `agent.getName(options)`. */
type PoolingAgent = Agent & { getName(options: object): string };

export function capIdleSockets(agent: Agent, maxIdleSockets: number): void {
  if (!Number.isInteger(maxIdleSockets) || maxIdleSockets < 1) {
    throw new RangeError(`Expected \`maxIdleSockets\` to be a positive integer (actual: ${maxIdleSockets})`);
  }
  const pool = agent as PoolingAgent;
  // Sockets in the order they last became idle (a Map keeps insertion order); an entry may have
  // been reused or closed since, which `isIdleInPool` tells.
  const idleSince = new Map<Socket, string>();
  const isIdleInPool = (socket: Socket, name: string): boolean => !socket.destroyed && (pool.freeSockets[name]?.includes(socket) ?? false);

  // Registered after the agent's own 'free' listener (from its constructor): the socket is pooled by now.
  pool.on('free', (socket: Socket, options: object) => {
    const name = pool.getName(options);
    idleSince.delete(socket);
    if (!isIdleInPool(socket, name)) return;
    idleSince.set(socket, name);
    if (idleSince.size <= maxIdleSockets) return;
    for (const [entry, entryName] of idleSince) if (!isIdleInPool(entry, entryName)) idleSince.delete(entry);
    for (const [oldest] of idleSince) {
      if (idleSince.size <= maxIdleSockets) return;
      idleSince.delete(oldest);
      // The agent drops a destroyed socket from its pool (and the host's entry with its last one).
      oldest.destroy();
    }
  });
}
