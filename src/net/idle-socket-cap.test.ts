import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createIdleSocketCap } from './idle-socket-cap.js';

// A destroyed socket leaves the agent's pool on its 'close' event, a tick later: not counted.
const openCount = (sockets: readonly { destroyed: boolean }[] | undefined): number => sockets?.filter((socket) => !socket.destroyed).length ?? 0;

/** Open idle sockets the agent holds now, across all hosts. */
function idleSocketCount(agent: http.Agent): number {
  return Object.values(agent.freeSockets).reduce((count, sockets) => count + openCount(sockets), 0);
}

/** Open idle sockets the agent holds for one host. */
function idleSocketsOf(agent: http.Agent, host: string, port: number): number {
  return openCount(agent.freeSockets[`${host}:${port}:`]);
}

/** A keep-alive agent whose idle sockets outlive the test, unless the cap closes them. */
const keepAliveAgent = (): http.Agent => new http.Agent({ keepAlive: true, timeout: 60_000 });

/** A keep-alive agent under a cap of its own. */
function cappedAgent(maxIdleSockets: number): http.Agent {
  const agent = keepAliveAgent();
  createIdleSocketCap(maxIdleSockets).watch(agent);
  return agent;
}

async function get(agent: http.Agent, host: string, port: number, path = '/'): Promise<void> {
  const request = http.get({ agent, host, port, path });
  const [response] = (await once(request, 'response')) as [http.IncomingMessage];
  response.resume();
  await once(response, 'end');
  // The socket goes back to the pool on the next tick of the response's end.
  await new Promise((resolve) => setImmediate(resolve));
}

describe('createIdleSocketCap', () => {
  let server: http.Server;
  let port: number;

  before(async () => {
    // Linux routes all of 127.0.0.0/8 to loopback: each address is a host of its own to the agent.
    server = http.createServer((request, response) => {
      if (request.url === '/slow') setTimeout(() => response.end('ok'), 200);
      else response.end('ok');
    });
    server.keepAliveTimeout = 60_000;
    server.listen(0, '0.0.0.0');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('closes the connection idle the longest once more than the cap are idle across hosts', async () => {
    const agent = cappedAgent(2);
    await get(agent, '127.0.0.1', port);
    await get(agent, '127.0.0.2', port);
    assert.equal(idleSocketCount(agent), 2);
    await get(agent, '127.0.0.1', port);
    await get(agent, '127.0.0.3', port);
    assert.equal(idleSocketCount(agent), 2);
    assert.equal(idleSocketsOf(agent, '127.0.0.2', port), 0, 'the host idle the longest lost its connection');
    assert.equal(idleSocketsOf(agent, '127.0.0.1', port), 1, 'a host used again keeps its connection');
    assert.equal(idleSocketsOf(agent, '127.0.0.3', port), 1);
    agent.destroy();
  });

  it('counts the idle sockets of every agent it watches against one cap', async () => {
    const cap = createIdleSocketCap(2);
    const first = keepAliveAgent();
    const second = keepAliveAgent();
    cap.watch(first);
    cap.watch(second);
    await get(first, '127.0.0.5', port);
    await get(second, '127.0.0.6', port);
    await get(first, '127.0.0.7', port);
    assert.equal(idleSocketCount(first) + idleSocketCount(second), 2);
    assert.equal(idleSocketsOf(first, '127.0.0.5', port), 0, 'the oldest idle socket, of the other agent, closed');
    first.destroy();
    second.destroy();
  });

  it('does not count a pooled socket while a request has it again', async () => {
    const agent = cappedAgent(2);
    await get(agent, '127.0.0.8', port);
    const slow = get(agent, '127.0.0.8', port, '/slow');
    await get(agent, '127.0.0.9', port);
    await get(agent, '127.0.0.10', port);
    assert.equal(idleSocketCount(agent), 2, 'the reused socket is busy: two idle, none closed');
    assert.equal(idleSocketsOf(agent, '127.0.0.9', port), 1);
    await slow;
    assert.equal(idleSocketCount(agent), 2);
    assert.equal(idleSocketsOf(agent, '127.0.0.9', port), 0, 'idle again, it is the newest: the oldest idle one closed');
    assert.equal(idleSocketsOf(agent, '127.0.0.8', port), 1);
    agent.destroy();
  });

  it('leaves a busy host its pool while the cap is not reached', async () => {
    const agent = cappedAgent(4);
    await Promise.all([get(agent, '127.0.0.4', port), get(agent, '127.0.0.4', port), get(agent, '127.0.0.4', port)]);
    assert.equal(idleSocketsOf(agent, '127.0.0.4', port), 3);
    agent.destroy();
  });

  it('refuses a cap that is not a positive integer, naming the option', () => {
    for (const maxIdleSockets of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => createIdleSocketCap(maxIdleSockets), /`maxIdleSockets`/);
    }
  });
});
