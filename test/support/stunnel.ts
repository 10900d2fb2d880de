/**
 * TLS in front of plain TCP services with Debian's stunnel4 (docs/development.md: the mock broker speaks no
 * TLS). One stunnel process, one TLS port on loopback per target.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killOnExit, trackExit } from './child-processes.js';
import { waitFor } from './wait.js';

export interface TlsTunnel {
  /** `127.0.0.1:<port>` of each TLS endpoint, in the order of the targets. */
  addresses: string[];
  close(): Promise<void>;
}

const STUNNEL = 'stunnel4';
const START_TIMEOUT_MS = 10_000;
const MAX_STDERR_CHARS = 64 * 1024;

/** A port free right now (stunnel cannot listen on port 0 and say which port it got). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function accepts(address: string): Promise<boolean> {
  const separator = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const socket = connect({ host: address.slice(0, separator), port: Number(address.slice(separator + 1)) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts stunnel serving `server` (PEM key and certificate) on a new TLS port for each of `targets` (`host:port`). */
export async function startTlsTunnel(targets: readonly string[], server: { key: string; cert: string }): Promise<TlsTunnel> {
  const directory = mkdtempSync(join(tmpdir(), 'stunnel-'));
  writeFileSync(join(directory, 'server.key'), server.key, { mode: 0o600 });
  writeFileSync(join(directory, 'server.pem'), server.cert);
  const addresses: string[] = [];
  const services: string[] = [];
  for (const [index, target] of targets.entries()) {
    const address = `127.0.0.1:${await freePort()}`;
    addresses.push(address);
    services.push(`[tunnel-${index}]`, `accept = ${address}`, `connect = ${target}`);
  }
  const configFile = join(directory, 'stunnel.conf');
  writeFileSync(
    configFile,
    [
      'foreground = yes',
      'pid =',
      // Warnings only: each readiness probe below is a connection without a TLS handshake.
      'debug = 3',
      `cert = ${join(directory, 'server.pem')}`,
      `key = ${join(directory, 'server.key')}`,
      ...services,
      '',
    ].join('\n'),
  );

  const child = spawn(STUNNEL, [configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  killOnExit(child);
  const { exited, exitDescription, spawnError, stderr } = trackExit(child, MAX_STDERR_CHARS);
  try {
    await waitFor(
      async () => {
        const failedSpawn = spawnError();
        if (failedSpawn) {
          throw new Error((failedSpawn as NodeJS.ErrnoException).code === 'ENOENT' ? `${STUNNEL} not found: apt-get install -y stunnel4` : `${STUNNEL} failed to start: ${failedSpawn.message}`);
        }
        if (exitDescription() !== undefined) throw new Error(`${STUNNEL} exited (${exitDescription()}): ${stderr().trim()}`);
        return (await Promise.all(addresses.map(accepts))).every(Boolean);
      },
      { timeoutMs: START_TIMEOUT_MS, description: `${STUNNEL} to listen on ${addresses.join(',')}` },
    );
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }
  return {
    addresses,
    close: async () => {
      if (exitDescription() === undefined) child.kill('SIGTERM');
      await exited;
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
