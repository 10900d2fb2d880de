/** A TCP listener on loopback that counts the connections it gets and drops each: proof that nothing connected. */
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';

export interface CountingListener {
  server: Server;
  /** `127.0.0.1:<port>`. */
  address: string;
  connections(): number;
}

export async function listenCountingConnections(): Promise<CountingListener> {
  let count = 0;
  const server = createServer((socket) => {
    count += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => count };
}
