/**
 * A cap on the keep-alive connections a client keeps idle across all hosts and all its Node.js
 * agents (direct http, https, one per proxy). Node.js bounds idle sockets per host only
 * (`maxFreeSockets`); a mapping that sends each tenant's runs to a host of its own leaves one idle
 * socket per host, each holding 20-40 KB of heap, and the churn of thousands of them moved into
 * V8's old space made the heap, and the RSS, grow with the number of hosts called rather than the
 * hosts in use. Past the cap, the connection idle the longest closes.
 */
import type { Agent, ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** The agent's pool as Node.js documents it: `agent.freeSockets`, keyed by `agent.getName(options)`. */
type PoolingAgent = Agent & {
  getName(options: object): string;
  reuseSocket(socket: Socket | Duplex, request: ClientRequest): void;
};

export interface IdleSocketCap {
  /** Counts the agent's idle sockets against the cap; an agent is watched once. */
  watch(agent: Agent): void;
}

export function createIdleSocketCap(maxIdleSockets: number): IdleSocketCap {
  if (!Number.isInteger(maxIdleSockets) || maxIdleSockets < 1) {
    throw new RangeError(`Expected \`maxIdleSockets\` to be a positive integer (actual: ${maxIdleSockets})`);
  }
  // The idle sockets in the order they became idle (a Set keeps insertion order). A socket leaves
  // when a request reuses it, when it closes, or when the cap closes it.
  const idle = new Set<Socket | Duplex>();
  const closeListened = new WeakSet<Socket | Duplex>();
  const watched = new WeakSet<Agent>();

  function closeOldestPastCap(): void {
    for (const oldest of idle) {
      if (idle.size <= maxIdleSockets) return;
      idle.delete(oldest);
      // The agent drops a destroyed socket from its pool (and the host's entry with its last one).
      oldest.destroy();
    }
  }

  return {
    watch(agent) {
      if (watched.has(agent)) return;
      watched.add(agent);
      const pool = agent as PoolingAgent;
      // `reuseSocket` is Node.js' documented hook for a pooled socket taken by a request.
      const reuseSocket = pool.reuseSocket.bind(pool);
      pool.reuseSocket = (socket, request) => {
        idle.delete(socket);
        reuseSocket(socket, request);
      };
      // Registered after the agent's own 'free' listener (from its constructor): by now the socket
      // is pooled, handed to a request that was waiting, or destroyed.
      pool.on('free', (socket: Socket, options: object) => {
        idle.delete(socket);
        if (socket.destroyed || !(pool.freeSockets[pool.getName(options)]?.includes(socket) ?? false)) return;
        idle.add(socket);
        if (!closeListened.has(socket)) {
          closeListened.add(socket);
          // Closed by its idle timeout or by the server: no longer idle, and not kept by this map.
          socket.once('close', () => idle.delete(socket));
        }
        closeOldestPastCap();
      });
    },
  };
}
