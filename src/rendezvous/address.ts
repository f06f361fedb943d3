// Addresses: which one a rank advertises, and how a member finds the coordinator.
import type { LookupOneOptions } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { OptionsError } from '../errors.js';

export type Interfaces = ReturnType<typeof networkInterfaces>;

/** The IPv4 address (else IPv6) of a named interface, as --iface ib0 asks. */
export function interfaceAddress(iface: string, interfaces: Interfaces = networkInterfaces()): string {
  const entries = interfaces[iface];
  if (!entries || entries.length === 0) {
    const names = Object.keys(interfaces).join(', ') || 'none';
    throw new OptionsError(`--iface "${iface}" is not a network interface of this node (it has: ${names})`);
  }
  const chosen = entries.find((e) => e.family === 'IPv4') ?? entries[0]!;
  return chosen.address;
}

/** A ZeroMQ TCP endpoint; IPv6 literals need brackets. */
export function tcpEndpoint(address: string, port: number): string {
  return address.includes(':') ? `tcp://[${address}]:${port}` : `tcp://${address}:${port}`;
}

/** Resolve a host name, preferring IPv4 as most cluster fabrics do. */
export async function resolveHost(host: string): Promise<string> {
  const options = { family: 0, order: 'ipv4first' } as LookupOneOptions;
  const { address } = await lookup(host, options);
  return address;
}

/** Whether anything accepts TCP connections at address:port; used only to explain a failure. */
export function probeTcp(address: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
